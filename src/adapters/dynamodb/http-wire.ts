import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import * as DynamoDB from '@aws-sdk/client-dynamodb'
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import { loadJsonRpcErrorCode } from '@smithy/core/protocols'
import { getRetryAfterHint, isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry'
import { SignatureV4 } from '@smithy/signature-v4'

/** The operations the store sends direct: its writes, and the reads of a pass, a tick and the API. */
export type DirectOperation = 'UpdateItem' | 'PutItem' | 'GetItem' | 'Query' | 'BatchGetItem'

/** An HTTP request as the SDK's request handlers take it. */
interface WireRequest {
  protocol: string
  hostname: string
  port?: number
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string>
  body: string
}

interface WireResponse {
  statusCode: number
  headers: Record<string, string | undefined>
  body: unknown
}

interface RequestHandler {
  handle(request: WireRequest, options?: Record<string, unknown>): Promise<{ response: WireResponse }>
}

/** The retry strategy interface of the SDK (v2): the client's own strategy object serves both ways of sending. */
interface RetryToken {
  getRetryCount(): number
  getRetryDelay(): number
}
interface RetryStrategy {
  mode?: string
  acquireInitialRetryToken(scope: string): Promise<RetryToken>
  refreshRetryTokenForRetry(
    token: RetryToken,
    info: { error: unknown; errorType: string; retryAfterHint?: Date },
  ): Promise<RetryToken>
  recordSuccess(token: RetryToken): void
}

/** What the direct path needs from the client's resolved configuration. */
interface ClientConfig {
  region: () => Promise<string>
  credentials: SignatureV4['credentialProvider']
  sha256: ConstructorParameters<typeof SignatureV4>[0]['sha256']
  isCustomEndpoint?: boolean
  ignoreConfiguredEndpointUrls?: boolean
  serviceConfiguredEndpoint?: () => Promise<string | undefined>
  endpoint?: () => Promise<{
    protocol: string
    hostname: string
    port?: number
    path: string
    headers?: Record<string, unknown>
  }>
  endpointProvider: (params: Record<string, unknown>) => {
    url: URL
    headers?: Record<string, unknown>
    properties?: { authSchemes?: Array<{ name?: string; signingRegion?: string; signingName?: string }> }
  }
  useFipsEndpoint: () => Promise<boolean>
  useDualstackEndpoint: () => Promise<boolean>
  requestHandler: RequestHandler
  streamCollector: (body: unknown) => Promise<Uint8Array>
  retryStrategy: () => Promise<RetryStrategy | object>
  systemClockOffset?: number
  disableClockSkewCorrection?: () => Promise<boolean>
  signingEscapePath?: boolean
  accountIdEndpointMode?: () => Promise<string>
  logger?: object
}

/** How a pristine client's middleware stack looks: anything else on a client is someone's middleware to honour. */
let pristineStack: string | undefined
const pristine = (): string => {
  pristineStack ??= new DynamoDB.DynamoDBClient({ region: 'us-east-1' }).middlewareStack.identify().join('\n')
  return pristineStack
}

interface Resolved {
  /** The client's `disableClockSkewCorrection`. */
  fixedClock: boolean
  signer: SignatureV4
  endpoint: { protocol: string; hostname: string; port?: number; path: string; host: string }
  retry: RetryStrategy
}

/**
 * DynamoDB's JSON protocol spoken directly, for the store's requests: each is signed with the SDK's own signer and
 * sent through the client's own HTTP handler, with the client's credentials, region, endpoint, clock offset and retry
 * strategy. What it leaves out is the SDK's per-request machinery — the middleware stack built and walked for every
 * command, schema-driven serialization of a body that is already JSON, endpoint rules evaluated again — which costs
 * the client about as much CPU as the request itself (README, "The direct wire").
 *
 * The client decides, at the first request: one with middleware of its own (a tracer, a capacity meter), a logger of
 * its own, the adaptive retry mode or a required account endpoint sends through the SDK as before, so that whatever
 * was added to it sees every request. Anything that wraps the client's HTTP handler (`config.requestHandler`) sees
 * both.
 */
export class HttpWire {
  readonly #client: DynamoDBClient
  #resolved: Promise<Resolved | undefined> | undefined

  constructor(client: DynamoDBClient | DynamoDBDocumentClient) {
    this.#client = client as DynamoDBClient
  }

  /**
   * The configuration to send with, or undefined when the client must send through the SDK: decided at the first
   * request and kept (middleware added to the client later is not seen by these requests).
   */
  usable(): Promise<Resolved | undefined> {
    this.#resolved ??= this.#resolve().catch((error: unknown) => {
      // Not decided (no region, an endpoint the rules refuse): the next request asks again, as the SDK would.
      this.#resolved = undefined
      throw error
    })
    return this.#resolved
  }

  async #resolve(): Promise<Resolved | undefined> {
    if (this.#client.middlewareStack.identify().join('\n') !== pristine()) return undefined
    const config = this.#client.config as unknown as ClientConfig
    // A logger of the caller's own expects the SDK's request log lines.
    if (config.logger && config.logger.constructor?.name !== 'NoOpLogger') return undefined
    if ((await config.accountIdEndpointMode?.()) === 'required') return undefined
    const retry = (await config.retryStrategy()) as Partial<RetryStrategy>
    if (
      typeof retry.acquireInitialRetryToken !== 'function' ||
      typeof retry.refreshRetryTokenForRetry !== 'function' ||
      typeof retry.recordSuccess !== 'function' ||
      retry.mode !== 'standard'
    )
      return undefined
    const region = await config.region()
    const resolved = await this.#endpoint(config, region)
    if (!resolved) return undefined
    const { endpoint, signingRegion, signingName } = resolved
    const signer = new SignatureV4({
      service: signingName,
      region: signingRegion,
      credentials: config.credentials,
      sha256: config.sha256,
      uriEscapePath: config.signingEscapePath ?? true,
    })
    const fixedClock = (await config.disableClockSkewCorrection?.()) === true
    return { fixedClock, signer, endpoint, retry: retry as RetryStrategy }
  }

  /**
   * Where and how the SDK would send, by its own endpoint rules: the client's endpoint, else one configured for the
   * service (AWS_ENDPOINT_URL_DYNAMODB, the shared config file), else the region's; signed for the region and
   * service the endpoint names (`region: 'local'` is signed as us-east-1). Undefined when the endpoint asks for
   * headers or a signing scheme of its own (the SDK's to send). Account-based endpoints are not used: the regional
   * endpoint serves every account.
   */
  async #endpoint(
    config: ClientConfig,
    region: string,
  ): Promise<{ endpoint: Resolved['endpoint']; signingRegion: string; signingName: string } | undefined> {
    let custom: string | undefined
    if (!config.isCustomEndpoint && !config.ignoreConfiguredEndpointUrls && config.serviceConfiguredEndpoint) {
      custom = await config.serviceConfiguredEndpoint()
    }
    if (!custom && config.isCustomEndpoint && config.endpoint) {
      const own = await config.endpoint()
      if (own.headers && Object.keys(own.headers).length > 0) return undefined
      custom = `${own.protocol}//${own.hostname}${own.port ? `:${own.port}` : ''}${own.path}`
    }
    const resolved = config.endpointProvider({
      Region: region,
      UseFIPS: await config.useFipsEndpoint(),
      UseDualStack: await config.useDualstackEndpoint(),
      ...(custom ? { Endpoint: custom } : {}),
    })
    if (resolved.headers && Object.keys(resolved.headers).length > 0) return undefined
    const scheme = resolved.properties?.authSchemes?.[0]
    if (scheme?.name !== undefined && scheme.name !== 'sigv4') return undefined
    const url = resolved.url
    return {
      endpoint: {
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        // The JSON protocols post to the endpoint's path with a trailing slash.
        path: url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`,
        host: url.host,
      },
      signingRegion: scheme?.signingRegion ?? region,
      signingName: scheme?.signingName ?? 'dynamodb',
    }
  }

  /**
   * Sends one request (its input in the service's own shape, AttributeValues marshalled) and answers the service's
   * output as parsed; a refusal is thrown as the SDK throws it (the same exception classes, name, message, `$fault`,
   * `$metadata` and modelled fields such as a failed condition's `Item`). Retries follow the client's strategy.
   */
  async send(how: Resolved, operation: DirectOperation, input: object): Promise<Record<string, unknown>> {
    const config = this.#client.config as unknown as ClientConfig
    const body = JSON.stringify(input)
    const { endpoint, signer, retry, fixedClock } = how
    let token = await retry.acquireInitialRetryToken('')
    let attempts = 0
    let totalRetryDelay = 0
    for (;;) {
      const offsetBefore = config.systemClockOffset ?? 0
      const sentAt = Date.now()
      let response: WireResponse | undefined
      try {
        const headers: Record<string, string> = {
          host: endpoint.host,
          'content-type': 'application/x-amz-json-1.0',
          'content-length': String(Buffer.byteLength(body)),
          'x-amz-target': `DynamoDB_20120810.${operation}`,
        }
        // As the SDK's recursion detection: a Lambda's trace goes on with its requests (a header it does not sign).
        const trace = process.env._X_AMZN_TRACE_ID
        if (trace && process.env.AWS_LAMBDA_FUNCTION_NAME) headers['x-amzn-trace-id'] = trace
        const request: WireRequest = {
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          ...(endpoint.port !== undefined ? { port: endpoint.port } : {}),
          method: 'POST',
          path: endpoint.path,
          query: {},
          headers,
          body,
        }
        const signed = (await signer.sign(request as never, {
          signingDate: new Date(Date.now() + (fixedClock ? 0 : (config.systemClockOffset ?? 0))),
        })) as unknown as WireRequest
        response = (await config.requestHandler.handle(signed, {})).response
        const metadata = {
          httpStatusCode: response.statusCode,
          requestId: response.headers['x-amzn-requestid'],
          attempts: attempts + 1,
          totalRetryDelay,
        }
        const output = await read(config, response, metadata)
        if (!fixedClock) sampleClock(config, response, sentAt)
        retry.recordSuccess(token)
        return output
      } catch (thrown) {
        if (response && !fixedClock) skewCorrected(config, response, sentAt, offsetBefore, thrown)
        // As the SDK's retry middleware: the strategy judges what was thrown, the caller gets an Error.
        const info = retryInfo(thrown)
        const error = asError(thrown) as Error & { $metadata?: Record<string, unknown> }
        try {
          token = await retry.refreshRetryTokenForRetry(token, info)
        } catch {
          error.$metadata ??= {}
          error.$metadata.attempts = attempts + 1
          error.$metadata.totalRetryDelay = totalRetryDelay
          throw error
        }
        attempts = token.getRetryCount()
        const delay = token.getRetryDelay()
        // The SDK's strategy waits inside the refresh and notes how long; a strategy may also leave the wait here.
        totalRetryDelay +=
          ((token as { $retryLog?: { acquisitionDelay?: number } }).$retryLog?.acquisitionDelay ?? 0) + delay
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  }
}

/**
 * The answer read as the SDK's deserializer reads it: the output, or the refusal thrown. What fails while reading
 * it (a body that is not JSON, a connection reset halfway through the body) is thrown as the SDK throws it: the
 * answer's status and request id in its `$metadata` (an answer came: the store does not take it for a request that
 * never got one), the answer as the hidden `$response`, and the SDK's hint in its message.
 */
const read = async (
  config: ClientConfig,
  response: WireResponse,
  $metadata: Record<string, unknown>,
): Promise<Record<string, unknown>> => {
  let text: string | undefined
  try {
    text = Buffer.from(await config.streamCollector(response.body)).toString('utf8')
    if (response.statusCode >= 300) throw refusal(response, text, $metadata)
    const parsed: unknown = text === '' ? {} : JSON.parse(text)
    // The SDK reads the output's fields from an object only: any other JSON (null, a number, a list) gives none.
    const output = (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {}) as Record<
      string,
      unknown
    >
    output.$metadata = $metadata
    return output
  } catch (error) {
    throw unreadable(error, response, text)
  }
}

/** As the SDK's deserialization middleware marks an error thrown while reading an answer. */
const unreadable = (error: unknown, response: WireResponse, text: string | undefined): unknown => {
  if (error === null || typeof error !== 'object' || '$metadata' in error) return error
  const failed = error as { message?: string; $metadata?: Record<string, unknown> }
  Object.defineProperty(failed, '$response', {
    value: { statusCode: response.statusCode, headers: response.headers, body: text },
    enumerable: false,
    writable: false,
    configurable: false,
  })
  try {
    failed.message += `\n  ${DESERIALIZATION_HINT}`
  } catch {
    // A message that cannot be changed stays as it is.
  }
  const headers = Object.entries(response.headers)
  const find = (pattern: RegExp) => headers.find(([name]) => pattern.test(name))?.[1]
  failed.$metadata = {
    httpStatusCode: response.statusCode,
    requestId: find(/^x-[\w-]+-request-?id$/),
    extendedRequestId: find(/^x-[\w-]+-id-2$/),
    cfId: find(/^x-[\w-]+-cf-id$/),
  }
  return failed
}

const DESERIALIZATION_HINT =
  'Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.'

const header = (response: WireResponse, name: string): string | undefined =>
  response.headers[name] ?? response.headers[name.charAt(0).toUpperCase() + name.slice(1)]

/**
 * The client's clock offset from the server's `date` answer, as the SDK's signer keeps it (shared with the SDK's
 * own requests): unchanged behind a cache (`age`) or when the answer took over 15 minutes. Answers the new offset,
 * or undefined when the answer gives none.
 */
const sampleClock = (config: ClientConfig, response: WireResponse, sentAt: number): number | undefined => {
  const date = header(response, 'date')
  if (date === undefined || header(response, 'age') !== undefined) return undefined
  const serverTime = Date.parse(date)
  const now = Date.now()
  if (Number.isNaN(serverTime) || now - sentAt > 900_000) return undefined
  config.systemClockOffset = serverTime - now
  return config.systemClockOffset
}

/** A refusal from a skewed clock corrects the offset and is marked so, for the retry strategy to send it again. */
const skewCorrected = (
  config: ClientConfig,
  response: WireResponse,
  sentAt: number,
  offsetBefore: number,
  error: unknown,
): void => {
  const offset = sampleClock(config, response, sentAt)
  const metadata = (error as { $metadata?: Record<string, unknown> } | undefined)?.$metadata
  if (offset !== undefined && Math.abs(offset) >= 240_000 && offset !== offsetBefore && metadata) {
    metadata.clockSkewCorrected = true
  }
}

/**
 * What the SDK's retry middleware tells its strategy of an error: its kind, and the answer's hint of how long to wait
 * (`retry-after` in seconds or as a date, `x-amz-retry-after` in milliseconds), which the strategy waits at least.
 */
const retryInfo = (error: unknown): { error: unknown; errorType: string; retryAfterHint?: Date } => {
  const info: { error: unknown; errorType: string; retryAfterHint?: Date } = {
    error,
    errorType: errorType((error ?? {}) as Record<string, unknown>),
  }
  const retryAfterHint = getRetryAfterHint((error as { $response?: unknown } | undefined)?.$response)
  if (retryAfterHint) info.retryAfterHint = retryAfterHint
  return info
}

/**
 * What an HTTP handler rejected with, as the SDK's retry middleware throws it: an Error as it is, anything else in
 * one (a string as its message, an object's fields on it — `message`, `code`), so that the caller sees the message
 * and the store takes it for a request that got no answer.
 */
const asError = (thrown: unknown): Error => {
  if (thrown instanceof Error) return thrown
  if (thrown instanceof Object) return Object.assign(new Error(), thrown)
  if (typeof thrown === 'string') return new Error(thrown)
  return new Error(`AWS SDK error wrapper for ${thrown}`)
}

/** As the SDK's retry middleware classifies an error. */
const errorType = (error: Record<string, unknown>): string => {
  const e = error as unknown as Parameters<typeof isThrottlingError>[0]
  if (isThrottlingError(e)) return 'THROTTLING'
  if (isTransientError(e)) return 'TRANSIENT'
  if (isServerError(e)) return 'SERVER_ERROR'
  return 'CLIENT_ERROR'
}

type ExceptionClass = new (options: Record<string, unknown>) => Error
const modelled = DynamoDB as unknown as Record<string, unknown>

/**
 * A refusal as the SDK throws it: the error's type found where the SDK looks for it (the body's `__type`, its
 * `code`, the `x-amzn-errortype` header), the service's modelled exception class when it has one, the response kept
 * as `$response` (its headers: a retry-after hint, the server's date). A body that is not JSON throws its
 * SyntaxError, which `read` gives the answer's status.
 */
const refusal = (response: WireResponse, text: string, $metadata: Record<string, unknown>): Error => {
  // A body that is not JSON (a proxy's HTML page, a text 413) throws its SyntaxError, as the SDK's does, whatever
  // the header names: the answer is not the service's, and an error it names is not to be acted on or retried.
  const body: unknown = text === '' ? {} : JSON.parse(text)
  const parsed = (body !== null && typeof body === 'object' ? body : {}) as Record<string, unknown>
  const name = loadJsonRpcErrorCode(response as never, parsed) ?? 'Unknown'
  const message = String(parsed.message ?? parsed.Message ?? 'UnknownError')
  const { __type: _type, message: _m, Message: _M, code: _c, Code: _C, ...fields } = parsed
  const $fault = response.statusCode >= 500 ? 'server' : 'client'
  const $response = { statusCode: response.statusCode, headers: response.headers, body: undefined }
  const Known = modelled[name]
  let error: Error
  if (
    typeof Known === 'function' &&
    Known.prototype instanceof DynamoDB.DynamoDBServiceException &&
    Known !== DynamoDB.DynamoDBServiceException
  ) {
    error = new (Known as ExceptionClass)({ message, $metadata, ...fields })
    error.message = message
  } else {
    error = new DynamoDB.DynamoDBServiceException({ name, $fault, message, $metadata })
    Object.assign(error, fields)
  }
  Object.assign(error, { $response })
  return error
}
