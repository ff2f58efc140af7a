import type { AddressInfo } from 'node:net'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { type ApiEvent, type ApiHandlerOptions, createApiHandler } from '../../src/api/handler.js'
import { hostRefusal, servedHostNames } from '../../src/api/security.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { serveApi } from '../../src/local/http-server.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { apiEvent, lambdaContext, type RequestOptions } from '../support/api-events.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

/**
 * What the API does with requests a browser sends on behalf of a page (README, "Security": "Browsers"): a page of
 * another site may not change anything; the API's own pages may, with JSON or a header a form cannot send; clients
 * that are no browser (curl, the CLI, an SDK) send neither Origin nor Sec-Fetch-Site and are not affected.
 */

const HOST = 'abc123.execute-api.eu-west-1.amazonaws.com'
const OWN = `https://${HOST}`
const clock = new FakeClock()
const engine = new Engine({ store: new MemoryStore(), clock, ids: sequentialIds('sec'), random: fixedRandom() })
engine.register(approvalWorkflow)

const handlerWith = (options: Partial<ApiHandlerOptions> = {}) =>
  createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 10, ...options })
const lambda = handlerWith()

type Result = APIGatewayProxyStructuredResultV2 & { headers: Record<string, string | number | boolean> }
const invoke = async (handler: ReturnType<typeof handlerWith>, event: ApiEvent): Promise<Result> => {
  const result = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2
  return { ...result, headers: result.headers ?? {} }
}
const call = (method: string, path: string, options?: RequestOptions) => invoke(lambda, apiEvent(method, path, options))
const errorCode = (result: Result): string =>
  (JSON.parse(String(result.body)) as { error: { code: string } }).error.code

const running = async (): Promise<string> =>
  (await engine.create({ workflowType: 'approval', context: { requester: 'ada' } })).instanceId
const statusOf = async (id: string): Promise<string> => (await engine.get(id)).status

const FORM = 'application/x-www-form-urlencoded'
const JSON_TYPE = 'application/json'

