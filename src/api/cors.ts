import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { json } from './http.js'
import { HttpError } from './http-errors.js'

/** Which browser origins may call the API; `*` in a list allows any. Off when no options are given. */
export interface CorsOptions {
  allowedOrigins: readonly string[]
  allowedMethods: readonly string[]
  allowedHeaders: readonly string[]
  /** Response headers a page's script may read (beyond the CORS-safelisted ones), e.g. `location`. */
  exposedHeaders: readonly string[]
  /** How long a browser may cache a preflight answer; 0 sends no Access-Control-Max-Age. */
  maxAgeSeconds: number
}

type Result = APIGatewayProxyStructuredResultV2

const headerOf = (event: APIGatewayProxyEventV2, name: string): string | undefined => {
  for (const [key, value] of Object.entries(event.headers ?? {})) if (key.toLowerCase() === name) return value
  return undefined
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '')

const withVary = (headers: Result['headers']): Record<string, string | number | boolean> => {
  const vary = String(headers?.vary ?? '')
  return { ...headers, vary: vary === '' ? 'origin' : /\borigin\b/i.test(vary) ? vary : `${vary}, origin` }
}

/**
 * CORS as API Gateway's own setting does it: preflights are answered here (never routed), and every answer to
 * an allowed origin carries Access-Control-Allow-Origin. An answer to another origin goes without it, so the
 * browser withholds it from the page; CORS protects browsers' users, it is not an access control.
 */
export const corsPolicy = (options: CorsOptions) => {
  const anyOrigin = options.allowedOrigins.includes('*')
  const origins = new Set(options.allowedOrigins)
  const methods = new Set(options.allowedMethods.map((method) => method.toUpperCase()))
  const headers = new Set(options.allowedHeaders.map((header) => header.toLowerCase()))
  const allowOrigin = (origin: string): string | undefined =>
    anyOrigin ? '*' : origins.has(origin) ? origin : undefined

  const refuse = (field: string, message: string, details: Record<string, unknown>): Result => {
    const error = new HttpError(403, 'CORS_NOT_ALLOWED', message, { field, ...details })
    return withPlainHeaders(json(403, { error: error.toJSON() }))
  }

  return {
    /** The answer to a CORS preflight, or undefined when the request is not one. */
    preflight(event: APIGatewayProxyEventV2): Result | undefined {
      const origin = headerOf(event, 'origin')
      const requestedMethod = headerOf(event, 'access-control-request-method')
      if (event.requestContext?.http?.method?.toUpperCase() !== 'OPTIONS' || !origin || !requestedMethod) return
      const allowedOrigin = allowOrigin(origin)
      if (allowedOrigin === undefined) {
        return refuse('origin', `origin ${origin} may not call this API`, { origin })
      }
      const method = requestedMethod.toUpperCase()
      if (!methods.has('*') && !methods.has(method)) {
        return refuse('method', `method ${method} is not allowed from a browser`, { method, allowed: [...methods] })
      }
      const requested = list(headerOf(event, 'access-control-request-headers'))
      const refused = headers.has('*') ? [] : requested.filter((header) => !headers.has(header))
      if (refused.length > 0) {
        return refuse('headers', `request header(s) not allowed: ${refused.join(', ')}`, {
          refused,
          allowed: [...headers],
        })
      }
      return {
        statusCode: 204,
        headers: withVary({
          'access-control-allow-origin': allowedOrigin,
          'access-control-allow-methods': [...methods].join(','),
          ...(headers.size > 0 ? { 'access-control-allow-headers': [...headers].join(',') } : {}),
          ...(options.maxAgeSeconds > 0 ? { 'access-control-max-age': String(options.maxAgeSeconds) } : {}),
        }),
        body: '',
      }
    },

    /** An answer with the CORS headers its request's origin is entitled to. */
    decorate(event: APIGatewayProxyEventV2, result: Result): Result {
      const origin = headerOf(event, 'origin')
      if (!origin) return result
      const allowedOrigin = allowOrigin(origin)
      const decorated = withVary(result.headers)
      if (allowedOrigin !== undefined) {
        decorated['access-control-allow-origin'] = allowedOrigin
        if (options.exposedHeaders.length > 0) {
          decorated['access-control-expose-headers'] = options.exposedHeaders.join(',')
        }
      }
      return { ...result, headers: decorated }
    },
  }
}

const withPlainHeaders = (response: ReturnType<typeof json>): Result => ({
  ...response,
  headers: withVary(response.headers),
})
