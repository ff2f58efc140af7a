import type { SQSEvent } from 'aws-lambda'
import { beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalQueue, type SqsBatchHandler } from '../../src/adapters/memory/local-queue.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { StoreError } from '../../src/core/errors.js'
import type { Logger } from '../../src/core/ports.js'
import type { InstanceStore, Lease } from '../../src/core/store.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { createEventsHandler } from '../../src/handlers/events-handler.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { createTestTable, FakeClock, fixedRandom, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { seededRandom, shuffle } from './support.js'

/**
 * Duplicated, reordered and poisoned messages through in-process SQS queues (run queue and events queue, each with a
 * dead-letter queue and a redrive after 3 receives), delivered to the real handlers on a fake clock until the queues
 * are empty.
 */

const SEED = 7
const MAX_RECEIVE_COUNT = 3
const VISIBILITY_TIMEOUT_MS = 30_000
const TYPE = 'shipment'
const INSTANCES = 8

type Status = 'received' | 'checking' | 'approved' | 'in-transit' | 'delivered'

const statusOf = (content: unknown): Status | undefined => (content as { status?: Status } | null)?.status

const workflow = defineWorkflow({
  type: TYPE,
  nodes: {
    order: { next: ['review'], run: (ctx) => ctx.set('ordered', true) },
    // Status updates arrive as events, newest last; only the final one lets the node complete.
    review: {
      next: ['deliver'],
      run: () => {},
      check: (ctx) => {
        if (statusOf(ctx.event?.content) !== 'approved') throw new NotReadyError(30)
        ctx.set('approved_at', ctx.event?.eventTs ?? 0)
      },
    },
    deliver: {
      run: () => {},
      check: (ctx) => {
        if (statusOf(ctx.event?.content) !== 'delivered') throw new NotReadyError(30)
        ctx.set('delivered_at', ctx.event?.eventTs ?? 0)
      },
    },
  },
})

/** The versions of each node's status, oldest first: the last one is the one that must end stored. */
const VERSIONS: Record<'review' | 'deliver', { eventTs: number; status: Status }[]> = {
  review: [
    { eventTs: 100, status: 'received' },
    { eventTs: 200, status: 'checking' },
    { eventTs: 300, status: 'approved' },
  ],
  deliver: [
    { eventTs: 150, status: 'in-transit' },
    { eventTs: 250, status: 'delivered' },
  ],
}

/** A store whose every call about the poisoned instances fails with a retryable error (a throttled partition). */
const poisonedStore = (store: DynamoDbStore, poisoned: ReadonlySet<string>): InstanceStore => {
  const about = (arg: unknown): string | undefined =>
    typeof arg === 'string' ? arg : (arg as Lease | undefined)?.instanceId
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const id = about(args[0])
        if (id !== undefined && poisoned.has(id)) {
          return Promise.reject(new StoreError(`injected: ThrottlingException on '${id}'`, true))
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
}

let table: TestTable

beforeAll(async () => {
  table = await createTestTable('reliability-queues')
})

/** Queues, dead-letter queues, an engine and the two consumers, all on one fake clock; ids start with `prefix`. */
const setup = (prefix: string, poisoned: ReadonlySet<string> = new Set()) => {
  const clock = new FakeClock()
  const now = () => clock.nowMs()
  const logs: { level: string; message: string; fields?: Record<string, unknown> }[] = []
  const logger: Logger = {
    log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }),
  }
  const runDlq = new LocalQueue({ name: 'run-dlq', now })
  const eventsDlq = new LocalQueue({ name: 'events-dlq', now })
  const queueOptions = { now, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS, maxReceiveCount: MAX_RECEIVE_COUNT }
  const runQueue = new LocalQueue({ name: 'run', ...queueOptions, deadLetter: runDlq })
  const eventsQueue = new LocalQueue({ name: 'events', ...queueOptions, deadLetter: eventsDlq })
  const base = new DynamoDbStore({ tableName: table.tableName, client: table.client })
  let counter = 0
  const engine = new Engine({
    store: poisonedStore(base, poisoned),
    clock,
    ids: { newInstanceId: () => `${prefix}-${++counter}`, newLeaseOwner: () => `${prefix}-owner-${++counter}` },
    random: fixedRandom(0),
    logger,
    queue: runQueue,
  })
  engine.register(workflow)
  const deps = { engine, logger, maxReceiveCount: MAX_RECEIVE_COUNT }
  const runHandler = createRunHandler({ ...deps, deadLetters: runDlq })
  const eventsHandler = createEventsHandler({ ...deps, deadLetters: eventsDlq })
  /** The invariant over this setup's instances (the table is shared with the other tests, on other clocks). */
  const violations = async (): Promise<string[]> =>
    (await invariantViolations(table, clock.nowMs(), { instanceIds: (id) => id.startsWith(`${prefix}-`) })).map(
      (violation) => violation.message,
    )
  return { clock, logs, runDlq, eventsDlq, runQueue, eventsQueue, base, engine, runHandler, eventsHandler, violations }
}

