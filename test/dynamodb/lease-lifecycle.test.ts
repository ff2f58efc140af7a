import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { SQSEvent } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalScheduler } from '../../src/adapters/memory/local-scheduler.js'
import { createApiHandler } from '../../src/api/handler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import type { RunQueue, RunRequest } from '../../src/core/dispatch-ports.js'
import { Engine, type EngineDeps } from '../../src/core/engine.js'
import { IllegalStateError } from '../../src/core/errors.js'
import { silentLogger } from '../../src/core/ports.js'
import type { Worker } from '../../src/core/registry.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { runTick } from '../../src/core/tick.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { createEventsHandler } from '../../src/handlers/events-handler.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { newLocalClient } from '../reliability/support.js'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { interceptRequests } from '../support/exchanges.js'
import {
  createTestTable,
  FakeClock,
  fixedRandom,
  sequentialIds,
  type TestTable,
  TimerClock,
} from '../support/harness.js'
import { runMessageBody, sqsRecord } from '../support/sqs-records.js'

/**
 * The lease lifecycle: every acquisition leaves the instance due by the lease end, every release leaves it terminal,
 * due or parked with a reason, every attempt of a worker is counted, and busy is an answer.
 */

const LEASE_MS = 10_000
const GRACE_MS = 5_000

let table: TestTable
let verifier: DynamoDbStore
const clients: DynamoDBClient[] = []

