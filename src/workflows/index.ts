import type { WorkflowModule } from '../core/builder.js'
import { approvalWorkflow } from './approval.js'
import { orderWorkflow } from './order.js'
import { paymentWorkflow } from './payment.js'
import { subscriptionBillingWorkflow } from './subscription.js'

/**
 * The workflows every tickflow function (and `npm start`) registers. Add yours here: define it with
 * `defineWorkflow` in a file beside these, import it, and append it to the list.
 */
export const workflows: readonly WorkflowModule[] = [
  approvalWorkflow,
  orderWorkflow,
  subscriptionBillingWorkflow,
  paymentWorkflow,
]
