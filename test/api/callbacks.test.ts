import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { type ApiEvent, createApiHandler } from '../../src/api/handler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { CALLBACK_CLOCK_SKEW_MS } from '../../src/core/callbacks.js'
import type { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { silentLogger } from '../../src/core/ports.js'
import { createEventsHandler } from '../../src/handlers/events-handler.js'
import { paymentWorkflow } from '../../src/workflows/payment.js'
import { apiEvent, lambdaContext, type RequestOptions } from '../support/api-events.js'
import { createTestTable, type FakeClock, newTestEngine, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { sqsRecord } from '../support/sqs-records.js'

/**
 * Callbacks through the HTTP API and the events queue (README, "Callbacks"), on DynamoDB Local: a node waits for a
 * third party that holds nothing but a token.
 */

const SECRET = 'a-deployment-secret-of-at-least-32-characters'
const OTHER_SECRET = 'another-deployment-secret-of-32-characters-or-more'

/**
 * `early`: the provider answers from inside the worker's call, before the worker returned (and so before the
 * pass stored that the node waits).
 */
let early: ((token: string) => Promise<void>) | undefined

const callbackWorkflow = defineWorkflow({
  type: 'confirm',
  nodes: {
    ask: {
      next: ['after'],
      failMaxCount: 5,
      run: async (ctx) => {
        const { token, url } = await ctx.callback({ timeoutSeconds: 3600, heartbeatSeconds: 300 })
        ctx.set('token', token)
        ctx.set('url', url)
        if (early) await early(token)
      },
    },
    after: { run: (ctx) => ctx.set('got', ctx.get('pre_node_context', 'ask', 'callback_output') ?? null) },
  },
})

let table: TestTable
let engine: Engine
let clock: FakeClock
let handler: ReturnType<typeof createApiHandler>
let eventsDlq: LocalQueue

interface Reply {
  status: number
  body: Record<string, unknown>
}

const send = async (event: ApiEvent): Promise<Reply> => {
  const result = await handler(event, lambdaContext())
  return { status: result.statusCode ?? 0, body: JSON.parse(result.body ?? '{}') }
}
const call = (method: string, path: string, options?: RequestOptions) => send(apiEvent(method, path, options))
const complete = (token: string, body: unknown) => call('POST', `/callbacks/${token}`, { body })

interface NodeView {
  id: string
  status: string
  failCount: number
  calls: number
  nextAttemptAtMs?: number
  waiting?: { reason: string; timeoutAtMs: number; heartbeatDeadlineMs?: number }
  context?: Record<string, unknown> & { token?: string; system?: { last_error?: string } }
}
interface Detail {
  status: string
  dueAtMs?: number
  nodes: NodeView[]
}

const detail = async (id: string): Promise<Detail> => (await call('GET', `/workflows/${id}`)).body as never
const node = async (id: string, nodeId = 'ask'): Promise<NodeView> =>
  (await detail(id)).nodes.find((n) => n.id === nodeId) as NodeView
const tokenOf = async (id: string): Promise<string> => String((await node(id)).context?.token)

/** What the tick and the run queue do: a due pass, once the instance is due. */
const duePass = async (id: string) => engine.runWorkflow(id, { mode: 'due' })

const started = async (): Promise<string> => {
  const reply = await call('POST', '/workflows', { body: { workflowType: 'confirm' } })
  expect(reply.status).toBe(201)
  return String(reply.body.instanceId)
}

beforeAll(async () => {
  table = await createTestTable('api-callbacks')
  ;({ engine, clock } = newTestEngine(table, {
    callbacks: { tokens: callbackTokens([SECRET]), baseUrl: 'https://api.example.com/prod' },
  }))
  engine.register(callbackWorkflow)
  engine.register(paymentWorkflow)
  handler = createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 10 })
  eventsDlq = new LocalQueue({ name: 'events-dlq', now: () => clock.nowMs() })
})

