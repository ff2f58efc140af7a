/** A request as the routes see it: already normalised, decoded and parsed by the handler's middlewares. */
export interface ApiRequest {
  method: string
  path: string
  /** Lower-case header names. */
  headers: Record<string, string | undefined>
  query: Record<string, string | undefined>
  /** Parsed JSON body; undefined when the request has none, or when its route reads the text itself. */
  body: unknown
  /** The body as text, for a route that reads it itself (`rawBody` routes); undefined otherwise. */
  rawBody?: string
  requestId: string
  /** Time left to the invocation, when known: a long-poll never outlives it. */
  remainingTimeMs?: () => number
}

export interface ApiResponse {
  statusCode: number
  headers: Record<string, string>
  body: string
}

export const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): ApiResponse => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  body: JSON.stringify(body),
})

export const text = (statusCode: number, body: string, contentType = 'text/plain; charset=utf-8'): ApiResponse => ({
  statusCode,
  headers: { 'content-type': contentType },
  body,
})
