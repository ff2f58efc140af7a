import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow, type NodeSpec, type WorkflowSpec } from '../../src/core/builder.js'
import type { RunRequest } from '../../src/core/dispatch-ports.js'
import type { Engine, NodeDetail } from '../../src/core/engine.js'
import { IllegalStateError } from '../../src/core/errors.js'
import type { JsonValue } from '../../src/core/json.js'
import { silentLogger } from '../../src/core/ports.js'
import type { Worker } from '../../src/core/registry.js'
import type { HistoryEntry, InstanceStore } from '../../src/core/store.js'
import { runTick } from '../../src/core/tick.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import {
  CallLog,
  type FakeClock,
  newTestEngine,
  STORE_BACKENDS,
  type StoreBackend,
  TimerClock,
} from '../support/harness.js'

/**
 * Conditions, choices, join rules, failure modes and deadlines (README, "Conditions, choices, join rules and
 * deadlines"), end to end through the engine, on both stores and in both forms a workflow can take: the typed
 * builder (`defineWorkflow`) and the JSON config (snake_case) with workers registered separately.
 */

type Spec = WorkflowSpec<string>

/** The JSON config an author would write for `spec`, field by field. */
const configOf = (spec: Spec): Record<string, unknown> => ({
  id: spec.type,
  ...(spec.onFailure !== undefined ? { on_failure: spec.onFailure } : {}),
  ...(spec.timeoutSeconds !== undefined ? { timeout_seconds: spec.timeoutSeconds } : {}),
  nodes: Object.entries<NodeSpec<string>>(spec.nodes).map(([id, node]) => ({
    id,
    next_nodes: node.next ?? [],
    ...(node.failMaxCount !== undefined ? { fail_max_count: node.failMaxCount } : {}),
    ...(node.when !== undefined ? { when: node.when } : {}),
    ...(node.choice !== undefined ? { choice: node.choice } : {}),
    ...(node.trigger !== undefined ? { trigger: node.trigger } : {}),
    ...(node.optional !== undefined ? { optional: node.optional } : {}),
    ...(node.runTimeoutSeconds !== undefined ? { run_timeout_seconds: node.runTimeoutSeconds } : {}),
    ...(node.timeoutSeconds !== undefined ? { timeout_seconds: node.timeoutSeconds } : {}),
  })),
})

const FORMS = [
  { form: 'builder', register: (engine: Engine, spec: Spec) => engine.register(defineWorkflow(spec)) },
  {
    form: 'JSON config',
    register: (engine: Engine, spec: Spec) => {
      const definition = engine.registerWorkflow(configOf(spec))
      for (const [id, node] of Object.entries<NodeSpec<string>>(spec.nodes)) {
        engine.registerWorker(spec.type, id, node.check ? { run: node.run, check: node.check } : { run: node.run })
      }
      return definition
    },
  },
] as const

const ok =
  (key: string, value: JsonValue = true): Worker['run'] =>
  (ctx) =>
    ctx.set(key, value)
