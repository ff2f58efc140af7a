import { ZodObject, ZodOptional, type z } from 'zod'
import { TickflowError, ValidationError } from '../core/errors.js'
import { summarizeIssues } from '../schemas/zod-issues.js'
import type { ApiRequest, ApiResponse } from './http.js'
import { HttpError } from './http-errors.js'

export type HttpMethod = 'GET' | 'POST' | 'DELETE'

export interface ResponseSpec {
  description: string
  schema?: z.ZodType
  /** Default application/json. */
  contentType?: string
  /** Other representations of the same answer, by content type (a graph as JSON next to its Mermaid text). */
  alternatives?: Record<string, z.ZodType>
  /** Shared by this name under `components.responses` of the OpenAPI document. */
  name?: string
}

/** The groups of operations in the OpenAPI document, in the order the docs page shows them. */
export const API_TAGS = {
  workflows: 'Workflow instances: create, list, count, read, run, cancel, restart',
  nodes: 'One node of an instance: external events and restarts',
  schedules: 'Recurring schedules that start workflow instances',
  'workflow-types': 'The registered workflow definitions and their graphs',
  callbacks: 'Completing a waiting node with its callback token, without other credentials',
  documentation: 'This API described as OpenAPI, and its docs page',
  local: 'The in-process queues of `npm start` (not served when deployed, not in the OpenAPI document)',
} as const

export type ApiTag = keyof typeof API_TAGS

export interface RouteInput<P, Q, B> {
  params: P
  query: Q
  body: B
  request: ApiRequest
}

/** One route: its schemas are used both to validate requests and to describe the route in OpenAPI. */
export interface Route<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod
  /** OpenAPI-style template, e.g. `/workflows/{id}/nodes/{node}/events`. */
  path: string
  operationId: string
  summary: string
  tag: ApiTag
  params?: z.ZodType<P>
  query?: z.ZodType<Q>
  body?: z.ZodType<B>
  /** The body arrives as text in `request.rawBody`, whatever its content type, and the route reads it itself. */
  rawBody?: true
  /** A route of `npm start` only: left out of the OpenAPI document. */
  local?: true
  responses: Record<number, ResponseSpec>
  handle(input: RouteInput<P, Q, B>): Promise<ApiResponse>
}

/** Keeps each route's parameter types together while the table holds routes of many types. */
export const route = <P, Q, B>(spec: Route<P, Q, B>): Route => spec as unknown as Route

/** Parses one part of a request; the first problem becomes a 400 naming the field (`body.context`, `query.limit`). */
export const parsePart = <T>(schema: z.ZodType<T>, value: unknown, part: 'path' | 'query' | 'body'): T => {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const { field, message, issues } = summarizeIssues(result.error, {
    prefix: part,
    root: part,
    unknownKey: part === 'query' ? 'query parameter' : 'field',
  })
  throw new ValidationError(`${field}: ${message}`, field, { issues })
}

const keysOf = (schema: z.ZodType | undefined): Set<string> => {
  let current: unknown = schema
  while (current instanceof ZodOptional) current = current.unwrap()
  return current instanceof ZodObject ? new Set(Object.keys(current.shape)) : new Set()
}

/** Engine parameter names that are path parameters under another name. */
const PATH_ALIASES: Record<string, string> = { instanceId: 'id', nodeId: 'node' }

/** Where in the request a field the engine named comes from: `context.a` → `body.context.a`, `cursor` → `query.cursor`. */
const requestField = (route: Route, field: string): string => {
  if (/^(body|query|path)([.[]|$)/.test(field)) return field
  const root = field.split(/[.[]/)[0] ?? field
  const rest = field.slice(root.length)
  if (keysOf(route.body).has(root)) return `body.${field}`
  if (keysOf(route.query).has(root)) return `query.${field}`
  const alias = PATH_ALIASES[root] ?? root
  if (keysOf(route.params).has(alias)) return `path.${alias}${rest}`
  return field
}

/** 405, with the methods the path does take. */
const methodNotAllowed = (request: ApiRequest, matches: readonly { compiled: CompiledRoute }[]): HttpError => {
  const allowed = [
    ...new Set(
      matches.flatMap(({ compiled }) => (compiled.route.method === 'GET' ? ['GET', 'HEAD'] : [compiled.route.method])),
    ),
  ]
  return new HttpError(
    405,
    'METHOD_NOT_ALLOWED',
    `${request.method} is not allowed on ${request.path}`,
    { method: request.method, allowed },
    { allow: allowed.join(', ') },
  )
}

interface CompiledRoute {
  route: Route
  pattern: RegExp
  names: string[]
}

const compile = (route: Route): CompiledRoute => {
  const names: string[] = []
  const source = route.path
    .split('/')
    .map((segment) => {
      const match = /^\{(\w+)\}$/.exec(segment)
      if (!match) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      names.push(match[1] as string)
      return '([^/]+)'
    })
    .join('/')
  return { route, pattern: new RegExp(`^${source}/?$`), names }
}

export class Router {
  readonly #compiled: CompiledRoute[]

  constructor(readonly routes: readonly Route[]) {
    // Literal segments win over parameters: `/workflows/count` before `/workflows/{id}`.
    this.#compiled = routes.map(compile).sort((a, b) => a.names.length - b.names.length)
  }

  /** Whether the route a request goes to reads its body as text (the handler then leaves it unparsed). */
  takesRawBody(method: string, path: string): boolean {
    const wanted = method === 'HEAD' ? 'GET' : method
    return this.#matches(path).some(({ compiled }) => compiled.route.method === wanted && compiled.route.rawBody)
  }

  #matches(path: string): { compiled: CompiledRoute; match: RegExpExecArray | null }[] {
    return this.#compiled
      .map((compiled) => ({ compiled, match: compiled.pattern.exec(path) }))
      .filter((candidate) => candidate.match !== null)
  }

  async handle(request: ApiRequest): Promise<ApiResponse> {
    const matches = this.#matches(request.path)
    if (matches.length === 0) {
      throw new HttpError(404, 'ROUTE_NOT_FOUND', `no route for ${request.method} ${request.path}`, {
        method: request.method,
        path: request.path,
      })
    }
    // HEAD is GET without the body (the handler drops it), on every GET route.
    const method = request.method === 'HEAD' ? 'GET' : request.method
    const found = matches.find((candidate) => candidate.compiled.route.method === method)
    if (!found) throw methodNotAllowed(request, matches)
    const { route } = found.compiled
    const rawParams: Record<string, string> = {}
    found.compiled.names.forEach((name, index) => {
      const value = found.match?.[index + 1] ?? ''
      try {
        rawParams[name] = decodeURIComponent(value)
      } catch {
        throw new ValidationError(`path.${name}: not a valid URL-encoded value`, `path.${name}`)
      }
    })
    const params = route.params ? parsePart(route.params, rawParams, 'path') : rawParams
    const query = route.query ? parsePart(route.query, request.query, 'query') : {}
    if (!route.body && request.body !== undefined) {
      throw new ValidationError('body: this route takes no body', 'body')
    }
    const body = route.body ? parsePart(route.body, request.body, 'body') : undefined
    try {
      return await route.handle({ params, query, body, request })
    } catch (error) {
      // The engine names fields by its own parameter names; the caller knows them as parts of the request.
      if (error instanceof TickflowError && typeof error.details.field === 'string') {
        error.details.field = requestField(route, error.details.field)
      }
      throw error
    }
  }
}
