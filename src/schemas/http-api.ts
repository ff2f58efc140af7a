import { z } from 'zod'
import { nodeWaitingSchema } from './callbacks.js'
import { businessIdSchema, instanceIdSchema, instanceStatusSchema, scheduleNameSchema } from './engine-params.js'
import { HISTORY_KINDS, HISTORY_ORIGINS } from './history-kinds.js'
import { publishedDetailSchema } from './lifecycle-events.js'
import { parkCodeSchema } from './park-codes.js'
import { INSTANCE_STATUSES, NODE_STATUSES, SKIP_REASONS } from './statuses.js'
import { FAILURE_MODES, idSchema, TRIGGER_RULES } from './workflow-config.js'

/**
 * Schemas of the HTTP API: every path parameter, query and body is parsed with these, and the OpenAPI document is
 * generated from the same objects, so the two cannot drift. The types of the API's answers are derived here too, and
 * only here: the API client (and through it the CLI and the dashboard) reads them with type-only imports, so nothing
 * of zod reaches the dashboard's bundle.
 */

/**
 * Any JSON object, passed through untouched: a record schema would rebuild the object and silently drop a
 * `__proto__` key, which the engine must see to reject it.
 */
const jsonObject = z
  .custom<Record<string, unknown>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), {
    message: 'must be a JSON object',
  })
  .meta({ type: 'object', description: 'any JSON object' })
/**
 * A whole number in a query string: 1 to `digits` digits only (no blanks, signs, hex or exponents), then
 * range-checked.
 */
const queryInteger = (min: number, max: number, digits = 16) =>
  z
    .string()
    .regex(new RegExp(`^\\d{1,${digits}}$`), 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
const epochMs = queryInteger(0, 8_640_000_000_000_000)

export const instancePathSchema = z.strictObject({ id: instanceIdSchema })
export const nodePathSchema = z.strictObject({ id: instanceIdSchema, node: idSchema })
export const typePathSchema = z.strictObject({ type: idSchema })

const statusList = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()))
  .pipe(z.array(instanceStatusSchema).min(1).max(INSTANCE_STATUSES.length))
  .meta({ description: 'one status or several, comma-separated' })

const filters = {
  workflowType: idSchema.optional(),
  status: statusList.optional(),
  businessId: businessIdSchema.optional(),
  createdFromMs: epochMs.optional().meta({ description: 'created at or after (ms since epoch)' }),
  createdToMs: epochMs.optional().meta({ description: 'created at or before (ms since epoch)' }),
  parked: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional()
    .meta({ description: 'true: only instances parked with a reason; false: only the others' }),
}

export const listQuerySchema = z.strictObject({
  ...filters,
  limit: queryInteger(1, 1000).optional(),
  cursor: z.string().min(1).max(4096).optional(),
  order: z.enum(['asc', 'desc']).optional(),
})

export const countQuerySchema = z.strictObject(filters)

export const historyQuerySchema = z.strictObject({
  limit: queryInteger(1, 500).optional().meta({ description: 'entries per page (default 100)' }),
  cursor: z.string().min(1).max(4096).optional(),
})

export const historyEntrySchema = z.object({
  seq: z.number().int().meta({ description: 'position in the history, from 0; gaps are entries dropped at the cap' }),
  at: z.string().meta({ description: 'ISO 8601 time' }),
  atMs: z.number(),
  kind: z.enum(HISTORY_KINDS),
  nodeId: z.string().optional(),
  status: z.string().optional().meta({ description: "the node's new status, or the instance's final one" }),
  attempt: z.number().int().optional(),
  durationMs: z.number().optional().meta({ description: 'for a settled node: since it was created' }),
  eventTs: z.number().optional(),
  superseded: z.boolean().optional().meta({ description: 'an event replaced before any pass saw it' }),
  errorClass: z.string().optional(),
  message: z.string().optional(),
  code: z.string().optional().meta({
    description:
      'the parked code; for a skipped node, its skip reason; for a decision, what was decided (when:true, choice[0]:approve, choice.default:none)',
  }),
  origin: z.enum(HISTORY_ORIGINS).optional(),
})

