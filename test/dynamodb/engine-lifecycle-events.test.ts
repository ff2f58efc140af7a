import { beforeAll, describe, expect, it } from 'vitest'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { type EventPublisher, type LifecycleEvent, OUTBOX_GRACE_MS } from '../../src/core/lifecycle-events.js'
import { silentLogger } from '../../src/core/ports.js'
import type { InstanceStore } from '../../src/core/store.js'
import { runTick } from '../../src/core/tick.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { createTestTable, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * Lifecycle events (README, "Lifecycle events"), on both stores: which writes emit which events, node events for
 * the types that opt in, and the outbox that keeps what the bus refused until a later pass publishes it again.
 */

/** A publisher that records what it is given, and refuses everything while `refusing`. */
class RecordingPublisher implements EventPublisher {
  readonly published: { event: LifecycleEvent; resent: boolean }[] = []
  refusing = false
  async publish(events: readonly LifecycleEvent[], { resent }: { resent: boolean }) {
    if (this.refusing) return { failed: events.map((event) => event.id) }
    for (const event of events) this.published.push({ event, resent })
    return { failed: [] }
  }
  of(instanceId: string): string[] {
    return this.published
      .filter((p) => p.event.detail.instanceId === instanceId)
      .map((p) => {
        const { detail } = p.event
        const node = detail.nodeId && p.event.detailType.includes('Node') ? `${detail.nodeId}:` : ''
        return `${node}${detail.previousStatus ?? '-'}>${detail.status}${p.resent ? ' resent' : ''}`
      })
  }
}

let failPay = true
const shop = defineWorkflow({
  type: 'shop',
  nodes: {
    order: { next: ['pay'], run: (ctx) => ctx.set('ordered', true) },
    pay: {
      run: () => {
        if (failPay) throw new FailedWithFailedError('card declined')
      },
    },
  },
})
const waiting = defineWorkflow({
  type: 'waiting',
  nodes: {
    hold: {
      run: () => {},
      check: () => {
        throw new NotReadyError(60)
      },
    },
  },
})

