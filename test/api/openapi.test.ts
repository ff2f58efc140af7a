import { Validator } from '@seriousme/openapi-schema-validator'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { buildOpenApiDocument, withOpenApiRoute } from '../../src/api/openapi.js'
import { apiRoutes } from '../../src/api/routes.js'
import { Engine } from '../../src/core/engine.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

const routes = () => {
  const clock = new FakeClock()
  const engine = new Engine({ store: new MemoryStore(), clock, ids: sequentialIds(), random: fixedRandom() })
  return withOpenApiRoute(apiRoutes({ engine, clock, sleep: async () => {}, waitPollMs: 10 }), '1.2.3')
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
