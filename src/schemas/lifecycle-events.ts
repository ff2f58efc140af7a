import { z } from 'zod'
import { INSTANCE_STATUSES, STORED_NODE_STATUSES } from './statuses.js'

/**
 * Lifecycle events (README, "Lifecycle events"): what an outbox entry holds, and `detail` as it is published —
 * the schema the README documents and the OpenAPI document carries under `components.schemas`.
 */

const statusSchema = z.enum([...new Set([...INSTANCE_STATUSES, ...STORED_NODE_STATUSES])] as [string, ...string[]])

const detailFields = {
  version: z.literal(1).meta({ description: 'the version of this detail; fields are only ever added within it' }),
  eventId: z.string().meta({ description: 'stable across every publication of the event: deduplicate on it' }),
  instanceId: z.string(),
  workflowType: z.string(),
  businessId: z.string().optional(),
  definitionVersion: z.string(),
  status: statusSchema.meta({ description: "the instance's new status, or the node's for a node event" }),
  previousStatus: statusSchema.optional().meta({ description: 'absent for a new instance or node' }),
  reason: z.string().optional().meta({
    description: "why it failed or timed out; a failed node's last error; why a node was skipped (its skip reason)",
  }),
  nodeId: z
    .string()
    .optional()
    .meta({ description: 'the node (node events), or the node a failed instance failed at' }),
  attempt: z.number().int().optional().meta({ description: 'node events: 1 + restarts of the node' }),
  failCount: z.number().int().optional().meta({ description: 'node events' }),
  optional: z.literal(true).optional().meta({
    description: 'node events: a failed node that is optional (its successors count it as done: failed_optional)',
  }),
  createdAtMs: z.number().int(),
  timeMs: z.number().int().meta({ description: 'when the change was stored' }),
}

/** One outbox entry, as stored with its instance until it is published. */
export const lifecycleEventSchema = z.object({
  id: z.string(),
  detailType: z.enum(['Workflow Instance Status Change', 'Workflow Node Status Change']),
  detail: z.object(detailFields),
})

/** `detail` as published (EventBridge, the local bus, webhooks). */
export const publishedDetailSchema = z
  .object({
    ...detailFields,
    createdAt: z.string().meta({ description: 'ISO 8601' }),
    time: z.string().meta({ description: 'ISO 8601: when the change was stored' }),
    resent: z
      .literal(true)
      .optional()
      .meta({ description: 'published again after a crash or a refusal: it may have been delivered before' }),
  })
  .meta({
    description:
      'source "tickflow"; detail-type "Workflow Instance Status Change" or "Workflow Node Status Change" (node ' +
      'events only for the workflow types that opt in)',
  })
export type PublishedDetail = z.infer<typeof publishedDetailSchema>

/** The detail an event is published with: its stored detail, ISO times, and `resent` when it may be a duplicate. */
export const publishedDetail = (
  event: { detail: z.infer<typeof lifecycleEventSchema>['detail'] },
  resent: boolean,
): PublishedDetail => ({
  ...event.detail,
  createdAt: new Date(event.detail.createdAtMs).toISOString(),
  time: new Date(event.detail.timeMs).toISOString(),
  ...(resent ? { resent: true as const } : {}),
})
