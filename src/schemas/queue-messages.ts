import { z } from 'zod'
import { type CallbackMessage, callbackMessageSchema } from './callbacks.js'
import { businessIdSchema, instanceIdSchema } from './engine-params.js'
import { idSchema } from './workflow-config.js'
import { describeIssues } from './zod-issues.js'

/**
 * Bodies of the events and start queues. An event names its instance directly or by (workflow type, business id),
 * the way an external system usually knows it.
 */
export const eventMessageSchema = z
  .strictObject({
    v: z.literal(1).optional(),
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
  v: z.literal(1),
  kind: z.literal('start'),
  schedule: z.string().min(1).max(64),
  workflowType: idSchema,
  context: z.record(z.string(), z.unknown()),
  businessId: businessIdSchema.optional(),
  scheduledTime: z.iso.datetime({ offset: true }),
})

export type StartMessage = z.infer<typeof startMessageSchema>

export const RUN_MESSAGE_VERSION = 1

/** A request to run a `due` pass over an instance, as it travels through the run queue. */
export const runMessageSchema = z.object({
  v: z.literal(RUN_MESSAGE_VERSION),
  kind: z.literal('run'),
  instanceId: instanceIdSchema,
  dueAtMs: z.number().int().min(0).max(8_640_000_000_000_000),
})

export type RunMessage = z.infer<typeof runMessageSchema>

export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: string }

const describe = (error: z.ZodError): string => describeIssues(error, '(body)')

/** Parses a queue body with a schema; a malformed one comes back with the reason, for the dead-letter queue. */
export const parseMessage = <T>(schema: z.ZodType<T>, body: string): Parsed<T> => {
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return { ok: false, reason: 'body is not JSON' }
  }
  const parsed = schema.safeParse(json)
  return parsed.success ? { ok: true, message: parsed.data } : { ok: false, reason: describe(parsed.error) }
}

/** Parses a run message body; a malformed one comes back with the reason, for the dead-letter queue. */
export const parseRunMessage = (body: string): Parsed<RunMessage> => {
  const parsed = parseMessage(runMessageSchema, body)
  return parsed.ok || parsed.reason === 'body is not JSON'
    ? parsed
    : { ok: false, reason: `not a run message: ${parsed.reason}` }
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
