/** What the engine needs from the outside world. Injected so that time, ids and randomness are testable. */
export interface Clock {
  nowMs(): number
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