export const historyResponseSchema = z.object({
  items: z.array(historyEntrySchema),
  cursor: z.string().optional(),
  dropped: z
    .number()
    .int()
    .meta({ description: 'entries dropped because the instance reached its cap of kept entries (README, "History")' }),
})

/** The longest a request may wait: API Gateway ends HTTP API requests at 30 s. */
export const MAX_WAIT_SECONDS = 25

export const getQuerySchema = z.strictObject({
  wait: z.enum(['terminal']).optional().meta({ description: 'long-poll until the instance is terminal' }),
  timeoutSeconds: queryInteger(1, MAX_WAIT_SECONDS).optional(),
})

export const createBodySchema = z.strictObject({
  workflowType: idSchema,
  businessId: businessIdSchema.optional(),
  context: jsonObject.optional(),
  run: z.boolean().optional().meta({ description: 'run a pass before answering (default true)' }),
  id: instanceIdSchema.optional().meta({ description: 'client-chosen id: makes the create idempotent' }),
  startAtMs: z.number().int().min(0).optional().meta({ description: 'delayed start (ms since epoch), without run' }),
})

export const runBodySchema = z.strictObject({ mode: z.enum(['explicit', 'due']).optional() }).optional()

export const restartInstanceBodySchema = z
  .strictObject({
    run: z.boolean().optional(),
    context: jsonObject.optional().meta({ description: 'replaces the instance input' }),
    resetCounters: z.boolean().optional(),
  })
  .optional()

export const restartNodeBodySchema = z
  .strictObject({
    force: z.boolean().optional().meta({ description: 'allow restarting a node of a terminal instance' }),
    resetCounters: z.boolean().optional(),
    run: z.boolean().optional(),
  })
  .optional()

export const eventBodySchema = z.strictObject({
  eventTs: z.number().int().min(0).meta({ description: 'event version, seconds: older than stored is rejected' }),
  content: z.unknown().optional(),
})

export const graphQuerySchema = z.strictObject({
  format: z.enum(['mermaid', 'json']).optional(),
})

// ---- responses ---------------------------------------------------------------------------------------------

export const errorResponseSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()),
  }),
})

export const passResultSchema = z.object({
  instanceId: z.string(),
  workflowType: z.string(),
  status: instanceStatusSchema,
  executed: z.array(z.string()),
  dueAtMs: z.number().nullable(),
  eventArrived: z.boolean(),
  skipped: z.enum(['terminal', 'not-due', 'parked']).optional(),
  parked: z.object({ code: parkCodeSchema, reason: z.string() }).optional(),
})

/** 202 from a run: another pass holds the instance and did not finish within the wait. */
export const runBusyResponseSchema = z.object({
  instanceId: z.string(),
  status: instanceStatusSchema,
  busy: z.literal(true),
  leaseUntilMs: z.number().optional(),
  retryAfterSeconds: z.number().int(),
})

export const createResponseSchema = z.object({
  instanceId: z.string(),
  status: instanceStatusSchema,
  created: z.boolean(),
})

export const operationResponseSchema = z.object({
  instanceId: z.string(),
  status: instanceStatusSchema,
  changed: z.boolean(),
})

export const eventResponseSchema = z.object({
  instanceId: z.string(),
  nodeId: z.string(),
  eventTs: z.number(),
  dueAtMs: z.number().nullable().meta({
    description: 'when the instance is due for the event (now); null: it is parked, the event waits for a restart',
  }),
})

const nodeStatusSchema = z.enum(NODE_STATUSES)

