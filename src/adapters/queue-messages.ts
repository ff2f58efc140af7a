import { z } from 'zod'
import { MAX_QUEUE_DELAY_SECONDS, type RunRequest } from '../core/dispatch-ports.js'
import { ValidationError } from '../core/errors.js'
import { RUN_MESSAGE_VERSION, runMessageSchema } from '../schemas/queue-messages.js'
import { describeIssues } from '../schemas/zod-issues.js'

/**
 * Queue message bodies and dead-letter attributes, shared by the SQS adapters and the in-process LocalQueue so that
 * both carry byte-identical messages. Every body names its schema version (`v`) and kind: a consumer rejects (and
 * dead-letters) a version it does not know instead of guessing. Unknown extra fields are ignored, so a producer may
 * add an optional field without a version bump during a rolling deploy.
 */

const describe = (error: z.ZodError): string => describeIssues(error, '(body)')

/** The body of a run message. Throws a ValidationError for a request no consumer would accept. */
export const encodeRunMessage = (request: RunRequest): string => {
  const parsed = runMessageSchema.safeParse({
    v: RUN_MESSAGE_VERSION,
    kind: 'run',
    instanceId: request.instanceId,
    dueAtMs: request.dueAtMs,
  })
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path.join('.') ?? ''
    throw new ValidationError(`run request cannot be queued: ${describe(parsed.error)}`, field || 'request')
  }
  return JSON.stringify(parsed.data)
}

/** A queue delay SQS accepts: whole seconds, 0..900; fractions round up so that a run is never early. */
export const clampDelaySeconds = (delaySeconds: number): number => {
  if (Number.isNaN(delaySeconds)) return 0
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds)))
}

/** The requests with each (instanceId, dueAtMs) once, in first-seen order; the first one's delay is kept. */
export const uniqueRunRequests = (requests: readonly RunRequest[]): RunRequest[] => {
  const seen = new Set<string>()
  return requests.filter((request) => {
    const key = `${request.dueAtMs} ${request.instanceId}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

/**
 * A dead letter keeps the original body unchanged; why and where it was dead-lettered travel as String message
 * attributes named like the envelope's fields.
 */
export const MAX_DEAD_LETTER_REASON_CHARS = 1000
const MAX_DEAD_LETTER_FIELD_CHARS = 256

export const deadLetterEnvelopeSchema = z.object({
  reason: z.string().min(1).max(MAX_DEAD_LETTER_REASON_CHARS),
  source: z.string().min(1).max(MAX_DEAD_LETTER_FIELD_CHARS),
  originalMessageId: z.string().min(1).max(MAX_DEAD_LETTER_FIELD_CHARS).optional(),
})

export type DeadLetterEnvelope = z.infer<typeof deadLetterEnvelopeSchema>

/** Characters outside what SQS accepts in a message (XML 1.0 characters) would make the whole send fail. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it removes
const NOT_SQS_TEXT = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu

/** At most `max` UTF-16 units, never ending in half a surrogate pair (SQS rejects a lone surrogate). */
const truncate = (text: string, max: number): string => {
  if (text.length <= max) return text
  const cut = text.slice(0, max)
  const last = cut.charCodeAt(cut.length - 1)
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut
}

/** SQS rejects an empty attribute value, so an empty one becomes `fallback`. */
const attributeText = (text: string, max: number, fallback: string): string => {
  const clean = truncate(text.replace(NOT_SQS_TEXT, '\uFFFD'), max)
  return clean === '' ? fallback : clean
}

/** The attributes of a dead letter: texts SQS accepts, the reason cut to 1000 characters. */
export const deadLetterAttributes = (message: {
  reason: string
  source: string
  messageId?: string
}): DeadLetterEnvelope => ({
  reason: attributeText(message.reason, MAX_DEAD_LETTER_REASON_CHARS, 'unspecified'),
  source: attributeText(message.source, MAX_DEAD_LETTER_FIELD_CHARS, 'unknown'),
  ...(message.messageId === undefined || message.messageId === ''
    ? {}
    : { originalMessageId: attributeText(message.messageId, MAX_DEAD_LETTER_FIELD_CHARS, 'unknown') }),
})
