import { MAX_QUEUE_DELAY_SECONDS, type RunRequest } from '../core/dispatch-ports.js'
import { ValidationError } from '../core/errors.js'
import { encodeRunMessage } from '../schemas/queue-messages.js'

/**
 * What every RunQueue implementation (the SQS adapter, the in-process LocalQueue) does with the requests it is given,
 * so that both send byte-identical messages: each (instance, due time) once, a delay SQS accepts, and the body from
 * the one queue-message schema, a request no consumer would accept refused before anything is sent.
 */

/** The body of a run message. Throws a ValidationError naming the field for a request no consumer would accept. */
export const runMessageBody = (request: RunRequest): string => {
  const encoded = encodeRunMessage(request)
  if (!encoded.ok)
    throw new ValidationError(`run request cannot be queued: ${encoded.reason}`, encoded.field || 'request')
  return encoded.body
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
