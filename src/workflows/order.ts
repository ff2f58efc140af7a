import { defineWorkflow } from '../core/builder.js'
import { FailedWithFailedError } from '../core/worker-signals.js'

interface OrderLine {
  sku: string
  quantity: number
  price: number
}

/**
 * validate → (charge ∥ reserve) → ship. Charging and reserving stock run in parallel; `ship` runs once, after
 * both. An order without lines fails for good at `validate`; every external call gets the node's idempotency key.
 */
export const orderWorkflow = defineWorkflow({
  type: 'order',
  name: 'Order',
  nodes: {
    validate: {
      name: 'Validate the order',
      next: ['charge', 'reserve'],
      run: (ctx) => {
        const lines = (ctx.get('workflow_context', 'lines') ?? []) as unknown as OrderLine[]
        if (!Array.isArray(lines) || lines.length === 0) throw new FailedWithFailedError('the order has no lines')
        const total = lines.reduce((sum, line) => sum + Number(line.quantity) * Number(line.price), 0)
        ctx.set('total', Math.round(total * 100) / 100)
        ctx.set('items', lines.length)
      },
    },
    charge: {
      name: 'Charge the customer',
      next: ['ship'],
      failMaxCount: 5,
      run: (ctx) => {
        const total = ctx.getNumber('pre_node_context', 'validate', 'total') ?? 0
        // A payment provider would be called here with ctx.idempotencyKey.
        ctx.set('payment', { amount: total, reference: `pay_${ctx.idempotencyKey}` })
      },
    },
    reserve: {
      name: 'Reserve stock',
      next: ['ship'],
      run: (ctx) => {
        ctx.set('reserved_items', ctx.getInteger('pre_node_context', 'validate', 'items') ?? 0)
      },
    },
    ship: {
      name: 'Ship',
      run: (ctx) => {
        const paid = ctx.getObject('pre_node_context', 'charge', 'payment')
        const reserved = ctx.getInteger('pre_node_context', 'reserve', 'reserved_items')
        ctx.set('shipment', { carrier: 'local-post', paid: paid !== undefined, items: reserved ?? 0 })
      },
    },
  },
})
