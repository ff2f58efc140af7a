import type { SQSEvent } from 'aws-lambda'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { LocalScheduler } from '../../src/adapters/memory/local-scheduler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { StoreError } from '../../src/core/errors.js'
import type { Logger } from '../../src/core/ports.js'
import type { InstanceStore } from '../../src/core/store.js'
import { runTick } from '../../src/core/tick.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { createEventsHandler } from '../../src/handlers/events-handler.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { createStartHandler } from '../../src/handlers/start-handler.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { createTestTable, FakeClock, fixedRandom, sequentialIds, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

let table: TestTable
let clock: FakeClock
let runQueue: LocalQueue
let runDlq: LocalQueue
let eventsDlq: LocalQueue
let scheduler: LocalScheduler
let store: DynamoDbStore
let engine: Engine
let logs: { level: string; message: string; fields?: Record<string, unknown> }[]
let checkTimes: number[]

const logger: Logger = { log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }) }

beforeAll(async () => {
  table = await createTestTable('queue-flows')
})

const makeEngine = (instanceStore: InstanceStore = store) =>
  new Engine({
    store: instanceStore,
    clock,
    ids: sequentialIds('q'),
    random: fixedRandom(0),
    logger,
    queue: runQueue,
    scheduler,
    recurring: scheduler,
  })

beforeEach(() => {
  logs = []
  checkTimes = []
  clock = new FakeClock()
  runDlq = new LocalQueue({ name: 'run-dlq', now: () => clock.nowMs() })
  eventsDlq = new LocalQueue({ name: 'events-dlq', now: () => clock.nowMs() })
  runQueue = new LocalQueue({ name: 'run', now: () => clock.nowMs(), maxReceiveCount: 3, deadLetter: runDlq })
  scheduler = new LocalScheduler({ now: () => clock.nowMs() })
  store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
  engine = makeEngine()
  engine.register(approvalWorkflow)
  engine.register(
    defineWorkflow({
      type: 'poll-three',
      nodes: {
        job: {
          run: () => {},
          check: () => {
            checkTimes.push(clock.nowMs())
            if (checkTimes.length < 3) throw new NotReadyError()
          },
        },
      },
    }),
  )
  engine.register(
    defineWorkflow({
      type: 'deadline',
      nodes: {
        wait: {
          maxWaitTimeSeconds: 60,
          run: () => {},
          check: () => {
            checkTimes.push(clock.nowMs())
            throw new NotReadyError(3600)
          },
        },
      },
    }),
  )
})

const runHandler = () => createRunHandler({ engine, logger, deadLetters: runDlq, maxReceiveCount: 3 })
const eventsHandler = () => createEventsHandler({ engine, logger, deadLetters: eventsDlq, maxReceiveCount: 3 })

