import { beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import type { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { CallbackGoneError } from '../../src/core/callbacks.js'
import type { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import type { Clock } from '../../src/core/ports.js'
import type { HistoryEntry, InstanceRecord, NodeRecord } from '../../src/core/store.js'
import { Crash, causes, crashingClient } from '../reliability/support.js'
import { createTestTable, FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'
import { assertInvariant } from '../support/invariant.js'

/**
 * A completion that arrives before the worker that asked for it has returned (README, "Callbacks"), when the runner
 * dies before it stores that worker's outcome: the caller was told it is stored (202), so the pass that takes over
 * applies it as the outcome of the attempt it belongs to, instead of counting that attempt as interrupted and
 * calling the worker again for a callback nobody will answer twice.
 */
const SECRET = 'the-early-completion-crash-callback-secret-0123'
/** The lease a runner takes (the engine's default span) and its grace: the dead runner's lease is over after both. */
const LEASE_MS = 60_000 + 5_000

/** What the provider answers at once, from inside the worker's call; `heartbeat` sends a heartbeat only. */
type Answer =
  | { status: 'success'; output?: unknown }
  | { status: 'failure'; error?: string; cause?: string }
  | { status: 'heartbeat' }

interface Log {
  /** Calls of the worker's run, each with the token it was given. */
  runs: { call: number; token: string }[]
  checks: unknown[]
  /** What the provider was answered for its early completion. */
  answered: unknown[]
}

describe.each(STORE_BACKENDS)('on $name', (factory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await factory.open('early-completion')
  })

  const source = () => backend.store() as DynamoDbStore | MemoryStore
  const stored = async (instanceId: string): Promise<InstanceRecord> => {
    const record = await backend.store().getInstance(instanceId)
    if (!record) throw new Error(`no instance ${instanceId}`)
    return record
  }
  const payOf = async (instanceId: string): Promise<NodeRecord> => (await stored(instanceId)).nodes.pay as NodeRecord
  const errorsOf = async (engine: Engine, instanceId: string): Promise<HistoryEntry[]> =>
    (await engine.history(instanceId)).entries.filter((entry) => entry.kind === 'error' && entry.nodeId === 'pay')

  /**
   * A runner calls `pay`, whose provider answers `answer` at once; then the runner dies (its Lambda stopped) before it
   * stores the worker's outcome. A healthy engine on the same data takes over once the dead runner's lease is over.
   */
  const crashAfterEarlyAnswer = async (
    type: string,
    answer: Answer,
    options: {
      check?: boolean
      maxWaitTimeSeconds?: number
      timeoutSeconds?: number
      instanceTimeoutSeconds?: number
      /** The first call fails: the dying call is the retry a due pass's acquisition recorded (see armAttempt). */
      failFirst?: boolean
    } = {},
  ) => {
    const clock = new FakeClock()
    const callbacks = { tokens: callbackTokens([SECRET]) }
    const { engine: healthy } = newTestEngine(backend, { clock, callbacks })
    // The dead runner's timers never fire: its Lambda is gone before its lease ends.
    const deadClock: Clock = { nowMs: () => clock.nowMs(), at: () => () => {} }
    const { engine: dying } = newTestEngine(backend, { clock: deadClock, callbacks })
    const log: Log = { runs: [], checks: [], answered: [] }
    let died: () => void = () => {}
    const dead = new Promise<void>((resolve) => {
      died = resolve
    })
    let calls = 0
    const workflow = defineWorkflow({
      type,
      ...(options.instanceTimeoutSeconds === undefined ? {} : { timeoutSeconds: options.instanceTimeoutSeconds }),
      nodes: {
        pay: {
          next: ['after'],
          failMaxCount: 5,
          retry: { initialDelaySeconds: 10, jitter: 0 },
          ...(options.maxWaitTimeSeconds === undefined ? {} : { maxWaitTimeSeconds: options.maxWaitTimeSeconds }),
          ...(options.timeoutSeconds === undefined ? {} : { timeoutSeconds: options.timeoutSeconds }),
          run: async (ctx: NodeContext) => {
            calls += 1
            if (options.failFirst && calls === 1) throw new Error('the first call fails')
            const { token } = await ctx.callback({ timeoutSeconds: 600 })
            log.runs.push({ call: log.runs.length + 1, token })
            // Never stored by the dead runner: lost with it.
            ctx.set('set_by_run', log.runs.length)
            if (log.runs.length > 1) return
            const { status, ...rest } = answer
            log.answered.push(
              await healthy.completeCallback(token, { status, ...rest }).catch((error: unknown) => error),
            )
            died()
            return new Promise<void>(() => {}) // the runner stops here: no outcome is ever written
          },
          ...(options.check
            ? {
                check: (ctx: NodeContext) => {
                  log.checks.push(ctx.get('callback_output'))
                  ctx.set('checked', true)
                },
              }
            : {}),
        },
        after: { run: (ctx) => ctx.set('got', ctx.get('pre_node_context', 'pay', 'callback_output') ?? null) },
      },
    })
    healthy.register(workflow)
    dying.register(workflow)
    const instanceId = `${type}-${factory.name}`
    if (options.failFirst) {
      await dying.create({ workflowType: type, id: instanceId })
      clock.advanceSeconds(10)
      void dying.runWorkflow(instanceId, { mode: 'due' })
    } else {
      void dying.create({ workflowType: type, id: instanceId })
    }
    await dead

    const atCrash = await stored(instanceId)
    expect(atCrash.nodes.pay?.attemptStarted).toBeDefined()
    expect(atCrash.callbacks?.pay).toBeDefined()
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'at the crash' })

    clock.advanceMs(LEASE_MS + 1_000)
    return { healthy, clock, instanceId, log }
  }

  it('a success completes the step: its output is the callback output, the worker is not called again', async () => {
    const output = { reference: 'ch_1', note: 'n'.repeat(300) }
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer('early-success', {
      status: 'success',
      output,
    })
    expect(log.answered).toEqual([{ accepted: true, status: 'success' }])

    const result = await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    expect(result.status).toBe('completed')
    expect(log.runs).toHaveLength(1)
    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'completed', failCount: 0, calls: 1 })
    expect(pay.attemptStarted).toBeUndefined()
    expect(pay.lastError).toBeUndefined()
    // What the dead worker set never stored: only the callback output is the step's.
    expect(pay.output).toEqual({ callback_output: output })
    expect((await stored(instanceId)).nodes.after?.output).toMatchObject({ got: output })
    expect((await stored(instanceId)).callbacks).toBeUndefined()
    expect(await errorsOf(healthy, instanceId)).toEqual([])
    // The provider retrying its completion is answered as the first time.
    expect(await healthy.completeCallback(log.runs[0]?.token as string, { status: 'success', output })).toEqual({
      accepted: true,
      status: 'success',
    })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'at the end' })
  })

  it('a failure is a failed attempt counted once and retried by the node policy', async () => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer('early-failure', {
      status: 'failure',
      error: 'CardDeclined',
      cause: 'insufficient funds',
    })
    expect(log.answered).toEqual([{ accepted: true, status: 'failure' }])

    const result = await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    expect(result.status).toBe('running')
    expect(log.runs).toHaveLength(1)
    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'running', failCount: 1, calls: 1 })
    expect(pay.lastError).toBe('CallbackFailedError: CardDeclined: insufficient funds')
    expect(pay.nextAttemptAtMs).toBe(clock.nowMs() + 10_000)
    const errors = await errorsOf(healthy, instanceId)
    expect(errors.map((entry) => (entry as { errorClass?: string }).errorClass)).toEqual(['CallbackFailedError'])

    // The retry asks for a callback of its own.
    clock.advanceSeconds(10)
    await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the retry' })
    expect(log.runs).toHaveLength(2)
    await healthy.completeCallback(log.runs[1]?.token as string, { status: 'success', output: { paid: true } })
    expect((await healthy.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    expect((await payOf(instanceId)).failCount).toBe(1)
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'at the end' })
  })

  it('a FailedWithFailedError failure fails the node for good', async () => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer('early-fatal', {
      status: 'failure',
      error: 'FailedWithFailedError',
      cause: 'card stolen',
    })

    const result = await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    expect(result.status).toBe('failed')
    expect(log.runs).toHaveLength(1)
    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'failed', failCount: 1, calls: 1 })
    expect(pay.lastError).toBe('CallbackFailedError: FailedWithFailedError: card stolen')
    expect(await errorsOf(healthy, instanceId)).toHaveLength(1)
  })

  it('a success of a run with a check goes on to the check', async () => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer(
      'early-check',
      { status: 'success', output: { ready: true } },
      { check: true },
    )

    const result = await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    expect(result.status).toBe('completed')
    expect(log.runs).toHaveLength(1)
    expect(log.checks).toEqual([{ ready: true }])
    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'completed', failCount: 0, calls: 2 })
    expect(pay.output).toEqual({ callback_output: { ready: true }, checked: true })
    expect(await errorsOf(healthy, instanceId)).toEqual([])
  })

  it('a heartbeat alone is no outcome: the attempt counts as interrupted and runs again', async () => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer('early-heartbeat', {
      status: 'heartbeat',
    })
    expect(log.answered).toEqual([{ accepted: true, status: 'heartbeat' }])

    await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'running', failCount: 1 })
    expect(pay.lastError).toMatch(/AttemptInterruptedError: .*without an outcome/)
    clock.advanceSeconds(10)
    await healthy.runWorkflow(instanceId, { mode: 'due' })
    expect(log.runs).toHaveLength(2)
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the retry' })
  })

  it.each<[string, string, Parameters<typeof crashAfterEarlyAnswer>[2], 'failed' | 'timed_out', RegExp | undefined]>([
    [
      'a node past its max wait still fails at it',
      'early-past-deadline',
      { maxWaitTimeSeconds: 30 },
      'failed',
      /max_wait_time_ts exceeded/,
    ],
    [
      'a node past its own timeout still fails at it',
      'early-node-timeout',
      { timeoutSeconds: 30 },
      'failed',
      undefined,
    ],
    [
      'an instance past its timeout still ends timed out',
      'early-instance-timeout',
      { instanceTimeoutSeconds: 30 },
      'timed_out',
      undefined,
    ],
  ])('%s, whatever arrived', async (_, type, options, status, reason) => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer(
      type,
      { status: 'success', output: { late: true } },
      options,
    )

    const result = await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    expect(result.status).toBe(status)
    expect(log.runs).toHaveLength(1)
    const pay = await payOf(instanceId)
    if (status === 'failed') expect(pay.status).toBe('failed')
    if (reason) expect(pay.output.reason).toMatch(reason)
    expect(pay.output.callback_output).toBeUndefined()
  })

  it('applies a completion of the retry a due pass recorded at its acquisition', async () => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer(
      'early-armed',
      { status: 'success', output: { paid: true } },
      { failFirst: true },
    )
    expect(log.answered).toEqual([{ accepted: true, status: 'success' }])

    const result = await healthy.runWorkflow(instanceId, { mode: 'due' })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })

    expect(result.status).toBe('completed')
    expect(log.runs).toHaveLength(1)
    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'completed', failCount: 1, calls: 2 })
    expect(pay.attemptStarted).toBeUndefined()
    expect(pay.output).toEqual({ callback_output: { paid: true } })
    expect((await errorsOf(healthy, instanceId)).map((entry) => (entry as { errorClass?: string }).errorClass)).toEqual(
      ['Error'],
    )
  })

  it('a restart of the node discards the attempt: it counts as interrupted and the completion is dropped', async () => {
    const { healthy, clock, instanceId, log } = await crashAfterEarlyAnswer('early-restart', {
      status: 'success',
      output: { discarded: true },
    })

    await healthy.restartNode({ instanceId, nodeId: 'pay', run: true })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'after the restart' })

    expect(log.runs).toHaveLength(2)
    const pay = await payOf(instanceId)
    expect(pay).toMatchObject({ status: 'running', failCount: 1 })
    expect((await errorsOf(healthy, instanceId)).map((entry) => (entry as { errorClass?: string }).errorClass)).toEqual(
      ['AttemptInterruptedError'],
    )
    expect(pay.output.callback_output).toBeUndefined()
    expect((await stored(instanceId)).callbacks).toBeUndefined()
    await expect(
      healthy.completeCallback(log.runs[0]?.token as string, { status: 'success', output: { discarded: true } }),
    ).rejects.toBeInstanceOf(CallbackGoneError)
    // The rerun's own callback completes it.
    await healthy.completeCallback(log.runs[1]?.token as string, { status: 'success', output: { fresh: true } })
    expect((await healthy.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    expect((await payOf(instanceId)).output).toMatchObject({ callback_output: { fresh: true } })
    await assertInvariant(source(), clock.nowMs(), { instanceIds: [instanceId], context: 'at the end' })
  })
})