const waitForEvent: Worker['run'] = (ctx) => {
  if (!ctx.event) throw new NotReadyError(3600)
}
const fail: Worker['run'] = () => {
  throw new FailedWithFailedError('declined')
}

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend
  let engine: Engine
  let store: InstanceStore
  let clock: FakeClock
  let calls: CallLog
  /** Instances of this test: the tick reads the whole table's due index, where other tests' instances wait too. */
  let mine: Set<string>

  beforeAll(async () => {
    backend = await backendFactory.open('engine-control-flow')
  })

  const start = (clockOverride?: FakeClock) => {
    ;({ engine, store, clock } = newTestEngine(backend, clockOverride ? { clock: clockOverride } : {}))
    calls = new CallLog()
    mine = new Set()
  }

  beforeEach(() => start())

  const create = async (type: string, context: Record<string, unknown> = {}, run = true) => {
    const created = await engine.create({ workflowType: type, context, run })
    mine.add(created.instanceId)
    return created
  }
  const nodes = async (instanceId: string): Promise<Record<string, NodeDetail>> =>
    Object.fromEntries((await engine.get(instanceId)).nodes.map((node) => [node.id, node]))
  const statuses = async (instanceId: string) =>
    Object.fromEntries(Object.entries(await nodes(instanceId)).map(([id, node]) => [id, node.status]))
  const history = async (instanceId: string): Promise<HistoryEntry[]> =>
    (await engine.history(instanceId, { limit: 500 })).entries
  const lastError = (node: NodeDetail | undefined): string =>
    String((node?.context?.system as { last_error?: unknown } | undefined)?.last_error ?? '')
  const counted = (key: string, run: Worker['run']) => calls.wrap(key, { run }).run

  /** What runs on its own: the tick finds what is due, and each due instance gets a due pass (the run queue's). */
  const tick = async (): Promise<string[]> => {
    const sent: RunRequest[] = []
    const queue = {
      sendRuns: async (requests: readonly RunRequest[]) => {
        sent.push(...requests)
        return { failed: [] }
      },
    }
    await runTick({ store, queue, clock, logger: silentLogger }, { remainingTimeMs: 60_000 })
    const due = sent.map((request) => request.instanceId).filter((id) => mine.has(id))
    for (const id of due) await engine.runWorkflow(id, { mode: 'due' })
    return due
  }

  describe.each(FORMS)('in $form form', ({ register }) => {
    describe('conditions', () => {
      const audited = (): Spec => ({
        type: 'audited',
        nodes: {
          start: { next: ['audit', 'pay'], run: ok('started') },
          audit: { next: ['notify'], when: '$input.amount > 1000', run: counted('audit', ok('audited')) },
          pay: { next: ['notify'], run: ok('paid') },
          notify: { run: counted('notify', ok('notified')) },
        },
      })

      it('skips a branch whose condition is false while the join after it still runs', async () => {
        register(engine, audited())
        const { instanceId, status } = await create('audited', { amount: 10 })

        expect(status).toBe('completed')
        const after = await nodes(instanceId)
        expect(after.audit).toMatchObject({ status: 'skipped', skipReason: 'condition_false' })
        expect(calls.run('audit')).toBe(0)
        expect(after.audit?.context).toEqual({
          pre_node_context: { start: { started: true } },
          workflow_context: { amount: 10 },
        })
        expect(calls.run('notify')).toBe(1)
        // The skipped parent is left out of the join's context.
        expect(after.notify?.context?.pre_node_context).toEqual({ pay: { paid: true } })
        expect(await history(instanceId)).toContainEqual(
          expect.objectContaining({ kind: 'node', nodeId: 'audit', status: 'skipped', code: 'condition_false' }),
        )
      })

      it('runs the branch when the condition holds, and records the decision', async () => {
        register(engine, audited())
        const { instanceId } = await create('audited', { amount: 5000 })

        expect(await statuses(instanceId)).toMatchObject({ audit: 'completed', notify: 'completed' })
        expect(calls.run('audit')).toBe(1)
        expect(await history(instanceId)).toContainEqual(
          expect.objectContaining({ kind: 'decision', nodeId: 'audit', code: 'when:true' }),
        )
      })

      it('fails the node once, with the JSONata code and position, when the expression cannot be evaluated', async () => {
        register(engine, {
          type: 'broken-condition',
          onFailure: 'isolate',
          nodes: {
            start: { next: ['broken', 'other'], run: ok('started') },
            broken: { failMaxCount: 5, when: '$input.amount + "x" > 1', run: counted('broken', ok('ran')) },
            other: { run: ok('other') },
          },
        })
        const { instanceId, status } = await create('broken-condition', { amount: 1 })
        const second = await engine.runWorkflow(instanceId)

        expect(status).toBe('failed')
        expect(second.status).toBe('failed')
        const broken = (await nodes(instanceId)).broken
        expect(broken).toMatchObject({ status: 'failed', failCount: 1, calls: 0 })
        expect(lastError(broken)).toMatch(
          /^ExpressionFailedError: when: T2002 at position 15: The right side of the "\+" operator must/,
        )
        expect(calls.run('broken')).toBe(0)
        expect((await nodes(instanceId)).other?.status).toBe('completed')
      })

      it('fails the node when the condition returns something other than a boolean', async () => {
        register(engine, {
          type: 'counted-condition',
          nodes: { only: { when: '$input.count', run: counted('only', ok('ran')) } },
        })
        const { instanceId, status } = await create('counted-condition', { count: 3 })

        expect(status).toBe('failed')
        expect(lastError((await nodes(instanceId)).only)).toMatch(
          /EXPRESSION_NOT_BOOLEAN: expected true or false, got a number: 3/,
        )
        expect(calls.run('only')).toBe(0)
      })

      it('reads $now() from the engine clock', async () => {
        register(engine, {
          type: 'on-time',
          nodes: { noon: { when: '$now() = "2026-01-01T12:00:00.000Z"', run: counted('noon', ok('ran')) } },
        })
        const onTime = await create('on-time')
        clock.advanceSeconds(1)
        const late = await create('on-time')

        expect((await nodes(onTime.instanceId)).noon?.status).toBe('completed')
        expect((await nodes(late.instanceId)).noon).toMatchObject({ status: 'skipped', skipReason: 'condition_false' })
        expect(calls.run('noon')).toBe(1)
      })
    })

    describe('join rules', () => {
      it('decides a join only after every parent is terminal: one slow, one skipped', async () => {
        register(engine, {
          type: 'slow-join',
          nodes: {
            start: { next: ['slow', 'skipped'], run: ok('started') },
            slow: { next: ['any', 'strict'], run: ok('asked'), check: waitForEvent },
            skipped: { next: ['any', 'strict'], when: 'false', run: ok('never') },
            any: { run: counted('any', ok('joined')) },
            strict: { trigger: 'all_success', run: counted('strict', ok('joined')) },
          },
        })
        const { instanceId } = await create('slow-join')
        const waiting = await statuses(instanceId)
        await engine.addNodeEvent({ instanceId, nodeId: 'slow', eventTs: 1, content: { ok: true } })
        const pass = await engine.runWorkflow(instanceId)

        expect(waiting).toMatchObject({ slow: 'pending', skipped: 'skipped', any: 'uncreated', strict: 'uncreated' })
        expect(pass.status).toBe('completed')
        const after = await nodes(instanceId)
        expect(after.any?.status).toBe('completed')
        expect(after.any?.context?.pre_node_context).toEqual({ slow: { asked: true, node_event: expect.any(Object) } })
        expect(after.strict).toMatchObject({ status: 'skipped', skipReason: 'upstream_skipped' })
        expect(calls.run('strict')).toBe(0)
      })

      it('cascades all_success skips, while the default rule runs on any completed parent', async () => {
        register(engine, {
          type: 'cascade',
          nodes: {
            start: { next: ['gate', 'side'], run: ok('started') },
            gate: { next: ['strict'], when: 'false', run: ok('never') },
            strict: { next: ['stricter', 'lenient'], trigger: 'all_success', run: ok('never') },
            side: { next: ['stricter', 'lenient'], run: ok('side') },
            stricter: { trigger: 'all_success', run: counted('stricter', ok('never')) },
            lenient: { run: counted('lenient', ok('ran')) },
          },
        })
        const { instanceId, status } = await create('cascade')

        expect(status).toBe('completed')
        expect(await nodes(instanceId)).toMatchObject({
          gate: { status: 'skipped', skipReason: 'condition_false' },
          strict: { status: 'skipped', skipReason: 'upstream_skipped' },
          stricter: { status: 'skipped', skipReason: 'upstream_skipped' },
          lenient: { status: 'completed' },
        })
        expect(calls.run('stricter')).toBe(0)
        expect(calls.run('lenient')).toBe(1)
      })
    })

    describe('failure modes', () => {
      /** `bad` fails for good while `good` waits for an event; `cleanup` runs whatever happened. */
      const branches = (onFailure: 'fail_fast' | 'isolate'): Spec => ({
        type: `branches-${onFailure}`,
        onFailure,
        nodes: {
          start: { next: ['bad', 'good'], run: ok('started') },
          bad: { next: ['afterBad'], run: fail },
          afterBad: { next: ['cleanup'], run: counted('afterBad', ok('never')) },
          good: { next: ['afterGood'], run: ok('asked'), check: waitForEvent },
          afterGood: { next: ['cleanup'], run: counted('afterGood', ok('done')) },
          cleanup: { trigger: 'all_done', run: counted('cleanup', ok('cleaned')) },
        },
      })

      it('fail_fast fails the instance at once: what runs is canceled, nothing new starts', async () => {
        register(engine, branches('fail_fast'))
        const { instanceId, status } = await create('branches-fail_fast')

        expect(status).toBe('failed')
        expect(await statuses(instanceId)).toMatchObject({
          bad: 'failed',
          good: 'canceled',
          afterBad: 'uncreated',
          afterGood: 'uncreated',
          cleanup: 'uncreated',
        })
        expect(calls.run('cleanup')).toBe(0)
        expect((await engine.get(instanceId)).failure).toMatchObject({ nodeId: 'bad' })
      })

      it('isolate skips what depends on the failure, finishes the rest, runs all_done nodes, then fails', async () => {
        register(engine, branches('isolate'))
        const { instanceId, status } = await create('branches-isolate')
        const meanwhile = await statuses(instanceId)
        await engine.addNodeEvent({ instanceId, nodeId: 'good', eventTs: 1, content: { ok: true } })
        const pass = await engine.runWorkflow(instanceId)

        expect(status).toBe('running')
        expect(meanwhile).toMatchObject({ bad: 'failed', afterBad: 'skipped', good: 'pending', cleanup: 'uncreated' })
        expect(pass.status).toBe('failed')
        const after = await nodes(instanceId)
        expect(after.afterBad).toMatchObject({ status: 'skipped', skipReason: 'upstream_failed' })
        expect(after.afterGood?.status).toBe('completed')
        expect(after.cleanup?.status).toBe('completed')
        expect(after.cleanup?.context?.pre_node_context).toEqual({ afterGood: { done: true } })
        expect(calls.run('afterBad')).toBe(0)
        expect((await engine.get(instanceId)).failure).toMatchObject({
          nodeId: 'bad',
          reason: expect.stringMatching(/declined/),
        })
      })

      it('lets an optional node fail without failing the instance; its successors see it failed', async () => {
        register(engine, {
          type: 'optional-audit',
          nodes: {
            audit: { next: ['report'], optional: true, run: fail },
            report: { when: '$nodes.audit.status = "failed"', run: counted('report', ok('reported')) },
          },
        })
        const { instanceId, status } = await create('optional-audit')

        expect(status).toBe('completed')
        const after = await nodes(instanceId)
        expect(after.audit).toMatchObject({ status: 'failed', optional: true })
        expect(after.report?.status).toBe('completed')
        expect((await engine.get(instanceId)).failure).toBeUndefined()
      })
    })

    describe('exclusive choice', () => {
      const review = (fallback: string | null): Spec => ({
        type: `review-${fallback ?? 'none'}`,
        nodes: {
          review: {
            next: ['approve', 'reject', 'escalate'],
            run: (ctx) => ctx.set('decision', ctx.getString('workflow_context', 'decision') ?? ''),
            choice: [
              { when: '$output.decision = "approve"', next: 'approve' },
              { when: '$output.decision = "reject"', next: 'reject' },
              { when: '$output.decision = "escalate"', next: 'escalate' },
              { default: fallback },
            ],
          },
          approve: { next: ['notify'], run: counted('approve', ok('approved')) },
          reject: { next: ['notify'], run: counted('reject', ok('rejected')) },
          escalate: { next: ['notify'], run: counted('escalate', ok('escalated')) },
          notify: { run: counted('notify', ok('notified')) },
        },
      })
      const OUTPUTS: Record<string, string> = { approve: 'approved', reject: 'rejected', escalate: 'escalated' }

      it.each([
        { decision: 'approve', taken: 'approve', code: 'choice[0]:approve' },
        { decision: 'reject', taken: 'reject', code: 'choice[1]:reject' },
        { decision: 'maybe', taken: 'escalate', code: 'choice.default:escalate' },
      ])('takes $taken for $decision and skips the other branches', async ({ decision, taken, code }) => {
        register(engine, review('escalate'))
        const { instanceId, status } = await create('review-escalate', { decision })

        expect(status).toBe('completed')
        const after = await nodes(instanceId)
        expect(after.review?.chosen).toBe(taken)
        for (const branch of ['approve', 'reject', 'escalate']) {
          if (branch === taken) expect(after[branch]?.status).toBe('completed')
          else expect(after[branch]).toMatchObject({ status: 'skipped', skipReason: 'not_chosen' })
          expect(calls.run(branch)).toBe(branch === taken ? 1 : 0)
        }
        expect(after.notify?.context?.pre_node_context).toEqual({ [taken]: { [OUTPUTS[taken] as string]: true } })
        expect(await history(instanceId)).toContainEqual(
          expect.objectContaining({ kind: 'decision', nodeId: 'review', code }),
        )
      })

      it('takes no branch with a null default; the join after them is skipped, and the instance completes', async () => {
        register(engine, review(null))
        const { instanceId, status } = await create('review-none', { decision: 'maybe' })

        expect(status).toBe('completed')
        const after = await nodes(instanceId)
        expect(after.review?.chosen).toBeNull()
        for (const branch of ['approve', 'reject', 'escalate']) {
          expect(after[branch]).toMatchObject({ status: 'skipped', skipReason: 'not_chosen' })
        }
        // Its parents were skipped: the join after them sees skipped predecessors, not an edge left untaken.
        expect(after.notify).toMatchObject({ status: 'skipped', skipReason: 'upstream_skipped' })
        expect(after.end?.status).toBe('completed')
      })

      it('runs a target the choice did not take when another path reaches it', async () => {
        register(engine, {
          type: 'two-paths',
          nodes: {
            start: { next: ['review', 'archive'], run: ok('started') },
            review: {
              next: ['approve', 'archive'],
              run: ok('decision', 'approve'),
              choice: [{ when: '$output.decision = "approve"', next: 'approve' }, { default: 'archive' }],
            },
            approve: { run: ok('approved') },
            archive: { run: counted('archive', ok('archived')) },
          },
        })
        const { instanceId } = await create('two-paths')

        expect(await statuses(instanceId)).toMatchObject({ approve: 'completed', archive: 'completed' })
        expect(calls.run('archive')).toBe(1)
      })

      it('fails the deciding node once when a rule cannot be evaluated', async () => {
        register(engine, {
          type: 'broken-choice',
          nodes: {
            review: {
              next: ['a', 'b'],
              failMaxCount: 5,
              run: counted('review', ok('decision', 'x')),
              choice: [{ when: '$output.decision', next: 'a' }, { default: 'b' }],
            },
            a: { run: ok('a') },
            b: { run: ok('b') },
          },
        })
        const { instanceId, status } = await create('broken-choice')

        expect(status).toBe('failed')
        const review = (await nodes(instanceId)).review
        expect(review).toMatchObject({ status: 'failed', failCount: 1 })
        expect(review?.chosen).toBeUndefined()
        expect(lastError(review)).toMatch(/choice\[0\]\.when: EXPRESSION_NOT_BOOLEAN/)
        expect(calls.run('review')).toBe(1)
      })
    })

    describe('restarts', () => {
      it('evaluates a choice again when its node is restarted, reopening the branch it skipped', async () => {
        let decision = 'approve'
        register(engine, {
          type: 'redecide',
          nodes: {
            review: {
              next: ['approve', 'reject'],
              run: (ctx) => ctx.set('decision', decision),
              choice: [{ when: '$output.decision = "approve"', next: 'approve' }, { default: 'reject' }],
            },
            approve: { next: ['notify'], run: counted('approve', ok('approved')) },
            reject: { next: ['notify'], run: counted('reject', ok('rejected')) },
            notify: { run: counted('notify', ok('notified')) },
          },
        })
        const { instanceId } = await create('redecide')
        const first = await statuses(instanceId)
        decision = 'reject'
        const restarted = await engine.restartNode({ instanceId, nodeId: 'review', force: true, run: true })

        expect(first).toMatchObject({ approve: 'completed', reject: 'skipped' })
        expect(restarted.status).toBe('completed')
        const after = await nodes(instanceId)
        expect(after.review?.chosen).toBe('reject')
        expect(after.reject?.status).toBe('completed')
        expect(after.approve).toMatchObject({ status: 'skipped', skipReason: 'not_chosen' })
        expect(calls.run('reject')).toBe(1)
        expect(calls.run('notify')).toBe(2)
      })

      it('reopens the nodes skipped downstream of the failure when an isolate instance restarts', async () => {
        let declined = true
        register(engine, {
          type: 'retry-isolated',
          onFailure: 'isolate',
          nodes: {
            pay: {
              next: ['ship'],
              run: (ctx) => {
                if (declined) throw new FailedWithFailedError('declined')
                ctx.set('paid', true)
              },
            },
            ship: { run: counted('ship', ok('shipped')) },
          },
        })
        const { instanceId, status } = await create('retry-isolated')
        const failed = await nodes(instanceId)
        declined = false
        const restarted = await engine.restartInstance({ instanceId, run: true })

        expect(status).toBe('failed')
        expect(failed.ship).toMatchObject({ status: 'skipped', skipReason: 'upstream_failed' })
        expect(restarted.status).toBe('completed')
        expect(await statuses(instanceId)).toMatchObject({ pay: 'completed', ship: 'completed' })
        expect(calls.run('ship')).toBe(1)
      })

      it('skips a node waiting to restart when the instance fails first, and restarts it with the instance', async () => {
        let declined = false
        register(engine, {
          type: 'not-started',
          nodes: {
            pay: {
              next: ['ship'],
              run: () => {
                if (declined) throw new FailedWithFailedError('declined')
              },
            },
            ship: { run: counted('ship', ok('shipped')) },
            hold: { run: ok('held'), check: waitForEvent },
          },
        })
        const { instanceId } = await create('not-started')
        declined = true
        // pay and ship restart; pay fails for good before ship could start again.
        const restarted = await engine.restartNode({ instanceId, nodeId: 'pay', run: true })
        const failed = await nodes(instanceId)
        declined = false
        await engine.restartInstance({ instanceId, run: true })

        expect(restarted.status).toBe('failed')
        expect(failed.ship).toMatchObject({ status: 'skipped', skipReason: 'not_started' })
        expect(failed.hold?.status).toBe('canceled')
        expect(await statuses(instanceId)).toMatchObject({ pay: 'completed', ship: 'completed', hold: 'pending' })
        expect(calls.run('ship')).toBe(2)
      })
    })

    describe('deadlines, with nobody running the instance but the tick', () => {
      it('ends an instance past its timeout timed_out, with no wake-up left, listable and countable', async () => {
        register(engine, {
          type: 'expiring',
          timeoutSeconds: 60,
          nodes: { hold: { next: ['after'], run: ok('held'), check: waitForEvent }, after: { run: ok('after') } },
        })
        const { instanceId } = await create('expiring', {}, false)
        const startedAt = clock.nowMs()
        await tick()
        const waiting = await engine.get(instanceId)
        clock.advanceSeconds(59)
        const early = await tick()
        clock.advanceSeconds(1)
        const due = await tick()

        expect(waiting).toMatchObject({
          status: 'running',
          deadlineAtMs: startedAt + 60_000,
          dueAtMs: startedAt + 60_000,
        })
        expect(early).toEqual([])
        expect(due).toEqual([instanceId])
        const detail = await engine.get(instanceId)
        expect(detail).toMatchObject({
          status: 'timed_out',
          failure: { reason: expect.stringMatching(/timeout_seconds/) },
        })
        expect(detail.dueAtMs).toBeUndefined()
        expect(await statuses(instanceId)).toMatchObject({ hold: 'canceled', after: 'uncreated' })
        const listed = await engine.list({ workflowType: 'expiring', status: ['timed_out'] })
        expect(listed.items.map((item) => item.id)).toContain(instanceId)
        expect((await engine.count({ workflowType: 'expiring', status: ['timed_out'] })).count).toBeGreaterThan(0)
        await expect(engine.addNodeEvent({ instanceId, nodeId: 'hold', eventTs: 1, content: {} })).rejects.toThrow(
          IllegalStateError,
        )
        expect(await history(instanceId)).toContainEqual(
          expect.objectContaining({ kind: 'finished', status: 'timed_out' }),
        )
      })

      it('restarts a timed-out instance with its deadline counted from the restart', async () => {
        register(engine, {
          type: 'expiring-again',
          timeoutSeconds: 60,
          nodes: { hold: { run: ok('held'), check: waitForEvent } },
        })
        const { instanceId } = await create('expiring-again')
        clock.advanceSeconds(60)
        await tick()
        clock.advanceSeconds(100)
        const restarted = await engine.restartInstance({ instanceId })
        const detail = await engine.get(instanceId)
        await tick()

        expect(restarted.status).toBe('running')
        expect(detail.deadlineAtMs).toBe(clock.nowMs() + 60_000)
        expect(await statuses(instanceId)).toMatchObject({ hold: 'pending' })
        clock.advanceSeconds(60)
        await tick()
        expect((await engine.get(instanceId)).status).toBe('timed_out')
      })

      it('fails a node past its own timeout, unpolled, with the reason', async () => {
        register(engine, {
          type: 'slow-node',
          nodes: { hold: { timeoutSeconds: 120, run: ok('held'), check: counted('hold-check', waitForEvent) } },
        })
        const { instanceId } = await create('slow-node', {}, false)
        await tick()
        const createdAt = clock.nowMs()
        const waiting = (await nodes(instanceId)).hold
        clock.advanceSeconds(120)
        await tick()

        expect(waiting).toMatchObject({ status: 'pending', deadlineAtMs: createdAt + 120_000 })
        expect((await engine.get(instanceId)).status).toBe('failed')
        const hold = (await nodes(instanceId)).hold
        expect(hold).toMatchObject({ status: 'failed', failCount: 1 })
        expect(hold?.context?.reason).toMatch(/timeout_seconds exceeded: node 'hold' did not complete within 120 s/)
        expect(calls.run('hold-check')).toBe(1)
      })
    })
  })

  describe('deadlines inside a running attempt', () => {
    let timers: TimerClock
    beforeEach(() => {
      timers = new TimerClock()
      start(timers)
    })

    /** A worker that hangs past `seconds` on the test's clock, then waits for its signal. */
    const hangs =
      (seconds: number, seen: (AbortSignal | undefined)[]): Worker['run'] =>
      async (ctx) => {
        timers.advanceSeconds(seconds)
        seen.push(ctx.signal)
        if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
      }

    it('aborts an attempt past run_timeout_seconds: a counted failure, retried by the node policy', async () => {
      const seen: (AbortSignal | undefined)[] = []
      let attempts = 0
      engine.register(
        defineWorkflow({
          type: 'bounded-attempt',
          nodes: {
            call: {
              runTimeoutSeconds: 30,
              run: async (ctx) => {
                attempts += 1
                if (attempts === 1) await hangs(31, seen)(ctx)
                ctx.set('answered', attempts)
              },
            },
          },
        }),
      )
      const { instanceId } = await create('bounded-attempt', {}, false)
      await tick()
      const failed = (await nodes(instanceId)).call
      timers.advanceMs(Math.max(0, (failed?.nextAttemptAtMs ?? 0) - timers.nowMs()))
      await tick()

      expect(seen[0]?.aborted).toBe(true)
      expect(seen[0]?.reason).toMatchObject({ name: 'DeadlineExceededError', kind: 'run' })
      expect(failed).toMatchObject({ status: 'running', failCount: 1 })
      expect(lastError(failed)).toMatch(/run_timeout_seconds exceeded: the attempt ran more than 30 s/)
      expect((await engine.get(instanceId)).status).toBe('completed')
      expect((await nodes(instanceId)).call?.context?.answered).toBe(2)
    })

    it('times the instance out while a worker runs: its signal fires and the instance ends timed_out', async () => {
      const seen: (AbortSignal | undefined)[] = []
      engine.register(
        defineWorkflow({
          type: 'instance-bound',
          timeoutSeconds: 10,
          nodes: { call: { next: ['after'], run: hangs(11, seen) }, after: { run: ok('after') } },
        }),
      )
      const { instanceId, status } = await create('instance-bound')

      expect(status).toBe('timed_out')
      expect(seen[0]?.reason).toMatchObject({ name: 'DeadlineExceededError', kind: 'instance' })
      expect(await statuses(instanceId)).toMatchObject({ call: 'canceled', after: 'uncreated' })
      expect((await engine.get(instanceId)).dueAtMs).toBeUndefined()
    })
  })

  describe('an instance that failed before its deadline', () => {
    let timers: TimerClock
    beforeEach(() => {
      timers = new TimerClock()
      start(timers)
    })

    it('stays failed when a canceled sibling still running passes the instance deadline', async () => {
      engine.register(
        defineWorkflow({
          type: 'failed-first',
          timeoutSeconds: 10,
          nodes: {
            bad: { run: fail },
            slow: {
              run: async (ctx) => {
                // Past the failure of its sibling, the worker is still running when the deadline comes.
                await new Promise((resolve) => setTimeout(resolve, 10))
                timers.advanceSeconds(11)
                if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
              },
            },
          },
        }),
      )
      const { instanceId, status } = await create('failed-first')

      expect(status).toBe('failed')
      expect(await engine.get(instanceId)).toMatchObject({ status: 'failed', failure: { nodeId: 'bad' } })
      expect((await nodes(instanceId)).slow?.status).toBe('canceled')
    })
  })

  it('never runs a skipped node, and refuses an event for it', async () => {
    engine.register(
      defineWorkflow({
        type: 'never',
        nodes: { only: { when: 'false', run: counted('only', ok('ran')) } },
      }),
    )
    const { instanceId } = await create('never')
    await engine.runWorkflow(instanceId)

    expect(calls.run('only')).toBe(0)
    await expect(engine.addNodeEvent({ instanceId, nodeId: 'only', eventTs: 1, content: {} })).rejects.toThrow(
      IllegalStateError,
    )
  })

  it('decides a condition on a predecessor output a later lease has not read yet, with that output', async () => {
    // The report's output is larger than a node record keeps inline: on DynamoDB it has an item of its own, which a
    // lease reads only when a node needs it. The gate is decided in the lease the approval's event starts.
    const text = 'x'.repeat(6000)
    engine.register(
      defineWorkflow({
        type: 'late-gate',
        nodes: {
          start: { next: ['report', 'approval'], run: ok('started') },
          report: { next: ['gate'], run: ok('verdict', { approved: true, text }) },
          approval: { next: ['gate'], run: waitForEvent },
          gate: {
            when: '$nodes.report.output.verdict.approved = true and $length($nodes.report.output.verdict.text) = 6000',
            run: counted('gate', (ctx) => {
              const verdict = ctx.predecessor('report')?.verdict as { text?: string } | undefined
              ctx.set('seen', verdict?.text?.length ?? 0)
            }),
          },
        },
      }),
    )
    const { instanceId, status } = await create('late-gate')
    expect(status).toBe('running')

    await engine.addNodeEvent({ instanceId, nodeId: 'approval', eventTs: 1, content: { ok: true } })
    await engine.runWorkflow(instanceId)

    const after = await nodes(instanceId)
    expect(after.gate?.status).toBe('completed')
    expect(calls.run('gate')).toBe(1)
    expect(after.gate?.context?.seen).toBe(6000)
    expect((await engine.get(instanceId)).status).toBe('completed')
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect(
      (await backend.violations(clock.nowMs(), { instanceIds: mine })).map((violation) => violation.message),
    ).toEqual([])
  })
})
