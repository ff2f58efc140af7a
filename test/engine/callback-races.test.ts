import { beforeAll, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { CallbackGoneError } from '../../src/core/callbacks.js'
import type { Engine } from '../../src/core/engine.js'
import type { InstanceStore } from '../../src/core/store.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { type FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend, TimerClock } from '../support/harness.js'
import { InvariantViolationError } from '../support/invariant.js'

/**
 * Completions racing the writes that end their wait (README, "Callbacks"): nothing a caller was told is stored is
 * ever lost. A completion is accepted only while its wait's deadlines have not passed, and a pass times a wait out
 * only from what its snapshot could have seen; a write that clears an arrival clears only the one it saw.
 */
const SECRET = 'the-callback-races-deployment-secret-0123456789'

/** A store whose next lease acquisition runs `hook` once the instance is read, before the holder writes. */
const afterAcquisition = (store: InstanceStore): { store: InstanceStore; next(hook: () => Promise<void>): void } => {
  let pending: (() => Promise<void>) | undefined
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (prop === 'acquireLease') {
        return async (...args: unknown[]) => {
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          const hook = pending
          pending = undefined
          if (hook) await hook()
          return result
        }
      }
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    store: proxy,
    next: (hook) => {
      pending = hook
    },
  }
}

const outcomeOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => value,
    (error: unknown) => error,
  )

