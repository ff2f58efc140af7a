import { Validator } from '@seriousme/openapi-schema-validator'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { buildOpenApiDocument, withOpenApiRoute } from '../../src/api/openapi.js'
import { apiRoutes } from '../../src/api/routes/api-routes.js'
import { docsRoutes } from '../../src/api/routes/docs.js'
import { Engine } from '../../src/core/engine.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

const routes = () => {
  const clock = new FakeClock()
  const engine = new Engine({ store: new MemoryStore(), clock, ids: sequentialIds(), random: fixedRandom() })
  return withOpenApiRoute(
    [...apiRoutes({ engine, clock, sleep: async () => {}, waitPollMs: 10 }), ...docsRoutes()],
    '1.2.3',
  )
}

type Operation = {
  operationId: string
  parameters: { name: string; in: string; required: boolean }[]
  requestBody?: { required: boolean; content: Record<string, { schema: Record<string, unknown> }> }
  responses: Record<string, unknown>
}

describe('the OpenAPI document', () => {
  const table = routes()
  const document = buildOpenApiDocument(table, '1.2.3') as { paths: Record<string, Record<string, Operation>> }

  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator()
    const result = await validator.validate(document)
    expect(result.errors).toBeUndefined()
    expect(result.valid).toBe(true)
    expect(validator.version).toBe('3.1')
  })

  it('is checked by a validator that does reject a broken document', async () => {
    const broken = structuredClone(document)
    const created = broken.paths['/workflows']?.post?.responses['201'] as { description?: string }
    delete created.description
    expect((await new Validator().validate(broken)).valid).toBe(false)
  })

  it('describes every route of the router, and nothing else', () => {
    const described = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => `${method.toUpperCase()} ${path} ${operation.operationId}`),
    )
    const routed = table.map((route) => `${route.method} ${route.path} ${route.operationId}`)
    expect(described.sort()).toEqual(routed.sort())
    expect(new Set(table.map((route) => route.operationId)).size).toBe(table.length)
  })

  it('declares every path parameter of every route as a required parameter', () => {
    for (const route of table) {
      const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1])
      const operation = document.paths[route.path]?.[route.method.toLowerCase()] as Operation
      const declared = operation.parameters.filter((parameter) => parameter.in === 'path')
      expect(declared.map((parameter) => parameter.name).sort()).toEqual([...names].sort())
      expect(declared.every((parameter) => parameter.required)).toBe(true)
    }
  })

  it('describes bodies from the same schemas that validate them', () => {
    const create = document.paths['/workflows']?.post as Operation
    const schema = create.requestBody?.content['application/json']?.schema as {
      required: string[]
      properties: Record<string, unknown>
      additionalProperties: boolean
    }
    expect(create.requestBody?.required).toBe(true)
    expect(schema.required).toEqual(['workflowType'])
    expect(Object.keys(schema.properties).sort()).toEqual(
      ['businessId', 'context', 'id', 'run', 'startAtMs', 'workflowType'].sort(),
    )
    expect(schema.additionalProperties).toBe(false)
    const restart = document.paths['/workflows/{id}/restart']?.post as Operation
    expect(restart.requestBody?.required).toBe(false)
    const list = document.paths['/workflows']?.get as Operation
    expect(list.parameters.map((parameter) => parameter.name)).toEqual(
      expect.arrayContaining([
        'workflowType',
        'status',
        'businessId',
        'createdFromMs',
        'createdToMs',
        'limit',
        'cursor',
      ]),
    )
  })
})

type Response = { $ref?: string; description?: string; content?: Record<string, { schema: Record<string, unknown> }> }
type Full = {
  servers?: { url: string }[]
  tags?: { name: string; description?: string }[]
  components?: { schemas?: Record<string, unknown>; responses?: Record<string, Response> }
  paths: Record<string, Record<string, Operation & { tags?: string[]; responses: Record<string, Response> }>>
}

