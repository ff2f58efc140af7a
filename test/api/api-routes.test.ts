import { ScanCommand } from '@aws-sdk/client-dynamodb'
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ApiEvent, createApiHandler } from '../../src/api/handler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { StoreError } from '../../src/core/errors.js'
import type { Logger, LogLevel } from '../../src/core/ports.js'
import type { InstanceStore } from '../../src/core/store.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { apiEvent, lambdaContext, type RequestOptions } from '../support/api-events.js'
import {
  createTestTable,
  type FakeClock,
  fixedRandom,
  newTestEngine,
  sequentialIds,
  type TestTable,
} from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

// ---- workflows -------------------------------------------------------------------------------------------------

/** prepare → explode: `explode` fails for good, so the instance ends `failed`. */
const failingWorkflow = defineWorkflow({
  type: 'failing',
  nodes: {
    prepare: { next: ['explode'], run: (ctx) => ctx.set('prepared', true) },
    explode: {
      run: () => {
        throw new FailedWithFailedError('the card was declined')
      },
    },
  },
})

/** One node whose check is never satisfied: the instance stays `running` with `hold` pending. */
const waitingWorkflow = defineWorkflow({
  type: 'waiting',
  nodes: {
    hold: {
      run: (ctx) => ctx.set('held', true),
      check: () => {
        throw new NotReadyError(30)
      },
    },
  },
})

/** One node that completes at once. */
const quickWorkflow = defineWorkflow({
  type: 'quick',
  nodes: { only: { run: (ctx) => ctx.set('done', true) } },
})

/** Used only by the listing tests, so that their filters see nothing else. */
const listedWorkflow = defineWorkflow({
  type: 'listed',
  nodes: {
    step: {
      run: (ctx) => {
        if (ctx.getString('workflow_context', 'outcome') === 'fail') throw new FailedWithFailedError()
        ctx.set('ok', true)
      },
    },
  },
})

// ---- harness ---------------------------------------------------------------------------------------------------

interface LogLine {
  level: LogLevel
  message: string
  fields: Record<string, unknown>
}

class FakeLogger implements Logger {
  readonly lines: LogLine[] = []
  log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level, message, fields })
  }
  errors(): LogLine[] {
    return this.lines.filter((line) => line.level === 'error')
  }
}

type Handler = ReturnType<typeof createApiHandler>

interface Reply {
  status: number
  headers: Record<string, string>
  text: string
  /** The parsed body when the reply is JSON. */
  body: Record<string, unknown>
}

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> }
}

interface NodeView {
  id: string
  status: string
  attempt: number
  failCount: number
  context?: Record<string, unknown>
}

interface DetailView {
  id: string
  workflowType: string
  businessId?: string
  status: string
  context: Record<string, unknown>
  createdAtMs: number
  dueAtMs?: number
  lease?: { owner: string; untilMs: number }
  nodes: NodeView[]
}

interface ListView {
  items: { id: string; workflowType: string; businessId?: string; status: string; createdAtMs: number }[]
  cursor?: string
}

interface PassView {
  instanceId: string
  status: string
  executed: string[]
  dueAtMs: number | null
  eventArrived: boolean
}

let table: TestTable
let clock: FakeClock
let engine: Engine
let store: ReturnType<typeof newTestEngine>['store']
let logger: FakeLogger
let handler: Handler
/** Every wait of a long-poll, in ms; the fake sleep moves the fake clock instead of waiting. */
let sleeps: number[]

const ENGINE_LIMITS = { maxInputBytes: 4096, maxNodeContextBytes: 4096 }

const makeHandler = (options: { maxBodyBytes?: number; engine?: Engine; logger?: Logger } = {}): Handler =>
  createApiHandler({
    engine: options.engine ?? engine,
    logger: options.logger ?? logger,
    clock,
    sleep: async (ms) => {
      sleeps.push(ms)
      clock.advanceMs(ms)
    },
    waitPollMs: 1000,
    ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
  })

beforeAll(async () => {
  table = await createTestTable('api-routes')
  ;({ engine, store, clock } = newTestEngine(table, { limits: ENGINE_LIMITS }))
  for (const workflow of [approvalWorkflow, failingWorkflow, waitingWorkflow, quickWorkflow, listedWorkflow]) {
    engine.register(workflow)
  }
  logger = new FakeLogger()
  sleeps = []
  handler = makeHandler()
})

const send = async (event: ApiEvent, using: Handler = handler): Promise<Reply> => {
  const result = await using(event, lambdaContext())
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([key, value]) => [key, String(value)]))
  const text = result.body ?? ''
  const isJson = /^application\/json/.test(headers['content-type'] ?? '')
  return { status: result.statusCode ?? 0, headers, text, body: isJson ? JSON.parse(text) : {} }
}

const call = (method: string, path: string, options?: RequestOptions): Promise<Reply> =>
  send(apiEvent(method, path, options))

const as = <T>(reply: Reply): T => reply.body as T

/** Every item in the table, without the `ignoring` attributes: what a rejected request must leave as it was. */
const snapshot = async (ignoring: readonly string[] = []) => {
  const result = await table.client.send(new ScanCommand({ TableName: table.tableName, ConsistentRead: true }))
  return (result.Items ?? [])
    .map((item) => Object.fromEntries(Object.entries(item).filter(([name]) => !ignoring.includes(name))))
    .sort((a, b) => String(a.pk?.S).localeCompare(String(b.pk?.S)))
}

interface Expected {
  status: number
  code: string
  /** `error.details.field`, where one field is at fault. */
  field?: string
}

/** The API's error body: exactly `{error: {code, message, details}}`, with the expected status, code and field. */
const expectError = (reply: Reply, expected: Expected): ErrorBody['error'] => {
  expect(reply.status).toBe(expected.status)
  expect(reply.headers['content-type']).toMatch(/^application\/json/)
  expect(Object.keys(reply.body)).toEqual(['error'])
  const { error } = as<ErrorBody>(reply)
  expect(Object.keys(error).sort()).toEqual(['code', 'details', 'message'])
  expect(error.code).toBe(expected.code)
  expect(error.message).toBeTypeOf('string')
  expect(error.message).not.toBe('')
  expect(error.details).toBeTypeOf('object')
  if (expected.field !== undefined) expect(error.details.field).toBe(expected.field)
  return error
}

interface RejectOptions {
  using?: Handler
  /** Attributes left out of the before/after comparison. */
  ignoring?: readonly string[]
}

/**
 * Sends a request that must be rejected: checks the error body, that no 500 is answered and no fault logged, and
 * that a consistent Scan of the table is the same before and after.
 */
const expectRejected = async (event: ApiEvent, expected: Expected, options: RejectOptions = {}) => {
  const before = await snapshot(options.ignoring)
  const faultsBefore = logger.errors().length
  const reply = await send(event, options.using)
  expect(reply.status).toBeLessThan(500)
  const error = expectError(reply, expected)
  expect(logger.errors()).toHaveLength(faultsBefore)
  expect(await snapshot(options.ignoring)).toEqual(before)
  return error
}

/** See RejectOptions.ignoring. */
const create = async (body: Record<string, unknown>): Promise<string> => {
  const reply = await call('POST', '/workflows', { body })
  expect(reply.status).toBe(201)
  return as<{ instanceId: string }>(reply).instanceId
}

