import { defineWorkflow } from '../core/builder.js'
import { FailedWithFailedError } from '../core/worker-signals.js'

/**
 * authorize → capture → receipt. `capture` hands the card provider a callback URL and returns: the node then waits,
 * without polling, until the provider posts its answer to that URL (README, "Callbacks"):
 *   POST /callbacks/{token}  {"status": "success", "output": {"reference": "ch_123"}}
 *   POST /callbacks/{token}  {"status": "failure", "error": "CardDeclined", "cause": "insufficient funds"}
 *   POST /callbacks/{token}  {"status": "heartbeat"}        (still settling: at least every 15 minutes)
 * A decline or a missed heartbeat is a failed attempt, tried again (a new token) up to 3 times; after an hour
 * without an answer the attempt times out.
 */
export const paymentWorkflow = defineWorkflow({
  type: 'payment',
  name: 'Card payment confirmed by the provider',
  nodes: {
    authorize: {
      name: 'Check the amount',
      next: ['capture'],
      run: (ctx) => {
        const amount = ctx.getNumber('workflow_context', 'amount')
        if (amount === undefined || amount <= 0) throw new FailedWithFailedError('the payment has no positive amount')
        ctx.set('amount', amount)
      },
    },
    capture: {
      name: "Wait for the provider's confirmation",
      next: ['receipt'],
      failMaxCount: 3,
      run: async (ctx) => {
        const { url } = await ctx.callback({ timeoutSeconds: 3600, heartbeatSeconds: 900 })
        // The provider would be asked to capture here, with ctx.idempotencyKey and the URL to call back.
        ctx.set('confirm_url', url)
      },
    },
    receipt: {
      name: 'Record the receipt',
      run: (ctx) => {
        const confirmation = ctx.get('pre_node_context', 'capture', 'callback_output') ?? null
        ctx.set('receipt', { amount: ctx.getNumber('workflow_context', 'amount') ?? 0, confirmation })
      },
    },
  },
})