/** An SQS batch as Lambda delivers it from the events queue. */
const sqsEvent = (bodies: string[], receiveCount = 1): SQSEvent => ({
  Records: bodies.map((body, index) => ({
    messageId: `m-${index}`,
    receiptHandle: `rh-${index}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(clock.nowMs()),
      SenderId: 'AIDAEXAMPLE',
      ApproximateFirstReceiveTimestamp: String(clock.nowMs()),
    },
    messageAttributes: {},
    md5OfBody: 'x',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:tickflow-events',
    awsRegion: 'eu-west-1',
  })),
})

describe('an approval driven by queues', () => {
  it('completes after the reviewer event arrives on the events queue and the worker runs', async () => {
    const { instanceId, status } = await engine.create({ workflowType: 'approval', context: { requester: 'ada' } })
    expect(status).toBe('running')
    // The review check asked to be polled again in 60 s: a delayed run message holds that wake-up.
    expect(runQueue.messages()).toHaveLength(1)
    expect(runQueue.messages()[0]?.visibleAtMs).toBe(clock.nowMs() + 60_000)

    clock.advanceSeconds(3)
    const response = await eventsHandler()(
      sqsEvent([JSON.stringify({ instanceId, nodeId: 'review', eventTs: 100, content: { decision: 'approved' } })]),
    )
    expect(response.batchItemFailures).toEqual([])
    // The event made the instance due at once: a run message without delay.
    const delivered = await runQueue.deliver(runHandler())
    expect(delivered).toMatchObject({ delivered: 1, failed: 0 })
    const detail = await engine.get(instanceId)
    expect(detail.status).toBe('completed')
    expect(detail.nodes.find((node) => node.id === 'approve')?.context?.decision).toBe('approved')

    // The older wake-up still arrives later and finds nothing to do.
    clock.advanceSeconds(60)
    expect(await runQueue.deliver(runHandler())).toMatchObject({ delivered: 1, failed: 0 })
    expect(runDlq.pending()).toBe(0)
  })

  it('finds the instance by workflow type and business id', async () => {
    const { instanceId } = await engine.create({ workflowType: 'approval', businessId: 'PO-77' })
    await eventsHandler()(
      sqsEvent([
        JSON.stringify({
          workflowType: 'approval',
          businessId: 'PO-77',
          nodeId: 'review',
          eventTs: 1,
          content: { decision: 'rejected' },
        }),
      ]),
    )
    await runQueue.deliver(runHandler())
    expect((await engine.get(instanceId)).status).toBe('completed')
  })
})

describe('polling a check through the run queue', () => {
  it('completes on the third poll, with the backoff between polls', async () => {
    const started = clock.nowMs()
    const { instanceId } = await engine.create({ workflowType: 'poll-three' })
    // Not yet: the wake-up is 5 s away.
    clock.advanceSeconds(4)
    expect(await runQueue.deliver(runHandler())).toMatchObject({ delivered: 0 })
    clock.advanceSeconds(1)
    expect(await runQueue.deliver(runHandler())).toMatchObject({ delivered: 1 })
    clock.advanceSeconds(9)
    expect(await runQueue.deliver(runHandler())).toMatchObject({ delivered: 0 })
    clock.advanceSeconds(1)
    expect(await runQueue.deliver(runHandler())).toMatchObject({ delivered: 1 })
    expect(checkTimes.map((at) => (at - started) / 1000)).toEqual([0, 5, 15])
    expect((await engine.get(instanceId)).status).toBe('completed')
    expect(runQueue.pending()).toBe(0)
  })
})

describe('a deadline', () => {
  it('fails a node that is never polled again, woken at the deadline', async () => {
    const { instanceId } = await engine.create({ workflowType: 'deadline' })
    expect(checkTimes).toHaveLength(1)
    // The check asked for an hour; the wake-up is at the 60 s deadline (rounded up to a whole second).
    expect(runQueue.messages().map((message) => message.visibleAtMs)).toEqual([clock.nowMs() + 61_000])
    clock.advanceSeconds(61)
    await runQueue.deliver(runHandler())
    const detail = await engine.get(instanceId)
    expect(detail.status).toBe('failed')
    expect(detail.nodes.find((node) => node.id === 'wait')?.context?.reason).toMatch(/max_wait_time_ts exceeded/)
  })

  it('is found by the tick even when the wake-up message was lost', async () => {
    const { instanceId } = await engine.create({ workflowType: 'deadline' })
    for (const record of runQueue.receive()) runQueue.delete(record.receiptHandle)
    clock.advanceSeconds(61)
    const tick = await runTick({ store, queue: runQueue, clock, logger }, { remainingTimeMs: 30_000 })
    expect(tick).toMatchObject({ due: 1, sent: 1, failed: 0, complete: true })
    expect(tick.oldestLagMs).toBe(999)
    await runQueue.deliver(runHandler())
    expect((await engine.get(instanceId)).status).toBe('failed')
  })
})

describe('far wake-ups', () => {
  it('become one-time schedules, and cancel removes them', async () => {
    engine.register(
      defineWorkflow({
        type: 'slow-poll',
        nodes: {
          job: {
            run: () => {},
            check: () => {
              throw new NotReadyError(3600)
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'slow-poll' })
    expect(scheduler.wakeups()).toEqual([{ instanceId, atMs: clock.nowMs() + 3_600_000 }])
    expect(runQueue.pending()).toBe(0)
    await engine.cancel(instanceId)
    expect(scheduler.wakeups()).toEqual([])
  })
})

describe('a run batch with one poisoned message', () => {
  it('reports exactly that message as failed, and dead-letters it with its reason on the last receive', async () => {
    const good = await engine.create({ workflowType: 'approval', run: false })
    const poisoned = await engine.create({ workflowType: 'approval', run: false })
    // The store throttles every attempt on one instance: an infrastructure error that does not go away.
    const flaky = new Proxy(store, {
      get(target, property) {
        if (property === 'acquireLease') {
          return async (...args: Parameters<InstanceStore['acquireLease']>) => {
            if (args[0] === poisoned.instanceId) throw new StoreError('throttled', true)
            return target.acquireLease(...args)
          }
        }
        const value = Reflect.get(target, property, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    engine = makeEngine(flaky)
    engine.register(approvalWorkflow)
    const body = (instanceId: string) => JSON.stringify({ v: 1, kind: 'run', instanceId, dueAtMs: clock.nowMs() })
    const batch = sqsEvent([body(good.instanceId), body(poisoned.instanceId), 'not json'])
    const first = await runHandler()(batch)
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm-1' }])
    // The malformed message went straight to the dead-letter queue, with its reason.
    expect(runDlq.messages().map((message) => [message.body, message.attributes.reason])).toEqual([
      ['not json', 'body is not JSON'],
    ])
    expect((await engine.get(good.instanceId)).status).toBe('running')

    const last = await runHandler()(sqsEvent([body(poisoned.instanceId)], 3))
    expect(last.batchItemFailures).toEqual([])
    expect(runDlq.messages()[1]?.attributes.reason).toMatch(/throttled.*still failing after 3 receives/)
  })
})

describe('duplicated and reordered events', () => {
  it('leave the newest event stored once; the older one is acknowledged with a warning', async () => {
    const { instanceId } = await engine.create({ workflowType: 'approval' })
    const message = (eventTs: number, note: string) =>
      JSON.stringify({ instanceId, nodeId: 'review', eventTs, content: { note }, eventId: `e-${eventTs}` })
    const newest = message(200, 'newest')
    const older = message(100, 'older')
    // Records of one batch are processed concurrently; the older event comes in a later delivery.
    const first = await eventsHandler()(sqsEvent([newest, newest]))
    const second = await eventsHandler()(sqsEvent([older, newest]))
    expect([...first.batchItemFailures, ...second.batchItemFailures]).toEqual([])
    expect(eventsDlq.pending()).toBe(0)
    const review = (await engine.get(instanceId)).nodes.find((node) => node.id === 'review')
    expect(review?.context?.node_event).toEqual({ event_content: { note: 'newest' }, event_ts: 200 })
    expect(logs.filter((entry) => entry.message === 'event older than the stored one acknowledged')).toHaveLength(1)
    // Re-delivered after the node completed: acknowledged as a duplicate, not dead-lettered.
    await eventsHandler()(
      sqsEvent([JSON.stringify({ instanceId, nodeId: 'review', eventTs: 300, content: { decision: 'approved' } })]),
    )
    await runQueue.deliver(runHandler())
    clock.advanceSeconds(60)
    await runQueue.deliver(runHandler())
    expect((await engine.get(instanceId)).status).toBe('completed')
    const again = await eventsHandler()(
      sqsEvent([JSON.stringify({ instanceId, nodeId: 'review', eventTs: 300, content: { decision: 'approved' } })]),
    )
    expect(again.batchItemFailures).toEqual([])
    expect(eventsDlq.pending()).toBe(0)
  })

  it.each([
    ['a body that is not JSON', '{oops', /not JSON/],
    ['a message without a node', JSON.stringify({ instanceId: 'x', eventTs: 1 }), /nodeId/],
    ['a message naming no instance', JSON.stringify({ nodeId: 'review', eventTs: 1 }), /name the instance/],
    ['an unknown instance', JSON.stringify({ instanceId: 'nope', nodeId: 'review', eventTs: 1 }), /does not exist/],
  ])('dead-letters %s with its reason', async (_, body, reason) => {
    const response = await eventsHandler()(sqsEvent([body]))
    expect(response.batchItemFailures).toEqual([])
    const letters = eventsDlq.messages()
    expect(letters).toHaveLength(1)
    expect(letters[0]?.body).toBe(body)
    expect(letters[0]?.attributes.reason).toMatch(reason)
    expect(letters[0]?.attributes.source).toBe('events')
  })

  it('retries an unknown business id (the instance may not be visible yet), then dead-letters it with its reason', async () => {
    const body = JSON.stringify({ workflowType: 'approval', businessId: 'none', nodeId: 'review', eventTs: 1 })
    expect((await eventsHandler()(sqsEvent([body], 1))).batchItemFailures).toEqual([{ itemIdentifier: 'm-0' }])
    expect(eventsDlq.messages()).toHaveLength(0)
    expect((await eventsHandler()(sqsEvent([body], 3))).batchItemFailures).toEqual([])
    const letters = eventsDlq.messages()
    expect(letters).toHaveLength(1)
    expect(letters[0]?.attributes.reason).toMatch(/no instance of 'approval' with business id 'none'.*after 3 receives/)
  })

  it('dead-letters an event for a node of a finished instance that differs from the stored one', async () => {
    const { instanceId } = await engine.create({ workflowType: 'approval' })
    await engine.cancel(instanceId)
    await eventsHandler()(sqsEvent([JSON.stringify({ instanceId, nodeId: 'review', eventTs: 5 })]))
    expect(eventsDlq.messages()[0]?.attributes.reason).toMatch(/ILLEGAL_STATE/)
  })
})

describe('recurring starts', () => {
  it('start an instance per firing, once, however often the start message is delivered', async () => {
    const startDlq = new LocalQueue({ name: 'start-dlq', now: () => clock.nowMs() })
    await engine.putSchedule({
      name: 'nightly-approval',
      expression: 'rate(1 minute)',
      workflowType: 'approval',
      context: { requester: 'cron' },
    })
    expect((await engine.listSchedules()).map((schedule) => schedule.name)).toEqual(['nightly-approval'])
    clock.advanceSeconds(125)
    const { starts } = scheduler.due(clock.nowMs())
    expect(starts).toHaveLength(2)
    const handler = createStartHandler({ engine, logger, deadLetters: startDlq, maxReceiveCount: 3 })
    const bodies = starts.map((start) => JSON.stringify({ v: 1, kind: 'start', ...start }))
    expect((await handler(sqsEvent([...bodies, bodies[0] as string]))).batchItemFailures).toEqual([])
    const started = await engine.list({ workflowType: 'approval', businessId: undefined as never })
    const fromSchedule = started.items.filter((item) => item.id.startsWith('nightly-approval-'))
    expect(fromSchedule).toHaveLength(2)
    expect(startDlq.pending()).toBe(0)
    await engine.deleteSchedule('nightly-approval')
    expect(await engine.listSchedules()).toEqual([])
  })

  it('fire a cron schedule in its time zone at the right UTC instant, and across the change to summer time', async () => {
    const startDlq = new LocalQueue({ name: 'start-dlq', now: () => clock.nowMs() })
    const handler = createStartHandler({ engine, logger, deadLetters: startDlq, maxReceiveCount: 3 })
    clock.ms = Date.parse('2026-03-06T12:00:00Z') // a Friday, 07:00 in New York (EST, UTC-5)
    await engine.putSchedule({
      name: 'ny-breakfast',
      expression: 'cron(30 8 * * ? *)',
      timezone: 'America/New_York',
      workflowType: 'approval',
      context: { requester: 'cron' },
    })
    expect((await engine.getSchedule('ny-breakfast')).nextFireAt).toBe('2026-03-06T13:30:00Z')

    const fired: string[] = []
    // Through the weekend of 8 March 2026, when New York moves to EDT (UTC-4), a quarter of an hour at a time.
    while (clock.nowMs() < Date.parse('2026-03-10T12:00:00Z')) {
      clock.advanceSeconds(15 * 60)
      const { starts } = scheduler.due(clock.nowMs())
      if (starts.length === 0) continue
      expect(
        (await handler(sqsEvent(starts.map((start) => JSON.stringify({ v: 1, kind: 'start', ...start })))))
          .batchItemFailures,
      ).toEqual([])
      fired.push(...starts.map((start) => start.scheduledTime))
    }

    expect(fired).toEqual([
      '2026-03-06T13:30:00Z',
      '2026-03-07T13:30:00Z',
      '2026-03-08T12:30:00Z',
      '2026-03-09T12:30:00Z',
    ])
    const started = await engine.list({ workflowType: 'approval' })
    const ids = started.items.map((item) => item.id).filter((id) => id.startsWith('ny-breakfast-'))
    expect(ids.sort()).toEqual(fired.map((time) => `ny-breakfast-${Date.parse(time) / 1000}`).sort())
    expect(startDlq.pending()).toBe(0)
  })
})

// After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
afterEach(async () => {
  expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
})