export const instanceDetailSchema = z.object({
  id: z.string(),
  workflowType: z.string(),
  businessId: z.string().optional(),
  status: instanceStatusSchema,
  context: jsonObject,
  createdAtMs: z.number(),
  updatedAtMs: z.number(),
  definitionVersion: z.string(),
  dueAtMs: z.number().optional(),
  startAtMs: z.number().optional(),
  parked: z.object({ code: parkCodeSchema, reason: z.string(), atMs: z.number() }).optional(),
  failure: z
    .object({ nodeId: z.string().optional(), reason: z.string(), atMs: z.number() })
    .optional()
    .meta({ description: 'why a failed or timed-out instance ended' }),
  deadlineAtMs: z.number().optional().meta({ description: 'when the instance times out (its timeout_seconds)' }),
  lease: z.object({ owner: z.string(), untilMs: z.number() }).optional(),
  nodes: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      status: nodeStatusSchema,
      predecessors: z.array(z.string()),
      successors: z.array(z.string()),
      failCount: z.number(),
      attempt: z.number(),
      calls: z.number(),
      attemptStartedAtMs: z.number().optional(),
      attemptStep: z.enum(['run', 'check']).optional(),
      deadlineAtMs: z
        .number()
        .optional()
        .meta({ description: 'when max_wait_time_ts or timeout_seconds fails the node, for a node not settled' }),
      skipReason: z.enum(SKIP_REASONS).optional().meta({ description: 'why a skipped node was skipped' }),
      chosen: z
        .string()
        .nullable()
        .optional()
        .meta({ description: 'for a node with a choice that was made: the successor it took (null: none)' }),
      optional: z
        .literal(true)
        .optional()
        .meta({ description: 'an optional node: its failure counts as done (shown as failed-optional)' }),
      createdAtMs: z.number().optional(),
      updatedAtMs: z.number().optional(),
      nextAttemptAtMs: z.number().optional(),
      waiting: nodeWaitingSchema.optional(),
      context: jsonObject.optional(),
    }),
  ),
})

export const listResponseSchema = z.object({
  items: z.array(
    z.object({
      id: z.string(),
      workflowType: z.string(),
      businessId: z.string().optional(),
      status: instanceStatusSchema,
      createdAtMs: z.number(),
      parked: parkCodeSchema.optional(),
    }),
  ),
  cursor: z.string().optional(),
})

export const countResponseSchema = z.object({
  count: z.number().int(),
  /** False when the count stopped after reading 10,000 index entries: then it is a lower bound ("10,000+"). */
  complete: z.boolean(),
})

export const workflowTypeSchema = z.object({
  type: z.string(),
  name: z.string(),
  version: z.string(),
  nodes: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      predecessors: z.array(z.string()),
      successors: z.array(z.string()),
      failMaxCount: z.number(),
      maxWaitTimeSeconds: z.number(),
      hasCheck: z.boolean(),
      when: z.string().optional().meta({ description: 'the JSONata condition: false skips the node' }),
      choice: z
        .array(
          z.union([z.object({ when: z.string(), next: z.string() }), z.object({ default: z.string().nullable() })]),
        )
        .optional()
        .meta({ description: 'the exclusive choice among the successors, made when the node completes' }),
      trigger: z.enum(TRIGGER_RULES).meta({ description: 'the join rule' }),
      optional: z.boolean().meta({ description: 'a failure of the node counts as done for its successors' }),
      runTimeoutSeconds: z.number().optional().meta({ description: 'bounds each attempt of the worker' }),
      timeoutSeconds: z.number().optional().meta({ description: 'bounds the node from its creation' }),
    }),
  ),
  onFailure: z.enum(FAILURE_MODES).meta({ description: 'fail_fast or isolate' }),
  timeoutSeconds: z.number().optional().meta({ description: 'bounds the instance: it then ends timed_out' }),
  mermaid: z.string(),
})

export const workflowTypesResponseSchema = z.object({ items: z.array(workflowTypeSchema) })

export const graphResponseSchema = z.object({ format: z.literal('mermaid'), graph: z.string() })

// ---- recurring schedules -----------------------------------------------------------------------------------

export const schedulePathSchema = z.strictObject({ name: scheduleNameSchema })

export const putScheduleBodySchema = z.strictObject({
  name: scheduleNameSchema,
  expression: z
    .string()
    .min(6)
    .max(256)
    .meta({ description: 'cron(min hour day-of-month month day-of-week year) or rate(N minutes|hours|days)' }),
  timezone: z.string().min(1).max(64).optional().meta({ description: 'IANA time zone of a cron expression' }),
  workflowType: idSchema,
  context: jsonObject.optional(),
  businessId: businessIdSchema.optional(),
  enabled: z.boolean().optional(),
  description: z.string().max(512).optional(),
})