describe('a node that asks for a callback', () => {
  it('waits without being retried, and hands out an opaque token with its URL', async () => {
    const id = await started()
    const ask = await node(id)
    expect(ask.status).toBe('running')
    expect(ask.failCount).toBe(0)
    expect(ask.waiting).toMatchObject({
      reason: 'waiting for a callback',
      heartbeatDeadlineMs: clock.nowMs() + 300_000,
    })
    const token = String(ask.context?.token)
    expect(ask.context?.url).toBe(`https://api.example.com/prod/callbacks/${token}`)
    expect(token).toMatch(/^[A-Za-z0-9_-]{60,}$/)
    // Nothing readable in it: neither the instance nor the node.
    const raw = Buffer.from(token, 'base64url').toString('latin1')
    expect(raw).not.toContain(id)
    expect(raw).not.toContain('ask')
    // Due when the heartbeat is (and the clock skew allowed after it: see CALLBACK_CLOCK_SKEW_MS), with nobody
    // polling before.
    expect((await detail(id)).dueAtMs).toBe(clock.nowMs() + 300_000 + CALLBACK_CLOCK_SKEW_MS)
  })

  it('completes with success: the output goes to the node, and the same completion again answers the same', async () => {
    const id = await started()
    const token = await tokenOf(id)
    const first = await complete(token, { status: 'success', output: { reference: 'ch_1' } })
    expect(first).toEqual({ status: 202, body: { accepted: true, status: 'success' } })
    expect(await complete(token, { status: 'success', output: { reference: 'ch_1' } })).toEqual(first)
    // A different completion before the pass applied the first: a conflict.
    const other = await complete(token, { status: 'success', output: { reference: 'ch_2' } })
    expect(other.status).toBe(409)
    expect(other.body).toMatchObject({ error: { code: 'CALLBACK_CONFLICT' } })

    expect((await duePass(id)).status).toBe('completed')
    expect((await node(id, 'after')).context?.got).toEqual({ reference: 'ch_1' })
    // Stored with the node that asked for it, not only handed to the successor in the same pass.
    expect((await node(id)).context?.callback_output).toEqual({ reference: 'ch_1' })
    // After it was applied: the same completion still answers the same; another is gone.
    expect(await complete(token, { status: 'success', output: { reference: 'ch_1' } })).toEqual(first)
    const late = await complete(token, { status: 'failure', error: 'Late' })
    expect(late.status).toBe(410)
    expect(late.body).toMatchObject({ error: { code: 'CALLBACK_GONE' } })
  })

  it('fails the attempt with a failure: counted, retried with a new token; the old one is gone (410)', async () => {
    const id = await started()
    const token = await tokenOf(id)
    expect((await complete(token, { status: 'failure', error: 'CardDeclined', cause: 'no funds' })).status).toBe(202)
    await duePass(id)
    const failed = await node(id)
    expect(failed.failCount).toBe(1)
    expect(failed.context?.system?.last_error).toBe('CallbackFailedError: CardDeclined: no funds')
    expect(failed.waiting).toBeUndefined()

    clock.advanceMs((failed.nextAttemptAtMs ?? 0) - clock.nowMs())
    await duePass(id)
    const retried = await node(id)
    expect(retried.calls).toBe(2)
    expect(retried.waiting?.reason).toBe('waiting for a callback')
    const fresh = String(retried.context?.token)
    expect(fresh).not.toBe(token)
    const old = await complete(token, { status: 'success' })
    expect(old.status).toBe(410)
    expect(old.body).toMatchObject({
      error: { code: 'CALLBACK_GONE', message: expect.stringMatching(/earlier attempt/) },
    })
    expect((await complete(fresh, { status: 'success' })).status).toBe(202)
    expect((await duePass(id)).status).toBe('completed')
  })

  it('fails the node for good when the failure names FailedWithFailedError', async () => {
    const id = await started()
    await complete(await tokenOf(id), { status: 'failure', error: 'FailedWithFailedError', cause: 'fraud' })
    expect((await duePass(id)).status).toBe('failed')
    expect((await detail(id)).nodes.find((n) => n.id === 'ask')?.status).toBe('failed')
  })

  it('stays alive past its heartbeat interval while heartbeats arrive, and completes later', async () => {
    const id = await started()
    const token = await tokenOf(id)
    for (let beat = 0; beat < 4; beat++) {
      clock.advanceSeconds(250)
      expect(await complete(token, { status: 'heartbeat' })).toEqual({
        status: 202,
        body: { accepted: true, status: 'heartbeat' },
      })
      // The pass at the old heartbeat deadline (or any earlier one) finds the heartbeat and waits on.
      await duePass(id)
      expect((await node(id)).waiting?.heartbeatDeadlineMs).toBe(clock.nowMs() + 300_000)
    }
    // 1,000 s since the request: more than three heartbeat intervals, no failure counted.
    expect((await node(id)).failCount).toBe(0)
    await complete(token, { status: 'success', output: 'settled' })
    expect((await duePass(id)).status).toBe('completed')
  })

  it('times out when no heartbeat comes: the due time fires it with nobody polling, as a failed attempt', async () => {
    const id = await started()
    const token = await tokenOf(id)
    const due = (await detail(id)).dueAtMs as number
    clock.advanceMs(due - clock.nowMs() - 1)
    expect((await duePass(id)).skipped).toBe('not-due')
    clock.advanceMs(1)
    await duePass(id)
    const timedOut = await node(id)
    expect(timedOut.failCount).toBe(1)
    expect(timedOut.context?.system?.last_error).toMatch(/CallbackTimeoutError: no heartbeat or completion .* 300 s/)
    expect((await complete(token, { status: 'success' })).status).toBe(410)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [id] })).toEqual([])
  })

  it('keeps a completion that arrives before the worker returned, and applies it', async () => {
    const replies: Reply[] = []
    early = async (token) => {
      replies.push(await complete(token, { status: 'success', output: { early: true } }))
    }
    try {
      const id = await started()
      expect(replies).toEqual([{ status: 202, body: { accepted: true, status: 'success' } }])
      // The pass noticed the arrival and left the instance due at once.
      expect((await detail(id)).dueAtMs).toBeLessThanOrEqual(clock.nowMs())
      early = undefined
      expect((await duePass(id)).status).toBe('completed')
      expect((await node(id, 'after')).context?.got).toEqual({ early: true })
    } finally {
      early = undefined
    }
  })
})