const detail = async (id: string): Promise<DetailView> => {
  const reply = await call('GET', `/workflows/${encodeURIComponent(id)}`)
  expect(reply.status).toBe(200)
  return as<DetailView>(reply)
}

const nodeOf = (view: DetailView, id: string): NodeView => {
  const node = view.nodes.find((candidate) => candidate.id === id)
  if (!node) throw new Error(`no node ${id} in ${view.id}`)
  return node
}

/** An approval instance waiting for its reviewer: submit completed, review pending. */
const pendingApproval = (context: Record<string, unknown> = { requester: 'ann', amount: 120 }) =>
  create({ workflowType: 'approval', context })

const completedQuick = async (): Promise<string> => {
  const id = await create({ workflowType: 'quick' })
  expect((await detail(id)).status).toBe('completed')
  return id
}

// ---- routes ----------------------------------------------------------------------------------------------------

describe('POST /workflows creates an instance', () => {
  it('answers 201 with a Location header and runs the first pass by default', async () => {
    const reply = await call('POST', '/workflows', {
      body: { workflowType: 'approval', businessId: 'order-7', context: { requester: 'ann', amount: 120 } },
    })
    expect(reply.status).toBe(201)
    const body = as<{ instanceId: string; status: string; created: boolean }>(reply)
    expect(body).toEqual({ instanceId: body.instanceId, status: 'running', created: true })
    expect(reply.headers.location).toBe(`/workflows/${body.instanceId}`)

    const view = await detail(body.instanceId)
    expect(view).toMatchObject({ workflowType: 'approval', businessId: 'order-7', status: 'running' })
    expect(view.context).toEqual({ requester: 'ann', amount: 120 })
    expect(nodeOf(view, 'submit')).toMatchObject({ status: 'completed', context: { requested_by: 'ann', amount: 120 } })
    expect(nodeOf(view, 'review').status).toBe('pending')
    expect(nodeOf(view, 'approve').status).toBe('uncreated')
  })

  it('leaves the instance in init, due now and with no node started, when run is false', async () => {
    const reply = await call('POST', '/workflows', { body: { workflowType: 'approval', run: false } })
    expect(reply.status).toBe(201)
    const { instanceId, status } = as<{ instanceId: string; status: string }>(reply)
    expect(status).toBe('init')
    const view = await detail(instanceId)
    expect(view.status).toBe('init')
    expect(view.dueAtMs).toBe(clock.nowMs())
    expect(view.nodes.map((node) => node.status)).toEqual([
      'uncreated',
      'uncreated',
      'uncreated',
      'uncreated',
      'uncreated',
    ])
  })

  it('keeps a delayed start (startAtMs) as the due time of an instance created without run', async () => {
    const startAtMs = clock.nowMs() + 3_600_000
    const id = await create({ workflowType: 'quick', run: false, startAtMs })
    expect((await detail(id)).dueAtMs).toBe(startAtMs)
  })

  it('accepts a base64-encoded body', async () => {
    const reply = await call('POST', '/workflows', {
      body: { workflowType: 'approval', context: { requester: 'zoë ✓' } },
      base64: true,
    })
    expect(reply.status).toBe(201)
    const view = await detail(as<{ instanceId: string }>(reply).instanceId)
    expect(view.context).toEqual({ requester: 'zoë ✓' })
  })

  it.each(['application/json; charset=utf-8', 'Application/JSON', 'application/vnd.tickflow+json'])(
    'accepts the JSON content type %s',
    async (contentType) => {
      const reply = await call('POST', '/workflows', {
        body: { workflowType: 'quick' },
        headers: { 'Content-Type': contentType },
      })
      expect(reply.status).toBe(201)
    },
  )

  describe('with a client-chosen id', () => {
    const body = { workflowType: 'approval', id: 'order-42', businessId: 'B-42', context: { requester: 'ann', n: 1 } }

    it('answers 201 the first time and 200 created:false, storing nothing, for the same body again', async () => {
      const first = await call('POST', '/workflows', { body })
      expect(first.status).toBe(201)
      expect(first.body).toEqual({ instanceId: 'order-42', status: 'running', created: true })

      const before = await snapshot()
      const again = await call('POST', '/workflows', { body })
      expect(again.status).toBe(200)
      expect(again.body).toEqual({ instanceId: 'order-42', status: 'running', created: false })
      expect(again.headers.location).toBe('/workflows/order-42')
      const reordered = await call('POST', '/workflows', {
        body: { context: { n: 1, requester: 'ann' }, businessId: 'B-42', id: 'order-42', workflowType: 'approval' },
      })
      expect(reordered.status).toBe(200)
      expect(await snapshot()).toEqual(before)
    })

    it.each([
      ['another context', { ...body, context: { requester: 'ann', n: 2 } }],
      ['another business id', { ...body, businessId: 'B-43' }],
      ['another workflow type', { ...body, workflowType: 'quick' }],
    ])('answers 409 IDEMPOTENCY_CONFLICT for the same id with %s', async (_, other) => {
      const error = await expectRejected(apiEvent('POST', '/workflows', { body: other }), {
        status: 409,
        code: 'IDEMPOTENCY_CONFLICT',
      })
      expect(error.details.instanceId).toBe('order-42')
    })
  })
})

describe('GET /workflows/{id} shows an instance', () => {
  it('lists every node in definition order, root first and end last', async () => {
    const id = await pendingApproval()
    const view = await detail(id)
    expect(view.nodes.map((node) => node.id)).toEqual(['root', 'submit', 'review', 'approve', 'end'])
    expect(view.nodes.map((node) => node.status)).toEqual([
      'completed',
      'completed',
      'pending',
      'uncreated',
      'uncreated',
    ])
  })

  it('decodes a URL-encoded id in the path, as the Location header sends it', async () => {
    const reply = await call('POST', '/workflows', { body: { workflowType: 'quick', id: 'inv:2026.01-a' } })
    expect(reply.status).toBe(201)
    expect(reply.headers.location).toBe('/workflows/inv%3A2026.01-a')
    const got = await call('GET', reply.headers.location ?? '')
    expect(got.status).toBe(200)
    expect(as<DetailView>(got)).toMatchObject({ id: 'inv:2026.01-a', status: 'completed' })
    const graph = await call('GET', '/workflows/inv%3A2026.01-a/graph')
    expect(graph.text).toContain('inv:2026.01-a')
  })

  it('answers a terminal instance at once when asked to wait for it', async () => {
    const id = await completedQuick()
    sleeps.length = 0
    const reply = await call('GET', `/workflows/${id}`, { query: { wait: 'terminal', timeoutSeconds: '5' } })
    expect(reply.status).toBe(200)
    expect(as<DetailView>(reply).status).toBe('completed')
    expect(sleeps).toEqual([])
  })

  it('long-polls a running instance until timeoutSeconds and answers it still running', async () => {
    const id = await create({ workflowType: 'waiting' })
    sleeps.length = 0
    const reply = await call('GET', `/workflows/${id}`, { query: { wait: 'terminal', timeoutSeconds: '3' } })
    expect(reply.status).toBe(200)
    expect(as<DetailView>(reply).status).toBe('running')
    expect(sleeps).toEqual([1000, 1000, 1000])
  })
})

interface HistoryView {
  items: { seq: number; at: string; atMs: number; kind: string; nodeId?: string; status?: string; origin?: string }[]
  cursor?: string
  dropped: number
}

