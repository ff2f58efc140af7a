import type { Signer } from '../adapters/http/sigv4-signer.js'
import { CliError, ExitCode, exitCodeOfStatus } from './errors.js'

export type Auth = { kind: 'none' } | { kind: 'bearer'; token: string } | { kind: 'sigv4'; sign: Signer }

export interface ApiClientOptions {
  baseUrl: string
  auth: Auth
  /** Per request, default 60 s (a long-poll waits up to 25 s). */
  timeoutMs?: number
}

export interface ApiAnswer {
  status: number
  contentType: string
  text: string
}

/** A thin HTTP client for the tickflow API: errors come back as CliErrors carrying the exit code of their class. */
export class ApiClient {
  readonly #base: URL
  readonly #auth: Auth
  readonly #timeoutMs: number

  constructor(options: ApiClientOptions) {
    let base: URL
    try {
      base = new URL(options.baseUrl)
    } catch (error) {
      throw new CliError(
        `--api ${options.baseUrl} is not a URL`,
        ExitCode.usage,
        'INVALID_API_URL',
        {},
        { cause: error },
      )
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new CliError(`--api ${options.baseUrl} must be an http(s) URL`, ExitCode.usage, 'INVALID_API_URL')
    }
    // A stage path (`https://…/prod`) is kept: paths are appended to it.
    if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`
    this.#base = base
    this.#auth = options.auth
    this.#timeoutMs = options.timeoutMs ?? 60_000
  }

  get baseUrl(): string {
    return this.#base.href.replace(/\/$/, '')
  }

  /** One request; `path` starts with `/`. Resolves for 2xx, throws a CliError otherwise. */
  async request(
    method: string,
    path: string,
    options: { query?: Record<string, string | number | undefined>; body?: unknown } = {},
  ): Promise<ApiAnswer> {
    const url = new URL(path.slice(1), this.#base)
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value))
    }
    const body = options.body === undefined ? undefined : JSON.stringify(options.body)
    let headers: Record<string, string> = {
      accept: 'application/json, text/plain',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    }
    if (this.#auth.kind === 'bearer') headers.authorization = `Bearer ${this.#auth.token}`
    if (this.#auth.kind === 'sigv4') {
      try {
        headers = await this.#auth.sign({ method, url, headers, ...(body === undefined ? {} : { body }) })
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
    let response: Response
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      })
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error)
      const timedOut = error instanceof Error && error.name === 'TimeoutError'
      throw new CliError(
        timedOut
          ? `${method} ${url.href} did not answer within ${this.#timeoutMs / 1000} s`
          : `cannot reach the API at ${this.baseUrl} (${cause}). Is it running? Start it with npm start, or pass --api URL.`,
        ExitCode.server,
        timedOut ? 'TIMEOUT' : 'UNREACHABLE',
        { url: url.href },
        { cause: error },
      )
    }
    const text = await response.text()
    const contentType = response.headers.get('content-type') ?? ''
    if (response.ok) return { status: response.status, contentType, text }
    let apiError: { code?: string; message?: string; details?: Record<string, unknown> } = {}
    try {
      const parsed = JSON.parse(text) as { error?: typeof apiError; message?: string }
      apiError = parsed.error ?? { message: parsed.message ?? text }
    } catch {
      apiError = { message: text.trim() || response.statusText }
    }
    const field = apiError.details?.field
    throw new CliError(
      `${apiError.message ?? response.statusText}${typeof field === 'string' ? ` (${field})` : ''}`,
      exitCodeOfStatus(response.status),
      apiError.code ?? `HTTP_${response.status}`,
      { status: response.status, ...apiError.details },
    )
  }

  /** A request whose answer is JSON. */
  async json<T>(method: string, path: string, options: Parameters<ApiClient['request']>[2] = {}): Promise<T> {
    const answer = await this.request(method, path, options)
    if (answer.status === 204 || answer.text === '') return undefined as T
    try {
      return JSON.parse(answer.text) as T
    } catch (error) {
      throw new CliError(
        `the API answered ${method} ${path} with something that is not JSON`,
        ExitCode.server,
        'BAD_ANSWER',
        {},
        {
          cause: error,
        },
      )
    }
  }
}