export const scheduleSchema = z.object({
  name: z.string(),
  expression: z.string(),
  timezone: z.string().optional(),
  workflowType: z.string(),
  context: jsonObject,
  businessId: z.string().optional(),
  enabled: z.boolean(),
  description: z.string().optional(),
  /** When the schedule fires next (absent when disabled or over); read-only. */
  nextFireAtMs: z.number().int().optional(),
  nextFireAt: z.string().optional(),
})

export const schedulesResponseSchema = z.object({ items: z.array(scheduleSchema) })

// ---- local only: the dead-letter queues of `npm start` (the deployed API has no such routes) ------------------

export const localQueuePathSchema = z.strictObject({ queue: z.string().min(1) })

export const redriveBodySchema = z
  .strictObject({ messageIds: z.array(z.string().min(1)).max(1000).optional() })
  .optional()

export const deadLettersResponseSchema = z.object({
  items: z.array(
    z.object({
      queue: z.string(),
      deadLetterQueue: z.string(),
      messages: z.array(
        z.object({
          messageId: z.string(),
          reason: z.string(),
          source: z.string().optional(),
          originalMessageId: z.string().optional(),
          sentAtMs: z.number(),
          body: z.string(),
        }),
      ),
    }),
  ),
})

export const redriveResponseSchema = z.object({ queue: z.string(), moved: z.array(z.string()) })

export const queuedMessageResponseSchema = z.object({ messageId: z.string() })

/** The longest a watch of the local event bus waits for an event, as a long-poll of the API does. */
export const MAX_LOCAL_EVENTS_WAIT_SECONDS = 25

/** `GET /_local/events`: after which event, how long to wait for one, how many. */
export const localEventsQuerySchema = z.strictObject({
  after: queryInteger(0, 999_999_999_999_999, 15).optional(),
  waitSeconds: queryInteger(0, MAX_LOCAL_EVENTS_WAIT_SECONDS, 2).optional(),
  limit: queryInteger(0, 999, 3).optional(),
})

/** The events of the local bus, in EventBridge's envelope, numbered in the order published. */
export const localEventsResponseSchema = z.object({
  items: z.array(
    z.object({
      seq: z.number(),
      id: z.string(),
      source: z.string(),
      'detail-type': z.string(),
      time: z.string(),
      detail: publishedDetailSchema,
    }),
  ),
  next: z.number().meta({ description: 'the `after` of the next call' }),
})
export type LocalEventsResponse = z.infer<typeof localEventsResponseSchema>

// ---- the types of requests and answers, as a client sees them ----------------------------------------------

export type CreateBody = z.input<typeof createBodySchema>
export type CreateResponse = z.output<typeof createResponseSchema>
export type RunBody = z.input<typeof runBodySchema>
export type PassResultResponse = z.output<typeof passResultSchema>
export type RunBusyResponse = z.output<typeof runBusyResponseSchema>
export type OperationResponse = z.output<typeof operationResponseSchema>
export type RestartInstanceBody = z.input<typeof restartInstanceBodySchema>
export type RestartNodeBody = z.input<typeof restartNodeBodySchema>
export type EventBody = z.input<typeof eventBodySchema>
export type EventResponse = z.output<typeof eventResponseSchema>
export type InstanceList = z.output<typeof listResponseSchema>
export type InstanceSummary = InstanceList['items'][number]
export type CountResponse = z.output<typeof countResponseSchema>
export type InstanceDetail = z.output<typeof instanceDetailSchema>
export type NodeDetail = InstanceDetail['nodes'][number]
export type HistoryPage = z.output<typeof historyResponseSchema>
export type HistoryEntry = HistoryPage['items'][number]
export type GraphResponse = z.output<typeof graphResponseSchema>
export type WorkflowType = z.output<typeof workflowTypeSchema>
export type WorkflowTypeList = z.output<typeof workflowTypesResponseSchema>
export type PutScheduleBody = z.input<typeof putScheduleBodySchema>
export type Schedule = z.output<typeof scheduleSchema>
export type ScheduleList = z.output<typeof schedulesResponseSchema>
export type RedriveBody = z.input<typeof redriveBodySchema>
export type DeadLetterList = z.output<typeof deadLettersResponseSchema>
export type DeadLetterQueue = DeadLetterList['items'][number]
export type RedriveResponse = z.output<typeof redriveResponseSchema>
