import { z } from 'zod'
import { json } from './http.js'
import { type Route, route } from './router.js'

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
export const scopeOf = (item: Pick<Route, 'method' | 'path'>): ApiScope =>
  item.path === '/schedules' || item.path.startsWith('/schedules/')
    ? API_SCOPES.schedules
    : item.method === 'GET'
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

/** The OpenAPI 3.1 document of a route table, generated from the same zod schemas that validate requests. */
export const buildOpenApiDocument = (routes: readonly Route[], version: string): JsonSchema => {
  const paths: Record<string, Record<string, JsonSchema>> = {}
  for (const item of routes) {
    const operation: JsonSchema = {
      operationId: item.operationId,
      summary: item.summary,
      security: [{ jwt: [scopeOf(item)] }, { sigv4: [] }],
      parameters: [...parameters(item.params, 'path'), ...parameters(item.query, 'query')],
      responses: Object.fromEntries(
        Object.entries(item.responses).map(([status, response]) => [
          status,
          {
            description: response.description,
            ...(response.schema
              ? {
                  content: {
                    [response.contentType ?? 'application/json']: { schema: toSchema(response.schema, 'output') },
                  },
                }
              : {}),
          },
        ]),
      ),
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
  return {
    openapi: '3.1.0',
    info: {
      title: 'tickflow',
      version,
      description:
        'Workflow engine API. Errors are `{"error": {"code", "message", "details"}}`; a 400 names the field in ' +
        '`details.field`. A deployment authorises every route with either scheme (JWT scopes per route group: ' +
        `${Object.values(API_SCOPES).join(', ')}); the local runtime and dev stages have none.`,
    },
    components: { securitySchemes: SECURITY_SCHEMES },
    paths,
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
      responses: { 200: { description: 'the OpenAPI document' } },
      handle: async () => {
        document ??= buildOpenApiDocument(all, version)
        return json(200, document)
      },
    }),
  )
  return all
}
