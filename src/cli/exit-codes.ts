/**
 * Exit codes of the `tickflow` CLI, one per class of failure, so that scripts can tell them apart.
 * Documented in the README (section "The tickflow CLI").
 */
export const ExitCode = {
  ok: 0,
  /** A fault in the CLI itself. */
  internal: 1,
  /** A wrong command line, or a request the API refused as invalid (400, 413, 415). */
  usage: 2,
  /** The instance, node, schedule or workflow type does not exist (404). */
  notFound: 3,
  /** The request conflicts with the instance's state (409: lease held, illegal state, stale event; 410). */
  conflict: 4,
  /** The API failed (5xx, 501) or could not be reached (network, timeout). */
  server: 5,
  /** The API refused the credentials (401, 403). */
  auth: 6,
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** What the CLI reports instead of a result: a message, the API's error code if there is one, and its exit code. */
export class CliError extends Error {
  override readonly name = 'CliError'
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly code: string,
    readonly details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, details: this.details }, exitCode: this.exitCode }
  }
}

/** The exit code for an HTTP status the API answered with. */
export const exitCodeOfStatus = (status: number): ExitCode => {
  if (status === 404) return ExitCode.notFound
  if (status === 409 || status === 410) return ExitCode.conflict
  if (status === 401 || status === 403) return ExitCode.auth
  if (status >= 400 && status < 500) return ExitCode.usage
  return ExitCode.server
}
