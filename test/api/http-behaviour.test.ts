import type { AddressInfo } from 'node:net'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { type ApiEvent, type ApiHandlerOptions, createApiHandler } from '../../src/api/handler.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { serveApi, toApiEvent } from '../../src/local/http-server.js'
import { parseApiEnv } from '../../src/schemas/env.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { apiEvent, lambdaContext, type RequestOptions } from '../support/api-events.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

const clock = new FakeClock()
const engine = new Engine({ store: new MemoryStore(), clock, ids: sequentialIds('http'), random: fixedRandom() })
engine.register(approvalWorkflow)
let instanceId: string

beforeAll(async () => {
  instanceId = (await engine.create({ workflowType: 'approval', context: { requester: 'ada' } })).instanceId
})

const handlerWith = (options: Partial<ApiHandlerOptions> = {}) =>
  createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 10, ...options })

type Result = APIGatewayProxyStructuredResultV2 & { headers: Record<string, string | number | boolean> }

const invoke = async (handler: ReturnType<typeof handlerWith>, event: ApiEvent): Promise<Result> => {
  const result = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2
  return { ...result, headers: result.headers ?? {} }
}

const lambda = handlerWith()
const call = (method: string, path: string, options?: RequestOptions) => invoke(lambda, apiEvent(method, path, options))

describe('HEAD on every GET route', () => {
  const getRoutes = () => [
    '/workflows',
    '/workflows/count',
    `/workflows/${instanceId}`,
    `/workflows/${instanceId}/graph`,
    '/workflow-types',
    '/workflow-types/approval',
    '/openapi.json',
    '/docs',
    '/docs/swagger-ui.css',
  ]

  it('answers as GET does, without a body', async () => {
    for (const path of getRoutes()) {
      const get = await call('GET', path)
      const head = await call('HEAD', path)
      expect({ path, status: head.statusCode }).toEqual({ path, status: get.statusCode })
      expect(head.statusCode).toBe(200)
      expect(head.body ?? '').toBe('')
      expect(head.headers['content-type']).toBe(get.headers['content-type'])
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength(String(get.body))))
    }
  })

  it('answers an error status without a body', async () => {
    const head = await call('HEAD', '/workflows/no-such-instance')
    expect(head.statusCode).toBe(404)
    expect(head.body ?? '').toBe('')
  })

  it('lists HEAD next to GET in the Allow header of a 405', async () => {
    const reply = await call('DELETE', '/workflows')
    expect(reply.statusCode).toBe(405)
    expect(String(reply.headers.allow).split(', ').sort()).toEqual(['GET', 'HEAD', 'POST'])
    const postOnly = await call('HEAD', `/workflows/${instanceId}/run`)
    expect(postOnly.statusCode).toBe(405)
    expect(postOnly.headers.allow).toBe('POST')
  })
})

