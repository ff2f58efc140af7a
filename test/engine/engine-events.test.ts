import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import type { Engine } from '../../src/core/engine.js'
import { IllegalStateError, InstanceNotFoundError, NodeNotFoundError, StaleEventError } from '../../src/core/errors.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { CallLog, type FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend
  let engine: Engine
  let clock: FakeClock
  let calls: CallLog

  beforeAll(async () => {
    backend = await backendFactory.open('engine-events')
  })

  /** submit → review (waits for a reviewer's event) → approve */
  const approval = () =>
    defineWorkflow({
      type: 'approval',
      nodes: {
        submit: { next: ['review'], run: calls.wrap('submit', { run: (ctx) => ctx.set('submitted', true) }).run },
        review: {
          next: ['approve'],
          run: calls.wrap('review', { run: (ctx) => ctx.set('review_status', 'pending') }).run,
          check: calls.wrap('review-check', {
            run: (ctx) => {
              const decision = ctx.event?.content as { decision?: string } | undefined
              if (!decision?.decision) throw new NotReadyError(60)
              ctx.set('review_status', decision.decision)
            },
          }).run,
        },
        approve: {
          run: calls.wrap('approve', {
            run: (ctx) => ctx.set('final', ctx.getString('pre_node_context', 'review', 'review_status') ?? 'none'),
          }).run,
        },
      },
    })

  beforeEach(() => {
    ;({ engine, clock } = newTestEngine(backend))
    calls = new CallLog()
    engine.register(approval())
  })

  const detail = async (instanceId: string, nodeId: string) =>
    (await engine.get(instanceId)).nodes.find((node) => node.id === nodeId)

  describe('an approval that waits for an external event', () => {
    it('waits in pending, completes once the event arrives and passes the decision on', async () => {
      const { instanceId, status } = await engine.create({ workflowType: 'approval', context: { amount: 10 } })
      expect(status).toBe('running')
      expect(await detail(instanceId, 'review')).toMatchObject({ status: 'pending' })
      expect(calls.check('review-check')).toBe(0)
      expect(calls.run('review-check')).toBe(1)

      clock.advanceSeconds(5)
      const sent = await engine.addNodeEvent({
        instanceId,
        nodeId: 'review',
        eventTs: 1000,
        content: { decision: 'approved' },
      })
      expect(sent.dueAtMs).toBe(clock.nowMs())
      expect((await engine.get(instanceId)).dueAtMs).toBe(clock.nowMs())

      // A due pass picks the node up at once: the event makes it due before its next poll time.
      const pass = await engine.runWorkflow(instanceId, { mode: 'due' })
      expect(pass.status).toBe('completed')
      expect(calls.run('review')).toBe(1)
      const review = await detail(instanceId, 'review')
      expect(review?.context).toMatchObject({
        node_event: { event_content: { decision: 'approved' }, event_ts: 1000 },
        review_status: 'approved',
      })
      expect((await detail(instanceId, 'approve'))?.context).toMatchObject({
        pre_node_context: { review: { node_event: { event_ts: 1000 }, review_status: 'approved' } },
        final: 'approved',
      })
    })

    it('versions events: an older event is rejected, an equal one overwrites', async () => {
      const { instanceId } = await engine.create({ workflowType: 'approval' })
      await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 200, content: { note: 'first' } })
      await expect(
        engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 199, content: { note: 'older' } }),
      ).rejects.toBeInstanceOf(StaleEventError)
      await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 200, content: { note: 'same ts' } })
      expect((await detail(instanceId, 'review'))?.context?.node_event).toEqual({
        event_content: { note: 'same ts' },
        event_ts: 200,
      })
      await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 201, content: { decision: 'rejected' } })
      expect((await engine.runWorkflow(instanceId)).status).toBe('completed')
      expect((await detail(instanceId, 'approve'))?.context?.final).toBe('rejected')
    })

    it('keeps an event sent before its node started and delivers it when the node starts', async () => {
      const { instanceId } = await engine.create({ workflowType: 'approval', run: false })
      expect((await detail(instanceId, 'review'))?.status).toBe('uncreated')
      await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 5, content: { decision: 'approved' } })
      expect((await engine.runWorkflow(instanceId)).status).toBe('completed')
      expect(calls.check('review-check')).toBe(0)
      expect((await detail(instanceId, 'approve'))?.context?.final).toBe('approved')
    })

    it('accepts an event while a pass holds the lease and leaves the instance due', async () => {
      let release: () => void = () => {}
      const blocked = new Promise<void>((resolve) => {
        release = resolve
      })
      const slow = newTestEngine(backend, { clock }).engine
      let started: () => void = () => {}
      const checkStarted = new Promise<void>((resolve) => {
        started = resolve
      })
      slow.register(
        defineWorkflow({
          type: 'approval',
          nodes: {
            submit: { next: ['review'], run: () => {} },
            review: {
              next: ['approve'],
              run: () => {},
              check: async (ctx) => {
                started()
                await blocked
                if (!ctx.event) throw new NotReadyError(600)
              },
            },
            approve: { run: () => {} },
          },
        }),
      )
      const instanceId = `during-pass-${clock.nowMs()}-${Math.floor(Math.random() * 1e9)}`
      const running = slow.create({ workflowType: 'approval', id: instanceId })
      await checkStarted
      await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 1, content: { decision: 'approved' } })
      release()
      const result = await running
      expect(result.status).toBe('running')
      expect(result.pass?.eventArrived).toBe(true)
      // The pass saw no event, but the instance is due now rather than in 600 s.
      expect((await engine.get(instanceId)).dueAtMs).toBe(clock.nowMs())
      expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    })

    it('rejects events for unknown nodes and instances, terminal nodes and terminal instances', async () => {
      const { instanceId } = await engine.create({ workflowType: 'approval' })
      await expect(engine.addNodeEvent({ instanceId, nodeId: 'nope', eventTs: 1 })).rejects.toBeInstanceOf(
        NodeNotFoundError,
      )
      await expect(engine.addNodeEvent({ instanceId, nodeId: 'end', eventTs: 1 })).rejects.toBeInstanceOf(
        NodeNotFoundError,
      )
      await expect(engine.addNodeEvent({ instanceId: 'missing', nodeId: 'review', eventTs: 1 })).rejects.toBeInstanceOf(
        InstanceNotFoundError,
      )
      await expect(engine.addNodeEvent({ instanceId, nodeId: 'submit', eventTs: 1 })).rejects.toBeInstanceOf(
        IllegalStateError,
      )
      await engine.cancel(instanceId)
      await expect(engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 1 })).rejects.toBeInstanceOf(
        IllegalStateError,
      )
    })
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
