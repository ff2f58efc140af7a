import { beforeAll, describe, expect, it } from 'vitest'
import type { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import type { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { CallbackGoneError } from '../../src/core/callbacks.js'
import type { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import type { HistoryEntry, NodeRecord } from '../../src/core/store.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { type FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend, TimerClock } from '../support/harness.js'
import { assertInvariant } from '../support/invariant.js'

/**
 * A worker that asks for a callback and then fails — throws, or runs past its run timeout — after its provider
 * completed the callback at once (README, "Callbacks"): the provider was told the completion is stored (202), so it
 * is the attempt's outcome, as when the worker returns after asking. Without a completion, the worker's own failure
 * is the outcome: counted, retried or failing for good as it says. A completion after that failure is stored is
 * refused (410). A worker that says its node is not ready after asking is polled again as it says, unless its callback
 * was completed before that was stored.
 */
const SECRET = 'the-failed-after-callback-secret-0123456789'

/** What the provider answers at once, from inside the worker's call; undefined: nothing. */
type Answer = { status: 'success'; output?: unknown } | { status: 'failure'; error?: string } | undefined

describe.each(STORE_BACKENDS)('on $name', (factory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await factory.open('failed-after-callback')
  })

  const check = async (clock: FakeClock, instanceId: string, step: string) => {
    const source = backend.store() as DynamoDbStore | MemoryStore
    await assertInvariant(source, clock.nowMs(), { instanceIds: [instanceId], context: step })
  }

  /** An engine that issues callback tokens, on a clock whose timers fire when it is moved past them. */
  const callbackEngine = () => {
    const clock = new TimerClock()
    const { engine } = newTestEngine(backend, { clock, callbacks: { tokens: callbackTokens([SECRET]) } })
    return { engine, clock }
  }

  /** `pay` asks for a callback, its provider answers `answer` at once, and then the worker fails as `fail` says. */
  const setUp = (type: string, answer: Answer, fail: 'throw' | 'fail for good' | 'run timeout' | 'not ready') => {
    const { engine, clock } = callbackEngine()
    const runs: string[] = []
    const answered: unknown[] = []
    let engineRef: Engine | undefined
    engine.register(
      defineWorkflow({
        type,
        nodes: {
          pay: {
            next: ['after'],
            failMaxCount: 3,
            ...(fail === 'run timeout' ? { runTimeoutSeconds: 10 } : {}),
            run: async (ctx: NodeContext) => {
              const { token } = await ctx.callback({ timeoutSeconds: 3600 })
              runs.push(token)
              if (answer && runs.length === 1) {
                answered.push(await (engineRef as Engine).completeCallback(token, answer as never))
              }
              if (runs.length > 1) return // a retry: it waits for its callback
              if (fail === 'throw') throw new TypeError('the ledger write failed')
              if (fail === 'fail for good') throw new FailedWithFailedError('card blocked')
              if (fail === 'not ready') throw new NotReadyError(30, { message: 'the ledger is busy' })
              // Past its run timeout: the attempt is aborted at 10 s.
              clock.advanceSeconds(11)
              await new Promise((resolve) => setTimeout(resolve, 20))
            },
          },
          after: { run: () => {} },
        },
      }),
    )
    engineRef = engine
    return { engine, clock, runs, answered }
  }

  /** A completion sent now is refused (410) for `reason`, and nothing is stored. */
  const refusedLate = async (engine: Engine, clock: FakeClock, instanceId: string, token: string, reason: string) => {
    const late = await engine
      .completeCallback(token, { status: 'success', output: { late: 1 } })
      .catch((error: unknown) => error)
    expect(late).toBeInstanceOf(CallbackGoneError)
    expect((late as Error).message).toBe(`this callback can no longer be completed: ${reason}`)
    await check(clock, instanceId, 'after the refused completion')
  }

  const payOf = async (instanceId: string) => (await backend.store().getInstance(instanceId))?.nodes.pay as NodeRecord
  const errorsOf = async (engine: Engine, instanceId: string): Promise<HistoryEntry[]> =>
    (await engine.history(instanceId)).entries.filter((entry) => entry.kind === 'error' && entry.nodeId === 'pay')

  it.each(['throw', 'run timeout'] as const)(
    'applies a success completed before the worker failed (%s): the step completes, counted once',
    async (fail) => {
      const type = `failed-after-success-${fail.replace(' ', '-')}`
      const { engine, clock, runs, answered } = setUp(type, { status: 'success', output: { paid: 1 } }, fail)
      const { instanceId } = await engine.create({ workflowType: type })
      await check(clock, instanceId, 'after the pass whose worker failed')
      expect(answered).toEqual([{ accepted: true, status: 'success' }])

      clock.advanceSeconds(2)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      await check(clock, instanceId, 'after the pass that applies the completion')

      const pay = await payOf(instanceId)
      expect(pay.status).toBe('completed')
      expect(pay.output).toMatchObject({ callback_output: { paid: 1 } })
      expect(pay.failCount ?? 0).toBe(0)
      expect(runs).toHaveLength(1)
      expect(await errorsOf(engine, instanceId)).toEqual([])
      expect((await engine.get(instanceId)).status).toBe('completed')
    },
  )

  it('applies a failure completed before the worker threw: one failed attempt, its error the completion', async () => {
    const type = 'failed-after-failure'
    const { engine, clock, runs } = setUp(type, { status: 'failure', error: 'CardDeclined' }, 'throw')
    const { instanceId } = await engine.create({ workflowType: type })
    clock.advanceSeconds(2)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the pass that applies the completion')

    const pay = await payOf(instanceId)
    expect(pay.failCount).toBe(1)
    expect(pay.lastError).toMatch(/CallbackFailedError: CardDeclined/)
    // Retried by the node's policy: its next attempt asked for a new callback.
    clock.advanceSeconds(600)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the retry')
    expect(runs).toHaveLength(2)
  })

  it.each(['throw', 'fail for good'] as const)(
    'stores the worker’s own failure (%s) when nothing completed the callback, and refuses a later completion',
    async (fail) => {
      const type = `failed-alone-${fail.replaceAll(' ', '-')}`
      const { engine, clock, runs } = setUp(type, undefined, fail)
      const { instanceId } = await engine.create({ workflowType: type })
      await check(clock, instanceId, 'after the pass whose worker failed')
      // The failure was stored: the wait is closed, a completion now is refused, nothing is stored. Said so, without
      // the failure's own text: the callbacks route answers anyone who holds the token.
      await refusedLate(engine, clock, instanceId, runs[0] as string, 'the worker that asked for it failed')

      clock.advanceSeconds(2)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      await check(clock, instanceId, 'after the pass that times the closed wait out')

      const pay = await payOf(instanceId)
      expect(pay.output ?? {}).not.toHaveProperty('callback_output')
      const later = await engine
        .completeCallback(runs[0] as string, { status: 'success', output: { later: 1 } })
        .catch((error: unknown) => error)
      expect((later as Error).message).toMatch(/the worker that asked for it failed$/)
      const errors = await errorsOf(engine, instanceId)
      expect(errors).toHaveLength(1)
      if (fail === 'throw') {
        expect(pay.lastError).toBe('TypeError: the ledger write failed')
        expect(pay.failCount).toBe(1)
        expect(pay.status).not.toBe('failed')
      } else {
        expect(pay.lastError).toBe('FailedWithFailedError: card blocked')
        expect(pay.status).toBe('failed')
      }
    },
  )

  it.each([
    ['success', { status: 'success', output: { paid: 1 } }],
    ['failure', { status: 'failure', error: 'CardDeclined' }],
  ] as const)('applies a %s completed before the worker said its node is not ready', async (kind, answer) => {
    const type = `not-ready-after-${kind}`
    const { engine, clock, runs, answered } = setUp(type, answer, 'not ready')
    const { instanceId } = await engine.create({ workflowType: type })
    await check(clock, instanceId, 'after the pass whose worker said not ready')
    expect(answered).toEqual([{ accepted: true, status: kind }])

    clock.advanceSeconds(2)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the pass that applies the completion')

    const pay = await payOf(instanceId)
    expect(runs).toHaveLength(1)
    if (kind === 'success') {
      expect(pay.status).toBe('completed')
      expect(pay.output).toMatchObject({ callback_output: { paid: 1 } })
      expect(pay.failCount ?? 0).toBe(0)
      expect(await errorsOf(engine, instanceId)).toEqual([])
    } else {
      expect(pay.failCount).toBe(1)
      expect(pay.lastError).toMatch(/CallbackFailedError: CardDeclined/)
      expect(await errorsOf(engine, instanceId)).toHaveLength(1)
    }
  })

  it('polls a node whose worker said not ready after asking when nothing completed it, 30 s after, uncounted', async () => {
    const type = 'not-ready-alone'
    const { engine, clock, runs } = setUp(type, undefined, 'not ready')
    const { instanceId } = await engine.create({ workflowType: type })
    await check(clock, instanceId, 'after the pass whose worker said not ready')
    await refusedLate(
      engine,
      clock,
      instanceId,
      runs[0] as string,
      'the worker that asked for it said its node is not ready',
    )

    clock.advanceSeconds(2)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the pass that finds no completion')
    let pay = await payOf(instanceId)
    expect(pay.status).not.toBe('failed')
    expect(pay.failCount ?? 0).toBe(0)
    expect(pay.lastError).toBe('NotReadyError: the ledger is busy')
    expect(await errorsOf(engine, instanceId)).toEqual([])
    // Polled again 30 s after the worker said so, not 30 s after the pass that found no completion.
    expect(pay.nextAttemptAtMs).toBe(pay.callback?.timeoutAtMs !== undefined ? pay.callback.timeoutAtMs + 30_000 : -1)
    expect(runs).toHaveLength(1)

    clock.advanceSeconds(28)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the poll')
    expect(runs).toHaveLength(2)
    pay = await payOf(instanceId)
    expect(pay.failCount ?? 0).toBe(0)
    expect(pay.status).toBe('running')
  })

  it('applies a success completed before a check said its node is not ready: the node completes', async () => {
    const type = 'check-not-ready-after-success'
    const { engine, clock } = callbackEngine()
    const checks: string[] = []
    engine.register(
      defineWorkflow({
        type,
        nodes: {
          approve: {
            run: () => {},
            check: async (ctx: NodeContext) => {
              const { token } = await ctx.callback({ timeoutSeconds: 3600 })
              checks.push(token)
              await engine.completeCallback(token, { status: 'success', output: { approved: true } })
              throw new NotReadyError(60)
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: type })
    await check(clock, instanceId, 'after the pass whose check said not ready')
    clock.advanceSeconds(2)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the pass that applies the completion')
    const approve = (await backend.store().getInstance(instanceId))?.nodes.approve as NodeRecord
    expect(approve.status).toBe('completed')
    expect(approve.output).toMatchObject({ callback_output: { approved: true } })
    expect(checks).toHaveLength(1)
    expect((await engine.get(instanceId)).status).toBe('completed')
  })

  it('keeps the backoff of a worker that asks and then says not ready, pass after pass', async () => {
    const type = 'not-ready-backoff'
    const { engine, clock } = callbackEngine()
    let runs = 0
    engine.register(
      defineWorkflow({
        type,
        nodes: {
          poll: {
            run: async (ctx: NodeContext) => {
              runs += 1
              await ctx.callback({ timeoutSeconds: 3600 })
              throw new NotReadyError() // no seconds: the node's backoff
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: type })
    const waits: number[] = []
    for (let cycle = 1; cycle <= 3; cycle++) {
      clock.advanceSeconds(2)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      await check(clock, instanceId, `after the pass that finds no completion, cycle ${cycle}`)
      const poll = (await backend.store().getInstance(instanceId))?.nodes.poll as NodeRecord
      waits.push(poll.waits)
      expect(runs).toBe(cycle)
      clock.advanceMs((poll.nextAttemptAtMs as number) - clock.nowMs())
      await engine.runWorkflow(instanceId, { mode: 'due' })
      await check(clock, instanceId, `after the poll of cycle ${cycle + 1}`)
    }
    expect(waits).toEqual([1, 2, 3])
  })
})