describe('CORS', () => {
  const origin = 'https://app.example.com'
  const cors = handlerWith({
    cors: {
      allowedOrigins: [origin],
      allowedMethods: ['GET', 'HEAD', 'POST', 'DELETE'],
      allowedHeaders: ['content-type', 'authorization'],
      exposedHeaders: ['location'],
      maxAgeSeconds: 600,
    },
  })
  const preflight = (from: string, method: string, headers = 'content-type') =>
    invoke(
      cors,
      apiEvent('OPTIONS', '/workflows', {
        headers: { Origin: from, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
      }),
    )

  it('answers a preflight from an allowed origin', async () => {
    const reply = await preflight(origin, 'POST', 'Content-Type, Authorization')
    expect(reply.statusCode).toBe(204)
    expect(reply.headers['access-control-allow-origin']).toBe(origin)
    expect(String(reply.headers['access-control-allow-methods']).split(',')).toContain('POST')
    expect(String(reply.headers['access-control-allow-headers']).split(',')).toEqual(['content-type', 'authorization'])
    expect(reply.headers['access-control-max-age']).toBe('600')
    expect(reply.headers.vary).toMatch(/origin/i)
    expect(reply.body ?? '').toBe('')
  })

  it.each([
    ['an origin that is not allowed', 'https://evil.example.com', 'POST', 'content-type', 'origin'],
    ['a method that is not allowed', origin, 'PUT', 'content-type', 'method'],
    ['a header that is not allowed', origin, 'POST', 'x-secret', 'headers'],
  ])('refuses a preflight with %s', async (_, from, method, headers, field) => {
    const reply = await preflight(from, method, headers)
    expect(reply.statusCode).toBe(403)
    expect(reply.headers['access-control-allow-origin']).toBeUndefined()
    const error = JSON.parse(String(reply.body)).error
    expect(error.code).toBe('CORS_NOT_ALLOWED')
    expect(error.details.field).toBe(field)
  })

  it('adds the CORS headers to answers for an allowed origin, errors included', async () => {
    for (const path of ['/workflows', '/workflows/no-such-instance']) {
      const reply = await invoke(cors, apiEvent('GET', path, { headers: { Origin: origin } }))
      expect(reply.headers['access-control-allow-origin']).toBe(origin)
      expect(reply.headers['access-control-expose-headers']).toBe('location')
      expect(reply.headers.vary).toMatch(/origin/i)
    }
  })

  it('adds no CORS headers for another origin (the browser then refuses the answer)', async () => {
    const reply = await invoke(cors, apiEvent('GET', '/workflows', { headers: { Origin: 'https://evil.example.com' } }))
    expect(reply.statusCode).toBe(200)
    expect(reply.headers['access-control-allow-origin']).toBeUndefined()
    expect(reply.headers.vary).toMatch(/origin/i)
  })

  it('allows any origin with *', async () => {
    const open = handlerWith({
      cors: {
        allowedOrigins: ['*'],
        allowedMethods: ['GET'],
        allowedHeaders: [],
        exposedHeaders: [],
        maxAgeSeconds: 0,
      },
    })
    const reply = await invoke(open, apiEvent('GET', '/workflows', { headers: { Origin: 'https://any.example' } }))
    expect(reply.headers['access-control-allow-origin']).toBe('*')
  })

  it('is off by default: no CORS headers, and OPTIONS is not a method of the API', async () => {
    const reply = await call('GET', '/workflows', { headers: { Origin: origin } })
    expect(reply.headers['access-control-allow-origin']).toBeUndefined()
    const options = await call('OPTIONS', '/workflows', {
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
    })
    expect(options.statusCode).toBe(405)
  })

  it('is configured from the environment, naming a wrong variable', () => {
    const env = parseApiEnv({
      TABLE_NAME: 'tickflow',
      CORS_ALLOWED_ORIGINS: 'https://a.example, http://localhost:5173',
      CORS_MAX_AGE_SECONDS: '60',
    })
    expect(env.CORS_ALLOWED_ORIGINS).toEqual(['https://a.example', 'http://localhost:5173'])
    expect(env.CORS_ALLOWED_METHODS).toContain('POST')
    expect(env.CORS_MAX_AGE_SECONDS).toBe(60)
    expect(parseApiEnv({}).CORS_ALLOWED_ORIGINS).toBeUndefined()
    expect(() => parseApiEnv({ CORS_ALLOWED_ORIGINS: 'https://a.example/path' })).toThrow(/CORS_ALLOWED_ORIGINS/)
    expect(() => parseApiEnv({ CURSOR_SECRET: 'short' })).toThrow(/CURSOR_SECRET/)
  })
})

describe('query parsing, locally as on AWS', () => {
  let baseUrl: string
  let server: ReturnType<typeof serveApi>

  beforeAll(async () => {
    server = serveApi(lambda, () => {})
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()))
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((closed) => server.close(closed))
  })

  /** The event the Lambda receives: API Gateway sends JSON, so a `__proto__` key is an ordinary own key. */
  const awsEvent = (method: string, path: string, rawQueryString: string, parameters: string): ApiEvent => ({
    ...apiEvent(method, path),
    rawQueryString,
    ...(parameters === '' ? {} : { queryStringParameters: JSON.parse(parameters) }),
  })

  it.each([
    ['a prototype key', '__proto__=x', '{"__proto__":"x"}'],
    ['a constructor key', 'constructor=x', '{"constructor":"x"}'],
    ['an unknown key', 'colour=red', '{"colour":"red"}'],
    ['a repeated key', 'workflowType=approval&workflowType=order', '{"workflowType":"approval,order"}'],
    ['an encoded value', 'workflowType=appr%6Fval', '{"workflowType":"approval"}'],
    ['a bad limit', 'limit=1e3', '{"limit":"1e3"}'],
    ['a valid filter', 'workflowType=approval&limit=5', '{"workflowType":"approval","limit":"5"}'],
  ])('answers %s as the Lambda does', async (_, query, parameters) => {
    const local = await fetch(`${baseUrl}/workflows?${query}`)
    const aws = await invoke(lambda, awsEvent('GET', '/workflows', query, parameters))
    expect(local.status).toBe(aws.statusCode)
    expect(await local.json()).toEqual(JSON.parse(String(aws.body)))
  })

  it('rejects ?__proto__=x with a 400 naming it', async () => {
    const reply = await fetch(`${baseUrl}/workflows?__proto__=x`)
    expect(reply.status).toBe(400)
    expect(((await reply.json()) as { error: { message: string } }).error.message).toMatch(/__proto__/)
  })

  it('builds the API Gateway event: raw query string as sent, repeated keys joined with commas', async () => {
    const event = toApiEvent(
      {
        url: '/workflows?status=failed&status=canceled&x=a%20b&flag&=empty&__proto__=p',
        headers: {},
        method: 'GET',
        httpVersion: '1.1',
      } as never,
      Buffer.alloc(0),
      'req-1',
    )
    expect(event.rawQueryString).toBe('status=failed&status=canceled&x=a%20b&flag&=empty&__proto__=p')
    const parameters = event.queryStringParameters as Record<string, string>
    expect(Object.getPrototypeOf(parameters)).toBe(Object.prototype)
    expect(Object.keys(parameters)).toEqual(['status', 'x', 'flag', '__proto__'])
    expect(parameters.status).toBe('failed,canceled')
    expect(parameters.x).toBe('a b')
    expect(parameters.flag).toBe('')
    expect(Object.getOwnPropertyDescriptor(parameters, '__proto__')?.value).toBe('p')
    expect(
      toApiEvent({ url: '/workflows', headers: {}, method: 'GET', httpVersion: '1.1' } as never, Buffer.alloc(0), 'r')
        .queryStringParameters,
    ).toBe(undefined)
  })

  it('answers HEAD locally without a body', async () => {
    const reply = await fetch(`${baseUrl}/workflows/${instanceId}`, { method: 'HEAD' })
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/)
    expect(Number(reply.headers.get('content-length'))).toBeGreaterThan(0)
    expect(await reply.text()).toBe('')
  })
})
