import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { defineWorkflow } from '../../src/core/builder.js'
import type { RunQueue } from '../../src/core/dispatch-ports.js'
import { Engine } from '../../src/core/engine.js'
import type { EventPublisher, LifecycleEvent } from '../../src/core/lifecycle-events.js'
import { silentLogger } from '../../src/core/ports.js'
import { runTick } from '../../src/core/tick.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { createTestTable, FakeClock, fixedRandom, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { Crash, type CrashMode, causes, crashingClient } from './support.js'

/**
 * A runner killed at every DynamoDB request of a create that runs an instance to its end, before the request is
 * sent and after it landed with its answer lost (README, "Lifecycle events"). Afterwards only the tick and the run
 * consumer work. Whatever the point, the bus gets exactly the status changes that landed — running, then
 * completed — each under one event id, every repeated publication marked `resent`, and the outbox ends empty.
 */

const TYPE = 'two-steps'
const workflow = defineWorkflow({
  type: TYPE,
  nodes: { first: { next: ['second'], run: (ctx) => ctx.set('one', 1) }, second: { run: (ctx) => ctx.set('two', 2) } },
})

interface Published {
  event: LifecycleEvent
  resent: boolean
}

let table: TestTable
let verifier: DynamoDbStore
const clients: DynamoDBClient[] = []

beforeAll(async () => {
  table = await createTestTable('outbox-crash')
  verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

const engineOn = (client: DynamoDBClient, clock: FakeClock, publisher: EventPublisher, owner: string): Engine => {
  let counter = 0
  const engine = new Engine({
    store: new DynamoDbStore({ tableName: table.tableName, client }),
    clock,
    ids: { newInstanceId: () => `${owner}-unused`, newLeaseOwner: () => `${owner}-${++counter}` },
    random: fixedRandom(0),
    lifecycle: { publisher },
  })
  engine.register(workflow)
  return engine
}

interface Scenario {
  mode: CrashMode
  k: number
}

const runScenario = async ({ mode, k }: Scenario, id: string) => {
  const clock = new FakeClock()
  const published: Published[] = []
  const publisher: EventPublisher = {
    publish: async (events, { resent }) => {
      for (const event of events) published.push({ event, resent })
      return { failed: [] }
    },
  }
  const { client, state } = crashingClient(k, mode)
  clients.push(client)
  const outcome = await engineOn(client, clock, publisher, `${id}-dead`)
    .create({ workflowType: TYPE, id })
    .then(
      () => 'returned' as const,
      (error: unknown) => (causes(error).some((cause) => cause instanceof Crash) ? ('crashed' as const) : error),
    )
  if (outcome !== 'returned' && outcome !== 'crashed') throw outcome

  // Only the tick and the run consumer from now on, on a healthy client, past the dead runner's lease.
  const runQueue = new LocalQueue({ name: 'run', now: () => clock.nowMs() })
  const ownRuns: RunQueue = {
    sendRuns: (requests) => runQueue.sendRuns(requests.filter((request) => request.instanceId === id)),
  }
  for (let round = 0; round < 4; round++) {
    clock.advanceSeconds(120)
    await runTick({ store: verifier, queue: ownRuns, clock, logger: silentLogger }, { remainingTimeMs: 60_000 })
    await runQueue.deliver(
      createRunHandler({
        engine: engineOn(table.client, clock, publisher, `${id}-live${round}`),
        logger: silentLogger,
        maxReceiveCount: 5,
        deadLetters: { send: async () => {} },
      }),
    )
  }
  return { requests: state.calls, published, record: await verifier.getInstance(id), clock }
}

describe('a runner killed after its write', () => {
  it('loses no lifecycle event, publishes none of a write that did not land, and marks every repeat', async () => {
    const clean = await runScenario({ mode: 'before', k: Number.POSITIVE_INFINITY }, 'ob-clean')
    expect(clean.published.map((p) => [p.event.detail.status, p.resent])).toEqual([
      ['running', false],
      ['completed', false],
    ])
    const points: Scenario[] = []
    for (let k = 0; k < clean.requests; k++) points.push({ mode: 'before', k })
    for (let k = 1; k <= clean.requests; k++) points.push({ mode: 'after', k })

    const lines: string[] = []
    for (const [index, point] of points.entries()) {
      const id = `ob-${point.mode}-${point.k}-${index}`
      const { published, record, clock } = await runScenario(point, id)
      const ofInstance = published.filter((p) => p.event.detail.instanceId === id)
      lines.push(
        `${point.mode} k=${point.k}: ${ofInstance.map((p) => `${p.event.detail.status}${p.resent ? '(resent)' : ''}`).join(' ') || '-'}`,
      )
      if (!record) {
        // Nothing landed: nothing is published.
        expect(ofInstance, `${point.mode} k=${point.k}`).toEqual([])
        continue
      }
      expect(record.status, `${point.mode} k=${point.k}`).toBe('completed')
      expect(record.outbox ?? [], `${point.mode} k=${point.k}: the outbox ends empty`).toEqual([])
      const byId = new Map<string, Published[]>()
      for (const p of ofInstance) byId.set(p.event.id, [...(byId.get(p.event.id) ?? []), p])
      const distinct = [...byId.values()].map((copies) => copies[0]?.event.detail.status)
      expect(distinct, `${point.mode} k=${point.k}: each change that landed, once`).toEqual(['running', 'completed'])
      for (const [eventId, copies] of byId) {
        expect(copies.filter((p) => !p.resent).length, `${eventId} published unmarked more than once`).toBeLessThan(2)
        for (const copy of copies) expect(copy.event, eventId).toEqual(copies[0]?.event)
      }
      expect(await invariantViolations(verifier, clock.nowMs(), { instanceIds: [id] })).toEqual([])
    }
    console.info(`outbox crash points (${points.length}):\n${lines.join('\n')}`)
    // Some points really left events for the recovery to publish again.
    expect(lines.some((line) => line.includes('(resent)'))).toBe(true)
  }, 120_000)
})
