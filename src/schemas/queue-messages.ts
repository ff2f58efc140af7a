import { z } from 'zod'
import { type CallbackMessage, callbackMessageSchema } from './callbacks.js'
import { businessIdSchema, instanceIdSchema } from './engine-params.js'
import { idSchema } from './workflow-config.js'
import { describeIssues, issuePath } from './zod-issues.js'

/**
 * Every queue message tickflow sends or takes, written and read here only: the run queue's run requests (SQS
 * messages, EventBridge Scheduler wake-ups, the local queues), the start queue's scheduled starts (EventBridge
 * Scheduler, the local scheduler's pump) and the events queue's external events. Every body names its schema
 * version (`v`) and kind: a consumer rejects (and dead-letters) a version it does not know instead of guessing.
 * Unknown extra fields are ignored, so a producer may add an optional field without a version bump during a rolling
 * deploy. An encoder writes the fields in the schema's order, so that equal messages are equal bodies.
 */
export const QUEUE_MESSAGE_VERSION = 1

/**
 * Bodies of the events queue. An event names its instance directly or by (workflow type, business id), the way an
 * external system usually knows it; external producers may leave out the version.
 */
export const eventMessageSchema = z
  .strictObject({
    v: z.literal(QUEUE_MESSAGE_VERSION).optional(),
    instanceId: instanceIdSchema.optional(),
    workflowType: idSchema.optional(),
    businessId: businessIdSchema.optional(),
    nodeId: idSchema,
    eventTs: z.number().int().min(0).max(253_402_300_799),
    content: z.unknown().optional(),
    /** The sender's id for the event, kept in logs to trace re-deliveries. */
    eventId: z.string().min(1).max(256).optional(),
  })
  .refine((message) => message.instanceId !== undefined || (message.workflowType && message.businessId), {
    message: 'name the instance: instanceId, or workflowType and businessId',
    path: ['instanceId'],
  })

export type EventMessage = z.infer<typeof eventMessageSchema>

/** What a recurring schedule sends when it fires; `scheduledTime` is filled in by EventBridge Scheduler. */
export const startMessageSchema = z.object({
  v: z.literal(QUEUE_MESSAGE_VERSION),
  kind: z.literal('start'),
  schedule: z.string().min(1).max(64),
  workflowType: idSchema,
  context: z.record(z.string(), z.unknown()),
  businessId: businessIdSchema.optional(),
  scheduledTime: z.iso.datetime({ offset: true }),
})

export type StartMessage = z.infer<typeof startMessageSchema>

/** A request to run a `due` pass over an instance, as it travels through the run queue. */
export const runMessageSchema = z.object({
  v: z.literal(QUEUE_MESSAGE_VERSION),
  kind: z.literal('run'),
  instanceId: instanceIdSchema,
  dueAtMs: z.number().int().min(0).max(8_640_000_000_000_000),
})

export type RunMessage = z.infer<typeof runMessageSchema>

// ---- writing ----------------------------------------------------------------------------------------------------

/** A body, or why no consumer would accept the message: the first refused field and every problem. */
export type Encoded = { ok: true; body: string } | { ok: false; field: string; reason: string }

const describe = (error: z.ZodError): string => describeIssues(error, '(body)')

/** Writes a message as its schema reads it back: the schema's fields in its order, a message it refuses refused. */
export const encodeMessage = <T>(schema: z.ZodType<T>, message: unknown): Encoded => {
  const parsed = schema.safeParse(message)
  if (parsed.success) return { ok: true, body: JSON.stringify(parsed.data) }
  return { ok: false, field: issuePath(parsed.error.issues[0]?.path ?? []), reason: describe(parsed.error) }
}

/** The body of a run request: the instance and the due time it was sent for (which the runner deduplicates on). */
export const encodeRunMessage = (request: { instanceId: string; dueAtMs: number }): Encoded =>
  encodeMessage(runMessageSchema, {
    v: QUEUE_MESSAGE_VERSION,
    kind: 'run',
    instanceId: request.instanceId,
    dueAtMs: request.dueAtMs,
  })

export type StartFields = Omit<StartMessage, 'v' | 'kind'>

/** The start message fields in their order; `scheduledTime` may be a placeholder a scheduler fills in. */
export const startMessage = (start: Omit<StartFields, 'scheduledTime'> & { scheduledTime: string }) => ({
  v: QUEUE_MESSAGE_VERSION,
  kind: 'start' as const,
  schedule: start.schedule,
  workflowType: start.workflowType,
  context: start.context,
  ...(start.businessId === undefined ? {} : { businessId: start.businessId }),
  scheduledTime: start.scheduledTime,
})

/** The body of a scheduled start. */
export const encodeStartMessage = (start: StartFields): Encoded =>
  encodeMessage(startMessageSchema, startMessage(start))

/** The body of an external event, as a producer sends it to the events queue. */
export const encodeEventMessage = (event: Omit<EventMessage, 'v'>): Encoded =>
  encodeMessage(eventMessageSchema, { v: QUEUE_MESSAGE_VERSION, ...event })

// ---- reading ----------------------------------------------------------------------------------------------------

export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: string }

const NOT_JSON = 'body is not JSON'

/** Parses a queue body with a schema; a malformed one comes back with the reason, for the dead-letter queue. */
export const parseMessage = <T>(schema: z.ZodType<T>, body: string): Parsed<T> => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return { ok: false, reason: NOT_JSON }
  }
  const parsed = schema.safeParse(json)
  return parsed.success ? { ok: true, message: parsed.data } : { ok: false, reason: describe(parsed.error) }
}

/** A run message body; a malformed one comes back with the reason, for the dead-letter queue. */
export const parseRunMessage = (body: string): Parsed<RunMessage> => {
  const parsed = parseMessage(runMessageSchema, body)
  return parsed.ok || parsed.reason === NOT_JSON ? parsed : { ok: false, reason: `not a run message: ${parsed.reason}` }
}

/** An events-queue body; the reason of a malformed one says which queue's message it was. */
export const parseEventMessage = (body: string): Parsed<EventMessage> => {
  const parsed = parseMessage(eventMessageSchema, body)
  return parsed.ok ? parsed : { ok: false, reason: `invalid event message: ${parsed.reason}` }
}

/** A start-queue body; the reason of a malformed one says which queue's message it was. */
export const parseStartMessage = (body: string): Parsed<StartMessage> => {
  const parsed = parseMessage(startMessageSchema, body)
  return parsed.ok ? parsed : { ok: false, reason: `invalid start message: ${parsed.reason}` }
}

/**
 * A message of the events queue: a node event (no `kind`), or a callback completion (`kind: "callback"`, see
 * `callbacks.ts`), parsed once; a malformed one comes back with the reason, for the dead-letter queue.
 */
export const parseEventsQueueMessage = (
  body: string,
): Parsed<{ kind: 'event'; event: EventMessage } | { kind: 'callback'; callback: CallbackMessage }> => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return { ok: false, reason: 'invalid event message: body is not JSON' }
  }
  if ((json as { kind?: unknown } | null)?.kind === 'callback') {
    const parsed = callbackMessageSchema.safeParse(json)
    return parsed.success
      ? { ok: true, message: { kind: 'callback', callback: parsed.data } }
      : { ok: false, reason: `invalid callback message: ${describe(parsed.error)}` }
  }
  const parsed = eventMessageSchema.safeParse(json)
  return parsed.success
    ? { ok: true, message: { kind: 'event', event: parsed.data } }
    : { ok: false, reason: `invalid event message: ${describe(parsed.error)}` }
}