describe('the OpenAPI document, complete', () => {
  const document = buildOpenApiDocument(routes(), '1.2.3') as Full
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
  )
  /** A response, with a `$ref` to the shared responses followed. */
  const resolve = (response: Response): Response => {
    if (response.$ref === undefined) return response
    const name = response.$ref.replace('#/components/responses/', '')
    const shared = document.components?.responses?.[name]
    if (!shared) throw new Error(`dangling ${response.$ref}`)
    return shared
  }

  it('names the server it is served by', () => {
    expect(document.servers?.length).toBeGreaterThan(0)
    expect(document.servers?.[0]?.url).toEqual(expect.any(String))
  })

  it('tags every operation with a declared tag, and declares no unused tag', () => {
    const declared = new Set(document.tags?.map((tag) => tag.name))
    expect(declared.size).toBeGreaterThanOrEqual(4)
    const used = new Set<string>()
    for (const { path, operation } of operations) {
      expect({ path, tags: operation.tags?.length }).toEqual({ path, tags: 1 })
      for (const tag of operation.tags ?? []) {
        expect(declared).toContain(tag)
        used.add(tag)
      }
    }
    expect([...used].sort()).toEqual([...declared].sort())
    expect(document.tags?.every((tag) => typeof tag.description === 'string')).toBe(true)
  })

  it('reuses the error responses and the main schemas through components', () => {
    const responses = document.components?.responses ?? {}
    expect(Object.keys(responses)).toEqual(expect.arrayContaining(['BadRequest', 'InstanceNotFound']))
    expect(Object.keys(document.components?.schemas ?? {})).toEqual(
      expect.arrayContaining(['Error', 'InstanceDetail', 'InstanceList']),
    )
    const refs = operations.flatMap(({ operation }) => Object.values(operation.responses)).filter((r) => r.$ref)
    expect(refs.length).toBeGreaterThan(20)
    for (const response of Object.values(responses)) {
      expect(response.content?.['application/json']?.schema).toEqual({ $ref: '#/components/schemas/Error' })
    }
    const get = document.paths['/workflows/{id}']?.get
    expect(get?.responses['200']?.content?.['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/InstanceDetail',
    })
    expect(JSON.stringify(document)).not.toContain('"$ref":"#/components/schemas/undefined"')
  })

  it('documents the graph as text/plain Mermaid and, with format=json, as application/json', () => {
    const ok = document.paths['/workflows/{id}/graph']?.get?.responses['200'] as Response
    expect(Object.keys(ok.content ?? {}).sort()).toEqual(['application/json', 'text/plain'])
    expect(ok.content?.['text/plain']?.schema).toMatchObject({ type: 'string' })
    expect(JSON.stringify(ok.content?.['application/json']?.schema)).toMatch(/GraphJson|"graph"/)
  })

  it('gives every response the content type the route answers with', () => {
    for (const { path, method, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const types = Object.keys(resolve(response).content ?? {})
        if (status === '204') expect({ path, method, status, types }).toEqual({ path, method, status, types: [] })
        else if (path === '/docs') expect(types).toEqual(['text/html'])
        else if (path === '/workflows/{id}/graph' && status === '200') expect(types.length).toBe(2)
        else if (path !== '/docs/{asset}') {
          expect({ path, method, status, types }).toEqual({ path, method, status, types: ['application/json'] })
        }
      }
    }
  })

  it('lists 413 and 415 only on operations that take a body', () => {
    for (const { path, method, operation } of operations) {
      const statuses = Object.keys(operation.responses)
      if (method === 'get' || method === 'delete') {
        expect({ path, method, statuses: statuses.filter((s) => s === '413' || s === '415') }).toEqual({
          path,
          method,
          statuses: [],
        })
      }
      if (operation.requestBody) expect(statuses).toEqual(expect.arrayContaining(['413', '415']))
    }
  })

  it('still validates as OpenAPI 3.1', async () => {
    const result = await new Validator().validate(document as never)
    expect(result.errors).toBeUndefined()
    expect(result.valid).toBe(true)
  })
})