describe('on DynamoDB, a runner killed right after its worker returned', () => {
  it('applies the completion its worker received before the runner could store the outcome', async () => {
    const table = await createTestTable('early-completion-killed')
    const clock = new FakeClock()
    const callbacks = { tokens: callbackTokens([SECRET]) }
    const { engine: healthy } = newTestEngine(table, { clock, callbacks })
    const { client, state } = crashingClient(Number.POSITIVE_INFINITY, 'before')
    const { engine: dying } = newTestEngine(table, {
      clock,
      callbacks,
      store: new DynamoDbStore({ tableName: table.tableName, client }),
    })
    const runs: string[] = []
    const workflow = defineWorkflow({
      type: 'early-killed',
      nodes: {
        pay: {
          run: async (ctx: NodeContext) => {
            const { token } = await ctx.callback({ timeoutSeconds: 600 })
            runs.push(token)
            if (runs.length > 1) return
            await healthy.completeCallback(token, { status: 'success', output: { paid: true } })
            // The worker returns; its runner is killed before it stores the outcome.
            state.kill()
          },
        },
      },
    })
    healthy.register(workflow)
    dying.register(workflow)
    const instanceId = 'early-killed'
    const crash = await dying.create({ workflowType: 'early-killed', id: instanceId }).catch((error: unknown) => error)
    expect(causes(crash).some((cause) => cause instanceof Crash)).toBe(true)
    const verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    expect((await verifier.getInstance(instanceId))?.nodes.pay?.attemptStarted).toBeDefined()
    await assertInvariant(table, clock.nowMs(), { instanceIds: [instanceId], context: 'at the crash' })

    clock.advanceMs(LEASE_MS + 1_000)
    expect((await healthy.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    await assertInvariant(table, clock.nowMs(), { instanceIds: [instanceId], context: 'after the pass' })
    expect(runs).toHaveLength(1)
    expect((await verifier.getInstance(instanceId))?.nodes.pay).toMatchObject({
      status: 'completed',
      failCount: 0,
      output: { callback_output: { paid: true } },
    })
    client.destroy()
  })
})