describe('a token that does not open', () => {
  const tampered = (token: string): string => {
    const bytes = Buffer.from(token, 'base64url')
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
    return bytes.toString('base64url')
  }

  it('is 404 whether forged, tampered with, or of another deployment, with one and the same answer', async () => {
    const id = await started()
    const token = await tokenOf(id)
    const claims = await callbackTokens([SECRET]).open(token)
    const foreign = await callbackTokens([OTHER_SECRET]).issue(claims as never)
    const forged = Buffer.alloc(Buffer.from(token, 'base64url').length, 7).toString('base64url')
    const answers = await Promise.all(
      [tampered(token), foreign, forged, 'not-a-token'].map((bad) => complete(bad, { status: 'success' })),
    )
    for (const answer of answers) {
      expect(answer).toEqual({
        status: 404,
        body: { error: { code: 'CALLBACK_NOT_FOUND', message: 'no such callback', details: {} } },
      })
    }
    expect((await node(id)).waiting?.reason).toBe('waiting for a callback')
  })

  it('takes no measurably different time when unknown than when tampered with (1,000 requests)', async () => {
    const id = await started()
    const token = await tokenOf(id)
    const unknown = Buffer.alloc(Buffer.from(token, 'base64url').length, 0x5a).toString('base64url')
    const bad = tampered(token)
    const times: Record<'unknown' | 'tampered', number[]> = { unknown: [], tampered: [] }
    // Interleaved, so that whatever else the machine does weighs on both alike.
    for (let round = 0; round < 1000; round++) {
      for (const [kind, candidate] of round % 2
        ? ([
            ['unknown', unknown],
            ['tampered', bad],
          ] as const)
        : ([
            ['tampered', bad],
            ['unknown', unknown],
          ] as const)) {
        const start = process.hrtime.bigint()
        const reply = await handler(
          apiEvent('POST', `/callbacks/${candidate}`, { body: { status: 'heartbeat' } }),
          lambdaContext(),
        )
        times[kind].push(Number(process.hrtime.bigint() - start) / 1e6)
        expect(reply.statusCode).toBe(404)
      }
    }
    const quantile = (values: number[], q: number) =>
      [...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))] as number
    const figures = Object.fromEntries(
      Object.entries(times).map(([kind, values]) => [
        kind,
        {
          p50: quantile(values, 0.5).toFixed(3),
          p90: quantile(values, 0.9).toFixed(3),
          p99: quantile(values, 0.99).toFixed(3),
        },
      ]),
    )
    console.info(`callback 404 timing over 1,000 requests each, ms: ${JSON.stringify(figures)}`)
    const ratio = quantile(times.unknown, 0.5) / quantile(times.tampered, 0.5)
    // Only what is beyond noise: the same work is done for both, so their medians stay close.
    expect(ratio).toBeGreaterThan(0.5)
    expect(ratio).toBeLessThan(2)
  }, 120_000)
})

