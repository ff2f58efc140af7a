import middy, { type MiddlewareObj } from '@middy/core'
import httpHeaderNormalizer from '@middy/http-header-normalizer'
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda'
import type { Logger } from '../core/ports.js'
import { type CorsOptions, corsPolicy } from './cors.js'
import type { ApiRequest } from './http.js'
import { errorResponse, HttpError } from './http-errors.js'
import { withOpenApiRoute } from './openapi.js'
import { Router } from './router.js'
import { type ApiDeps, apiRoutes } from './routes/api-routes.js'
import { callbackRoutes } from './routes/callbacks.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { docsRoutes } from './routes/docs.js'
import { type LocalQueues, localRoutes } from './routes/local-queues.js'
import { browserRequestRefusal, withSecurityHeaders } from './security.js'

export interface ApiHandlerOptions extends ApiDeps {
  logger: Logger
  /** Largest accepted request body; larger ones get 413 before they are parsed. */
  maxBodyBytes?: number
  version?: string
  /** Browser access from other origins; off when absent. */
  cors?: CorsOptions
  /** The local runtime's queues: with them, the `/_local/` routes of `npm start` are served too. */
  local?: LocalQueues
}

export type ApiEvent = APIGatewayProxyEventV2 & { parsedBody?: unknown; rawBody?: string }

const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/**
 * Decodes, size-checks and parses a JSON body; leaves `parsedBody` undefined when there is none. A route that reads
 * its body itself gets the decoded text in `rawBody`, unchecked.
 */
const jsonBody = (maxBodyBytes: number, router: Router): MiddlewareObj<ApiEvent> => ({
  before: (request) => {
    const event = request.event
    if (event.body === undefined || event.body === null || event.body === '') return
    const bytes = Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8')
    if (router.takesRawBody(methodOf(event), routePath(event))) {
      event.rawBody = bytes.toString('utf8')
      return
    }
    if (bytes.byteLength > maxBodyBytes) {
      throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body is ${bytes.byteLength} bytes, over ${maxBodyBytes}`, {
        field: 'body',
        sizeBytes: bytes.byteLength,
        limitBytes: maxBodyBytes,
      })
    }
    const contentType = event.headers?.['content-type'] ?? ''
    if (!JSON_CONTENT_TYPE.test(contentType)) {
      throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON (content-type: application/json)', {
        field: 'content-type',
        received: contentType,
      })
    }
    try {
      event.parsedBody = JSON.parse(bytes.toString('utf8'))
    } catch (error) {
      throw new HttpError(400, 'MALFORMED_JSON', `body is not valid JSON: ${(error as Error).message}`, {
        field: 'body',
      })
    }
  },
})

const requestIdOf = (event: ApiEvent, context: Context | undefined): string =>
  event.requestContext?.requestId ?? context?.awsRequestId ?? 'unknown'

/** Every error, thrown anywhere, becomes the API's JSON error response. */
const errors = (logger: Logger): MiddlewareObj<ApiEvent, APIGatewayProxyStructuredResultV2> => ({
  onError: (request) => {
    request.response = errorResponse(request.error, requestIdOf(request.event, request.context), logger)
  },
})

const methodOf = (event: ApiEvent): string => event.requestContext?.http?.method?.toUpperCase() ?? 'GET'

/** HTTP API stages other than `$default` prefix the path with the stage name. */
const routePath = (event: ApiEvent): string => {
  const stage = event.requestContext?.stage
  const path = event.rawPath || '/'
  return stage && stage !== '$default' && path.startsWith(`/${stage}/`) ? path.slice(stage.length + 1) : path
}

/** The API Lambda handler for an API Gateway HTTP API (payload format 2.0). */
export const createApiHandler = (options: ApiHandlerOptions) => {
  const { logger, maxBodyBytes = 256 * 1024, version = '0.1.0', cors: corsOptions, local, ...deps } = options
  // The callbacks group is public (its token is its credential): mounted beside the authorised resources.
  const routes = [
    ...apiRoutes(deps),
    ...callbackRoutes(deps),
    ...docsRoutes(),
    ...dashboardRoutes(),
    ...(local ? localRoutes(local) : []),
  ]
  const router = new Router(withOpenApiRoute(routes, version))
  const cors = corsOptions === undefined ? undefined : corsPolicy(corsOptions)
  const api = middy<ApiEvent, APIGatewayProxyStructuredResultV2>()
    .use(httpHeaderNormalizer())
    .use(jsonBody(maxBodyBytes, router))
    .use(errors(logger))
    .handler(async (event, context) => {
      const request: ApiRequest = {
        method: methodOf(event),
        path: routePath(event),
        headers: event.headers ?? {},
        query: event.queryStringParameters ?? {},
        body: event.parsedBody,
        ...(event.rawBody === undefined ? {} : { rawBody: event.rawBody }),
        requestId: requestIdOf(event, context),
      }
      if (typeof context?.getRemainingTimeInMillis === 'function') {
        request.remainingTimeMs = () => context.getRemainingTimeInMillis()
      }
      return router.handle(request)
    })
  const browserPolicy = { allowedOrigins: corsOptions?.allowedOrigins ?? [] }
  return async (event: ApiEvent, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    // A preflight's answer carries its own headers; a refused one none that would let the browser go on.
    const preflight = cors?.preflight(event)
    // A change another site's page asks the browser for is refused before anything reads it (see security.ts).
    const method = event.requestContext?.http?.method ?? 'GET'
    const forged = preflight ? undefined : browserRequestRefusal({ method, headers: event.headers }, browserPolicy)
    const answer = preflight ?? forged ?? (await api(event, context))
    const result = cors && !preflight ? cors.decorate(event, answer) : answer
    return withSecurityHeaders(method.toUpperCase() === 'HEAD' ? withoutBody(result) : result)
  }
}

/** The answer to a HEAD request: the GET answer's headers, its length, no body. */
const withoutBody = (result: APIGatewayProxyStructuredResultV2): APIGatewayProxyStructuredResultV2 => {
  const body = result.body ?? ''
  const length = Buffer.byteLength(body, result.isBase64Encoded ? 'base64' : 'utf8')
  return { ...result, headers: { ...result.headers, 'content-length': String(length) }, body: '' }
}

export { Router }