describe('GET /workflows/{id}/history lists what happened, oldest first, paged', () => {
  it('lists the approval created from the API, its event, restart and cancel, each with origin api', async () => {
    const id = await pendingApproval()
    const event = await call('POST', `/workflows/${id}/nodes/review/events`, {
      body: { eventTs: 42, content: { decision: 'maybe' } },
    })
    expect(event.status).toBe(202)
    expect((await call('POST', `/workflows/${id}/cancel`)).status).toBe(200)
    expect((await call('POST', `/workflows/${id}/restart`, { body: {} })).status).toBe(200)

    const reply = await call('GET', `/workflows/${id}/history`)
    expect(reply.status).toBe(200)
    const { items, dropped } = as<HistoryView>(reply)
    expect(dropped).toBe(0)
    expect(items.map((item) => item.seq)).toEqual(items.map((_, index) => index))
    expect(items[0]).toMatchObject({ kind: 'created', origin: 'api' })
    expect(items[0]?.at).toBe(new Date(items[0]?.atMs as number).toISOString())
    expect(items.find((item) => item.kind === 'event')).toMatchObject({ nodeId: 'review', eventTs: 42, origin: 'api' })
    expect(items.find((item) => item.kind === 'cancel')).toMatchObject({ origin: 'api' })
    expect(items.find((item) => item.kind === 'restart')).toMatchObject({ origin: 'api' })
    expect(items.find((item) => item.kind === 'finished')).toMatchObject({ status: 'canceled' })
  })

  it('pages with limit and the cursor it hands out, every entry once', async () => {
    const id = await pendingApproval()
    const all = as<HistoryView>(await call('GET', `/workflows/${id}/history`)).items
    expect(all.length).toBeGreaterThan(3)
    const seen: number[] = []
    let cursor: string | undefined
    for (let page = 0; page < 20; page++) {
      const reply = await call('GET', `/workflows/${id}/history`, {
        query: { limit: '2', ...(cursor === undefined ? {} : { cursor }) },
      })
      expect(reply.status).toBe(200)
      const body = as<HistoryView>(reply)
      expect(body.items.length).toBeLessThanOrEqual(2)
      seen.push(...body.items.map((item) => item.seq))
      cursor = body.cursor
      if (cursor === undefined) break
    }
    expect(seen).toEqual(all.map((item) => item.seq))
  })

  it('answers 404 for an unknown instance', async () => {
    await expectRejected(apiEvent('GET', '/workflows/no-such-instance/history'), {
      status: 404,
      code: 'INSTANCE_NOT_FOUND',
    })
  })

  it.each([
    ['a limit of 0', { limit: '0' }, 'query.limit'],
    ['a limit over 500', { limit: '501' }, 'query.limit'],
    ['a limit that is not a number', { limit: 'ten' }, 'query.limit'],
    ['a cursor it never issued', { cursor: 'c1.eyJwIjoiMyJ9.AAAA' }, 'query.cursor'],
    ['an unknown parameter', { order: 'asc' }, 'query'],
  ])('answers 400 naming the field for %s', async (_name, query, field) => {
    const id = await pendingApproval()
    await expectRejected(apiEvent('GET', `/workflows/${id}/history`, { query }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
  })

  it("refuses another instance's cursor", async () => {
    const first = await pendingApproval()
    const second = await pendingApproval()
    const page = as<HistoryView>(await call('GET', `/workflows/${first}/history`, { query: { limit: '1' } }))
    expect(page.cursor).toBeDefined()
    await expectRejected(
      apiEvent('GET', `/workflows/${second}/history`, { query: { cursor: page.cursor as string } }),
      { status: 400, code: 'VALIDATION_ERROR', field: 'query.cursor' },
    )
  })
})

describe('GET /workflows/{id}/graph draws an instance', () => {
  it('answers text/plain Mermaid with a classDef for each status present, and no other', async () => {
    const id = await pendingApproval()
    const reply = await call('GET', `/workflows/${id}/graph`)
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toMatch(/^text\/plain/)
    expect(reply.text).toContain('flowchart TD')
    const statuses = new Set((await detail(id)).nodes.map((node) => node.status))
    expect([...statuses].sort()).toEqual(['completed', 'pending', 'uncreated'])
    const classDefs = reply.text
      .split('\n')
      .map((line) => /^\s*classDef (\w+) /.exec(line)?.[1])
      .filter((status) => status !== undefined)
    expect(classDefs.sort()).toEqual([...statuses].sort())
  })

  it('answers the same graph as JSON with format=json', async () => {
    const id = await pendingApproval()
    const textReply = await call('GET', `/workflows/${id}/graph`)
    const jsonReply = await call('GET', `/workflows/${id}/graph`, { query: { format: 'json' } })
    expect(jsonReply.status).toBe(200)
    expect(jsonReply.headers['content-type']).toMatch(/^application\/json/)
    expect(jsonReply.body).toEqual({ format: 'mermaid', graph: textReply.text })
  })
})

describe('events and passes', () => {
  it('answers 202 for an event, and the next run completes the instance with the decision', async () => {
    const id = await pendingApproval()
    const reply = await call('POST', `/workflows/${id}/nodes/review/events`, {
      body: { eventTs: 1_732_200_000, content: { decision: 'approved' } },
    })
    expect(reply.status).toBe(202)
    expect(reply.body).toEqual({ instanceId: id, nodeId: 'review', eventTs: 1_732_200_000, dueAtMs: clock.nowMs() })

    const run = await call('POST', `/workflows/${id}/run`)
    expect(run.status).toBe(200)
    const pass = as<PassView>(run)
    expect(pass).toMatchObject({ instanceId: id, status: 'completed', dueAtMs: null })
    expect(pass.executed).toEqual(expect.arrayContaining(['review', 'approve']))

    const view = await detail(id)
    expect(view.status).toBe('completed')
    expect(nodeOf(view, 'approve').context).toMatchObject({ decision: 'approved' })
    expect(nodeOf(view, 'end').status).toBe('completed')
  })

  it('runs only what is due with mode "due", and every waiting node without a mode', async () => {
    const id = await create({ workflowType: 'approval', run: false })
    const due = await call('POST', `/workflows/${id}/run`, { body: { mode: 'due' } })
    expect(due.status).toBe(200)
    expect(as<PassView>(due)).toMatchObject({ instanceId: id, status: 'running' })
    expect(as<PassView>(due).executed).toContain('submit')
    // review is now waiting 60 s for its reviewer: a due pass leaves it, an explicit one checks it again.
    const stillWaiting = await call('POST', `/workflows/${id}/run`, { body: { mode: 'due' } })
    expect(as<PassView>(stillWaiting).executed).toEqual([])
    const explicit = await call('POST', `/workflows/${id}/run`, { body: {} })
    expect(as<PassView>(explicit).executed).toEqual(['review'])
  })

  it('answers a run of a terminal instance with its status, executing and storing nothing', async () => {
    const id = await completedQuick()
    const before = await snapshot()
    const reply = await call('POST', `/workflows/${id}/run`)
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ instanceId: id, status: 'completed', executed: [], dueAtMs: null })
    expect(await snapshot()).toEqual(before)
  })

  it('overwrites an event with an equal eventTs and answers 409 STALE_EVENT for an older one', async () => {
    const id = await pendingApproval()
    const path = `/workflows/${id}/nodes/review/events`
    expect((await call('POST', path, { body: { eventTs: 200, content: { note: 'first' } } })).status).toBe(202)
    expect((await call('POST', path, { body: { eventTs: 200, content: { note: 'again' } } })).status).toBe(202)
    const stored = { event_content: { note: 'again' }, event_ts: 200 }
    expect(nodeOf(await detail(id), 'review').context?.node_event).toEqual(stored)
    const error = await expectRejected(
      apiEvent('POST', path, { body: { eventTs: 199, content: { decision: 'rejected' } } }),
      { status: 409, code: 'STALE_EVENT' },
    )
    expect(error.details).toMatchObject({ instanceId: id, nodeId: 'review', eventTs: 199, storedEventTs: 200 })
    expect(nodeOf(await detail(id), 'review').context?.node_event).toEqual(stored)
  })

  it('answers 409 ILLEGAL_STATE for an event to a terminal instance', async () => {
    const id = await completedQuick()
    await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/only/events`, { body: { eventTs: 1 } }), {
      status: 409,
      code: 'ILLEGAL_STATE',
    })
  })

  it.each(['nope', 'root', 'end'])('answers 404 NODE_NOT_FOUND for an event to node %s', async (node) => {
    const id = await pendingApproval()
    const error = await expectRejected(
      apiEvent('POST', `/workflows/${id}/nodes/${node}/events`, { body: { eventTs: 1 } }),
      {
        status: 404,
        code: 'NODE_NOT_FOUND',
      },
    )
    expect(error.details).toMatchObject({ workflowType: 'approval', nodeId: node })
  })

  it.each([
    ['no eventTs', { content: {} }, 'body.eventTs'],
    ['an eventTs that is a string', { eventTs: '5' }, 'body.eventTs'],
    ['a negative eventTs', { eventTs: -1 }, 'body.eventTs'],
    ['a fractional eventTs', { eventTs: 1.5 }, 'body.eventTs'],
    ['an unknown field', { eventTs: 1, colour: 'red' }, 'body'],
  ])('answers 400 for an event with %s', async (_, body, field) => {
    const id = await pendingApproval()
    await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/review/events`, { body }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
  })
})