describe('bad requests', () => {
  it.each([
    ['an unknown status', { status: 'done' }, 400, 'body.status'],
    ['an extra field', { status: 'heartbeat', output: 1 }, 400, 'body'],
    ['no body', undefined, 400, 'body'],
  ])('refuse %s with a 400 naming the field', async (_, body, status, field) => {
    const token = await tokenOf(await started())
    const reply = await complete(token, body)
    expect(reply.status).toBe(status)
    expect((reply.body.error as { details: { field: string } }).details.field).toBe(field)
  })

  it('refuses an output over the node limit with a 413 naming it, storing nothing', async () => {
    const id = await started()
    const reply = await complete(await tokenOf(id), { status: 'success', output: 'x'.repeat(70_000) })
    expect(reply.status).toBe(413)
    expect((reply.body.error as { details: { field: string } }).details.field).toBe('body.output')
    expect((await node(id)).waiting?.reason).toBe('waiting for a callback')
  })
})

describe('the OpenAPI document', () => {
  it('describes the public route without security, and the lifecycle event detail under components', async () => {
    const document = (await call('GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, { security: unknown[] }>>
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> }
    }
    expect(document.paths['/callbacks/{token}']?.post?.security).toEqual([])
    expect(Object.keys(document.components.schemas.LifecycleEventDetail?.properties ?? {})).toEqual(
      expect.arrayContaining([
        'version',
        'eventId',
        'instanceId',
        'workflowType',
        'status',
        'reason',
        'time',
        'resent',
      ]),
    )
    expect(document.components.schemas.CallbackCompletion).toBeDefined()
  })
})

describe('the events queue', () => {
  const deliver = (body: unknown, messageId = 'm-1') =>
    createEventsHandler({ engine, logger: silentLogger, deadLetters: eventsDlq, maxReceiveCount: 3 })({
      Records: [sqsRecord(typeof body === 'string' ? body : JSON.stringify(body), { messageId, queue: 'events' })],
    })

  it('takes the same completions, with their token: a duplicate is acknowledged, an old one dead-lettered', async () => {
    const id = await started()
    const token = await tokenOf(id)
    const message = { v: 1, kind: 'callback', token, status: 'success', output: { via: 'sqs' } }
    expect(await deliver(message)).toEqual({ batchItemFailures: [] })
    expect(await deliver(message, 'm-2')).toEqual({ batchItemFailures: [] })
    expect((await duePass(id)).status).toBe('completed')
    expect((await node(id, 'after')).context?.got).toEqual({ via: 'sqs' })

    expect(await deliver({ ...message, status: 'heartbeat', output: undefined }, 'm-3')).toEqual({
      batchItemFailures: [],
    })
    expect(eventsDlq.messages().at(-1)?.attributes.reason).toMatch(/^CALLBACK_GONE: /)
  })

  it('dead-letters an unknown token and a malformed callback message with the reason', async () => {
    const before = eventsDlq.messages().length
    await deliver({ v: 1, kind: 'callback', token: 'AAAA', status: 'success' }, 'm-4')
    await deliver({ v: 1, kind: 'callback', status: 'success' }, 'm-5')
    const reasons = eventsDlq
      .messages()
      .slice(before)
      .map((message) => message.attributes.reason)
    expect(reasons).toEqual([
      expect.stringMatching(/^CALLBACK_NOT_FOUND: no such callback/),
      expect.stringMatching(/^invalid callback message: token/),
    ])
  })
})

