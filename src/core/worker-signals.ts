/**
 * Errors a worker throws to steer its node. They are recognised anywhere in the `cause` chain, so a worker may wrap
 * them (`new Error('payment pending', { cause: new NotReadyError(30) })`).
 */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError'
  constructor(
    readonly retryAfterSeconds?: number,
    options?: ErrorOptions & { message?: string },
  ) {
    super(options?.message ?? 'not ready', options)
  }
}

export class FailedWithContinueError extends Error {
  override readonly name = 'FailedWithContinueError'
  constructor(message = 'failed with continue', options?: ErrorOptions) {
    super(message, options)
  }
}

export class FailedWithFailedError extends Error {
  override readonly name = 'FailedWithFailedError'
  constructor(message = 'failed with failed', options?: ErrorOptions) {
    super(message, options)
  }
}

export class BusinessCriticalError extends Error {
  override readonly name = 'BusinessCriticalError'
}

export class BusinessWarningError extends Error {
  override readonly name = 'BusinessWarningError'
}

export type WorkerSignal =
  | { kind: 'not-ready'; retryAfterSeconds: number | undefined }
  | { kind: 'failed-with-continue' }
  | { kind: 'failed-with-failed' }
  | { kind: 'error'; severity: 'critical' | 'warning' | 'error' }

const MAX_CAUSE_DEPTH = 16

/** Walks the cause chain (bounded, cycle-safe) and returns what the error asks of the engine. */
export const classifyWorkerError = (error: unknown): WorkerSignal => {
  let severity: 'critical' | 'warning' | 'error' = 'error'
  const seen = new Set<unknown>()
  let current: unknown = error
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && !seen.has(current); depth++) {
    seen.add(current)
    if (current instanceof NotReadyError) return { kind: 'not-ready', retryAfterSeconds: current.retryAfterSeconds }
    if (current instanceof FailedWithContinueError) return { kind: 'failed-with-continue' }
    if (current instanceof FailedWithFailedError) return { kind: 'failed-with-failed' }
    if (current instanceof BusinessCriticalError) severity = 'critical'
    else if (current instanceof BusinessWarningError && severity === 'error') severity = 'warning'
    current = current instanceof Error ? current.cause : undefined
  }
  return { kind: 'error', severity }
}

export const errorMessage = (error: unknown): string => {
  if (error instanceof Error) return error.message ? `${error.name}: ${error.message}` : error.name
  try {
    return `thrown value: ${JSON.stringify(error)}`
  } catch {
    return 'thrown value that cannot be serialised'
  }
}
