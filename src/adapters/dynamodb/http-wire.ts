import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import * as DynamoDB from '@aws-sdk/client-dynamodb'
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry'
import { SignatureV4 } from '@smithy/signature-v4'

/** The operations the store sends on its hot path. */
export type DirectOperation = 'UpdateItem' | 'PutItem'

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
  refreshRetryTokenForRetry(token: RetryToken, info: { error: unknown; errorType: string }): Promise<RetryToken>
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
  endpointProvider: (params: Record<string, unknown>) => { url: URL; headers?: Record<string, unknown> }
  useFipsEndpoint: () => Promise<boolean>
  useDualstackEndpoint: () => Promise<boolean>
  requestHandler: RequestHandler
  streamCollector: (body: unknown) => Promise<Uint8Array>
  retryStrategy: () => Promise<RetryStrategy | object>
  systemClockOffset?: number
  signingEscapePath?: boolean
}

/** How a pristine client's middleware stack looks: anything else on a client is someone's middleware to honour. */
let pristineStack: string | undefined
const pristine = (): string => {
  pristineStack ??= new DynamoDB.DynamoDBClient({ region: 'us-east-1' }).middlewareStack.identify().join('\n')
  return pristineStack
}

interface Resolved {
  signer: SignatureV4
  endpoint: { protocol: string; hostname: string; port?: number; path: string; host: string }
  retry: RetryStrategy
}