describe('completions and the size limits', () => {
  const KB = 1024
  let limited: Engine
  let limitedClock: FakeClock
  let tokens: string[] = []
  /** The output the worker itself leaves on the node before it returns. */
  let workerOutput: string | undefined
  /** A completion posted from inside the worker's call (the provider answered before the worker returned). */
  let answerEarly: ((token: string) => Promise<void>) | undefined

  const ask = {
    run: async (ctx: NodeContext) => {
      const { token } = await ctx.callback({ timeoutSeconds: 3600 })
      tokens.push(token)
      if (workerOutput !== undefined) ctx.set('w', workerOutput)
      if (answerEarly) await answerEarly(token)
    },
  }

  beforeAll(() => {
    ;({ engine: limited, clock: limitedClock } = newTestEngine(table, {
      limits: { maxInstanceBytes: 64 * KB, maxNodeContextBytes: 40 * KB },
      callbacks: { tokens: callbackTokens([SECRET]) },
    }))
    limited.register(
      defineWorkflow({
        type: 'four-asks',
        nodes: {
          start: { next: ['a1', 'a2', 'a3', 'a4'], run: () => {} },
          a1: ask,
          a2: ask,
          a3: ask,
          a4: ask,
        },
      }),
    )
    limited.register(defineWorkflow({ type: 'one-ask', nodes: { a1: ask } }))
  })

  beforeEach(() => {
    tokens = []
    workerOutput = undefined
    answerEarly = undefined
  })

  const completeOn = (token: string, output: unknown) =>
    limited.completeCallback(token, { status: 'success', output }).then(
      () => 202,
      (error: { httpStatus?: number }) => error.httpStatus ?? 500,
    )

  it('refuses a completion the instance has no room for with a 413, storing nothing, and counts what it accepted', async () => {
    const { instanceId } = await limited.create({ workflowType: 'four-asks' })
    expect(tokens).toHaveLength(4)

    const answers: number[] = []
    for (const token of tokens) answers.push(await completeOn(token, { o: 'c'.repeat(39 * KB) }))

    // The first fits the 64 KB budget; each of the others would take the instance past it.
    expect(answers).toEqual([202, 413, 413, 413])
    const stored = await limited.get(instanceId)
    expect(stored.nodes.filter((n) => n.waiting !== undefined).map((n) => n.id)).toEqual(['a1', 'a2', 'a3', 'a4'])
    expect(await invariantViolations(table, limitedClock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    const settled = await limited.runWorkflow(instanceId, { mode: 'due' })
    expect(settled.status).toBe('running')
    const after = await limited.get(instanceId)
    expect(after.parked).toBeUndefined()
    const a1 = after.nodes.find((n) => n.id === 'a1')
    expect(a1?.status).toBe('completed')
    expect(String((a1?.context?.callback_output as { o?: string } | undefined)?.o)).toHaveLength(39 * KB)
    expect(await invariantViolations(table, limitedClock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    // What settled is the node's output now: still no room for another one.
    expect(await completeOn(tokens[1] as string, { o: 'c'.repeat(39 * KB) })).toBe(413)
    expect(await completeOn(tokens[1] as string, { o: 'small' })).toBe(202)
    expect((await limited.runWorkflow(instanceId, { mode: 'due' })).status).toBe('running')
    expect((await limited.restartNode({ instanceId, nodeId: 'a1', run: false })).status).toBe('running')
  })

  it('refuses a completion that would take its node past the node limit with a 413 naming the output', async () => {
    workerOutput = 'w'.repeat(30 * KB)
    const { instanceId } = await limited.create({ workflowType: 'one-ask' })

    const refused = await limited
      .completeCallback(tokens[0] as string, { status: 'success', output: { o: 'c'.repeat(20 * KB) } })
      .catch((error: unknown) => error)

    expect(refused).toMatchObject({ httpStatus: 413, details: { field: 'output' } })
    expect((await limited.get(instanceId)).nodes.find((n) => n.id === 'a1')?.waiting?.reason).toBe(
      'waiting for a callback',
    )
    expect(await completeOn(tokens[0] as string, { o: 'c'.repeat(8 * KB) })).toBe(202)
    expect((await limited.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
  })

  it('fails the node for good, never storing it over its limit, when an early completion and the worker output do not fit together', async () => {
    workerOutput = 'w'.repeat(30 * KB)
    const answers: number[] = []
    answerEarly = async (token) => {
      answers.push(await completeOn(token, { o: 'c'.repeat(20 * KB) }))
    }
    const { instanceId } = await limited.create({ workflowType: 'one-ask' })
    expect(answers).toEqual([202])

    const result = await limited.runWorkflow(instanceId, { mode: 'due' })

    expect(result.status).toBe('failed')
    const a1 = (await limited.get(instanceId)).nodes.find((n) => n.id === 'a1')
    expect(a1?.status).toBe('failed')
    expect(a1?.context?.callback_output).toBeUndefined()
    expect(String((a1?.context?.system as { last_error?: string } | undefined)?.last_error)).toMatch(
      /PayloadTooLargeError: .*callback output.*node limit/,
    )
    expect(await invariantViolations(table, limitedClock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
