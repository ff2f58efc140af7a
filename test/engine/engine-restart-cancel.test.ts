import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import type { Engine } from '../../src/core/engine.js'
import { IllegalStateError, InstanceNotFoundError, NodeNotFoundError, ValidationError } from '../../src/core/errors.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { CallLog, type FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend
  let engine: Engine
  let clock: FakeClock
  let calls: CallLog
  let failPay: boolean

  beforeAll(async () => {
    backend = await backendFactory.open('engine-restart')
  })

  beforeEach(() => {
    ;({ engine, clock } = newTestEngine(backend))
    calls = new CallLog()
    failPay = true
    // order → pay → ship, with a side branch `audit` that waits
    engine.register(
      defineWorkflow({
        type: 'shop',
        nodes: {
          order: { next: ['pay', 'audit'], run: calls.wrap('order', { run: (ctx) => ctx.set('ordered', true) }).run },
          pay: {
            next: ['ship'],
            run: calls.wrap('pay', {
              run: (ctx) => {
                ctx.set('amount', ctx.getNumber('workflow_context', 'amount') ?? 0)
                if (failPay) throw new FailedWithFailedError('card declined')
              },
            }).run,
          },
          audit: {
            run: calls.wrap('audit', { run: () => {} }).run,
            check: calls.wrap('audit-check', {
              run: (ctx) => {
                if (!ctx.event) throw new NotReadyError()
              },
            }).run,
          },
          ship: { run: calls.wrap('ship', { run: () => {} }).run },
        },
      }),
    )
  })

  const statuses = async (instanceId: string) =>
    Object.fromEntries((await engine.get(instanceId)).nodes.map((node) => [node.id, node.status]))

  describe('cancel', () => {
    it('cancels the instance and every non-terminal node, removes its due time, and is idempotent', async () => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop', context: { amount: 5 } })
      expect((await engine.get(instanceId)).dueAtMs).toBeDefined()
      const first = await engine.cancel(instanceId)
      expect(first).toEqual({ instanceId, status: 'canceled', changed: true })
      expect(await statuses(instanceId)).toMatchObject({
        order: 'completed',
        pay: 'completed',
        audit: 'canceled',
        ship: 'completed',
        end: 'uncreated',
      })
      const detail = await engine.get(instanceId)
      expect(detail.status).toBe('canceled')
      expect(detail.dueAtMs).toBeUndefined()
      expect(await engine.cancel(instanceId)).toEqual({ instanceId, status: 'canceled', changed: false })
    })

    it('does not resurrect a canceled instance when it is run', async () => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop', run: false })
      await engine.cancel(instanceId)
      expect((await engine.runWorkflow(instanceId)).status).toBe('canceled')
      expect(calls.run('order')).toBe(0)
    })

    it('rejects cancelling a completed or failed instance, and an unknown one', async () => {
      const { instanceId } = await engine.create({ workflowType: 'shop' })
      expect((await engine.get(instanceId)).status).toBe('failed')
      await expect(engine.cancel(instanceId)).rejects.toBeInstanceOf(IllegalStateError)
      await expect(engine.cancel('no-such-instance')).rejects.toBeInstanceOf(InstanceNotFoundError)
    })
  })

  describe('restarting an instance', () => {
    it('restarts after a failure, keeping the fail count, and completes', async () => {
      const { instanceId, status } = await engine.create({ workflowType: 'shop', context: { amount: 5 } })
      expect(status).toBe('failed')
      expect(await statuses(instanceId)).toMatchObject({ pay: 'failed', audit: 'canceled' })
      failPay = false
      const restarted = await engine.restartInstance({ instanceId, run: true })
      expect(restarted.status).toBe('running')
      const pay = (await engine.get(instanceId)).nodes.find((node) => node.id === 'pay')
      expect(pay).toMatchObject({ status: 'completed', failCount: 1, attempt: 2 })
      expect(calls.run('order')).toBe(1)
      await engine.addNodeEvent({ instanceId, nodeId: 'audit', eventTs: 1 })
      expect((await engine.runWorkflow(instanceId)).status).toBe('completed')
      expect(calls.run('ship')).toBe(1)
    })

    it('resets counters and replaces the input when asked; completed nodes keep the input they ran with', async () => {
      const { instanceId } = await engine.create({ workflowType: 'shop', context: { amount: 5 } })
      failPay = false
      clock.advanceSeconds(30)
      await engine.restartInstance({ instanceId, run: true, resetCounters: true, context: { amount: 7 } })
      const detail = await engine.get(instanceId)
      expect(detail.context).toEqual({ amount: 7 })
      const pay = detail.nodes.find((node) => node.id === 'pay')
      expect(pay).toMatchObject({ status: 'completed', failCount: 0, createdAtMs: clock.nowMs() })
      expect(pay?.context).toMatchObject({ amount: 7, workflow_context: { amount: 7 } })
      expect(detail.nodes.find((node) => node.id === 'order')?.context?.workflow_context).toEqual({ amount: 5 })
    })

    it('cancel then restart: canceled nodes run again, completed ones do not', async () => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop' })
      await engine.cancel(instanceId)
      const restarted = await engine.restartInstance({ instanceId })
      expect(restarted).toMatchObject({ status: 'running', changed: true })
      expect(await statuses(instanceId)).toMatchObject({ audit: 'restarting', pay: 'completed' })
      // Without run, the instance is left due now for the tick.
      expect((await engine.get(instanceId)).dueAtMs).toBe(clock.nowMs())
      await engine.addNodeEvent({ instanceId, nodeId: 'audit', eventTs: 9 })
      expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
      expect(calls.run('audit')).toBe(2)
      expect(calls.run('pay')).toBe(1)
    })

    it.each(['running', 'completed'] as const)('rejects restarting a %s instance', async (wanted) => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop' })
      if (wanted === 'completed') {
        await engine.addNodeEvent({ instanceId, nodeId: 'audit', eventTs: 1 })
        await engine.runWorkflow(instanceId)
      }
      expect((await engine.get(instanceId)).status).toBe(wanted)
      const before = await engine.get(instanceId)
      await expect(engine.restartInstance({ instanceId })).rejects.toBeInstanceOf(IllegalStateError)
      expect(await engine.get(instanceId)).toEqual(before)
    })
  })

  describe('restarting a node', () => {
    it('forces a restart of a node on a completed instance: the node and its descendants run again', async () => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop' })
      await engine.addNodeEvent({ instanceId, nodeId: 'audit', eventTs: 1 })
      await engine.runWorkflow(instanceId)
      expect((await engine.get(instanceId)).status).toBe('completed')

      await expect(engine.restartNode({ instanceId, nodeId: 'pay' })).rejects.toBeInstanceOf(IllegalStateError)
      const result = await engine.restartNode({ instanceId, nodeId: 'pay', force: true, run: true })
      expect(result.status).toBe('completed')
      expect(calls.run('pay')).toBe(2)
      expect(calls.run('ship')).toBe(2)
      expect(calls.run('order')).toBe(1)
      expect(calls.run('audit')).toBe(1)
      expect((await engine.get(instanceId)).nodes.find((node) => node.id === 'pay')?.attempt).toBe(2)
    })

    it('restarts a waiting node on a running instance, keeping its event', async () => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop' })
      await engine.addNodeEvent({ instanceId, nodeId: 'audit', eventTs: 3, content: { ok: 1 } })
      await engine.restartNode({ instanceId, nodeId: 'audit' })
      expect(await statuses(instanceId)).toMatchObject({ audit: 'restarting' })
      expect((await engine.runWorkflow(instanceId)).status).toBe('completed')
      expect(calls.run('audit')).toBe(2)
      const audit = (await engine.get(instanceId)).nodes.find((node) => node.id === 'audit')
      expect(audit?.context?.node_event).toEqual({ event_content: { ok: 1 }, event_ts: 3 })
    })

    it('rejects unknown, synthetic and unstarted nodes', async () => {
      failPay = false
      const { instanceId } = await engine.create({ workflowType: 'shop', run: false })
      await expect(engine.restartNode({ instanceId, nodeId: 'nope' })).rejects.toBeInstanceOf(NodeNotFoundError)
      await expect(engine.restartNode({ instanceId, nodeId: 'root' })).rejects.toBeInstanceOf(ValidationError)
      await expect(engine.restartNode({ instanceId, nodeId: 'pay' })).rejects.toBeInstanceOf(IllegalStateError)
      // A rejected operation released the lease: the instance can still run.
      expect((await engine.runWorkflow(instanceId)).status).toBe('running')
    })
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