/**
 * DynamoDB's JSON protocol spoken directly, for the store's writes: the request is signed with the SDK's own signer
 * and sent through the client's own HTTP handler, with the client's credentials, region, endpoint and retry
 * strategy. What it leaves out is the SDK's per-request machinery — the middleware stack built and walked for every
 * command, schema-driven serialization of a body that is already JSON, endpoint rules evaluated again — which costs
 * the client about twice as much CPU as the request itself (README, "What bounds the hot path").
 *
 * The client decides, at the first request: one with middleware of its own (a tracer, a capacity meter) or with an
 * adaptive or non-standard retry strategy sends through the SDK as before, so that whatever was added to it sees
 * every request. Anything that wraps the client's HTTP handler (`config.requestHandler`) sees both.
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
    const retry = (await config.retryStrategy()) as Partial<RetryStrategy>
    if (
      typeof retry.acquireInitialRetryToken !== 'function' ||
      typeof retry.refreshRetryTokenForRetry !== 'function' ||
      typeof retry.recordSuccess !== 'function' ||
      retry.mode !== 'standard'
    )
      return undefined
    const region = await config.region()
    const endpoint = await this.#endpoint(config, region)
    if (!endpoint) return undefined
    const signer = new SignatureV4({
      service: 'dynamodb',
      region,
      credentials: config.credentials,
      sha256: config.sha256,
      uriEscapePath: config.signingEscapePath ?? true,
    })
    return { signer, endpoint, retry: retry as RetryStrategy }
  }

  /**
   * Where the SDK would send: the client's own endpoint, else one configured for the service (AWS_ENDPOINT_URL_DYNAMODB,
   * the shared config file), else the region's by the SDK's own rules. Undefined when the endpoint asks for headers
   * of its own (the SDK's to send).
   */
  async #endpoint(config: ClientConfig, region: string): Promise<Resolved['endpoint'] | undefined> {
    if (!config.isCustomEndpoint && !config.ignoreConfiguredEndpointUrls && config.serviceConfiguredEndpoint) {
      const configured = await config.serviceConfiguredEndpoint()
      if (configured) return fromUrl(new URL(configured))
    }
    if (config.isCustomEndpoint && config.endpoint) {
      const custom = await config.endpoint()
      if (custom.headers && Object.keys(custom.headers).length > 0) return undefined
      return { ...custom, host: custom.port ? `${custom.hostname}:${custom.port}` : custom.hostname }
    }
    const resolved = config.endpointProvider({
      Region: region,
      UseFIPS: await config.useFipsEndpoint(),
      UseDualStack: await config.useDualstackEndpoint(),
    })
    if (resolved.headers && Object.keys(resolved.headers).length > 0) return undefined
    return fromUrl(resolved.url)
  }

  /**
   * Sends one request (its input in the service's own shape, AttributeValues marshalled) and answers the service's
   * output as parsed; a refusal is thrown as the SDK throws it (the same exception classes, name, message, `$fault`,
   * `$metadata` and modelled fields such as a failed condition's `Item`). Retries follow the client's strategy.
   */
  async send(how: Resolved, operation: DirectOperation, input: object): Promise<Record<string, unknown>> {
    const config = this.#client.config as unknown as ClientConfig
    const body = JSON.stringify(input)
    const { endpoint, signer, retry } = how
    let token = await retry.acquireInitialRetryToken('')
    let attempts = 0
    let totalRetryDelay = 0
    for (;;) {
      try {
        const request: WireRequest = {
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          ...(endpoint.port !== undefined ? { port: endpoint.port } : {}),
          method: 'POST',
          path: endpoint.path,
          query: {},
          headers: {
            host: endpoint.host,
            'content-type': 'application/x-amz-json-1.0',
            'content-length': String(Buffer.byteLength(body)),
            'x-amz-target': `DynamoDB_20120810.${operation}`,
          },
          body,
        }
        const signed = (await signer.sign(request as never, {
          signingDate: new Date(Date.now() + (config.systemClockOffset ?? 0)),
        })) as unknown as WireRequest
        const { response } = await config.requestHandler.handle(signed, {})
        const text = Buffer.from(await config.streamCollector(response.body)).toString('utf8')
        const metadata = {
          httpStatusCode: response.statusCode,
          requestId: response.headers['x-amzn-requestid'],
          attempts: attempts + 1,
          totalRetryDelay,
        }
        if (response.statusCode < 300) {
          retry.recordSuccess(token)
          const output = (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>
          output.$metadata = metadata
          return output
        }
        throw refusal(response.statusCode, text, metadata)
      } catch (error) {
        const info = { error, errorType: errorType(error as Record<string, unknown>) }
        try {
          token = await retry.refreshRetryTokenForRetry(token, info)
        } catch {
          const failed = error as { $metadata?: Record<string, unknown> }
          if (failed && typeof failed === 'object') {
            failed.$metadata ??= {}
            failed.$metadata.attempts = attempts + 1
            failed.$metadata.totalRetryDelay = totalRetryDelay
          }
          throw error
        }
        attempts = token.getRetryCount()
        const delay = token.getRetryDelay()
        totalRetryDelay += delay
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  }
}

const fromUrl = (url: URL): Resolved['endpoint'] => ({
  protocol: url.protocol,
  hostname: url.hostname,
  ...(url.port ? { port: Number(url.port) } : {}),
  path: url.pathname,
  host: url.host,
})

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

/** A refusal as the SDK throws it: the service's modelled exception class when it has one. */
const refusal = (statusCode: number, text: string, $metadata: Record<string, unknown>): Error => {
  let parsed: Record<string, unknown> = {}
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>)
  } catch {
    parsed = {}
  }
  const type = String(parsed.__type ?? parsed.code ?? `Http${statusCode}Error`)
  const name = type.slice(type.lastIndexOf('#') + 1)
  const message = String(parsed.message ?? parsed.Message ?? name)
  const { __type: _type, message: _m, Message: _M, ...fields } = parsed
  const $fault = statusCode >= 500 ? 'server' : 'client'
  const Known = modelled[name]
  if (
    typeof Known === 'function' &&
    Known.prototype instanceof DynamoDB.DynamoDBServiceException &&
    Known !== DynamoDB.DynamoDBServiceException
  ) {
    const error = new (Known as ExceptionClass)({ message, $metadata, ...fields })
    error.message = message
    return error
  }
  const error = new DynamoDB.DynamoDBServiceException({ name, $fault, message, $metadata })
  Object.assign(error, fields)
  return error
}
