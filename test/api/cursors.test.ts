import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { createApiHandler } from '../../src/api/handler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { FailedWithFailedError } from '../../src/core/worker-signals.js'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { createTestTable, FakeClock, fixedRandom, newTestEngine, sequentialIds } from '../support/harness.js'

/** `outcome: fail` fails the instance, anything else completes it: two statuses to filter on. */
const pagedWorkflow = defineWorkflow({
  type: 'paged',
  nodes: {
    step: {
      run: (ctx) => {
        if (ctx.getString('workflow_context', 'outcome') === 'fail') throw new FailedWithFailedError()
      },
    },
  },
})
const otherWorkflow = defineWorkflow({ type: 'other', nodes: { only: { run: () => {} } } })

/** A page or an error, as the API answers. */
interface Body {
  items: { id: string; status: string; createdAtMs: number }[]
  cursor?: string
  error: { code: string; message: string; details: { field: string } }
}

interface Reply {
  status: number
  body: Body
}

type Call = (query: Record<string, string>, secret?: string) => Promise<Reply>

/** Ten `paged` instances (odd ones failed) and three `other` ones, one second apart, on the given engine. */
const seed = async (engine: Engine, clock: FakeClock): Promise<void> => {
  engine.register(pagedWorkflow)
  engine.register(otherWorkflow)
  for (let index = 1; index <= 10; index++) {
    clock.advanceMs(1000)
    await engine.create({
      workflowType: 'paged',
      id: `paged-${String(index).padStart(2, '0')}`,
      businessId: index <= 5 ? 'biz-a' : 'biz-b',
      context: { outcome: index % 2 ? 'fail' : 'ok' },
    })
  }
  for (let index = 1; index <= 3; index++) {
    clock.advanceMs(1000)
    await engine.create({ workflowType: 'other', id: `other-${index}` })
  }
}

const caller =
  (engine: Engine, clock: FakeClock): Call =>
  async (query, secret) => {
    const handler = createApiHandler({
      engine,
      logger: silentLogger,
      clock,
      sleep: async () => {},
      waitPollMs: 10,
      ...(secret === undefined ? {} : { cursorSecret: secret }),
    })
    const result = (await handler(
      apiEvent('GET', '/workflows', { query }),
      lambdaContext(),
    )) as APIGatewayProxyStructuredResultV2
    return { status: result.statusCode ?? 0, body: JSON.parse(String(result.body)) }
  }

/** Every base64url character but `c`: an alteration of one position of a cursor. */
const otherCharThan = (c: string): string => (c === 'A' ? 'B' : 'A')

const stores: [string, () => Promise<{ engine: Engine; clock: FakeClock }>][] = [
  [
    'the in-memory store',
    async () => {
      const clock = new FakeClock()
      return {
        clock,
        engine: new Engine({ store: new MemoryStore(), clock, ids: sequentialIds(), random: fixedRandom() }),
      }
    },
  ],
  [
    'the DynamoDB store',
    async () => {
      const { engine, clock } = newTestEngine(await createTestTable('api-cursors'))
      return { engine, clock }
    },
  ],
]

describe.each(stores)('a list cursor, on %s', (_, makeEngine) => {
  let call: Call

  beforeAll(async () => {
    const { engine, clock } = await makeEngine()
    await seed(engine, clock)
    call = caller(engine, clock)
  })

  const firstPage = async (query: Record<string, string>): Promise<string> => {
    const page = await call({ ...query, limit: '2' })
    expect(page.status).toBe(200)
    const cursor = page.body.cursor
    expect(cursor).toEqual(expect.any(String))
    return cursor as string
  }

  const expectCursorRejected = (reply: Reply, message: RegExp) => {
    expect(reply.status).toBe(400)
    const error = reply.body.error
    expect(error.code).toBe('VALIDATION_ERROR')
    expect(error.details.field).toBe('query.cursor')
    expect(error.message).toMatch(message)
  }

  it('pages through the same query to the end', async () => {
    const query = { workflowType: 'paged', status: 'failed', order: 'asc' }
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const page = await call({ ...query, limit: '2', ...(cursor ? { cursor } : {}) })
      expect(page.status).toBe(200)
      seen.push(...page.body.items.map((item) => item.id))
      cursor = page.body.cursor
    } while (cursor !== undefined)
    expect(seen).toEqual(['paged-01', 'paged-03', 'paged-05', 'paged-07', 'paged-09'])
  })

  it('accepts the same filters written differently (status order, default order)', async () => {
    const cursor = await firstPage({ workflowType: 'paged', status: 'failed,completed' })
    const next = await call({ workflowType: 'paged', status: 'completed, failed', order: 'desc', limit: '2', cursor })
    expect(next.status).toBe(200)
    expect(next.body.items.map((item) => item.id)).toEqual(['paged-08', 'paged-07'])
  })

  it('may change the page size between pages', async () => {
    const cursor = await firstPage({ workflowType: 'paged' })
    const next = await call({ workflowType: 'paged', limit: '3', cursor })
    expect(next.status).toBe(200)
    expect(next.body.items.map((item) => item.id)).toEqual(['paged-08', 'paged-07', 'paged-06'])
  })

  it.each([
    ['another status', { workflowType: 'paged', status: 'completed' }, { workflowType: 'paged', status: 'failed' }],
    ['another workflow type', { workflowType: 'paged' }, { workflowType: 'other' }],
    ['no workflow type', { workflowType: 'paged' }, {}],
    [
      'another business id',
      { workflowType: 'paged', businessId: 'biz-b' },
      { workflowType: 'paged', businessId: 'biz-a' },
    ],
    ['a business id added', { workflowType: 'paged' }, { workflowType: 'paged', businessId: 'biz-a' }],
    ['another order', { workflowType: 'paged' }, { workflowType: 'paged', order: 'asc' }],
    ['another created range', { workflowType: 'paged' }, { workflowType: 'paged', createdFromMs: '0' }],
    ['a created upper bound', { workflowType: 'paged' }, { workflowType: 'paged', createdToMs: '9999999999999' }],
    ['the parked filter dropped', { workflowType: 'paged', parked: 'false' }, { workflowType: 'paged' }],
  ])('refuses a cursor made for one query when used with %s', async (_, made, used) => {
    const cursor = await firstPage(made)
    expectCursorRejected(await call({ ...used, limit: '2', cursor }), /another query/)
  })

  it('refuses a cursor altered at any position', async () => {
    const cursor = await firstPage({ workflowType: 'paged', status: 'completed' })
    const answers = new Set<number>()
    for (let index = 0; index < cursor.length; index++) {
      const altered = cursor.slice(0, index) + otherCharThan(cursor.charAt(index)) + cursor.slice(index + 1)
      const reply = await call({ workflowType: 'paged', status: 'completed', limit: '2', cursor: altered })
      answers.add(reply.status)
      if (reply.status !== 400) throw new Error(`an alteration at ${index} answered ${reply.status}`)
      expect(reply.body.error.details.field).toBe('query.cursor')
    }
    expect([...answers]).toEqual([400])
  })

  it('refuses a cursor signed with another key', async () => {
    const cursor = await firstPage({ workflowType: 'paged' })
    expectCursorRejected(
      await call({ workflowType: 'paged', limit: '2', cursor }, 'another-deployment-secret-0123456789'),
      /altered|issued/,
    )
  })
})
