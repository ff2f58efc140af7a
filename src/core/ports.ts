/** What the engine needs from the outside world. Injected so that time, ids and randomness are testable. */
export interface Clock {
  nowMs(): number
  /**
   * Calls `fn` once the clock reaches `atMs`; returns a function that cancels it. Optional: without it the engine
   * waits `atMs - nowMs()` with a timer of the host. A test clock implements it to fire timers as it is advanced.
   */
  at?(atMs: number, fn: () => void): () => void
}

/** A timer on `clock`: its own `at` when it has one, else a host timer for the remaining time. */
export const timerAt = (clock: Clock, atMs: number, fn: () => void): (() => void) => {
  if (clock.at) return clock.at(atMs, fn)
  const handle = setTimeout(fn, Math.max(0, atMs - clock.nowMs()))
  handle.unref?.()
  return () => clearTimeout(handle)
}

export interface IdGenerator {
  /** A new, unique, URL-safe instance id. Sortable by creation time is preferred, not required. */
  newInstanceId(): string
  /** A token naming one lease holder; unique per acquisition. */
  newLeaseOwner(): string
}

export interface Random {
  /** A number in [0, 1). */
  next(): number
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Structured logger port; adapters map it to Powertools or the console. */
export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void
}

export const silentLogger: Logger = { log: () => {} }