beforeAll(async () => {
  table = await createTestTable('lease-lifecycle')
  verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

class Crash extends Error {
  override readonly name = 'Crash'
}

/** A client whose runner can be killed at any moment: from then on nothing it sends reaches DynamoDB. */
const killableClient = (): { client: DynamoDBClient; kill: () => void } => {
  const client = newLocalClient()
  clients.push(client)
  const state = { dead: false }
  interceptRequests(client, async (_exchange, send) => {
    if (state.dead) throw new Crash('the runner is dead')
    return send()
  })
  return { client, kill: () => (state.dead = true) }
}

class RecordingQueue implements RunQueue {
  readonly sent: RunRequest[] = []
  async sendRuns(requests: readonly RunRequest[]): Promise<{ failed: RunRequest[] }> {
    this.sent.push(...requests)
    return { failed: [] }
  }
}

let prefixCounter = 0
const newEngine = (client: DynamoDBClient, clock: FakeClock, deps: Partial<EngineDeps> = {}): Engine =>
  new Engine({
    store: new DynamoDbStore({ tableName: table.tableName, client }),
    clock,
    ids: sequentialIds(`ll${++prefixCounter}`),
    random: fixedRandom(0),
    defaultLeaseMs: LEASE_MS,
    leaseGraceMs: GRACE_MS,
    ...deps,
  })

const read = async (instanceId: string): Promise<InstanceRecord> => {
  const record = await verifier.getInstance(instanceId)
  if (!record) throw new Error(`instance ${instanceId} is missing`)
  return record
}

/** The invariant after a step: terminal without a due time, or due (by the lease end when leased), or parked. */
const expectKept = (record: InstanceRecord): void => {
  const raw = record as InstanceRecord & { parked?: unknown }
  if (['completed', 'failed', 'canceled'].includes(record.status)) {
    expect(record.dueAtMs, `${record.id} is ${record.status} and still due`).toBeUndefined()
    return
  }
  if (raw.parked !== undefined) return
  expect(record.dueAtMs, `${record.id} is ${record.status} with no due time`).toBeTypeOf('number')
  if (record.leaseOwner !== undefined) {
    expect(record.dueAtMs as number, `${record.id} is due after its lease ends`).toBeLessThanOrEqual(
      record.leaseUntilMs as number,
    )
  }
}

describe('a runner that dies while it holds the lease', () => {
  it('leaves an instance it was restarting with run due by the lease end', async () => {
    const clock = new FakeClock()
    const { client, kill } = killableClient()
    let failFirst = true
    const workflow = (onB: () => void) =>
      defineWorkflow({
        type: 'restart-dies',
        nodes: {
          a: {
            next: ['b'],
            run: () => {
              if (failFirst) {
                failFirst = false
                throw new FailedWithFailedError('first time')
              }
            },
          },
          b: { run: onB },
        },
      })
    const engine = newEngine(client, clock)
    engine.register(workflow(() => kill()))
    const { instanceId, status } = await engine.create({ workflowType: 'restart-dies' })
    expect(status).toBe('failed')

    await expect(engine.restartInstance({ instanceId, run: true })).rejects.toThrow()
    const record = await read(instanceId)
    expect(record.status).toBe('running')
    expectKept(record)
  })

  it('leaves an instance waiting a day due by the lease end after an explicit run dies', async () => {
    const clock = new FakeClock()
    const { client, kill } = killableClient()
    let looks = 0
    const engine = newEngine(client, clock)
    engine.register(
      defineWorkflow({
        type: 'explicit-dies',
        nodes: {
          wait: {
            run: () => {},
            check: () => {
              looks += 1
              if (looks > 1) kill()
              throw new NotReadyError(86_400)
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'explicit-dies' })
    expect((await read(instanceId)).dueAtMs).toBe(clock.nowMs() + 86_400_000)
    await expect(engine.runWorkflow(instanceId)).rejects.toThrow()
    const record = await read(instanceId)
    expectKept(record)
    expect(record.dueAtMs).toBeLessThanOrEqual(clock.nowMs() + LEASE_MS + GRACE_MS)
  })
})

describe('a restart with run', () => {
  it.each(['instance', 'node'] as const)(
    'of the %s leaves a restarted node that waits due at its next attempt',
    async (what) => {
      const clock = new FakeClock()
      const engine = newEngine(table.client, clock)
      let failFirst = true
      engine.register(
        defineWorkflow({
          type: `restart-waits-${what}`,
          nodes: {
            a: {
              run: () => {
                if (failFirst) {
                  failFirst = false
                  throw new FailedWithFailedError('first time')
                }
              },
              check: () => {
                throw new NotReadyError(30)
              },
            },
          },
        }),
      )
      const { instanceId, status } = await engine.create({ workflowType: `restart-waits-${what}` })
      expect(status).toBe('failed')
      const restarted =
        what === 'instance'
          ? await engine.restartInstance({ instanceId, run: true })
          : await engine.restartNode({ instanceId, nodeId: 'a', force: true, run: true })
      expect(restarted.status).toBe('running')
      const record = await read(instanceId)
      expectKept(record)
      expect(record.dueAtMs).toBe(clock.nowMs() + 30_000)
    },
  )
})

describe('create with run', () => {
  it('takes the same lease as every pass (with grace) and is due by its end', async () => {
    const clock = new FakeClock()
    const seen: InstanceRecord[] = []
    const engine = newEngine(table.client, clock)
    engine.register(
      defineWorkflow({
        type: 'create-lease',
        nodes: { a: { run: async (ctx) => void seen.push(await read(ctx.instanceId)) } },
      }),
    )
    const started = clock.nowMs()
    await engine.create({ workflowType: 'create-lease' })
    const during = seen[0] as InstanceRecord
    expect(during.leaseUntilMs).toBe(started + LEASE_MS + GRACE_MS)
    expect(during.dueAtMs).toBeLessThanOrEqual(during.leaseUntilMs as number)
  })

  it('answers with the stored instance when another runner took the lease over', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    const other = newEngine(table.client, clock)
    let stolen = false
    const slow: Worker = {
      run: async (ctx) => {
        if (stolen) return
        stolen = true
        // The creator is still at work when its lease runs out and the tick hands the instance to another runner.
        clock.advanceMs(LEASE_MS + GRACE_MS + 1)
        await other.runWorkflow(ctx.instanceId, { mode: 'due' })
      },
    }
    for (const e of [engine, other]) e.register(defineWorkflow({ type: 'create-stolen', nodes: { a: slow } }))
    const result = await engine.create({ workflowType: 'create-stolen', context: { who: 'creator' } })
    expect(result.created).toBe(true)
    // The taker counted the creator's attempt, whose lease ran out, as failed; the retry completes the node.
    const taken = await read(result.instanceId)
    expect(taken.nodes.a?.failCount).toBe(1)
    expect(String(taken.nodes.a?.lastError)).toContain('without an outcome')
    clock.ms = taken.dueAtMs as number
    const again = await other.runWorkflow(result.instanceId, { mode: 'due' })
    expect(again.status).toBe('completed')
  })
})

describe('the HTTP routes that run passes', () => {
  it('size the lease on the Lambda remaining time', async () => {
    const clock = new FakeClock()
    const seen: InstanceRecord[] = []
    const engine = newEngine(table.client, clock, { defaultLeaseMs: 60_000 })
    engine.register(
      defineWorkflow({
        type: 'api-lease',
        nodes: { a: { run: async (ctx) => void seen.push(await read(ctx.instanceId)) } },
      }),
    )
    const handler = createApiHandler({
      engine,
      clock,
      sleep: async () => {},
      waitPollMs: 10,
      logger: silentLogger,
    })
    const response = await handler(
      apiEvent('POST', '/workflows', { body: { workflowType: 'api-lease' } }),
      lambdaContext(29_000),
    )
    expect(response.statusCode).toBe(201)
    const untilMs = (seen[0] as InstanceRecord).leaseUntilMs as number
    expect(untilMs - clock.nowMs()).toBeLessThanOrEqual(29_000 + GRACE_MS)
  })
})

describe('errors in one pass', () => {
  it('keeps the fail count and last error of a branch that errored while a sibling failed for good', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.register(
      defineWorkflow({
        type: 'two-errors',
        nodes: {
          fatal: {
            run: () => {
              throw new FailedWithFailedError('fatal')
            },
          },
          flaky: {
            run: async () => {
              await new Promise((resolve) => setTimeout(resolve, 30))
              throw new Error('flaky broke')
            },
          },
        },
      }),
    )
    const { instanceId, status } = await engine.create({ workflowType: 'two-errors' })
    expect(status).toBe('failed')
    const record = await read(instanceId)
    expect(record.nodes.flaky?.failCount).toBe(1)
    expect(record.nodes.flaky?.lastError).toContain('flaky broke')
  })

  it('counts a timeout reached through NotReady like any terminal failure', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.registerWorkflow({ id: 'nr-timeout', nodes: [{ id: 'a', next_nodes: [], max_wait_time_ts: 10 }] })
    engine.registerWorker('nr-timeout', 'a', {
      run: () => {
        throw new NotReadyError(5)
      },
    })
    const { instanceId } = await engine.create({ workflowType: 'nr-timeout' })
    clock.advanceSeconds(11)
    expect((await engine.runWorkflow(instanceId)).status).toBe('failed')
    expect((await read(instanceId)).nodes.a?.failCount).toBe(1)
  })
})

describe('restarts', () => {
  it('show end restarting after a forced restart of a completed instance', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.register(defineWorkflow({ type: 'end-follows', nodes: { a: { run: () => {} } } }))
    const { instanceId, status } = await engine.create({ workflowType: 'end-follows' })
    expect(status).toBe('completed')
    await engine.restartNode({ instanceId, nodeId: 'a', force: true })
    const detail = await engine.get(instanceId)
    expect(detail.nodes.map((node) => [node.id, node.status])).toEqual([
      ['root', 'completed'],
      ['a', 'restarting'],
      ['end', 'restarting'],
    ])
  })

  it('refuse a forced node restart that leaves a failed sibling blocking the join', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.register(
      defineWorkflow({
        type: 'diamond-dead-end',
        nodes: {
          top: { next: ['left', 'right'], run: () => {} },
          left: {
            next: ['join'],
            run: () => {
              throw new FailedWithFailedError('left is broken')
            },
          },
          right: { next: ['join'], run: () => {} },
          join: { run: () => {} },
        },
      }),
    )
    const { instanceId, status } = await engine.create({ workflowType: 'diamond-dead-end' })
    expect(status).toBe('failed')
    const before = await read(instanceId)
    const error = await engine
      .restartNode({ instanceId, nodeId: 'right', force: true, run: true })
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(IllegalStateError)
    expect((error as Error).message).toContain('left')
    const after = await read(instanceId)
    expect(after.status).toBe('failed')
    expect(after.nodes).toEqual(before.nodes)
    expectKept(after)
  })
})

describe('a deployment that lost a node worker', () => {
  it('parks the instance with the reason, out of the due index, until it is restarted with the worker back', async () => {
    const clock = new FakeClock()
    const config = {
      id: 'lost-worker',
      nodes: [
        { id: 'a', next_nodes: ['b'] },
        { id: 'b', next_nodes: [] },
      ],
    }
    const before = newEngine(table.client, clock)
    before.registerWorkflow(config)
    before.registerWorker('lost-worker', 'a', { run: () => {} })
    before.registerWorker('lost-worker', 'b', { run: () => {} })
    const { instanceId } = await before.create({ workflowType: 'lost-worker', run: false })

    // The next deployment has the same graph but no worker for b.
    const broken = newEngine(table.client, clock)
    broken.registerWorkflow(config)
    broken.registerWorker('lost-worker', 'a', { run: () => {} })
    const queue = new RecordingQueue()
    const deadLetters: string[] = []
    const runHandler = createRunHandler({
      engine: broken,
      logger: silentLogger,
      maxReceiveCount: 5,
      deadLetters: { send: async (message) => void deadLetters.push(message.reason) },
    })
    const deliver = async (): Promise<void> => {
      const requests = queue.sent.splice(0)
      const event: SQSEvent = {
        Records: requests.map((request, index) =>
          sqsRecord(runMessageBody(request.instanceId, request.dueAtMs), { messageId: `m${index}` }),
        ),
      }
      await runHandler(event)
    }
    const tick = () => runTick({ store: verifier, queue, clock, logger: silentLogger }, { remainingTimeMs: 30_000 })
    const mine = () => queue.sent.filter((request) => request.instanceId === instanceId).length
    await tick()
    expect(mine()).toBe(1)
    await deliver()
    const parked = (await read(instanceId)) as InstanceRecord & { parked?: { reason: string } }
    expect(['init', 'running']).toContain(parked.status)
    expect(parked.dueAtMs).toBeUndefined()
    expect(parked.parked?.reason).toContain("'b'")
    expect(deadLetters).toEqual([])
    clock.advanceSeconds(600)
    await tick()
    expect(mine()).toBe(0)
    const listed = await broken.list({ workflowType: 'lost-worker', parked: true } as never)
    expect(listed.items.map((item) => item.id)).toContain(instanceId)
    expect((await broken.count({ workflowType: 'lost-worker', parked: true } as never)).count).toBe(1)

    const fixed = newEngine(table.client, clock)
    fixed.registerWorkflow(config)
    fixed.registerWorker('lost-worker', 'a', { run: () => {} })
    fixed.registerWorker('lost-worker', 'b', { run: () => {} })
    expect((await fixed.restartInstance({ instanceId, run: true })).status).toBe('completed')
  })
})

describe('time is kept', () => {
  it('leaves a delayed start init until its time whatever arrives', async () => {
    const clock = new FakeClock()
    let calls = 0
    const engine = newEngine(table.client, clock)
    engine.register(
      defineWorkflow({
        type: 'delayed',
        nodes: {
          a: {
            run: () => {
              calls += 1
            },
          },
        },
      }),
    )
    const startAtMs = clock.nowMs() + 3_600_000
    const { instanceId } = await engine.create({ workflowType: 'delayed', run: false, startAtMs })
    await engine.addNodeEvent({ instanceId, nodeId: 'a', eventTs: 1, content: { early: true } })
    await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(calls).toBe(0)
    const record = await read(instanceId)
    expect(record.status).toBe('init')
    expect(record.dueAtMs).toBe(startAtMs)
    clock.ms = startAtMs
    expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    expect(calls).toBe(1)
  })

  it('removes a far wake-up schedule when an event completes the instance', async () => {
    const clock = new FakeClock()
    const scheduler = new LocalScheduler({ now: () => clock.nowMs() })
    const engine = newEngine(table.client, clock, { scheduler, queue: new RecordingQueue() })
    engine.register(
      defineWorkflow({
        type: 'far-wakeup',
        nodes: {
          approve: {
            run: () => {},
            check: (ctx) => {
              if (!ctx.event) throw new NotReadyError(7_200)
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'far-wakeup' })
    expect(scheduler.wakeups().map((wakeup) => wakeup.instanceId)).toContain(instanceId)
    await engine.addNodeEvent({ instanceId, nodeId: 'approve', eventTs: 1, content: { ok: true } })
    expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    expect(scheduler.wakeups().map((wakeup) => wakeup.instanceId)).not.toContain(instanceId)
  })
})

describe('events addressed by workflow type and business id', () => {
  const sqsEvent = (body: unknown, receiveCount: number): SQSEvent => ({
    Records: [sqsRecord(JSON.stringify(body), { messageId: `ev-${receiveCount}`, receiveCount, queue: 'events' })],
  })

  it('are retried while no instance is visible, and dead-lettered with the reason on the last receive', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.register(defineWorkflow({ type: 'ev-late', nodes: { a: { run: () => {} } } }))
    const dead: string[] = []
    const handler = createEventsHandler({
      engine,
      logger: silentLogger,
      maxReceiveCount: 3,
      deadLetters: { send: async (message) => void dead.push(message.reason) },
    })
    const body = { workflowType: 'ev-late', businessId: 'not-yet', nodeId: 'a', eventTs: 1 }
    expect((await handler(sqsEvent(body, 1))).batchItemFailures).toHaveLength(1)
    expect(dead).toEqual([])
    expect((await handler(sqsEvent(body, 3))).batchItemFailures).toHaveLength(0)
    expect(dead).toHaveLength(1)
    expect(dead[0]).toContain('not-yet')
  })

  it('find the running instance behind many finished ones of the same business id', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.register(
      defineWorkflow({
        type: 'ev-many',
        nodes: {
          a: {
            run: () => {},
            check: (ctx) => {
              if (ctx.getBoolean('workflow_context', 'wait') && !ctx.event) throw new NotReadyError(60)
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({
      workflowType: 'ev-many',
      businessId: 'crowded',
      context: { wait: true },
    })
    for (let index = 0; index < 30; index++) {
      clock.advanceMs(1)
      await engine.create({ workflowType: 'ev-many', businessId: 'crowded' })
    }
    const dead: string[] = []
    const handler = createEventsHandler({
      engine,
      logger: silentLogger,
      maxReceiveCount: 3,
      deadLetters: { send: async (message) => void dead.push(message.reason) },
    })
    const body = { workflowType: 'ev-many', businessId: 'crowded', nodeId: 'a', eventTs: 1, content: { go: 1 } }
    expect((await handler(sqsEvent(body, 1))).batchItemFailures).toHaveLength(0)
    expect(dead).toEqual([])
    expect((await read(instanceId)).events.a?.content).toEqual({ go: 1 })
  })
})

describe('a busy instance', () => {
  it('answers 409 with Retry-After', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    engine.register(defineWorkflow({ type: 'busy-409', nodes: { a: { run: () => {} } } }))
    const { instanceId } = await engine.create({ workflowType: 'busy-409', run: false })
    await verifier.acquireLease(instanceId, 'someone', clock.nowMs(), clock.nowMs() + 20_000, {})
    const handler = createApiHandler({ engine, clock, sleep: async () => {}, waitPollMs: 10, logger: silentLogger })
    const response = await handler(apiEvent('POST', `/workflows/${instanceId}/cancel`), lambdaContext())
    expect(response.statusCode).toBe(409)
    expect(response.headers?.['retry-after']).toBe('20')
  })

  it('runs after an event every time: the run waits for the pass the event started', async () => {
    const clock = new FakeClock()
    const engine = newEngine(table.client, clock)
    let release: () => void = () => {}
    engine.register(
      defineWorkflow({
        type: 'busy-run',
        nodes: {
          a: {
            run: () => {},
            check: async (ctx) => {
              if (!ctx.event) throw new NotReadyError(60)
              // The pass the event started is still running when the client asks for a run.
              await new Promise<void>((resolve) => {
                release = resolve
              })
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'busy-run' })
    await engine.addNodeEvent({ instanceId, nodeId: 'a', eventTs: 1, content: {} })
    const eventPass = engine.runWorkflow(instanceId, { mode: 'due' })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const handler = createApiHandler({
      engine,
      clock,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      waitPollMs: 10,
      logger: silentLogger,
    })
    setTimeout(() => release(), 200)
    const response = await handler(apiEvent('POST', `/workflows/${instanceId}/run`), lambdaContext())
    await eventPass
    expect([200, 202]).toContain(response.statusCode)
    expect(JSON.parse(response.body ?? '{}').status).toBe('completed')
  })
})

describe('a worker that never returns', () => {
  /** Waits (a bounded while) until the pass has reached its worker, a few DynamoDB round trips away. */
  const reached = async (calls: () => number, expected: number): Promise<void> => {
    for (let waited = 0; calls() < expected && waited < 10_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(calls()).toBe(expected)
  }

  it('is aborted through ctx.signal before its lease ends, and counted as a failed attempt each time', async () => {
    const clock = new TimerClock()
    const engine = newEngine(table.client, clock)
    const signals: AbortSignal[] = []
    engine.registerWorkflow({ id: 'hangs', nodes: [{ id: 'a', next_nodes: [], fail_max_count: 2 }] })
    engine.registerWorker('hangs', 'a', {
      run: (ctx) => {
        signals.push(ctx.signal)
        return new Promise(() => {})
      },
    })
    const creating = engine.create({ workflowType: 'hangs' })
    await reached(() => signals.length, 1)
    const during = await read((await engine.list({ workflowType: 'hangs' })).items[0]?.id as string)
    // The attempt is stored as started before the worker was called.
    expect(during.nodes.a?.attemptStarted).toMatchObject({ step: 'run', atMs: clock.nowMs(), fence: 1 })
    expect(signals[0]?.aborted).toBe(false)
    clock.advanceMs(LEASE_MS)
    const first = await creating
    expect(signals[0]?.aborted).toBe(true)
    expect(first.status).toBe('running')
    let record = await read(first.instanceId)
    expect(record.nodes.a).toMatchObject({ failCount: 1, calls: 1 })
    expect(record.nodes.a?.attemptStarted).toBeUndefined()
    expect(String(record.nodes.a?.lastError)).toContain('did not return before its lease ended')
    expectKept(record)

    clock.ms = record.dueAtMs as number
    const second = engine.runWorkflow(first.instanceId, { mode: 'due' })
    await reached(() => signals.length, 2)
    clock.advanceMs(LEASE_MS)
    expect((await second).status).toBe('failed')
    record = await read(first.instanceId)
    expect(record.nodes.a).toMatchObject({ status: 'failed', failCount: 2, calls: 2 })
    expect(record.failure).toMatchObject({ nodeId: 'a' })
    expect(signals).toHaveLength(2)
    expect(clock.pendingTimers).toBe(0)
  })

  it('fails at its max_wait_time_ts deadline without being called again', async () => {
    const clock = new TimerClock()
    const engine = newEngine(table.client, clock)
    let calls = 0
    engine.registerWorkflow({ id: 'hangs-deadline', nodes: [{ id: 'a', next_nodes: [], max_wait_time_ts: 30 }] })
    engine.registerWorker('hangs-deadline', 'a', {
      run: () => {
        calls += 1
        return new Promise(() => {})
      },
    })
    const creating = engine.create({ workflowType: 'hangs-deadline' })
    await reached(() => calls, 1)
    clock.advanceMs(LEASE_MS)
    const { instanceId } = await creating
    const waiting = await read(instanceId)
    expect(waiting.nodes.a?.failCount).toBe(1)
    // Due at the deadline at the latest; at the deadline the node fails, unpolled.
    clock.ms = waiting.createdAtMs + 30_001
    expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('failed')
    const failed = await read(instanceId)
    expect(calls).toBe(1)
    expect(failed.nodes.a?.output.reason).toContain('max_wait_time_ts exceeded')
    expect(failed.nodes.a?.failCount).toBe(2)
  })
})