describe.each(STORE_BACKENDS)('on $name', (factory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await factory.open('callback-races')
  })

  const check = async (clock: FakeClock, instanceId: string, context: string) => {
    const violations = await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })
    if (violations.length) throw new InvariantViolationError(violations, context)
  }

  /** Two runners on the same data and clock: `engine`, and `racer` whose acquisitions can be interposed on. */
  const runners = (register: (engine: Engine) => void) => {
    const { engine, clock } = newTestEngine(backend, { callbacks: { tokens: callbackTokens([SECRET]) } })
    const interposed = afterAcquisition(backend.store())
    const { engine: racer } = newTestEngine(backend, {
      clock,
      store: interposed.store,
      callbacks: { tokens: callbackTokens([SECRET]) },
    })
    register(engine)
    register(racer)
    return { engine, racer, clock, interpose: interposed.next }
  }

  it('refuses as timed out (410) a completion that lands after the timeout, while the due pass times the wait out', async () => {
    const tokens: string[] = []
    const workflow = defineWorkflow({
      type: 'race-timeout',
      nodes: {
        ask: {
          failMaxCount: 3,
          run: async (ctx) => {
            tokens.push((await ctx.callback({ timeoutSeconds: 60 })).token)
          },
        },
      },
    })
    const { engine, racer, clock, interpose } = runners((e) => e.register(workflow))
    const { instanceId } = await engine.create({ workflowType: 'race-timeout' })
    await check(clock, instanceId, 'after the create')
    clock.advanceSeconds(65)

    let answer: unknown
    interpose(async () => {
      answer = await outcomeOf(engine.completeCallback(tokens[0] as string, { status: 'success', output: { late: 1 } }))
    })
    await racer.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the due pass')

    const ask = (await backend.store().getInstance(instanceId))?.nodes.ask
    // The pass timed the wait out: the completion must not have been told it was stored.
    expect(ask?.lastError).toMatch(/CallbackTimeoutError/)
    expect(answer).toBeInstanceOf(CallbackGoneError)
    expect((answer as Error).message).toMatch(/timed out/)
  })

  /**
   * `ask` waits for a callback; its sibling `slow` is not ready at first, then, in the pass due at `readyAfter` s,
   * answers the callback (after that pass read the instance) and runs 20 s more: past the wait's timeout or the
   * instance's. Answers what the provider was told, and the instance after that pass and the next.
   */
  const lateAnswerRace = async (
    type: string,
    options: { askTimeoutSeconds: number; readyAfter: number; instanceTimeoutSeconds?: number; failMaxCount?: number },
  ) => {
    const tokens: string[] = []
    let slowCalls = 0
    let answer: unknown
    // A clock whose timers fire as it moves: a deadline ends the running worker.
    const { engine, clock } = newTestEngine(backend, {
      clock: new TimerClock(),
      callbacks: { tokens: callbackTokens([SECRET]) },
    })
    engine.register(
      defineWorkflow({
        type,
        ...(options.instanceTimeoutSeconds !== undefined ? { timeoutSeconds: options.instanceTimeoutSeconds } : {}),
        nodes: {
          ask: {
            ...(options.failMaxCount !== undefined ? { failMaxCount: options.failMaxCount } : {}),
            run: async (ctx) => {
              tokens.push((await ctx.callback({ timeoutSeconds: options.askTimeoutSeconds })).token)
            },
          },
          slow: {
            run: async () => {
              slowCalls += 1
              if (slowCalls === 1) throw new NotReadyError(options.readyAfter)
              answer = await outcomeOf(
                engine.completeCallback(tokens[0] as string, { status: 'success', output: { ok: 1 } }),
              )
              clock.advanceSeconds(20)
              // Still running when a deadline ends it.
              await new Promise((resolve) => setTimeout(resolve, 50))
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: type })
    clock.advanceSeconds(options.readyAfter)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the pass that missed the completion')
    const told = answer
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the next pass')
    return { told, done: await backend.store().getInstance(instanceId) }
  }

  it('applies a completion stored before the timeout even when the pass that missed it runs past the timeout', async () => {
    // The provider answers 10 s before the wait's timeout; the pass's clock is past it when it next looks at the wait.
    const { told, done } = await lateAnswerRace('race-pass-clock', {
      askTimeoutSeconds: 60,
      readyAfter: 50,
      failMaxCount: 3,
    })

    expect(told).toEqual({ accepted: true, status: 'success' })
    expect(done?.nodes.ask?.failCount).toBe(0)
    expect(done?.nodes.ask?.output).toMatchObject({ callback_output: { ok: 1 } })
    expect(done?.status).toBe('completed')
  })

  it("keeps an early completion of the node's next attempt that a write clearing a stale arrival did not see", async () => {
    const tokens: string[] = []
    let early: ((token: string) => Promise<void>) | undefined
    const workflow = defineWorkflow({
      type: 'race-stale-clear',
      nodes: {
        ask: {
          failMaxCount: 3,
          run: async (ctx) => {
            const { token } = await ctx.callback({ timeoutSeconds: 3600, heartbeatSeconds: 60 })
            tokens.push(token)
            if (early) await early(token)
          },
        },
      },
    })
    const { engine, racer, clock, interpose } = runners((e) => e.register(workflow))
    const { instanceId } = await engine.create({ workflowType: 'race-stale-clear' })
    await check(clock, instanceId, 'after the create')

    // A heartbeat lands after the due pass read the instance, which times the silent wait out without seeing it:
    // the arrival stays behind, stale, and the release names the node's retry.
    clock.advanceSeconds(65)
    let beat: unknown
    interpose(async () => {
      beat = await outcomeOf(engine.completeCallback(tokens[0] as string, { status: 'heartbeat' }))
    })
    await racer.runWorkflow(instanceId, { mode: 'due' })
    expect(beat).toEqual({ accepted: true, status: 'heartbeat' })
    expect((await backend.store().getInstance(instanceId))?.nodes.ask?.lastError).toMatch(/CallbackTimeoutError/)
    await check(clock, instanceId, 'after the pass that timed the wait out')

    // The retry's provider answers before its worker returned, with an output stored in an item of its own; the
    // pass's next write had the stale arrival in its snapshot, not this one.
    const big = { receipt: 'r'.repeat(600) }
    let answer: unknown
    early = async (token) => {
      answer = await outcomeOf(engine.completeCallback(token, { status: 'success', output: big }))
    }
    clock.advanceSeconds(10)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    early = undefined
    expect(answer).toEqual({ accepted: true, status: 'success' })
    await check(clock, instanceId, 'after the pass whose worker was answered early')

    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the pass that applies it')
    const done = await backend.store().getInstance(instanceId)
    expect(done?.nodes.ask?.output).toMatchObject({ callback_output: big })
    expect(done?.status).toBe('completed')
  })

  /**
   * A wait on a node or instance deadline shorter than its callback timeout: `kind` says which one, 60 s after the
   * node is created (the instance's timeout counts from its start, the same moment here).
   */
  const deadlineWorkflow = (kind: 'max wait' | 'node timeout' | 'instance timeout', type: string, tokens: string[]) =>
    defineWorkflow({
      type,
      ...(kind === 'instance timeout' ? { timeoutSeconds: 60 } : {}),
      nodes: {
        ask: {
          ...(kind === 'max wait' ? { maxWaitTimeSeconds: 60 } : {}),
          ...(kind === 'node timeout' ? { timeoutSeconds: 60 } : {}),
          run: async (ctx) => {
            tokens.push((await ctx.callback({ timeoutSeconds: 3600 })).token)
          },
        },
      },
    })

  const DEADLINES = ['max wait', 'node timeout', 'instance timeout'] as const

  it.each(DEADLINES)('shows the wait closing at the %s, before its own timeout', async (kind) => {
    const tokens: string[] = []
    const type = `race-shown-${kind.replace(' ', '-')}`
    const { engine, clock } = runners((e) => e.register(deadlineWorkflow(kind, type, tokens)))
    const createdAt = clock.nowMs()
    const { instanceId } = await engine.create({ workflowType: type })
    await check(clock, instanceId, 'after the create')

    const waiting = (await engine.get(instanceId)).nodes.find((node) => node.id === 'ask')?.waiting
    expect(waiting?.timeoutAtMs).toBe(createdAt + 3_600_000)
    // The first instant a completion is refused: a max wait is passed strictly after its end.
    expect(waiting?.closesAtMs).toBe(createdAt + 60_000 + (kind === 'max wait' ? 1 : 0))
  })

  /** An instance of `deadlineWorkflow(kind)` created, its node waiting; a racer pass and the completion to interpose. */
  const deadlineRace = async (kind: (typeof DEADLINES)[number], prefix: string) => {
    const tokens: string[] = []
    const type = `${prefix}-${kind.replace(' ', '-')}`
    const race = runners((e) => e.register(deadlineWorkflow(kind, type, tokens)))
    const { instanceId } = await race.engine.create({ workflowType: type })
    await check(race.clock, instanceId, 'after the create')
    return { ...race, instanceId, token: () => tokens[0] as string }
  }

  it.each(DEADLINES)('refuses (410) a completion after the %s, while the due pass ends the wait', async (kind) => {
    const { engine, racer, clock, interpose, instanceId, token } = await deadlineRace(kind, 'race-late')
    clock.advanceSeconds(65)

    let answer: unknown
    interpose(async () => {
      answer = await outcomeOf(engine.completeCallback(token(), { status: 'success', output: { late: 1 } }))
    })
    await racer.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the due pass')
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await check(clock, instanceId, 'after the next pass')

    const done = await backend.store().getInstance(instanceId)
    expect(answer).toBeInstanceOf(CallbackGoneError)
    expect((answer as Error).message).toMatch(/deadline passed/)
    expect(done?.nodes.ask?.output ?? {}).not.toHaveProperty('callback_output')
    if (kind === 'instance timeout') expect(done?.status).toBe('timed_out')
    else expect(done?.nodes.ask?.status).toBe('failed')
  })

  it.each(DEADLINES)('applies or refuses, never drops, a completion racing the pass due at the %s', async (kind) => {
    const { engine, racer, clock, interpose, instanceId, token } = await deadlineRace(kind, 'race-edge')
    // The pass reads the instance half a second before the deadline; the completion lands just after that read,
    // and the pass's clock is past the deadline when it looks at the wait.
    clock.advanceMs(59_500)

    let answer: unknown
    interpose(async () => {
      answer = await outcomeOf(engine.completeCallback(token(), { status: 'success', output: { edge: 1 } }))
      clock.advanceMs(1_000)
    })
    // An explicit pass (an operator's run, a wake-up): it need not be due.
    await racer.runWorkflow(instanceId, { mode: 'explicit' })
    await check(clock, instanceId, 'after the racing pass')
    for (let i = 0; i < 3; i++) {
      clock.advanceSeconds(2)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      await check(clock, instanceId, `after pass ${i + 1} after the race`)
    }

    const done = await backend.store().getInstance(instanceId)
    if (answer instanceof CallbackGoneError) {
      expect(done?.nodes.ask?.output ?? {}).not.toHaveProperty('callback_output')
    } else {
      // Told it was stored: it is applied.
      expect(answer).toEqual({ accepted: true, status: 'success' })
      expect(done?.nodes.ask?.output).toMatchObject({ callback_output: { edge: 1 } })
    }
  })

  it("applies a completion stored before the instance's timeout that a sibling's worker ran past", async () => {
    // The provider answers 2 s before the instance's timeout, which ends the sibling's worker in that pass.
    const { told, done } = await lateAnswerRace('race-instance-sibling', {
      askTimeoutSeconds: 3600,
      readyAfter: 58,
      instanceTimeoutSeconds: 60,
    })

    expect(told).toEqual({ accepted: true, status: 'success' })
    expect(done?.nodes.ask?.output).toMatchObject({ callback_output: { ok: 1 } })
    expect(done?.status).toBe('timed_out')
  })
})
