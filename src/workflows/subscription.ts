import { defineWorkflow } from '../core/builder.js'
import { NotReadyError } from '../core/worker-signals.js'

/**
 * A subscription billing run: invoice → collect → notify. `collect` retries a failing payment with backoff
 * (10 s, ×2) up to 4 counted failures, and gives up after 10 minutes (max_wait_time_ts) while the payment is
 * still pending; `notify` is best effort.
 *
 * Try it: context `{"customer": "c-1", "amount": 30, "declines": 2}` is declined twice, then collected.
 */
export const subscriptionBillingWorkflow = defineWorkflow({
  type: 'subscription-billing',
  name: 'Subscription billing run',
  retry: { initialDelaySeconds: 10, multiplier: 2, maxDelaySeconds: 120 },
  nodes: {
    invoice: {
      name: 'Issue the invoice',
      next: ['collect'],
      run: (ctx) => {
        ctx.set('invoice', {
          number: `INV-${ctx.instanceId}`,
          customer: ctx.getString('workflow_context', 'customer') ?? 'unknown',
          amount: ctx.getNumber('workflow_context', 'amount') ?? 0,
        })
      },
    },
    collect: {
      name: 'Collect the payment',
      next: ['notify'],
      failMaxCount: 4,
      maxWaitTimeSeconds: 600,
      run: (ctx) => {
        const attempts = (ctx.getInteger('attempts') ?? 0) + 1
        ctx.set('attempts', attempts)
        if (attempts <= (ctx.getInteger('workflow_context', 'declines') ?? 0)) {
          throw new Error(`card declined (attempt ${attempts})`)
        }
        ctx.set('collected', ctx.getNumber('pre_node_context', 'invoice', 'invoice', 'amount') ?? 0)
      },
      check: (ctx) => {
        // The provider settles asynchronously: poll until the (simulated) settlement time has passed.
        const settleAfter = ctx.getInteger('workflow_context', 'settle_after_polls') ?? 0
        const polls = (ctx.getInteger('polls') ?? 0) + 1
        ctx.set('polls', polls)
        if (polls <= settleAfter) throw new NotReadyError(5)
      },
    },
    notify: {
      name: 'Send the receipt',
      run: (ctx) => {
        ctx.set('receipt_sent_to', ctx.getString('workflow_context', 'customer') ?? 'unknown')
      },
    },
  },
})
