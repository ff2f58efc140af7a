import { beforeAll, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import type { NodeRecord } from '../../src/core/store.js'
import { fixedRandom, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'
import { notYetNode } from '../support/polled.js'

/**
 * The attempt a due pass's acquisition records (README, "Cost": how the attempt rides on the acquisition) is, for
 * every reader and on every store, the attempt of a worker call in flight: a callback completed from within that call
 * is taken, a write of the whole node map keeps it, and a pass that does not make it leaves nothing of it.
 */
const SECRET = 'the-armed-attempt-callback-secret-0123456789'

describe.each(STORE_BACKENDS)('on $name', (factory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await factory.open('armed-attempt')
  })

  const nodeOf = async (instanceId: string, nodeId: string): Promise<NodeRecord> => {
    const node = (await backend.store().getInstance(instanceId))?.nodes[nodeId]
    if (!node) throw new Error(`no node ${nodeId}`)
    return node
  }

  it('takes a callback completed from within the retried run the acquisition recorded', async () => {
    const { engine, clock } = newTestEngine(backend, { callbacks: { tokens: callbackTokens([SECRET]) } })
    let calls = 0
    let answer: unknown
    engine.register(
      defineWorkflow({
        type: 'armed-callback',
        nodes: {
          pay: {
            retry: { initialDelaySeconds: 60, jitter: 0 },
            run: async (ctx: NodeContext) => {
              calls += 1
              if (calls === 1) throw new Error('the first call fails')
              const { token } = await ctx.callback({ timeoutSeconds: 600 })
              answer = await engine
                .completeCallback(token, { status: 'success', output: { paid: true } })
                .catch((error: unknown) => error)
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'armed-callback' })
    expect(calls).toBe(1)

    clock.advanceSeconds(61)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(calls).toBe(2)
    expect(answer).toEqual({ accepted: true, status: 'success' })
    expect(await nodeOf(instanceId, 'pay')).toMatchObject({
      status: 'completed',
      output: { callback_output: { paid: true } },
      calls: 2,
    })
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('keeps the attempt recorded while a write of the whole node map lands during the call', async () => {
    const { engine, clock } = newTestEngine(backend)
    let seen: NodeRecord | undefined
    let instanceId = ''
    const nodes: Record<string, unknown> = {
      // Another reader of the store, while the check runs after the siblings' outcomes were written.
      watched: notYetNode(60, { onCheck: async () => (seen = await nodeOf(instanceId, 'watched')) }),
    }
    for (let i = 0; i < 41; i++) {
      nodes[`sibling${i}`] = { optional: true, maxWaitTimeSeconds: 60, ...notYetNode(120) }
    }
    engine.register(defineWorkflow({ type: 'armed-wide', nodes } as Parameters<typeof defineWorkflow>[0]))
    ;({ instanceId } = await engine.create({ workflowType: 'armed-wide' }))
    const before = await nodeOf(instanceId, 'watched')

    clock.advanceSeconds(61)
    await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(seen?.attemptStarted?.step).toBe('check')
    expect(seen?.calls).toBe((before.calls ?? 0) + 1)
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('leaves nothing of the attempt the acquisition recorded when the pass parks the instance', async () => {
    const { engine, clock } = newTestEngine(backend)
    engine.register(
      defineWorkflow({
        type: 'armed-park',
        nodes: {
          wait: notYetNode(60),
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'armed-park' })
    clock.advanceSeconds(61)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const before = await nodeOf(instanceId, 'wait')

    // A runner without the workflow's worker: the pass parks the instance and calls nothing.
    const other = new Engine({
      store: backend.store(),
      clock,
      ids: { newInstanceId: () => 'x', newLeaseOwner: () => 'other-runner' },
      random: fixedRandom(0),
    })
    clock.advanceSeconds(61)
    await other.runWorkflow(instanceId, { mode: 'due' })

    const after = await backend.store().getInstance(instanceId)
    expect(after?.parked?.code).toBeDefined()
    expect(after?.nodes.wait).toEqual(before)
    expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