const branches = defineWorkflow({
  type: 'branches',
  timeoutSeconds: 60,
  nodes: {
    first: { next: ['extra', 'maybe', 'hold'], run: () => {} },
    extra: { when: '$input.extra = true', run: () => {} },
    maybe: {
      optional: true,
      run: () => {
        throw new FailedWithFailedError('the optional part failed')
      },
    },
    hold: {
      run: () => {},
      check: () => {
        throw new NotReadyError(30)
      },
    },
  },
})

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await backendFactory.open('lifecycle-events')
  })

  const setup = (options: { nodeEventTypes?: readonly string[]; deadLetters?: string[] } = {}) => {
    const publisher = new RecordingPublisher()
    const { engine, clock, store } = newTestEngine(backend, {
      lifecycle: {
        publisher,
        nodeEventTypes: options.nodeEventTypes ?? [],
        ...(options.deadLetters
          ? { deadLetters: { send: async (letter) => void options.deadLetters?.push(letter.reason) } }
          : {}),
      },
    })
    engine.register(shop)
    engine.register(waiting)
    engine.register(branches)
    return { publisher, engine, clock, store }
  }

  it('publishes each instance status change once, in the write that makes it: running, then failed', async () => {
    failPay = true
    const { publisher, engine } = setup()
    const { instanceId } = await engine.create({ workflowType: 'shop', businessId: 'B-1' })
    expect(publisher.of(instanceId)).toEqual(['->running', 'running>failed'])
    const failed = publisher.published.at(-1)?.event
    expect(failed?.detailType).toBe('Workflow Instance Status Change')
    expect(failed?.detail).toMatchObject({
      version: 1,
      instanceId,
      workflowType: 'shop',
      businessId: 'B-1',
      status: 'failed',
      reason: 'FailedWithFailedError: card declined',
      nodeId: 'pay',
      eventId: failed?.id,
    })
  })

  it('publishes init for a create without run, then running, canceled, and running again on a restart', async () => {
    const { publisher, engine } = setup()
    const { instanceId } = await engine.create({ workflowType: 'waiting', run: false })
    await engine.runWorkflow(instanceId)
    await engine.cancel(instanceId)
    await engine.restartInstance({ instanceId })
    expect(publisher.of(instanceId)).toEqual(['->init', 'init>running', 'running>canceled', 'canceled>running'])
    const ids = publisher.published.map((p) => p.event.id)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('publishes node status changes for the types that opt in, and only for them', async () => {
    failPay = false
    const { publisher, engine } = setup({ nodeEventTypes: ['shop'] })
    const shopped = await engine.create({ workflowType: 'shop' })
    const waited = await engine.create({ workflowType: 'waiting' })
    expect(publisher.of(shopped.instanceId)).toEqual([
      '->running',
      'order:->running',
      'order:running>completed',
      'pay:->running',
      'pay:running>completed',
      'running>completed',
    ])
    expect(publisher.of(waited.instanceId)).toEqual(['->running'])
  })

  it('maps the control-flow statuses: a skipped node with its reason, a failed optional node, a timed-out instance', async () => {
    const { publisher, engine, clock } = setup({ nodeEventTypes: ['branches'] })
    const { instanceId } = await engine.create({ workflowType: 'branches', context: { extra: false } })
    const details = () => publisher.published.filter((p) => p.event.detail.instanceId === instanceId)
    const ofNode = (nodeId: string) =>
      details().filter((p) => p.event.detail.nodeId === nodeId && p.event.detailType.includes('Node'))
    expect(ofNode('extra').map((p) => p.event.detail)).toEqual([
      expect.objectContaining({ status: 'skipped', reason: 'condition_false' }),
    ])
    expect(ofNode('maybe').at(-1)?.event.detail).toMatchObject({
      status: 'failed',
      optional: true,
      reason: 'FailedWithFailedError: the optional part failed',
    })
    expect(ofNode('first').at(-1)?.event.detail).not.toHaveProperty('optional')

    clock.advanceMs(61_000)
    await engine.runWorkflow(instanceId)
    const last = details().at(-1)?.event
    expect(last?.detailType).toBe('Workflow Instance Status Change')
    expect(last?.detail).toMatchObject({ status: 'timed_out', previousStatus: 'running' })
    expect(last?.detail.reason).toMatch(/timeout_seconds exceeded/)
    expect(ofNode('hold').at(-1)?.event.detail.status).toBe('canceled')
  })

  it('keeps what the bus refused in the outbox; the tick hands it to a pass, which publishes it resent', async () => {
    failPay = false
    const { publisher, engine, clock, store } = setup()
    publisher.refusing = true
    const { instanceId } = await engine.create({ workflowType: 'shop' })
    expect(publisher.of(instanceId)).toEqual([])
    const pending = (await store.getInstance(instanceId))?.outbox?.map((event) => event.detail.status)
    expect(pending).toEqual(['running', 'completed'])

    publisher.refusing = false
    const queue = new LocalQueue({ name: 'run', now: () => clock.nowMs() })
    const tick = () =>
      runTick({ store: store as InstanceStore, queue, clock, logger: silentLogger }, { remainingTimeMs: 60_000 })
    // Within the grace a writer has to publish its own events, the tick leaves them alone.
    expect((await tick()).outbox).toBeUndefined()
    clock.advanceMs(OUTBOX_GRACE_MS + 1)
    expect((await tick()).outbox).toBeGreaterThanOrEqual(1)
    await queue.deliver(
      createRunHandler({ engine, logger: silentLogger, maxReceiveCount: 5, deadLetters: { send: async () => {} } }),
    )
    expect(publisher.of(instanceId)).toEqual(['->running resent', 'running>completed resent'])
    expect((await store.getInstance(instanceId))?.outbox ?? []).toEqual([])
    expect((await tick()).outbox).toBeUndefined()
  })

  it('dead-letters, with the reason, an event the bus still refuses a day later', async () => {
    failPay = false
    const deadLetters: string[] = []
    const { publisher, engine, clock, store } = setup({ deadLetters })
    publisher.refusing = true
    const { instanceId } = await engine.create({ workflowType: 'waiting' })
    clock.advanceMs(86_400_000 + 1)
    await engine.runWorkflow(instanceId)
    expect(deadLetters).toEqual(['lifecycle event not published within 1440 min'])
    // The pass's own event (none here: no status change) would stay; the dead-lettered one left the outbox.
    expect((await store.getInstance(instanceId))?.outbox ?? []).toEqual([])
  })

  it('costs nothing without a bus: no outbox is written', async () => {
    const { engine, store } = newTestEngine(backend)
    engine.register(shop)
    failPay = false
    const { instanceId } = await engine.create({ workflowType: 'shop' })
    expect((await store.getInstance(instanceId))?.outbox).toBeUndefined()
  })

  it('leaves no instance stranded', async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})

describe('on DynamoDB, what the outbox adds to the requests', () => {
  /**
   * Every request the engine sends, marshalled: its command, and its update expression or the attributes it puts; with
   * the store, clock and instance, to check the invariant on.
   */
  const recorded = async (withBus: boolean) => {
    const table = await createTestTable(withBus ? 'outbox-cost-bus' : 'outbox-cost')
    const sent: { command: string; shape: string; outbox: boolean }[] = []
    table.client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { UpdateExpression?: string; Item?: Record<string, unknown> }
        const shape =
          input.UpdateExpression ??
          Object.keys(input.Item ?? {})
            .sort()
            .join(',')
        const outbox = /\bob\b/.test(shape)
        sent.push({ command: String(context.commandName), shape, outbox })
        return next(args)
      },
      { step: 'initialize' },
    )
    const publisher = new RecordingPublisher()
    const { engine, store, clock } = newTestEngine(table, withBus ? { lifecycle: { publisher } } : {})
    engine.register(shop)
    failPay = false
    const { instanceId } = await engine.create({ workflowType: 'shop' })
    return { sent, store, clock, instanceId }
  }

  it('adds nothing to a write that emits no event, and one request after each write that does', async () => {
    const { sent: without, ...bare } = await recorded(false)
    const { sent: withBus, ...bused } = await recorded(true)
    const clears = withBus.filter((request) => request.shape.startsWith('DELETE ob'))
    const writes = withBus.filter((request) => !request.shape.startsWith('DELETE ob'))
    // Two writes emit (the create: running; the last: completed); each is followed by the removal of its events.
    expect(writes.filter((request) => request.outbox)).toHaveLength(2)
    expect(clears).toHaveLength(2)
    expect(writes.map((request) => request.command)).toEqual(without.map((request) => request.command))
    // Every other write, the node steps, is the very request it is without a bus.
    writes.forEach((request, index) => {
      if (!request.outbox) expect(request.shape).toBe(without[index]?.shape)
    })
    expect(without.some((request) => request.outbox)).toBe(false)
    // Read through the store (a client of the checker's own), so that its reads are not among the requests recorded.
    for (const { store, clock, instanceId } of [bare, bused]) {
      expect(await invariantViolations(store, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    }
  })
})
