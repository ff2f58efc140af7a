/**
 * What a call of the API can end in besides an answer, for the client's callers to present in their own words (the
 * CLI as exit codes, the dashboard as a message on the page).
 */

/** The API answered with a status outside 2xx. */
export class ApiRefusal extends Error {
  override readonly name = 'ApiRefusal'
  constructor(
    readonly status: number,
    /** The API's error code (`INSTANCE_NOT_FOUND`); absent when the answer came from elsewhere (a gateway, a proxy). */
    readonly code: string | undefined,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
  }

  /** One line: the status, the API's code and its message. */
  describe(): string {
    return `${this.status} ${this.code ?? 'HTTP_ERROR'}: ${this.message}`
  }
}

/** No answer: the connection failed, or nothing answered within the client's timeout. */
export class ApiUnreachable extends Error {
  override readonly name = 'ApiUnreachable'
  constructor(
    readonly method: string,
    readonly url: string,
    readonly timedOut: boolean,
    options: { cause: unknown },
  ) {
    super(options.cause instanceof Error ? options.cause.message : String(options.cause), options)
  }
}

/** A 2xx answer that should have been JSON and was not. */
export class ApiAnswerNotJson extends Error {
  override readonly name = 'ApiAnswerNotJson'
  constructor(
    readonly method: string,
    /** The route's path, from the API's root: `/workflows/wf-1`. */
    readonly path: string,
    options: { cause: unknown },
  ) {
    super(`the API answered ${method} ${path} with something that is not JSON`, options)
  }
}

interface ErrorBody {
  code?: string
  message?: string
  details?: Record<string, unknown>
}

/**
 * The refusal an answer means. The API's own refusals are `{"error": {code, message, details}}`; API Gateway's are
 * `{"message": …}`; anything else is shown as the text it is.
 */
export const refusalOf = (status: number, statusText: string, text: string): ApiRefusal => {
  let body: ErrorBody
  try {
    const parsed = JSON.parse(text) as { error?: ErrorBody; message?: string }
    body = parsed.error ?? { message: parsed.message ?? text }
  } catch {
    body = { message: text.trim() || statusText }
  }
  return new ApiRefusal(status, body.code, body.message ?? statusText, body.details ?? {})
}