describe('POST /workflows/{id}/cancel', () => {
  it('cancels a running instance and its waiting nodes; a second cancel answers changed:false and stores nothing', async () => {
    const id = await pendingApproval()
    const first = await call('POST', `/workflows/${id}/cancel`)
    expect(first.status).toBe(200)
    expect(first.body).toEqual({ instanceId: id, status: 'canceled', changed: true })
    const view = await detail(id)
    expect(view.status).toBe('canceled')
    expect(nodeOf(view, 'submit').status).toBe('completed')
    expect(nodeOf(view, 'review').status).toBe('canceled')

    const before = await snapshot()
    const second = await call('POST', `/workflows/${id}/cancel`)
    expect(second.status).toBe(200)
    expect(second.body).toEqual({ instanceId: id, status: 'canceled', changed: false })
    expect(await snapshot()).toEqual(before)
  })

  it('answers 409 ILLEGAL_STATE when the instance is completed', async () => {
    const id = await completedQuick()
    const error = await expectRejected(apiEvent('POST', `/workflows/${id}/cancel`), {
      status: 409,
      code: 'ILLEGAL_STATE',
    })
    expect(error.details).toMatchObject({ instanceId: id, status: 'completed' })
  })
})

describe('POST /workflows/{id}/restart', () => {
  it('restarts a failed instance: its failed node becomes restarting and the instance is due now', async () => {
    const id = await create({ workflowType: 'failing' })
    expect((await detail(id)).status).toBe('failed')
    const reply = await call('POST', `/workflows/${id}/restart`)
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ instanceId: id, status: 'running', changed: true })
    const view = await detail(id)
    expect(view.status).toBe('running')
    expect(view.dueAtMs).toBe(clock.nowMs())
    expect(nodeOf(view, 'prepare').status).toBe('completed')
    expect(nodeOf(view, 'explode').status).toBe('restarting')
  })

  it('restarts a canceled instance with a new context and runs it when asked', async () => {
    const id = await pendingApproval({ requester: 'ann' })
    expect((await call('POST', `/workflows/${id}/cancel`)).status).toBe(200)
    const reply = await call('POST', `/workflows/${id}/restart`, {
      body: { run: true, context: { requester: 'bob' }, resetCounters: true },
    })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ instanceId: id, status: 'running', changed: true })
    const view = await detail(id)
    expect(view.context).toEqual({ requester: 'bob' })
    expect(nodeOf(view, 'review').status).toBe('pending')
    expect(nodeOf(view, 'review').attempt).toBe(2)
  })

  it.each([
    ['completed', completedQuick],
    ['running', () => pendingApproval()],
  ])('answers 409 ILLEGAL_STATE for a %s instance, changing nothing', async (status, make) => {
    const id = await make()
    const error = await expectRejected(apiEvent('POST', `/workflows/${id}/restart`), {
      status: 409,
      code: 'ILLEGAL_STATE',
    })
    expect(error.details).toMatchObject({ instanceId: id, status })
    expect((await detail(id)).lease).toBeUndefined()
  })

  it.each([
    ['a run flag that is a string', { run: 'yes' }, 'body.run'],
    ['a context that is an array', { context: [1] }, 'body.context'],
    ['an unknown field', { force: true }, 'body'],
  ])('answers 400 for %s', async (_, body, field) => {
    const id = await create({ workflowType: 'failing' })
    await expectRejected(apiEvent('POST', `/workflows/${id}/restart`, { body }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
  })
})

describe('POST /workflows/{id}/nodes/{node}/restart', () => {
  it('restarts a node and runs it again when asked', async () => {
    const id = await pendingApproval()
    const reply = await call('POST', `/workflows/${id}/nodes/submit/restart`, { body: { run: true } })
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({ instanceId: id, status: 'running', changed: true })
    const view = await detail(id)
    expect(nodeOf(view, 'submit')).toMatchObject({ status: 'completed', attempt: 2 })
    expect(nodeOf(view, 'review')).toMatchObject({ status: 'pending', attempt: 2 })
  })

  it('restarts a node of a completed instance only with force', async () => {
    const id = await completedQuick()
    await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/only/restart`), {
      status: 409,
      code: 'ILLEGAL_STATE',
    })
    const forced = await call('POST', `/workflows/${id}/nodes/only/restart`, { body: { force: true } })
    expect(forced.status).toBe(200)
    expect(forced.body).toEqual({ instanceId: id, status: 'running', changed: true })
    expect(nodeOf(await detail(id), 'only').status).toBe('restarting')
  })

  it('answers 404 NODE_NOT_FOUND for a node the workflow does not have, changing nothing', async () => {
    const id = await pendingApproval()
    const error = await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/nope/restart`), {
      status: 404,
      code: 'NODE_NOT_FOUND',
    })
    expect(error.details).toMatchObject({ workflowType: 'approval', nodeId: 'nope' })
    expect((await detail(id)).lease).toBeUndefined()
  })

  it('answers 409 ILLEGAL_STATE for a node that has not started, changing nothing', async () => {
    const id = await pendingApproval()
    const error = await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/approve/restart`), {
      status: 409,
      code: 'ILLEGAL_STATE',
    })
    expect(error.details).toMatchObject({ instanceId: id, nodeId: 'approve' })
  })

  it.each(['root', 'end'])('answers 400 for the synthetic node %s, storing nothing', async (node) => {
    const id = await pendingApproval()
    const error = await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/${node}/restart`), {
      status: 400,
      code: 'VALIDATION_ERROR',
    })
    expect(error.details.field).toBe('path.node')
  })
})

