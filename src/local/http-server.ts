import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { networkInterfaces } from 'node:os'
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import type { ApiEvent } from '../api/handler.js'
import { apiGatewayQueryParameters } from '../api/query-string.js'
import { browserRequestRefusal, hostRefusal, servedHostNames, withSecurityHeaders } from '../api/security.js'

export type ApiLambda = (event: ApiEvent, context: Context) => Promise<APIGatewayProxyStructuredResultV2>

/** Bodies larger than this are refused before they are read whole (the handler's own limit is lower). */
const MAX_READ_BYTES = 1024 * 1024

const readBody = (request: IncomingMessage): Promise<Buffer | 'too-large'> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > MAX_READ_BYTES) {
        resolve('too-large')
        request.resume()
        return
      }
      chunks.push(chunk)
    })
    request.on('end', () => resolve(Buffer.concat(chunks)))
    request.on('error', reject)
  })

/** An API Gateway HTTP API event (payload format 2.0) for a Node request, as the `$default` stage sends it. */
export const toApiEvent = (request: IncomingMessage, body: Buffer, requestId: string): ApiEvent => {
  const target = request.url ?? '/'
  const queryAt = target.indexOf('?')
  // The path as URL parsing gives it; the query string exactly as the client sent it, as API Gateway passes it.
  const url = new URL(queryAt === -1 ? target : target.slice(0, queryAt), 'http://localhost')
  const rawQueryString = queryAt === -1 ? '' : target.slice(queryAt + 1)
  const query = apiGatewayQueryParameters(rawQueryString)
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value
  }
  const method = (request.method ?? 'GET').toUpperCase()
  const now = new Date()
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString,
    headers,
    ...(query === undefined ? {} : { queryStringParameters: query }),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket?.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.byteLength ? { body: body.toString('base64'), isBase64Encoded: true } : { isBase64Encoded: false }),
  }
}

/** A Lambda context for a local invocation with the API Gateway limit of 30 s. */
const localContext = (requestId: string): Context => {
  const deadline = Date.now() + 30_000
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'tickflow-api-local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:tickflow-api-local',
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: 'local',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }
}

export interface ServeOptions {
  /** The address the server listens on: its name is served, and `0.0.0.0`/`::` serve this machine's addresses. */
  host: string
  /** More host names to answer (`ALLOWED_HOSTS`), e.g. a container's service name. */
  allowedHosts?: readonly string[]
  /** Origins whose pages may change things (`CORS_ALLOWED_ORIGINS`). */
  allowedOrigins?: readonly string[]
}

const interfaceAddresses = (): string[] =>
  Object.values(networkInterfaces()).flatMap((addresses) => (addresses ?? []).map((address) => address.address))

const send = (response: ServerResponse, result: APIGatewayProxyStructuredResultV2): void => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(withSecurityHeaders(result).headers ?? {})) headers[name] = String(value)
  response.writeHead(result.statusCode ?? 200, headers)
  response.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''))
}

const jsonError = (statusCode: number, code: string, message: string, details: Record<string, unknown> = {}) => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8' },
  body: JSON.stringify({ error: { code, message, details } }),
})

/**
 * Serves an API Lambda handler over plain HTTP, one invocation per request, as API Gateway would; and, since no API
 * Gateway stands in front of it, answers only the host names it serves and refuses other sites' changes before any
 * route, the local-only ones included (README, "Security").
 */
export const serveApi = (
  handler: ApiLambda,
  onError: (error: unknown) => void,
  options: ServeOptions = { host: '127.0.0.1' },
): Server => {
  const served = servedHostNames(options.host, {
    ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
    interfaceAddresses: interfaceAddresses(),
  })
  const policy = { allowedOrigins: options.allowedOrigins ?? [] }
  return createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const requestId = randomUUID()
    try {
      const refused =
        hostRefusal(request.headers.host, served) ??
        browserRequestRefusal({ method: request.method ?? 'GET', headers: request.headers }, policy)
      if (refused) {
        request.resume()
        send(response, refused)
        return
      }
      const body = await readBody(request)
      if (body === 'too-large') {
        send(response, jsonError(413, 'PAYLOAD_TOO_LARGE', 'body too large'))
        return
      }
      send(response, await handler(toApiEvent(request, body, requestId), localContext(requestId)))
    } catch (error) {
      onError(error)
      send(response, jsonError(500, 'INTERNAL_ERROR', 'internal error', { requestId }))
    }
  })
}
