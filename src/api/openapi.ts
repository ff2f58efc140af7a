import { z } from 'zod'
import { callbackAnswerSchema, callbackCompletionSchema } from '../schemas/callbacks.js'
import {
  countResponseSchema,
  createResponseSchema,
  errorResponseSchema,
  eventResponseSchema,
  graphResponseSchema,
  instanceDetailSchema,
  listResponseSchema,
  operationResponseSchema,
  passResultSchema,
  scheduleSchema,
  schedulesResponseSchema,
  workflowTypeSchema,
  workflowTypesResponseSchema,
} from '../schemas/http-api.js'
import { publishedDetailSchema } from '../schemas/lifecycle-events.js'
import { json } from './http.js'
import { API_TAGS, type ApiTag, type ResponseSpec, type Route, route } from './router.js'
import { CALLBACK_PATH_PREFIX } from './routes/callbacks.js'

type JsonSchema = Record<string, unknown>

/** Request schemas are described as clients send them (before transforms and coercion). */
const toSchema = (schema: z.ZodType, io: 'input' | 'output'): JsonSchema => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema
  return rest
}

const unwrapOptional = (schema: z.ZodType): { schema: z.ZodType; optional: boolean } =>
  schema instanceof z.ZodOptional
    ? { schema: schema.unwrap() as z.ZodType, optional: true }
    : { schema, optional: false }

const parameters = (schema: z.ZodType | undefined, location: 'path' | 'query'): JsonSchema[] => {
  if (!schema) return []
  const described = toSchema(schema, 'input')
  const properties = (described.properties ?? {}) as Record<string, JsonSchema>
  const required = new Set((described.required ?? []) as string[])
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...propertySchema } = property
    return {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: propertySchema,
    }
  })
}

/** Response schemas described once under `components.schemas` and referred to wherever they are answered. */
const COMPONENT_SCHEMAS: readonly (readonly [string, z.ZodType])[] = [
  ['Error', errorResponseSchema],
  ['InstanceDetail', instanceDetailSchema],
  ['InstanceList', listResponseSchema],
  ['Count', countResponseSchema],
  ['Created', createResponseSchema],
  ['OperationResult', operationResponseSchema],
  ['PassResult', passResultSchema],
  ['EventStored', eventResponseSchema],
  ['GraphJson', graphResponseSchema],
  ['WorkflowType', workflowTypeSchema],
  ['WorkflowTypes', workflowTypesResponseSchema],
  ['Schedule', scheduleSchema],
  ['Schedules', schedulesResponseSchema],
  ['CallbackAnswer', callbackAnswerSchema],
]

/**
 * Schemas the document carries though no route answers them: the lifecycle events a deployment publishes to its
 * event bus (README, "Lifecycle events"), and a callback's completion as the events queue also takes it.
 */
const EXTRA_SCHEMAS: readonly (readonly [string, z.ZodType, 'input' | 'output'])[] = [
  ['LifecycleEventDetail', publishedDetailSchema, 'output'],
  ['CallbackCompletion', callbackCompletionSchema, 'input'],
]

/** The callbacks group is public: its token is its credential. */
const securityOf = (item: { method: string; path: string }): JsonSchema[] =>
  item.path.startsWith(CALLBACK_PATH_PREFIX) ? [] : [{ jwt: [scopeOf(item)] }, { sigv4: [] }]

/**
 * The JWT scope each route group needs when the HTTP API uses the jwt authorizer (infra/auth/jwt.yml); with iam, the
 * same groups are what a caller's `execute-api:Invoke` policy names. test/deploy checks the deployment against this.
 */
export const API_SCOPES = {
  read: 'tickflow/read',
  write: 'tickflow/write',
  schedules: 'tickflow/schedules',
} as const

export type ApiScope = (typeof API_SCOPES)[keyof typeof API_SCOPES]

/** Schedules are their own group (they start instances later, repeatedly); otherwise GET reads and the rest writes. */
export const scopeOf = (item: { method: string; path: string }): ApiScope =>
  item.path === '/schedules' || item.path.startsWith('/schedules/')
    ? API_SCOPES.schedules
    : item.method === 'GET' || item.method === 'HEAD'
      ? API_SCOPES.read
      : API_SCOPES.write

/** The two ways a deployment can authorise callers (the `auth` parameter picks one; `none` only on dev stages). */
const SECURITY_SCHEMES = {
  jwt: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'auth=jwt: a bearer token from the configured issuer, with the scope of the route group',
  },
  sigv4: {
    type: 'apiKey',
    name: 'Authorization',
    in: 'header',
    description: 'auth=iam: requests signed with AWS Signature Version 4; the caller needs execute-api:Invoke',
    'x-amazon-apigateway-authtype': 'awsSigv4',
  },
} as const

