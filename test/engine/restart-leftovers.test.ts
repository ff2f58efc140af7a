import { beforeAll, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { CallbackGoneError } from '../../src/core/callbacks.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'

/**
 * What a restart leaves of a node's earlier run (README, "Restarts"): nothing that would decide the node again. A
 * callback wait ends with the restart (its tokens are gone, a completion stored for it is dropped), an attempt an
 * earlier lease left in flight is counted as the failed attempt it was, and a node the rerun skips holds no output.
 */
const SECRET = 'the-restart-leftovers-callback-secret-0123456789'
const KB = 1024

describe.each(STORE_BACKENDS)('on $name', (factory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await factory.open('restart-leftovers')
  })

  const askingWorkflow = (type: string, runs: number[], tokens: string[]) =>
    defineWorkflow({
      type,
      nodes: {
        ask: {
          next: ['after'],
          run: async (ctx: NodeContext) => {
            runs.push(ctx.info.attempt)
            tokens.push((await ctx.callback({ timeoutSeconds: 3600 })).token)
          },
        },
        after: { run: () => {} },
      },
    })

  it('a node restarted while its callback completion is stored runs again; the old token is gone', async () => {
    const { engine, clock } = newTestEngine(backend, { callbacks: { tokens: callbackTokens([SECRET]) } })
    const runs: number[] = []
    const tokens: string[] = []
    engine.register(askingWorkflow('restart-callback-stored', runs, tokens))
    const { instanceId } = await engine.create({ workflowType: 'restart-callback-stored' })
    expect(await engine.completeCallback(tokens[0] as string, { status: 'success', output: { stale: true } })).toEqual({
      accepted: true,
      status: 'success',
    })
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    await engine.restartNode({ instanceId, nodeId: 'ask', run: true })
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    expect(runs).toHaveLength(2)
    const ask = (await backend.store().getInstance(instanceId))?.nodes.ask
    expect(ask?.status).toBe('running')
    expect(ask?.output).not.toHaveProperty('callback_output')
    await expect(
      engine.completeCallback(tokens[0] as string, { status: 'success', output: { stale: true } }),
    ).rejects.toBeInstanceOf(CallbackGoneError)
    // The rerun's own token completes it.
    await engine.completeCallback(tokens[1] as string, { status: 'success', output: { fresh: true } })
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const done = await backend.store().getInstance(instanceId)
    expect(done?.status).toBe('completed')
    expect(done?.nodes.ask?.output).toMatchObject({ callback_output: { fresh: true } })
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('a canceled instance restarted without a run refuses the old token; its next pass calls the worker again', async () => {
    const { engine, clock } = newTestEngine(backend, { callbacks: { tokens: callbackTokens([SECRET]) } })
    const runs: number[] = []
    const tokens: string[] = []
    engine.register(askingWorkflow('restart-callback-canceled', runs, tokens))
    const { instanceId } = await engine.create({ workflowType: 'restart-callback-canceled' })
    await engine.cancel(instanceId)
    await engine.restartInstance({ instanceId })
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    await expect(
      engine.completeCallback(tokens[0] as string, { status: 'success', output: { stale: true } }),
    ).rejects.toBeInstanceOf(CallbackGoneError)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(runs).toHaveLength(2)
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('a restart counts the attempt an earlier lease left in flight as failed', async () => {
    const { engine: dying, clock } = newTestEngine(backend)
    let calls = 0
    let started: () => void = () => {}
    const inFlight = new Promise<void>((resolve) => {
      started = resolve
    })
    const workflow = defineWorkflow({
      type: 'restart-in-flight',
      nodes: {
        b: {
          failMaxCount: 3,
          run: () => {
            calls += 1
            if (calls === 1) {
              started()
              return new Promise<void>(() => {}) // its runner stops here: no outcome is ever written
            }
            throw new Error('b fails')
          },
        },
      },
    })
    dying.register(workflow)
    void dying.create({ workflowType: 'restart-in-flight', id: 'restart-in-flight' })
    await inFlight
    const instanceId = 'restart-in-flight'
    expect((await backend.store().getInstance(instanceId))?.nodes.b?.attemptStarted).toBeDefined()
    clock.advanceSeconds(3600) // well past the stopped runner's lease

    const { engine } = newTestEngine(backend, { clock })
    engine.register(workflow)
    await engine.restartNode({ instanceId, nodeId: 'b' })
    const b = (await backend.store().getInstance(instanceId))?.nodes.b
    expect(b?.status).toBe('restarting')
    expect(b?.failCount).toBe(1)
    expect(b?.lastError).toMatch(/without an outcome/)
    expect(b?.attemptStarted).toBeUndefined()
    const history = await engine.history(instanceId)
    expect(history.entries.filter((entry) => entry.kind === 'error' && entry.nodeId === 'b')).toHaveLength(1)
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('a node the rerun skips holds no output of its earlier run, whatever its size', async () => {
    const { engine, clock } = newTestEngine(backend)
    let go = true
    engine.register(
      defineWorkflow({
        type: 'restart-skips',
        nodes: {
          a: { next: ['b'], run: (ctx) => ctx.set('go', go) },
          b: { next: ['c'], when: '$nodes.a.output.go = true', run: (ctx) => ctx.set('big', 'b'.repeat(4 * KB)) },
          c: { run: (ctx) => ctx.set('big', 'c'.repeat(4 * KB)) },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'restart-skips' })
    expect((await engine.get(instanceId)).status).toBe('completed')
    go = false
    await engine.restartNode({ instanceId, nodeId: 'a', force: true, run: true })
    const after = await backend.store().getInstance(instanceId)
    expect(after?.status).toBe('completed')
    for (const id of ['b', 'c']) {
      expect(after?.nodes[id]?.status).toBe('skipped')
      expect(after?.nodes[id]?.output).toEqual({})
    }
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