const eventBody = (
  target: { instanceId: string } | { workflowType: string; businessId: string },
  nodeId: 'review' | 'deliver',
  version: { eventTs: number; status: Status },
): string =>
  JSON.stringify({
    ...target,
    nodeId,
    eventTs: version.eventTs,
    content: { status: version.status, note: `${nodeId} ${version.status}` },
    eventId: `${JSON.stringify(target)}-${nodeId}-${version.eventTs}`,
  })

const newest = (nodeId: 'review' | 'deliver') =>
  VERSIONS[nodeId][VERSIONS[nodeId].length - 1] as (typeof VERSIONS)['review'][number]

describe('duplicated, reordered and poisoned queue messages', () => {
  it('end with every instance right, every poison in a dead-letter queue, nothing retried forever', async () => {
    const random = seededRandom(SEED)
    const poisoned = new Set(['ship-poisoned'])
    const { clock, logs, runDlq, eventsDlq, runQueue, eventsQueue, base, engine, violations, ...handlers } = setup(
      'ship',
      poisoned,
    )
    const broken: string[] = []
    const checkInvariant = async (step: string) => {
      for (const message of await violations()) broken.push(`${step}: ${message}`)
    }
    // The poisoned instance exists (it was created before its partition went bad), so its messages look valid.
    const clean = new Engine({
      store: base,
      clock,
      ids: { newInstanceId: () => 'unused', newLeaseOwner: () => 'setup-owner' },
      random: fixedRandom(0),
      queue: runQueue,
    })
    clean.register(workflow)
    await clean.create({ workflowType: TYPE, id: 'ship-poisoned', run: false })

    // Half the instances start at once, half are left to the run queue (create without run).
    const instances: { id: string; businessId: string }[] = []
    for (let index = 0; index < INSTANCES; index++) {
      const businessId = `ORDER-${index}`
      const created = await engine.create({ workflowType: TYPE, businessId, run: index % 2 === 0 })
      instances.push({ id: created.instanceId, businessId })
    }
    await checkInvariant('after the creates')

    // Every version of every status event 2-3 times, the instance named directly or by business id, all shuffled.
    const eventBodies: string[] = []
    for (const [index, instance] of instances.entries()) {
      const target =
        index % 4 === 3 ? { workflowType: TYPE, businessId: instance.businessId } : { instanceId: instance.id }
      for (const nodeId of ['review', 'deliver'] as const) {
        for (const version of VERSIONS[nodeId]) {
          const copies = 2 + Math.floor(random() * 2)
          for (let copy = 0; copy < copies; copy++) eventBodies.push(eventBody(target, nodeId, version))
        }
      }
    }
    const poisonEvents: { body: string; reason: RegExp }[] = [
      { body: '{"instanceId": "ship-1", "nodeId": ', reason: /body is not JSON/ },
      { body: JSON.stringify({ instanceId: 'ship-ghost', nodeId: 'review', eventTs: 1 }), reason: /NOT_FOUND/ },
      { body: JSON.stringify({ instanceId: instances[0]?.id, nodeId: 'nope', eventTs: 1 }), reason: /NOT_FOUND/ },
      { body: JSON.stringify({ nodeId: 'review', eventTs: 1 }), reason: /name the instance/ },
      {
        body: JSON.stringify({ instanceId: 'ship-poisoned', nodeId: 'review', eventTs: 1, content: {} }),
        reason: /ThrottlingException.*still failing after 3 receives/,
      },
    ]
    for (const body of shuffle([...eventBodies, ...poisonEvents.map((poison) => poison.body)], random)) {
      eventsQueue.send(body)
    }

    // Run requests: every instance's 2-3 times more (as the tick and wake-ups would duplicate them), and poison.
    const runBody = (instanceId: string, v = 1) =>
      JSON.stringify({ v, kind: 'run', instanceId, dueAtMs: clock.nowMs() })
    const poisonRuns: { body: string; reason: RegExp }[] = [
      { body: 'not json', reason: /body is not JSON/ },
      { body: runBody(instances[1]?.id as string, 2), reason: /not a run message/ },
      { body: runBody('ship-ghost'), reason: /NOT_FOUND/ },
      { body: JSON.stringify({ v: 1, kind: 'run', instanceId: 'ship-poisoned', dueAtMs: 1 }), reason: /still failing/ },
    ]
    const duplicates = instances.flatMap((instance) =>
      Array.from({ length: 2 + Math.floor(random() * 2) }, () => runBody(instance.id)),
    )
    for (const body of shuffle([...duplicates, ...poisonRuns.map((poison) => poison.body)], random)) {
      runQueue.send(body)
    }
    // The poisoned instance's own wake-up from its create is a poison run message too.
    const poisonedWakeups = runQueue.messages().filter((message) => message.body.includes('"ship-poisoned"'))
    expect(poisonedWakeups).toHaveLength(2)

    // Deliver until both queues are empty, in random order and batch sizes, moving the clock when nothing is visible
    // (past delays and visibility timeouts).
    const received = new Map<string, number>()
    const tracked =
      (queue: string, handler: SqsBatchHandler): SqsBatchHandler =>
      (event: SQSEvent) => {
        for (const record of event.Records) {
          const key = `${queue} ${record.messageId}`
          received.set(key, Math.max(received.get(key) ?? 0, Number(record.attributes.ApproximateReceiveCount)))
        }
        return handler(event)
      }
    const runHandler = tracked('run', handlers.runHandler)
    const eventsHandler = tracked('events', handlers.eventsHandler)
    let deliveries = 0
    let clockMoves = 0
    while (runQueue.pending() + eventsQueue.pending() > 0) {
      expect(deliveries, 'deliveries before the queues drained').toBeLessThan(2_000)
      const queue = random() < 0.5 ? eventsQueue : runQueue
      const result = await queue.deliver(queue === eventsQueue ? eventsHandler : runHandler, {
        maxMessages: 1 + Math.floor(random() * 10),
      })
      expect(result.error).toBeUndefined()
      deliveries += 1
      await checkInvariant(`after delivery ${deliveries}`)
      const waiting = [...runQueue.messages(), ...eventsQueue.messages()]
      if (waiting.length > 0 && waiting.every((message) => message.visibleAtMs > clock.nowMs())) {
        clock.advanceMs(Math.min(...waiting.map((message) => message.visibleAtMs)) - clock.nowMs())
        clockMoves += 1
      }
    }

    // Every instance completed with the newest status of each node stored (and seen by its check).
    for (const instance of instances) {
      const detail = await engine.get(instance.id)
      expect(detail.status, instance.id).toBe('completed')
      for (const nodeId of ['review', 'deliver'] as const) {
        const node = detail.nodes.find((candidate) => candidate.id === nodeId)
        expect(node?.context?.node_event, `${instance.id} ${nodeId}`).toEqual({
          event_ts: newest(nodeId).eventTs,
          event_content: { status: newest(nodeId).status, note: `${nodeId} ${newest(nodeId).status}` },
        })
        expect(node?.context?.[nodeId === 'review' ? 'approved_at' : 'delivered_at']).toBe(newest(nodeId).eventTs)
      }
    }
    expect((await base.getInstance('ship-poisoned'))?.status).toBe('init')
    expect(broken).toEqual([])

    // The queues are empty; nothing was received more often than the redrive allows.
    expect(runQueue.pending()).toBe(0)
    expect(eventsQueue.pending()).toBe(0)
    expect(Math.max(...received.values())).toBeLessThanOrEqual(MAX_RECEIVE_COUNT)

    // Every poison message is in its dead-letter queue, with its reason, dead-lettered by the handler itself.
    const letters = (queue: LocalQueue) =>
      queue.messages().map((m) => ({ body: m.body, reason: m.attributes.reason ?? '', source: m.attributes.source }))
    const runLetters = letters(runDlq)
    const eventLetters = letters(eventsDlq)
    for (const poison of poisonRuns) {
      const letter = runLetters.find((candidate) => candidate.body === poison.body)
      expect(letter?.reason, poison.body).toMatch(poison.reason)
      expect(letter?.source).toBe('run')
    }
    for (const poison of poisonEvents) {
      const letter = eventLetters.find((candidate) => candidate.body === poison.body)
      expect(letter?.reason, poison.body).toMatch(poison.reason)
      expect(letter?.source).toBe('events')
    }
    for (const letter of [...runLetters, ...eventLetters]) expect(letter.reason).not.toBe('maxReceiveCount exceeded')
    // Only the poison in the run dead-letter queue: duplicated run requests are all acknowledged.
    expect(runLetters.map((letter) => letter.body).sort()).toEqual(
      [...poisonRuns.map((poison) => poison.body), poisonedWakeups[0]?.body].sort(),
    )

    // Events of healthy instances dead-lettered: there should be none (README, "Running by itself": a copy for a
    // completed node is acknowledged as a duplicate, an older event is acknowledged with a warning).
    const misrouted = eventLetters.filter((letter) => !poisonEvents.some((poison) => poison.body === letter.body))
    const summary = {
      deliveries,
      clockMoves,
      eventMessages: eventBodies.length,
      runDuplicates: duplicates.length,
      maxReceiveCount: Math.max(...received.values()),
      runDeadLetters: runLetters.length,
      eventDeadLetters: eventLetters.length,
      duplicatesAcknowledged: logs.filter((entry) => entry.message === 'duplicate event acknowledged').length,
      olderAcknowledged: logs.filter((entry) => entry.message === 'event older than the stored one acknowledged')
        .length,
      misrouted: misrouted.length,
    }
    console.info(`queue run: ${JSON.stringify(summary, null, 2)}`)
    expect(misrouted).toEqual([])
  }, 60_000)

  it('acknowledges with a warning an older event that arrives after its node completed', async () => {
    const { eventsQueue, eventsDlq, engine, eventsHandler, logs, violations } = setup('older')
    const { instanceId } = await engine.create({ workflowType: TYPE })
    for (const nodeId of ['review', 'deliver'] as const) {
      await engine.addNodeEvent({
        instanceId,
        nodeId,
        eventTs: newest(nodeId).eventTs,
        content: { status: newest(nodeId).status },
      })
    }
    expect((await engine.runWorkflow(instanceId)).status).toBe('completed')

    // A status update sent before the final one, delivered late (SQS standard queues do not keep order).
    eventsQueue.send(eventBody({ instanceId }, 'review', VERSIONS.review[0] as (typeof VERSIONS)['review'][number]))
    expect(await eventsQueue.deliver(eventsHandler)).toMatchObject({ delivered: 1, failed: 0 })

    // README: "an older event is acknowledged with a warning".
    expect(eventsDlq.messages().map((message) => message.attributes.reason)).toEqual([])
    expect(logs.filter((entry) => entry.message === 'event older than the stored one acknowledged')).toHaveLength(1)
    expect(await violations()).toEqual([])
  })

  it('acknowledges a re-delivered event named by business id after its instance completed', async () => {
    const { eventsQueue, eventsDlq, runQueue, engine, eventsHandler, runHandler, violations } = setup('bybiz')
    const { instanceId } = await engine.create({ workflowType: TYPE, businessId: 'ORDER-BIZ' })
    const target = { workflowType: TYPE, businessId: 'ORDER-BIZ' }
    const final = eventBody(target, 'deliver', newest('deliver'))
    eventsQueue.send(eventBody(target, 'review', newest('review')))
    eventsQueue.send(final)
    await eventsQueue.deliver(eventsHandler)
    await runQueue.deliver(runHandler)
    expect((await engine.get(instanceId)).status).toBe('completed')
    expect(await violations()).toEqual([])

    // SQS delivers the last event once more (at-least-once delivery): the very event that is stored.
    eventsQueue.send(final)
    expect(await eventsQueue.deliver(eventsHandler)).toMatchObject({ delivered: 1, failed: 0 })

    // README: "a copy for a node that has since completed is acknowledged as a duplicate".
    expect(eventsDlq.messages().map((message) => message.attributes.reason)).toEqual([])
    expect(await violations()).toEqual([])
  })
})