describe('while another runner holds the lease', () => {
  let id: string
  /** A failed instance: the one state in which restarting the whole instance is allowed. */
  let failedId: string
  let leaseUntilMs: number
  beforeAll(async () => {
    id = await create({ workflowType: 'waiting' })
    failedId = await create({ workflowType: 'failing' })
    const now = clock.nowMs()
    leaseUntilMs = now + 60_000
    await store.acquireLease(id, 'other', now, leaseUntilMs)
    await store.acquireLease(failedId, 'other', now, leaseUntilMs, { terminalOnly: true })
  })

  it.each([
    ['cancel', 'cancel', false],
    ['restart a node', 'nodes/hold/restart', false],
    ['restart', 'restart', true],
  ])('answers 409 LOCK_CONFLICT with Retry-After to %s and stores nothing', async (_, action, failed) => {
    const target = failed ? failedId : id
    const before = await snapshot()
    const reply = await send(apiEvent('POST', `/workflows/${target}/${action}`))
    const error = expectError(reply, { status: 409, code: 'LOCK_CONFLICT' })
    expect(error.details).toEqual({ instanceId: target, leaseUntilMs, retryAfterSeconds: 60 })
    expect(reply.headers['retry-after']).toBe('60')
    expect(await snapshot()).toEqual(before)
  })

  it('answers a run 202 with Retry-After after waiting for the holder within the bound, storing nothing', async () => {
    const before = await snapshot()
    const reply = await call('POST', `/workflows/${id}/run`)
    expect(reply.status).toBe(202)
    const retryAfterSeconds = Math.ceil((leaseUntilMs - clock.nowMs()) / 1000)
    expect(retryAfterSeconds).toBeLessThan(60)
    expect(reply.body).toEqual({ instanceId: id, status: 'running', busy: true, leaseUntilMs, retryAfterSeconds })
    expect(reply.headers['retry-after']).toBe(String(retryAfterSeconds))
    // It waited (on the fake clock) for the lease to be given back before it answered.
    expect(sleeps.length).toBeGreaterThan(0)
    expect(await snapshot()).toEqual(before)
  })

  it('still accepts an event (202), which needs no lease', async () => {
    const reply = await call('POST', `/workflows/${id}/nodes/hold/events`, { body: { eventTs: 1 } })
    expect(reply.status).toBe(202)
    expect((await detail(id)).lease?.owner).toBe('other')
  })
})

describe('GET /workflows and GET /workflows/count', () => {
  /** Five `listed` instances created one second apart, oldest first. */
  const ids = ['list-1', 'list-2', 'list-3', 'list-4', 'list-5']
  const times: number[] = []

  beforeAll(async () => {
    const specs = [
      { businessId: 'list-biz-a' },
      { businessId: 'list-biz-b', context: { outcome: 'fail' } },
      { businessId: 'list-biz-a', run: false },
      { businessId: 'list-biz-b', run: false },
      { businessId: 'list-biz-a' },
    ]
    for (const [index, spec] of specs.entries()) {
      clock.advanceMs(1000)
      times.push(clock.nowMs())
      await create({ workflowType: 'listed', id: ids[index], ...spec })
    }
    expect((await call('POST', '/workflows/list-4/cancel')).status).toBe(200)
  })

  const list = async (query: Record<string, string>): Promise<ListView> => {
    const reply = await call('GET', '/workflows', { query })
    expect(reply.status).toBe(200)
    return as<ListView>(reply)
  }
  const idsOf = (page: ListView) => page.items.map((item) => item.id)
  const countOf = async (query: Record<string, string>): Promise<number> => {
    const reply = await call('GET', '/workflows/count', { query })
    expect(reply.status).toBe(200)
    expect(as<{ complete: boolean }>(reply).complete).toBe(true)
    return as<{ count: number }>(reply).count
  }

  it('lists newest first by default and oldest first with order=asc', async () => {
    const desc = await list({ workflowType: 'listed' })
    expect(idsOf(desc)).toEqual([...ids].reverse())
    expect(desc.cursor).toBeUndefined()
    expect(desc.items[0]).toEqual({
      id: 'list-5',
      workflowType: 'listed',
      businessId: 'list-biz-a',
      status: 'completed',
      createdAtMs: times[4],
    })
    expect(idsOf(await list({ workflowType: 'listed', order: 'asc' }))).toEqual(ids)
  })

  it('lists every type without a workflowType filter', async () => {
    const page = await list({ limit: '1000' })
    const types = new Set(page.items.map((item) => item.workflowType))
    expect(types).toEqual(new Set(['approval', 'failing', 'waiting', 'quick', 'listed']))
    expect(idsOf(page)).toEqual(expect.arrayContaining(ids))
  })

  it.each([
    ['one status', { status: 'completed' }, ['list-5', 'list-1']],
    ['a comma-separated list of statuses', { status: 'completed,failed' }, ['list-5', 'list-2', 'list-1']],
    ['init and canceled', { status: 'init, canceled' }, ['list-4', 'list-3']],
    ['a business id', { businessId: 'list-biz-b' }, ['list-4', 'list-2']],
    ['a business id and a status', { businessId: 'list-biz-a', status: 'init' }, ['list-3']],
  ])('filters by %s', async (_, filter, expected) => {
    expect(idsOf(await list({ workflowType: 'listed', ...filter }))).toEqual(expected)
    expect(await countOf({ workflowType: 'listed', ...filter })).toBe(expected.length)
  })

  it('filters by creation time, both bounds included', async () => {
    const range = { workflowType: 'listed', createdFromMs: String(times[1]), createdToMs: String(times[3]) }
    expect(idsOf(await list(range))).toEqual(['list-4', 'list-3', 'list-2'])
    expect(await countOf(range)).toBe(3)
    expect(idsOf(await list({ workflowType: 'listed', createdFromMs: String(times[4]) }))).toEqual(['list-5'])
    expect(idsOf(await list({ workflowType: 'listed', createdToMs: String(times[0]) }))).toEqual(['list-1'])
  })

  it('filters the other types by workflowType', async () => {
    const page = await list({ workflowType: 'quick' })
    expect(page.items.length).toBeGreaterThan(0)
    expect(page.items.every((item) => item.workflowType === 'quick')).toBe(true)
    expect(await countOf({ workflowType: 'quick' })).toBe(page.items.length)
  })

  it.each(['desc', 'asc'] as const)('visits every instance once, in %s order, with limit and cursor', async (order) => {
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await list({ workflowType: 'listed', limit: '2', order, ...(cursor ? { cursor } : {}) })
      expect(page.items.length).toBeLessThanOrEqual(2)
      seen.push(...idsOf(page))
      cursor = page.cursor
      pages++
    } while (cursor !== undefined && pages < 10)
    expect(seen).toEqual(order === 'asc' ? ids : [...ids].reverse())
    expect(pages).toBeGreaterThanOrEqual(3)
  })

  it('counts every listed instance without filters', async () => {
    expect(await countOf({ workflowType: 'listed' })).toBe(5)
    expect(await countOf({})).toBeGreaterThanOrEqual(5)
  })
})

