import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ApiEvent, createApiHandler } from '../../src/api/handler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { apiEvent, lambdaContext, type RequestOptions } from '../support/api-events.js'
import { type FakeClock, memoryBackend, newTestEngine, type StoreBackend, sequentialIds } from '../support/harness.js'

/**
 * Conditions, choices, join rules and deadlines through the HTTP API: what the detail, the graph, the history, the
 * types route, the lists and the restart show of them (MemoryStore: the engine specs cover both stores).
 */

const review = defineWorkflow({
  type: 'expense',
  timeoutSeconds: 3600,
  nodes: {
    submit: {
      next: ['review', 'audit'],
      run: (ctx) => ctx.set('amount', ctx.getNumber('workflow_context', 'amount') ?? 0),
    },
    review: {
      next: ['approve', 'reject'],
      run: (ctx) =>
        ctx.set('decision', (ctx.getNumber('workflow_context', 'amount') ?? 0) < 100 ? 'approve' : 'reject'),
      choice: [{ when: '$output.decision = "approve"', next: 'approve' }, { default: 'reject' }],
    },
    audit: {
      next: ['notify'],
      when: '$input.amount > 1000',
      optional: true,
      runTimeoutSeconds: 30,
      run: () => {
        throw new FailedWithFailedError('auditor away')
      },
    },
    approve: { next: ['notify'], run: (ctx) => ctx.set('paid', true) },
    reject: { next: ['notify'], run: (ctx) => ctx.set('refused', true) },
    notify: { trigger: 'all_done', timeoutSeconds: 600, run: (ctx) => ctx.set('notified', true) },
  },
})

const expiring = defineWorkflow({
  type: 'expiring',
  timeoutSeconds: 60,
  nodes: {
    hold: {
      run: () => {},
      check: (ctx) => {
        if (!ctx.event) throw new NotReadyError(3600)
      },
    },
  },
})

let backend: StoreBackend
let clock: FakeClock
let handler: ReturnType<typeof createApiHandler>

beforeAll(async () => {
  backend = await memoryBackend.open('cf')
  const { engine, clock: engineClock } = newTestEngine(backend, { ids: sequentialIds('cf') })
  clock = engineClock
  engine.register(review)
  engine.register(expiring)
  handler = createApiHandler({ engine, logger: { log: () => {} }, clock, sleep: async () => {}, waitPollMs: 1000 })
})

const call = async (method: string, path: string, options?: RequestOptions) => {
  const result = await handler(apiEvent(method, path, options) as ApiEvent, lambdaContext())
  const text = result.body ?? ''
  const json = /^application\/json/.test(String(result.headers?.['content-type'] ?? ''))
  return { status: result.statusCode ?? 0, text, body: json ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

type Node = { id: string; status: string; skipReason?: string; chosen?: string | null; optional?: true }

const createExpense = async (amount: number) => {
  const reply = await call('POST', '/workflows', { body: { workflowType: 'expense', context: { amount } } })
  expect(reply.status).toBe(201)
  return reply.body.instanceId as string
}

describe('an instance with conditions and a choice, through the API', () => {
  it('shows skip reasons, the choice taken and optional nodes in its detail', async () => {
    const id = await createExpense(50)
    const detail = (await call('GET', `/workflows/${id}`)).body as { status: string; nodes: Node[] }
    const byId = Object.fromEntries(detail.nodes.map((node) => [node.id, node]))

    expect(detail.status).toBe('completed')
    expect(byId.review).toMatchObject({ status: 'completed', chosen: 'approve' })
    expect(byId.reject).toMatchObject({ status: 'skipped', skipReason: 'not_chosen' })
    expect(byId.audit).toMatchObject({ status: 'skipped', skipReason: 'condition_false', optional: true })
    expect(byId.notify?.status).toBe('completed')
  })

  it('draws the graph with skipped nodes, the edge taken, the rules and a failed optional node', async () => {
    const id = await createExpense(5000)
    const graph = (await call('GET', `/workflows/${id}/graph`)).text

    expect(graph).toContain('failed_optional')
    expect(graph).toContain('skipped: not_chosen')
    // With the instance's definition: the condition and the choice's rules are drawn too.
    expect(graph).toContain('when: $input.amount #gt; 1000')
    expect(graph).toMatch(/==>\|"default"\|/)
    expect(graph).toMatch(/-\.->\|"1: \$output\.decision = #quot;approve#quot;"\|/)
  })

  it('records each decision in the history', async () => {
    const id = await createExpense(50)
    const items = ((await call('GET', `/workflows/${id}/history`)).body.items ?? []) as Record<string, unknown>[]

    expect(items).toContainEqual(
      expect.objectContaining({ kind: 'decision', nodeId: 'review', code: 'choice[0]:approve' }),
    )
    expect(items).toContainEqual(
      expect.objectContaining({ kind: 'node', nodeId: 'audit', status: 'skipped', code: 'condition_false' }),
    )
  })

  it('describes the rules of a workflow type', async () => {
    const type = (await call('GET', '/workflow-types/expense')).body as {
      onFailure: string
      timeoutSeconds?: number
      nodes: Record<string, unknown>[]
    }
    const node = (id: string) => type.nodes.find((item) => item.id === id)

    expect(type).toMatchObject({ onFailure: 'fail_fast', timeoutSeconds: 3600 })
    expect(node('audit')).toMatchObject({
      when: '$input.amount > 1000',
      optional: true,
      runTimeoutSeconds: 30,
      trigger: 'none_failed_min_one_success',
    })
    expect(node('review')?.choice).toEqual([
      { when: '$output.decision = "approve"', next: 'approve' },
      { default: 'reject' },
    ])
    expect(node('notify')).toMatchObject({ trigger: 'all_done', timeoutSeconds: 600 })
  })
})

describe('a timed-out instance, through the API', () => {
  it('is listed and counted by its status, refuses a cancel and restarts like a failed one', async () => {
    const created = await call('POST', '/workflows', { body: { workflowType: 'expiring' } })
    const id = created.body.instanceId as string
    clock.advanceSeconds(61)
    const run = await call('POST', `/workflows/${id}/run`, { body: { mode: 'due' } })
    const listed = await call('GET', '/workflows', { query: { workflowType: 'expiring', status: 'timed_out' } })
    const counted = await call('GET', '/workflows/count', { query: { workflowType: 'expiring', status: 'timed_out' } })
    const cancel = await call('POST', `/workflows/${id}/cancel`)
    const restart = await call('POST', `/workflows/${id}/restart`, { body: {} })

    expect(run.body).toMatchObject({ status: 'timed_out' })
    expect((listed.body.items as { id: string }[]).map((item) => item.id)).toEqual([id])
    expect(counted.body).toMatchObject({ count: 1, complete: true })
    expect(cancel.status).toBe(409)
    expect(restart.status).toBe(200)
    expect(restart.body).toMatchObject({ status: 'running' })
    expect((await call('GET', `/workflows/${id}`)).body).toMatchObject({ deadlineAtMs: clock.nowMs() + 60_000 })
  })

  it('lists every status at once', async () => {
    const all = 'init,running,completed,failed,canceled,timed_out'
    expect((await call('GET', '/workflows', { query: { workflowType: 'expiring', status: all } })).status).toBe(200)
  })
})

// After every test, whatever it drove (passes, timeouts, restarts): every non-terminal instance is due, leased, or
// parked with a reason.
afterEach(async () => {
  expect(await backend.violations(clock.nowMs())).toEqual([])
})
