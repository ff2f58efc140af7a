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

/** The OpenAPI 3.1 document of a route table, generated from the same zod schemas that validate requests. */
export const buildOpenApiDocument = (routes: readonly Route[], version: string): JsonSchema => {
  const paths: Record<string, Record<string, JsonSchema>> = {}
  for (const item of routes) {
    const operation: JsonSchema = {
      operationId: item.operationId,
      summary: item.summary,
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
        '`details.field`.',
    },
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
