import { Readable } from 'node:stream'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'

/**
 * Requests to DynamoDB as the client's HTTP handler sees them: below the SDK's middleware and below the store's
 * direct writes (HttpWire), so that a fault injected here reaches every request the same way, whichever way it was
 * sent — as a network fault or a refusal from DynamoDB would.
 */
export interface Exchange {
  /** The command as the SDK names it ('UpdateItemCommand'), from the request's target. */
  commandName: string
  /** The request's body as sent: the service's input, AttributeValues marshalled. */
  input: Record<string, unknown>
  /** Whether the SDK sent it (its invocation header), or the store's direct wire. */
  viaSdk: boolean
  /** The request as it leaves the client: method, path, headers (as signed) and body. */
  request: { method: string; path: string; headers: Record<string, string>; body: string }
}

interface HttpResponseLike {
  statusCode: number
  headers: Record<string, string>
  body: unknown
}

/** What a request handler answers. */
export interface Answer {
  response: HttpResponseLike
}

export type Interceptor = (exchange: Exchange, send: () => Promise<Answer>) => Promise<Answer>

interface RequestLike {
  method: string
  path: string
  headers: Record<string, string>
  body?: unknown
}

interface Handler {
  handle(request: RequestLike, options?: unknown): Promise<Answer>
  updateHttpClientConfig?(key: never, value: never): void
  httpHandlerConfigs?(): unknown
  destroy?(): void
}

/** A request body as text: the SDK sends bytes, the store's direct writes a string. */
const bodyText = (body: unknown): string =>
  typeof body === 'string' ? body : body instanceof Uint8Array ? new TextDecoder().decode(body) : ''

/** Puts `interceptor` in front of the client's HTTP handler; interceptors added later run first. */
export const interceptRequests = (client: DynamoDBClient, interceptor: Interceptor): void => {
  const config = client.config as unknown as { requestHandler: Handler }
  const inner = config.requestHandler
  const wrapper: Handler = {
    handle: (request, options) => {
      const target = request.headers['x-amz-target'] ?? ''
      const body = bodyText(request.body)
      const exchange: Exchange = {
        commandName: `${target.slice(target.indexOf('.') + 1)}Command`,
        input: JSON.parse(body || '{}'),
        viaSdk: request.headers['amz-sdk-invocation-id'] !== undefined,
        request: { method: request.method, path: request.path, headers: { ...request.headers }, body },
      }
      return interceptor(exchange, () => inner.handle(request, options))
    },
    updateHttpClientConfig: (key, value) => inner.updateHttpClientConfig?.(key, value),
    httpHandlerConfigs: () => inner.httpHandlerConfigs?.() ?? {},
    destroy: () => inner.destroy?.(),
  }
  config.requestHandler = wrapper
}

/** Reads an answer's body to its end and drops it (the connection goes back to the pool). */
export const drain = async (answer: Answer): Promise<void> => {
  const body = answer.response.body as AsyncIterable<unknown> | undefined
  if (body && typeof body[Symbol.asyncIterator] === 'function') for await (const _ of body) void _
}

/** A refusal as DynamoDB answers it: the status, and the error's type and message as its JSON body. */
export const refusal = (
  statusCode: number,
  name: string,
  message: string,
  headers: Record<string, string> = {},
): Answer =>
  answer(statusCode, JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${name}`, message }), headers)

/** An answer of any status, body and headers (a gateway's, a proxy's, a service's that names its error elsewhere). */
export const answer = (statusCode: number, body: string, headers: Record<string, string> = {}): Answer => ({
  response: {
    statusCode,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'injected', ...headers },
    body: Readable.from([Buffer.from(body)]),
  },
})