const DESCRIPTION = [
  'Workflow engine API. Errors are `{"error": {"code", "message", "details"}}`; a 400 names the field in',
  '`details.field`. Every GET route also answers HEAD (the same status and headers, no body). List cursors are',
  'bound to the filters and order of the list that issued them. A deployment authorises every route with either',
  `scheme (JWT scopes per route group: ${Object.values(API_SCOPES).join(', ')}); the local runtime and dev stages`,
  'have none. `POST /callbacks/{token}` takes no credential but its token.',
].join(' ')

/** The OpenAPI 3.1 document of a route table, generated from the same zod schemas that validate requests. */
export const buildOpenApiDocument = (allRoutes: readonly Route[], version: string): JsonSchema => {
  // The routes of `npm start` only are no part of the API a deployment serves.
  const routes = allRoutes.filter((item) => !item.local)
  const schemaNames = new Map<z.ZodType, string>(COMPONENT_SCHEMAS.map(([name, schema]) => [schema, name]))
  const schemas: Record<string, JsonSchema> = {}
  const responses: Record<string, JsonSchema> = {}
  const describe = (schema: z.ZodType): JsonSchema => {
    const name = schemaNames.get(schema)
    if (name === undefined) return toSchema(schema, 'output')
    schemas[name] ??= toSchema(schema, 'output')
    return { $ref: `#/components/schemas/${name}` }
  }
  const response = (spec: ResponseSpec): JsonSchema => {
    const content: Record<string, JsonSchema> = {}
    if (spec.schema) content[spec.contentType ?? 'application/json'] = { schema: describe(spec.schema) }
    for (const [type, schema] of Object.entries(spec.alternatives ?? {})) content[type] = { schema: describe(schema) }
    const described = { description: spec.description, ...(Object.keys(content).length ? { content } : {}) }
    if (spec.name === undefined) return described
    const known = responses[spec.name]
    if (known !== undefined && JSON.stringify(known) !== JSON.stringify(described)) {
      throw new Error(`two different responses are named ${spec.name}`)
    }
    responses[spec.name] = described
    return { $ref: `#/components/responses/${spec.name}` }
  }
  const paths: Record<string, Record<string, JsonSchema>> = {}
  for (const item of routes) {
    const operation: JsonSchema = {
      operationId: item.operationId,
      summary: item.summary,
      tags: [item.tag],
      security: securityOf(item),
      parameters: [...parameters(item.params, 'path'), ...parameters(item.query, 'query')],
      responses: Object.fromEntries(Object.entries(item.responses).map(([status, spec]) => [status, response(spec)])),
    }
    if (item.body) {
      const { schema, optional } = unwrapOptional(item.body)
      operation.requestBody = {
        required: !optional,
        content: { 'application/json': { schema: toSchema(schema, 'input') } },
      }
    }
    const byMethod = paths[item.path] ?? {}
    byMethod[item.method.toLowerCase()] = operation
    paths[item.path] = byMethod
  }
  for (const [name, schema, io] of EXTRA_SCHEMAS) schemas[name] ??= toSchema(schema, io)
  const used = new Set(routes.map((item) => item.tag))
  return {
    openapi: '3.1.0',
    info: { title: 'tickflow', version, description: DESCRIPTION },
    // Relative: the API that serves this document (its docs page calls the same origin).
    servers: [{ url: '/', description: 'the API serving this document' }],
    tags: Object.entries(API_TAGS)
      .filter(([name]) => used.has(name as ApiTag))
      .map(([name, description]) => ({ name, description })),
    paths,
    components: { schemas, responses, securitySchemes: SECURITY_SCHEMES },
  }
}

/** `GET /openapi.json`, describing every route including itself. */
export const withOpenApiRoute = (routes: readonly Route[], version: string): Route[] => {
  let document: JsonSchema | undefined
  const all: Route[] = [...routes]
  all.push(
    route({
      method: 'GET',
      path: '/openapi.json',
      operationId: 'getOpenApiDocument',
      summary: 'This API described as OpenAPI 3.1',
      tag: 'documentation',
      responses: {
        200: { description: 'the OpenAPI document', schema: z.looseObject({ openapi: z.string() }) },
      },
      handle: async () => {
        document ??= buildOpenApiDocument(all, version)
        return json(200, document)
      },
    }),
  )
  return all
}
