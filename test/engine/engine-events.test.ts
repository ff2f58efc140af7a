import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
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

    /** A review polled hourly that gives up after 30 min: only an event makes it look again in time. */
    const corrected = (check?: (content: unknown) => Promise<void>) => {
      const seen: unknown[] = []
      const { engine: runner } = newTestEngine(backend, { clock })
      runner.register(
        defineWorkflow({
          type: 'corrected',
          nodes: {
            review: {
              maxWaitTimeSeconds: 1800,
              run: () => {},
              check: async (ctx) => {
                seen.push(ctx.event?.content)
                await check?.(ctx.event?.content)
                if ((ctx.event?.content as { ok?: boolean } | undefined)?.ok !== true) throw new NotReadyError(3600)
              },
            },
          },
        }),
      )
      return { runner, seen }
    }

    it('looks at an event sent again with the same eventTs after the node saw the first', async () => {
      const { runner, seen } = corrected()
      const { instanceId } = await runner.create({ workflowType: 'corrected' })
      await runner.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 100, content: { ok: false } })
      await runner.runWorkflow(instanceId, { mode: 'due' })
      expect(seen.at(-1)).toEqual({ ok: false })

      clock.advanceSeconds(10)
      const sent = await runner.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 100, content: { ok: true } })

      // The overwrite is new to the node: it is due for it now, not at its next poll an hour away.
      expect(sent.dueAtMs).toBe(clock.nowMs())
      const pass = await runner.runWorkflow(instanceId, { mode: 'due' })
      expect(seen.at(-1)).toEqual({ ok: true })
      expect(pass.status).toBe('completed')
      expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    })

    it('looks at an event sent again with the same eventTs while the check saw the first', async () => {
      let resend: (() => Promise<unknown>) | undefined
      const { runner, seen } = corrected(async () => {
        const sending = resend
        resend = undefined
        // The correction arrives while the check runs, at the same millisecond.
        await sending?.()
      })
      const { instanceId } = await runner.create({ workflowType: 'corrected' })
      await runner.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 100, content: { ok: false } })
      resend = () => engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 100, content: { ok: true } })

      const first = await runner.runWorkflow(instanceId, { mode: 'due' })
      expect(seen.at(-1)).toEqual({ ok: false })
      expect(first.eventArrived).toBe(true)
      expect(first.dueAtMs).toBe(clock.nowMs())

      const second = await runner.runWorkflow(instanceId, { mode: 'due' })
      expect(seen.at(-1)).toEqual({ ok: true })
      expect(second.status).toBe('completed')
      expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
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

  describe('a parked instance', () => {
    const tokens = { tokens: callbackTokens(['the-engine-events-callback-secret-0123456789']) }

    /** start → review (polls hourly for an event) and pay (waits for a callback) */
    const parkable = (workers: boolean) => {
      const seen: { review?: unknown; pay?: unknown } = {}
      let token = ''
      const wf = defineWorkflow({
        type: 'parkable',
        nodes: {
          start: { next: ['review', 'pay'], run: () => {} },
          review: {
            run: () => {},
            check: (ctx) => {
              if (!ctx.event) throw new NotReadyError(3600)
              seen.review = ctx.event.content
            },
          },
          pay: {
            run: async (ctx) => {
              token = (await ctx.callback({ timeoutSeconds: 7200 })).token
            },
          },
        },
      })
      const { engine: runner } = newTestEngine(backend, { clock, callbacks: tokens })
      if (workers) runner.register(wf)
      return { runner, seen, token: () => token }
    }

    it('keeps an event and a callback completion without making it due; a restart runs it with them', async () => {
      const deployed = parkable(true)
      const { instanceId } = await deployed.runner.create({ workflowType: 'parkable' })
      // A deployment without the type's workers parks it.
      const broken = parkable(false).runner
      expect((await broken.runWorkflow(instanceId)).skipped).toBe('parked')

      const sent = await broken.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 7, content: { ok: true } })
      expect(
        await broken.completeCallback(deployed.token(), { status: 'success', output: { charge: 'ch_1' } }),
      ).toEqual({ accepted: true, status: 'success' })

      // Stored, but the instance stays parked and out of the due index: nothing runs it until an operator acts.
      expect(sent.dueAtMs).toBeNull()
      const parked = await engine.get(instanceId)
      expect(parked.parked?.code).toBe('WORKER_MISSING')
      expect(parked.dueAtMs).toBeUndefined()
      expect(parked.nodes.find((node) => node.id === 'review')?.context?.node_event).toEqual({
        event_content: { ok: true },
        event_ts: 7,
      })
      expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
      expect((await deployed.runner.runWorkflow(instanceId, { mode: 'due' })).skipped).toBe('parked')
      expect((await engine.list({ workflowType: 'parkable', parked: true })).items.map((item) => item.id)).toContain(
        instanceId,
      )

      // The workers are back: the restart runs it, with what arrived while it was parked.
      await deployed.runner.restartInstance({ instanceId, run: true })
      const after = await engine.get(instanceId)
      expect(after).toMatchObject({ status: 'completed' })
      expect(after.parked).toBeUndefined()
      expect(deployed.seen.review).toEqual({ ok: true })
      expect(after.nodes.find((node) => node.id === 'pay')?.context?.callback_output).toEqual({ charge: 'ch_1' })
      expect(
        (await engine.list({ workflowType: 'parkable', parked: true })).items.map((item) => item.id),
      ).not.toContain(instanceId)
      expect(await backend.violations(clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    })
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
