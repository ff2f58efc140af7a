import { type ErrorDetails, LockConflictError, TickflowError } from '../core/errors.js'
import type { Logger } from '../core/ports.js'
import { type ApiResponse, json } from './http.js'

/** An HTTP-level rejection (unknown route, wrong method, wrong content type, body too large, malformed JSON). */
export class HttpError extends TickflowError {
  override readonly name = 'HttpError'
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message, details)
  }
}

/**
 * Maps any error to the API's error body `{"error": {"code", "message", "details"}}`. Engine errors carry their
 * own status; anything else is a fault: logged with the request id, answered 500 without internals.
 */
export const errorResponse = (error: unknown, requestId: string, logger: Logger): ApiResponse => {
  if (error instanceof TickflowError && error.httpStatus < 500) {
    const headers = error instanceof HttpError ? { ...error.headers } : {}
    // Busy is an answer: the caller learns when the lease ends.
    if (error instanceof LockConflictError) headers['retry-after'] = String(error.retryAfterSeconds)
    return json(error.httpStatus, { error: error.toJSON() }, headers)
  }
  if (error instanceof TickflowError) {
    // The message of a server-side error may quote the store's own words: it goes to the log, not to the client.
    logger.log('error', 'request failed', { requestId, code: error.code, error: error.message })
    // Only a store failure is a retryable fault of the system: the caller may send the same request again soon.
    const message =
      error.code === 'EVENT_REPLACED'
        ? 'an event was replaced while the instance ran; try again'
        : error.retryable
          ? 'the store is unavailable; try again'
          : 'internal error'
    const headers: Record<string, string> = error.retryable ? { 'retry-after': '1' } : {}
    return json(error.httpStatus, { error: { code: error.code, message, details: { requestId } } }, headers)
  }
  logger.log('error', 'unexpected error', {
    requestId,
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    stack: error instanceof Error ? error.stack : undefined,
  })
  return json(500, { error: { code: 'INTERNAL_ERROR', message: 'internal error', details: { requestId } } })
}
