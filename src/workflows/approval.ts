import { defineWorkflow } from '../core/builder.js'
import { NotReadyError } from '../core/worker-signals.js'

/**
 * submit → review → approve. `review` waits for a reviewer's decision, sent as an external event:
 *   POST /workflows/{id}/nodes/review/events  {"eventTs": 1732200000, "content": {"decision": "approved"}}
 * It gives up after a day (max_wait_time_ts).
 */
export const approvalWorkflow = defineWorkflow({
  type: 'approval',
  name: 'Approval',
  nodes: {
    submit: {
      name: 'Submit request',
      next: ['review'],
      run: (ctx) => {
        ctx.set('requested_by', ctx.getString('workflow_context', 'requester') ?? 'unknown')
        ctx.set('amount', ctx.getNumber('workflow_context', 'amount') ?? 0)
      },
    },
    review: {
      name: 'Wait for a reviewer',
      next: ['approve'],
      maxWaitTimeSeconds: 86_400,
      run: (ctx) => ctx.set('review_status', 'pending'),
      check: (ctx) => {
        const decision = (ctx.event?.content as { decision?: unknown } | null | undefined)?.decision
        if (decision !== 'approved' && decision !== 'rejected') throw new NotReadyError(60)
        ctx.set('review_status', decision)
      },
    },
    approve: {
      name: 'Record the decision',
      run: (ctx) => {
        ctx.set('decision', ctx.getString('pre_node_context', 'review', 'review_status') ?? 'unknown')
      },
    },
  },
})
