import type { Engine } from '../../core/engine.js'
import type { Clock } from '../../core/ports.js'
import type { ApiRequest } from '../http.js'

/** What the routes need: the engine, a clock and a sleep for long-polls, and the key of list cursors. */
export interface ApiDeps {
  engine: Engine
  clock: Clock
  sleep(ms: number): Promise<void>
  /** How often a long-poll re-reads the instance's status. */
  waitPollMs: number
  /** The HMAC key of list cursors; a built-in default when absent (see ListCursors). */
  cursorSecret?: string
}

/** The Lambda's remaining time, for sizing the lease of a pass the request runs; undefined outside Lambda. */
export const remaining = (request: ApiRequest): { remainingTimeMs?: number } => {
  const ms = request.remainingTimeMs?.()
  return ms === undefined ? {} : { remainingTimeMs: Math.max(1, Math.floor(ms)) }
}
