import { regionOfApiUrl, sigV4Signer } from '../adapters/http/sigv4-signer.js'
import { ApiClient, type OutgoingRequest } from '../api-client/api-client.js'
import { ApiAnswerNotJson, ApiRefusal, ApiUnreachable } from '../api-client/api-failures.js'
import { CliError, ExitCode, exitCodeOfStatus } from './exit-codes.js'
import { wholeNumber } from './options.js'

/**
 * How the CLI reaches the API: the URL and authorisation from the global options, and every failure of a call as a
 * CliError carrying the exit code of its class.
 */

/** The options every command inherits (`tickflow --api … --iam list`). */
export interface GlobalOptions {
  api: string
  token?: string
  iam?: boolean
  region?: string
  json?: boolean
  timeout: string
}

/** The API's root; a stage path (`https://…/prod`) is kept. */
const apiUrl = (text: string): URL => {
  let base: URL
  try {
    base = new URL(text)
  } catch (error) {
    throw new CliError(`--api ${text} is not a URL`, ExitCode.usage, 'INVALID_API_URL', {}, { cause: error })
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new CliError(`--api ${text} must be an http(s) URL`, ExitCode.usage, 'INVALID_API_URL')
  }
  if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`
  return base
}

type Authorize = (request: OutgoingRequest) => Promise<Record<string, string>> | Record<string, string>

/** Nothing, `Authorization: Bearer` (JWT auth) or a SigV4 signature with the AWS chain's credentials (IAM auth). */
const authorizationOf = (options: GlobalOptions, env: Record<string, string | undefined>): Authorize | undefined => {
  if (options.token !== undefined && options.iam) {
    throw new CliError('--token and --iam exclude each other', ExitCode.usage, 'INVALID_ARGUMENT')
  }
  const { token } = options
  if (token !== undefined) return (request) => ({ ...request.headers, authorization: `Bearer ${token}` })
  if (!options.iam) return undefined
  let region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION
  try {
    region = options.region ?? regionOfApiUrl(new URL(options.api)) ?? region
  } catch {
    // The URL is checked with the client.
  }
  if (region === undefined) {
    throw new CliError('--iam needs a region: --region, AWS_REGION, or an execute-api URL', ExitCode.usage, 'NO_REGION')
  }
  const sign = sigV4Signer(region)
  return async (request) => {
    try {
      return await sign(request)
    } catch (error) {
      throw new CliError(
        `could not sign the request with AWS credentials: ${error instanceof Error ? error.message : String(error)}`,
        ExitCode.auth,
        'NO_CREDENTIALS',
        {},
        { cause: error },
      )
    }
  }
}

export interface Connection {
  client: ApiClient
  /** A failure of a call as the CliError to report. */
  failure(error: unknown): unknown
}

export const connect = (options: GlobalOptions, env: Record<string, string | undefined>): Connection => {
  const authorize = authorizationOf(options, env)
  const timeoutSeconds = wholeNumber('--timeout', 1, 3600)(options.timeout)
  const baseUrl = apiUrl(options.api)
  const client = new ApiClient({ baseUrl, timeoutMs: timeoutSeconds * 1000, ...(authorize ? { authorize } : {}) })
  const shownBase = baseUrl.href.replace(/\/$/, '')
  return { client, failure: (error) => cliErrorOf(error, shownBase, timeoutSeconds) }
}

/** An ApiClient failure as the CLI reports it; anything else as it is. */
const cliErrorOf = (error: unknown, baseUrl: string, timeoutSeconds: number): unknown => {
  if (error instanceof ApiRefusal) {
    const field = error.details.field
    return new CliError(
      `${error.message}${typeof field === 'string' ? ` (${field})` : ''}`,
      exitCodeOfStatus(error.status),
      error.code ?? `HTTP_${error.status}`,
      { status: error.status, ...error.details },
    )
  }
  if (error instanceof ApiUnreachable) {
    const cause =
      error.cause instanceof Error && error.cause.cause instanceof Error
        ? error.cause.cause.message
        : String(error.cause)
    return new CliError(
      error.timedOut
        ? `${error.method} ${error.url} did not answer within ${timeoutSeconds} s`
        : `cannot reach the API at ${baseUrl} (${cause}). Is it running? Start it with npm start, or pass --api URL.`,
      ExitCode.server,
      error.timedOut ? 'TIMEOUT' : 'UNREACHABLE',
      { url: error.url },
      { cause: error.cause },
    )
  }
  if (error instanceof ApiAnswerNotJson) {
    return new CliError(error.message, ExitCode.server, 'BAD_ANSWER', {}, { cause: error.cause })
  }
  return error
}