describe('a request a browser sends for a page of another site', () => {
  it.each([
    ['an empty form POST', { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site', 'Content-Type': FORM }],
    ['a form POST from a sandboxed frame (Origin: null)', { Origin: 'null', 'Content-Type': FORM }],
    [
      'a JSON POST (its preflight was refused, or skipped by a plugin)',
      { Origin: 'https://evil.example', 'Content-Type': 'application/json' },
    ],
    ['a POST from another port of this host', { Origin: `https://${HOST}:8443`, 'Content-Type': FORM }],
    ['a POST without Origin from another site', { 'Sec-Fetch-Site': 'cross-site', 'Content-Type': FORM }],
    ['a POST without Origin from the same site', { 'Sec-Fetch-Site': 'same-site', 'Content-Type': FORM }],
  ])('refuses %s with 403 and changes nothing', async (_, headers) => {
    const id = await running()
    const reply = await call('POST', `/workflows/${id}/cancel`, { headers })
    expect(reply.statusCode).toBe(403)
    expect(errorCode(reply)).toBe('CROSS_SITE_REQUEST_REFUSED')
    expect(await statusOf(id)).toBe('running')
  })

  it('refuses a DELETE from another site as well', async () => {
    const reply = await call('DELETE', '/schedules/nightly', { headers: { Origin: 'https://evil.example' } })
    expect(reply.statusCode).toBe(403)
  })

  it('answers reads whatever the origin: a read changes nothing, and CORS keeps its answer from the page', async () => {
    const reply = await call('GET', '/workflows', {
      headers: { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' },
    })
    expect(reply.statusCode).toBe(200)
  })

  it('lets an origin CORS allows change instances', async () => {
    const cors = handlerWith({
      cors: {
        allowedOrigins: ['https://app.example.com'],
        allowedMethods: ['GET', 'POST'],
        allowedHeaders: ['content-type'],
        exposedHeaders: [],
        maxAgeSeconds: 0,
      },
    })
    const id = await running()
    const reply = await invoke(
      cors,
      apiEvent('POST', `/workflows/${id}/cancel`, {
        headers: { Origin: 'https://app.example.com', 'Sec-Fetch-Site': 'cross-site', 'Content-Type': JSON_TYPE },
      }),
    )
    expect(reply.statusCode).toBe(200)
    expect(await statusOf(id)).toBe('canceled')
  })
})

describe("a request from the API's own pages", () => {
  it('is accepted as JSON', async () => {
    const id = await running()
    const reply = await call('POST', `/workflows/${id}/cancel`, {
      headers: { Origin: OWN, 'Sec-Fetch-Site': 'same-origin', 'Content-Type': JSON_TYPE },
    })
    expect(reply.statusCode).toBe(200)
    expect(await statusOf(id)).toBe('canceled')
  })

  it('is accepted without a body when it carries X-Requested-With, which a form cannot send', async () => {
    const id = await running()
    const reply = await call('POST', `/workflows/${id}/cancel`, {
      headers: { Origin: OWN, 'X-Requested-With': 'tickflow-dashboard' },
    })
    expect(reply.statusCode).toBe(200)
  })

  it('is accepted with Sec-Fetch-Site: same-origin and no Origin (older browsers)', async () => {
    const id = await running()
    const reply = await call('POST', `/workflows/${id}/cancel`, {
      headers: { 'Sec-Fetch-Site': 'same-origin', 'X-Requested-With': 'tickflow-dashboard' },
    })
    expect(reply.statusCode).toBe(200)
  })

  it('is refused as a form: a form on the page itself (injected markup) cannot change anything', async () => {
    const id = await running()
    const reply = await call('POST', `/workflows/${id}/cancel`, {
      headers: { Origin: OWN, 'Sec-Fetch-Site': 'same-origin', 'Content-Type': FORM },
    })
    expect(reply.statusCode).toBe(403)
    expect(JSON.parse(String(reply.body)).error.details.field).toBe('content-type')
    expect(await statusOf(id)).toBe('running')
  })
})

describe('a client that is no browser (curl, the CLI, an SDK: no Origin, no Sec-Fetch-Site)', () => {
  it('cancels without a body and without a content type, as the README shows with curl', async () => {
    const id = await running()
    const reply = await call('POST', `/workflows/${id}/cancel`)
    expect(reply.statusCode).toBe(200)
    expect(await statusOf(id)).toBe('canceled')
  })

  it('creates with JSON', async () => {
    const reply = await call('POST', '/workflows', { body: { workflowType: 'approval' } })
    expect(reply.statusCode).toBe(201)
  })
})

describe('the headers every answer carries', () => {
  const expectHardened = (reply: Result, path: string) => {
    expect({ path, nosniff: reply.headers['x-content-type-options'] }).toEqual({ path, nosniff: 'nosniff' })
    expect({ path, frames: reply.headers['x-frame-options'] }).toEqual({ path, frames: 'DENY' })
    expect({ path, referrer: reply.headers['referrer-policy'] }).toEqual({ path, referrer: 'no-referrer' })
    expect(String(reply.headers['content-security-policy']), path).toContain("frame-ancestors 'none'")
  }

  it('on the dashboard page: a CSP that allows only its own scripts and styles', async () => {
    const reply = await call('GET', '/')
    expectHardened(reply, '/')
    const csp = String(reply.headers['content-security-policy'])
    expect(csp).toContain("default-src 'none'")
    expect(csp).toMatch(/script-src 'self'(;|$)/)
    expect(csp).toMatch(/style-src 'self'(;|$)/)
    expect(csp).not.toContain('unsafe')
  })

  it.each(['/workflows', '/openapi.json', '/docs', '/docs/swagger-ui.css', '/workflows/nope', '/nope'])(
    'on %s',
    async (path) => expectHardened(await call('GET', path), path),
  )

  it('on a refusal and a HEAD', async () => {
    expectHardened(
      await call('POST', '/workflows/x/cancel', { headers: { Origin: 'https://evil.example' } }),
      'refusal',
    )
    expectHardened(await call('HEAD', '/workflows'), 'HEAD')
  })
})

describe('the local HTTP server', () => {
  let server: ReturnType<typeof serveApi>
  let port: number
  beforeAll(async () => {
    server = serveApi(lambda, () => {}, { host: '127.0.0.1' })
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()))
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((closed) => server.close(closed))
  })

  const send = async (path: string, headers: Record<string, string>, method = 'GET') => {
    const { request } = await import('node:http')
    return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const outgoing = request({ host: '127.0.0.1', port, path, method, headers }, (answer) => {
        let body = ''
        answer.on('data', (chunk) => {
          body += chunk
        })
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body }))
      })
      outgoing.on('error', reject)
      outgoing.end()
    })
  }

  it.each(['evil.test', 'evil.test:80', '127.0.0.1.evil.test', 'localhost.evil.test', '[::2]'])(
    'answers 421 to Host %s (a DNS-rebound name), on reads too',
    async (host) => {
      const reply = await send('/workflows', { host })
      expect(reply.status).toBe(421)
      expect(JSON.parse(reply.body).error.code).toBe('HOST_NOT_SERVED')
      expect(reply.headers['x-content-type-options']).toBe('nosniff')
    },
  )

  it.each(['127.0.0.1', 'localhost', 'LOCALHOST', '[::1]', 'localhost.'])(
    'serves Host %s with any port',
    async (name) => {
      for (const host of [name, `${name}:${port}`]) {
        expect({ host, status: (await send('/workflows', { host })).status }).toEqual({ host, status: 200 })
      }
    },
  )

  it('answers 421 to a request without Host', async () => {
    const { connect } = await import('node:net')
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end('GET /workflows HTTP/1.0\r\n\r\n'))
      let text = ''
      socket.on('data', (chunk) => {
        text += chunk
      })
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
    })
    expect(answer).toMatch(/^HTTP\/1\.[01] 421 /)
  })

  it('refuses a cross-site POST before any route, a local one included', async () => {
    const reply = await send(
      '/_local/queues/events',
      { host: `127.0.0.1:${port}`, origin: 'http://evil.test', 'content-type': 'text/plain' },
      'POST',
    )
    expect(reply.status).toBe(403)
  })
})

describe('the host names the local runtime serves', () => {
  const served = (host: string, options: Parameters<typeof servedHostNames>[1] = {}) =>
    [...servedHostNames(host, options)].sort()

  it('are the loopback names and the address it listens on', () => {
    expect(served('127.0.0.1')).toEqual(['127.0.0.1', '::1', 'localhost'])
    expect(served('my-box.lan')).toEqual(['127.0.0.1', '::1', 'localhost', 'my-box.lan'])
  })

  it("are, on every interface (0.0.0.0 or ::), this machine's addresses, and never the wildcard itself", () => {
    const interfaceAddresses = ['127.0.0.1', '192.168.1.20', 'fe80::1']
    for (const wildcard of ['0.0.0.0', '::']) {
      expect(served(wildcard, { interfaceAddresses })).toEqual([
        '127.0.0.1',
        '192.168.1.20',
        '::1',
        'fe80::1',
        'localhost',
      ])
    }
  })

  it('include ALLOWED_HOSTS, in any case', () => {
    expect(served('127.0.0.1', { allowedHosts: ['Tickflow'] })).toContain('tickflow')
    expect(hostRefusal('TICKFLOW:3000', servedHostNames('127.0.0.1', { allowedHosts: ['tickflow'] }))).toBeUndefined()
  })
})