describe('GET /workflow-types', () => {
  it('lists every registered type with its nodes and a Mermaid graph', async () => {
    const reply = await call('GET', '/workflow-types')
    expect(reply.status).toBe(200)
    const { items } = as<{ items: { type: string; mermaid: string }[] }>(reply)
    expect(items.map((item) => item.type)).toEqual(['approval', 'failing', 'waiting', 'quick', 'listed'])
    for (const item of items) expect(item.mermaid).toContain('flowchart TD')
  })

  it('describes one type: its nodes, their edges and which have a check', async () => {
    const reply = await call('GET', '/workflow-types/approval')
    expect(reply.status).toBe(200)
    const type = as<{
      type: string
      name: string
      nodes: { id: string; successors: string[]; hasCheck: boolean; maxWaitTimeSeconds: number }[]
    }>(reply)
    expect(type).toMatchObject({ type: 'approval', name: 'Approval' })
    const review = type.nodes.find((node) => node.id === 'review')
    expect(review).toMatchObject({ successors: ['approve'], hasCheck: true, maxWaitTimeSeconds: 86_400 })
    expect(type.nodes.find((node) => node.id === 'submit')?.hasCheck).toBe(false)
  })

  it('answers 404 WORKFLOW_TYPE_NOT_FOUND for an unknown type and 400 for a malformed one', async () => {
    const error = await expectRejected(apiEvent('GET', '/workflow-types/nope'), {
      status: 404,
      code: 'WORKFLOW_TYPE_NOT_FOUND',
    })
    expect(error.details).toEqual({ workflowType: 'nope' })
    await expectRejected(apiEvent('GET', '/workflow-types/9lives'), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'path.type',
    })
  })
})

describe('GET /openapi.json', () => {
  it('answers a valid OpenAPI 3.1.0 document describing every route', async () => {
    const reply = await call('GET', '/openapi.json')
    expect(reply.status).toBe(200)
    const document = as<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(reply)
    expect(document.openapi).toBe('3.1.0')
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    )
    expect(operations.sort()).toEqual(
      [
        'POST /workflows',
        'GET /workflows',
        'GET /workflows/count',
        'GET /workflows/{id}',
        'GET /workflows/{id}/graph',
        'GET /workflows/{id}/history',
        'POST /workflows/{id}/run',
        'POST /workflows/{id}/cancel',
        'POST /workflows/{id}/restart',
        'POST /workflows/{id}/nodes/{node}/restart',
        'POST /workflows/{id}/nodes/{node}/events',
        'GET /workflow-types',
        'GET /workflow-types/{type}',
        'POST /schedules',
        'GET /schedules',
        'GET /schedules/{name}',
        'DELETE /schedules/{name}',
        'GET /openapi.json',
        'GET /docs',
        'GET /docs/{asset}',
        'GET /',
        'GET /dashboard/{asset}',
        'POST /callbacks/{token}',
      ].sort(),
    )
    const result = await new Validator().validate(document)
    expect(result.errors).toBeUndefined()
    expect(result.valid).toBe(true)
  })
})

// ---- rejections ------------------------------------------------------------------------------------------------

describe('rejecting bad requests: 4xx, the error body, and nothing stored', () => {
  it('answers 400 MALFORMED_JSON for a body that is not JSON', async () => {
    await expectRejected(apiEvent('POST', '/workflows', { rawBody: '{"workflowType": "approval",' }), {
      status: 400,
      code: 'MALFORMED_JSON',
      field: 'body',
    })
  })

  it.each([
    ['a run flag that is a string', { workflowType: 'approval', run: 'yes' }, 'body.run'],
    ['a numeric workflow type', { workflowType: 7 }, 'body.workflowType'],
    ['no workflow type', { context: {} }, 'body.workflowType'],
    ['a context that is an array', { workflowType: 'approval', context: [1] }, 'body.context'],
    ['a context that is a string', { workflowType: 'approval', context: 'x' }, 'body.context'],
    ['an empty business id', { workflowType: 'approval', businessId: '' }, 'body.businessId'],
    ['an id with a slash', { workflowType: 'approval', id: 'a/b' }, 'body.id'],
    ['a negative startAtMs', { workflowType: 'approval', run: false, startAtMs: -1 }, 'body.startAtMs'],
    ['an unknown field', { workflowType: 'approval', colour: 'red' }, 'body'],
  ])('answers 400 naming the field for a create with %s', async (_, body, field) => {
    const error = await expectRejected(apiEvent('POST', '/workflows', { body }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
    if (field === 'body') expect(error.message).toContain('colour')
  })

  it.each([
    ['an array', '[1]'],
    ['null', 'null'],
    ['a string', '"approval"'],
  ])('answers 400 for a create whose JSON body is %s', async (_, rawBody) => {
    await expectRejected(apiEvent('POST', '/workflows', { rawBody }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'body',
    })
  })

  it.each([
    ['limit=abc', { limit: 'abc' }, 'query.limit'],
    ['limit=0', { limit: '0' }, 'query.limit'],
    ['limit=1001', { limit: '1001' }, 'query.limit'],
    ['limit=2.5', { limit: '2.5' }, 'query.limit'],
    ['order=sideways', { order: 'sideways' }, 'query.order'],
    ['status=sleeping', { status: 'sleeping' }, 'query.status[0]'],
    ['status=completed,sleeping', { status: 'completed,sleeping' }, 'query.status[1]'],
    ['createdFromMs=-5', { createdFromMs: '-5' }, 'query.createdFromMs'],
    ['createdToMs=soon', { createdToMs: 'soon' }, 'query.createdToMs'],
    ['workflowType=9lives', { workflowType: '9lives' }, 'query.workflowType'],
    ['an unknown query parameter', { colour: 'red' }, 'query'],
  ])('answers 400 naming the parameter for a list with %s', async (_, query, field) => {
    const error = await expectRejected(apiEvent('GET', '/workflows', { query }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
    if (field === 'query') expect(error.message).toContain('colour')
  })

  it.each([
    ['limit, which only the list takes', { limit: '5' }, 'query'],
    ['status=sleeping', { status: 'sleeping' }, 'query.status[0]'],
    ['createdFromMs=abc', { createdFromMs: 'abc' }, 'query.createdFromMs'],
  ])('answers 400 for a count with %s', async (_, query, field) => {
    await expectRejected(apiEvent('GET', '/workflows/count', { query }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
  })

  it.each([
    ['wait=forever', { wait: 'forever' }, 'query.wait'],
    ['timeoutSeconds=26', { wait: 'terminal', timeoutSeconds: '26' }, 'query.timeoutSeconds'],
    ['an unknown query parameter', { verbose: 'true' }, 'query'],
  ])('answers 400 for a get with %s', async (_, query, field) => {
    const id = await completedQuick()
    await expectRejected(apiEvent('GET', `/workflows/${id}`, { query }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field,
    })
  })

  it('answers 400 for a graph in an unknown format', async () => {
    const id = await completedQuick()
    await expectRejected(apiEvent('GET', `/workflows/${id}/graph`, { query: { format: 'svg' } }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'query.format',
    })
  })

  it('answers 400 for a run in an unknown mode', async () => {
    const id = await pendingApproval()
    await expectRejected(apiEvent('POST', `/workflows/${id}/run`, { body: { mode: 'later' } }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'body.mode',
    })
  })

  it('answers 400 for a cursor the service did not issue', async () => {
    const error = await expectRejected(apiEvent('GET', '/workflows', { query: { cursor: 'not-a-cursor' } }), {
      status: 400,
      code: 'VALIDATION_ERROR',
    })
    expect(error.details.field).toBe('query.cursor')
  })

  it('answers 400 for a creation range that ends before it starts', async () => {
    const error = await expectRejected(
      apiEvent('GET', '/workflows', { query: { createdFromMs: '10', createdToMs: '5' } }),
      { status: 400, code: 'VALIDATION_ERROR' },
    )
    expect(error.details.field).toBe('query.createdFromMs')
  })

  it('answers 404 WORKFLOW_TYPE_NOT_FOUND for a create of an unknown type', async () => {
    const error = await expectRejected(apiEvent('POST', '/workflows', { body: { workflowType: 'nope' } }), {
      status: 404,
      code: 'WORKFLOW_TYPE_NOT_FOUND',
    })
    expect(error.details).toEqual({ workflowType: 'nope' })
  })

  it.each([
    ['GET', '/workflows/ghost-1', undefined],
    ['GET', '/workflows/ghost-1/graph', undefined],
    ['POST', '/workflows/ghost-1/run', undefined],
    ['POST', '/workflows/ghost-1/cancel', undefined],
    ['POST', '/workflows/ghost-1/restart', undefined],
    ['POST', '/workflows/ghost-1/nodes/review/restart', undefined],
    ['POST', '/workflows/ghost-1/nodes/review/events', { eventTs: 1 }],
  ])('answers 404 INSTANCE_NOT_FOUND to %s %s', async (method, path, body) => {
    const error = await expectRejected(apiEvent(method, path, body === undefined ? {} : { body }), {
      status: 404,
      code: 'INSTANCE_NOT_FOUND',
    })
    expect(error.details).toEqual({ instanceId: 'ghost-1' })
  })

  it.each([
    ['an encoded slash', '/workflows/a%2Fb'],
    ['a leading dash', '/workflows/-abc'],
    ['a broken escape', '/workflows/abc%E0%A4%A'],
    ['an id of 129 characters', `/workflows/${'a'.repeat(129)}`],
  ])('answers 400 path.id for an id with %s', async (_, path) => {
    await expectRejected(apiEvent('GET', path), { status: 400, code: 'VALIDATION_ERROR', field: 'path.id' })
  })

  it('answers 400 path.node for a malformed node id', async () => {
    const id = await pendingApproval()
    await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/9x/events`, { body: { eventTs: 1 } }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'path.node',
    })
  })

  describe('bodies that are too large', () => {
    it('answers 413 PAYLOAD_TOO_LARGE before parsing a body over maxBodyBytes', async () => {
      const small = makeHandler({ maxBodyBytes: 64 })
      const body = { workflowType: 'approval', context: { note: 'x'.repeat(64) } }
      for (const base64 of [false, true]) {
        const error = await expectRejected(
          apiEvent('POST', '/workflows', { body, base64 }),
          { status: 413, code: 'PAYLOAD_TOO_LARGE', field: 'body' },
          { using: small },
        )
        expect(error.details).toEqual({ field: 'body', sizeBytes: JSON.stringify(body).length, limitBytes: 64 })
      }
      // Even a body that is not JSON, or not declared as JSON, is measured first.
      await expectRejected(
        apiEvent('POST', '/workflows', { rawBody: 'x'.repeat(65), headers: { 'Content-Type': 'text/plain' } }),
        { status: 413, code: 'PAYLOAD_TOO_LARGE', field: 'body' },
        { using: small },
      )
      expect((await send(apiEvent('POST', '/workflows', { body: { workflowType: 'quick' } }), small)).status).toBe(201)
    })

    it('answers 413 PAYLOAD_TOO_LARGE from the engine for a context over its input limit', async () => {
      const context = { blob: 'x'.repeat(ENGINE_LIMITS.maxInputBytes + 100) }
      const error = await expectRejected(
        apiEvent('POST', '/workflows', { body: { workflowType: 'approval', context } }),
        {
          status: 413,
          code: 'PAYLOAD_TOO_LARGE',
        },
      )
      expect(error.details).toMatchObject({ limitBytes: ENGINE_LIMITS.maxInputBytes })
      expect(error.details.field).toBe('body.context')
      expect(Number(error.details.sizeBytes)).toBeGreaterThan(ENGINE_LIMITS.maxInputBytes)
    })

    it('answers 413 for an oversize restart context and an oversize event, changing nothing', async () => {
      const failed = await create({ workflowType: 'failing' })
      const blob = 'x'.repeat(ENGINE_LIMITS.maxInputBytes + 100)
      await expectRejected(apiEvent('POST', `/workflows/${failed}/restart`, { body: { context: { blob } } }), {
        status: 413,
        code: 'PAYLOAD_TOO_LARGE',
      })
      const pending = await pendingApproval()
      await expectRejected(
        apiEvent('POST', `/workflows/${pending}/nodes/review/events`, { body: { eventTs: 1, content: { blob } } }),
        { status: 413, code: 'PAYLOAD_TOO_LARGE' },
      )
    })
  })

  it.each([
    ['text/plain', { 'Content-Type': 'text/plain' }],
    ['form data', { 'Content-Type': 'application/x-www-form-urlencoded' }],
    ['a JSON look-alike', { 'Content-Type': 'application/jsonp' }],
    ['no content type', { 'Content-Type': '' }],
  ])('answers 415 UNSUPPORTED_MEDIA_TYPE for a body sent as %s', async (_, headers) => {
    const error = await expectRejected(apiEvent('POST', '/workflows', { body: { workflowType: 'quick' }, headers }), {
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      field: 'content-type',
    })
    expect(error.details.received).toBe(headers['Content-Type'])
  })

  it.each([['/nope'], ['/workflows/a/b/c'], ['/workflow-types/approval/nodes'], ['/dashboard']])(
    'answers 404 ROUTE_NOT_FOUND for %s',
    async (path) => {
      const error = await expectRejected(apiEvent('GET', path), { status: 404, code: 'ROUTE_NOT_FOUND' })
      expect(error.details).toEqual({ method: 'GET', path })
    },
  )

  it.each([
    ['DELETE', '/workflows', ['GET', 'HEAD', 'POST']],
    ['PUT', '/workflows/abc', ['GET', 'HEAD']],
    ['GET', '/workflows/abc/cancel', ['POST']],
    ['POST', '/workflow-types', ['GET', 'HEAD']],
    ['POST', '/workflows/count', ['GET', 'HEAD']],
  ])('answers 405 with an allow header to %s %s', async (method, path, allowed) => {
    const before = await snapshot()
    const reply = await send(apiEvent(method, path))
    const error = expectError(reply, { status: 405, code: 'METHOD_NOT_ALLOWED' })
    expect(
      reply.headers.allow
        ?.split(',')
        .map((item) => item.trim())
        .sort(),
    ).toEqual(allowed)
    expect(error.details).toMatchObject({ method })
    expect(await snapshot()).toEqual(before)
  })

  it.each([
    ['POST', 'cancel'],
    ['GET', ''],
    ['GET', 'graph'],
  ])('answers 400 for a body on %s /workflows/{id}/%s, which takes none', async (method, action) => {
    const id = await pendingApproval()
    const path = action ? `/workflows/${id}/${action}` : `/workflows/${id}`
    await expectRejected(apiEvent(method, path, { body: {} }), { status: 400, code: 'VALIDATION_ERROR', field: 'body' })
    expect((await detail(id)).status).toBe('running')
  })

  it.each([
    ['nested in the context', '{"workflowType":"approval","context":{"a":{"__proto__":{"polluted":true}}}}'],
    ['a constructor key in the context', '{"workflowType":"approval","context":{"constructor":{"x":1}}}'],
    ['in an array in the context', '{"workflowType":"approval","context":{"list":[{"__proto__":{"polluted":1}}]}}'],
  ])('answers 400 for a __proto__-like key %s, stores nothing and pollutes nothing', async (_, rawBody) => {
    const error = await expectRejected(apiEvent('POST', '/workflows', { rawBody }), {
      status: 400,
      code: 'VALIDATION_ERROR',
    })
    expect(String(error.details.field)).toMatch(/(__proto__|constructor)$/)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('answers 400 for a __proto__ key in an event, storing nothing', async () => {
    const id = await pendingApproval()
    await expectRejected(
      apiEvent('POST', `/workflows/${id}/nodes/review/events`, {
        rawBody: '{"eventTs":1,"content":{"__proto__":{"polluted":true}}}',
      }),
      { status: 400, code: 'VALIDATION_ERROR' },
    )
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})

// ---- faults ----------------------------------------------------------------------------------------------------

describe('a real fault', () => {
  /** The test engine's store, with `getInstance` replaced. */
  const storeWith = (getInstance: InstanceStore['getInstance']): InstanceStore =>
    new Proxy(store, {
      get: (target, key) => {
        if (key === 'getInstance') return getInstance
        const value = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    }) as InstanceStore

  const faultyApi = (getInstance: InstanceStore['getInstance']) => {
    const faultLogger = new FakeLogger()
    const faulty = new Engine({ store: storeWith(getInstance), clock, ids: sequentialIds(), random: fixedRandom(0) })
    faulty.register(approvalWorkflow)
    return { faultLogger, handler: makeHandler({ engine: faulty, logger: faultLogger }) }
  }

  it('answers 500 INTERNAL_ERROR with the request id, without internals, and logs it with that id', async () => {
    const { faultLogger, handler: faultyHandler } = faultyApi(async () => {
      throw new Error('socket hang up at 10.0.0.7')
    })
    const event = apiEvent('GET', '/workflows/some-id')
    const reply = await send(event, faultyHandler)
    const error = expectError(reply, { status: 500, code: 'INTERNAL_ERROR' })
    expect(error.details).toEqual({ requestId: event.requestContext.requestId })
    expect(reply.text).not.toContain('socket hang up')
    expect(faultLogger.errors()).toEqual([
      {
        level: 'error',
        message: 'unexpected error',
        fields: expect.objectContaining({
          requestId: event.requestContext.requestId,
          error: 'Error: socket hang up at 10.0.0.7',
        }),
      },
    ])
  })

  it('answers a retryable store failure 503 with its code and the request id, and logs it', async () => {
    const { faultLogger, handler: faultyHandler } = faultyApi(async () => {
      throw new StoreError('getInstance failed: ProvisionedThroughputExceededException', true)
    })
    const event = apiEvent('POST', '/workflows/some-id/cancel')
    const error = expectError(await send(event, faultyHandler), { status: 503, code: 'STORE_UNAVAILABLE' })
    expect(error.details).toEqual({ requestId: event.requestContext.requestId })
    expect(faultLogger.errors()).toHaveLength(1)
    expect(faultLogger.errors()[0]?.fields).toMatchObject({
      requestId: event.requestContext.requestId,
      code: 'STORE_UNAVAILABLE',
    })
  })
})

// ---- stages ----------------------------------------------------------------------------------------------------

describe('a stage-prefixed path', () => {
  const staged = (method: string, rawPath: string, stage: string, options?: RequestOptions): ApiEvent => {
    const event = apiEvent(method, rawPath, options)
    event.requestContext.stage = stage
    event.requestContext.http.path = rawPath
    return event
  }

  it('routes /prod/workflows like /workflows on the prod stage', async () => {
    const listed = await send(staged('GET', '/prod/workflows', 'prod', { query: { workflowType: 'listed' } }))
    expect(listed.status).toBe(200)
    expect(listed.body).toEqual((await call('GET', '/workflows', { query: { workflowType: 'listed' } })).body)

    const created = await send(staged('POST', '/prod/workflows', 'prod', { body: { workflowType: 'quick' } }))
    expect(created.status).toBe(201)
    const { instanceId } = as<{ instanceId: string }>(created)
    const got = await send(staged('GET', `/prod/workflows/${instanceId}`, 'prod'))
    expect(got.status).toBe(200)
    expect(as<DetailView>(got).id).toBe(instanceId)
  })

  it('does not strip a prefix that is not the stage', async () => {
    await expectRejected(staged('GET', '/prod/workflows', '$default'), { status: 404, code: 'ROUTE_NOT_FOUND' })
    await expectRejected(staged('GET', '/production/workflows', 'prod'), { status: 404, code: 'ROUTE_NOT_FOUND' })
  })
})

// ---- edge cases of the request contract ------------------------------------------------------------------------

describe('edge cases of the request contract', () => {
  it('answers 400 and stores nothing for a __proto__ key at the top of a context', async () => {
    await expectRejected(
      apiEvent('POST', '/workflows', {
        rawBody: '{"workflowType":"approval","context":{"__proto__":{"polluted":true}}}',
      }),
      { status: 400, code: 'VALIDATION_ERROR', field: 'body.context.__proto__' },
    )
  })

  it('leaves the table exactly as it was when restarting a completed instance is refused', async () => {
    const id = await completedQuick()
    await expectRejected(apiEvent('POST', `/workflows/${id}/restart`), { status: 409, code: 'ILLEGAL_STATE' })
  })

  it('leaves the table exactly as it was when restarting an unknown node is refused', async () => {
    const id = await pendingApproval()
    await expectRejected(apiEvent('POST', `/workflows/${id}/nodes/nope/restart`), {
      status: 404,
      code: 'NODE_NOT_FOUND',
    })
  })

  it('names a bad cursor query.cursor', async () => {
    await expectRejected(apiEvent('GET', '/workflows', { query: { cursor: 'not-a-cursor' } }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'query.cursor',
    })
  })

  it('names the field of an engine-checked body value with its body. prefix', async () => {
    const blob = 'x'.repeat(ENGINE_LIMITS.maxInputBytes + 100)
    await expectRejected(apiEvent('POST', '/workflows', { body: { workflowType: 'approval', context: { blob } } }), {
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      field: 'body.context',
    })
  })

  it('refuses the id "count", which /workflows/count could never serve', async () => {
    await expectRejected(apiEvent('POST', '/workflows', { body: { workflowType: 'quick', id: 'count' } }), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'body.id',
    })
  })
})

// After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
afterEach(async () => {
  expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
})
