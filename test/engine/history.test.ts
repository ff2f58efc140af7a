import { GetCommand } from '@aws-sdk/lib-dynamodb'
import { marshall } from '@aws-sdk/util-dynamodb'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { QueueConsumer } from '../../src/core/consumer.js'
import type { Engine } from '../../src/core/engine.js'
import { MAX_HISTORY_ENTRIES } from '../../src/core/history.js'
import { silentLogger } from '../../src/core/ports.js'
import type { HistoryEntry } from '../../src/core/store.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import {
  createTestTable,
  type FakeClock,
  newTestEngine,
  STORE_BACKENDS,
  type StoreBackend,
  type TestTable,
} from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError'
}

/** charge fails for good with a CardDeclinedError. */
const failing = defineWorkflow({
  type: 'charge',
  nodes: {
    prepare: { next: ['charge'], run: (ctx) => ctx.set('prepared', true) },
    charge: {
      run: () => {
        throw new FailedWithFailedError('declined', { cause: new CardDeclinedError('the card was declined') })
      },
    },
  },
})

const linear = (type: string, count: number, bytes: number) => {
  const nodes: Record<string, { next?: string[]; run: (ctx: { set(key: string, value: string): void }) => void }> = {}
  for (let i = 0; i < count; i++) {
    nodes[`n${i}`] = {
      ...(i + 1 < count ? { next: [`n${i + 1}`] } : {}),
      run: (ctx) => ctx.set('out', 'x'.repeat(bytes)),
    }
  }
  return defineWorkflow({ type, nodes } as Parameters<typeof defineWorkflow>[0])
}

/** Every entry of the history, paging with `limit`. */
const wholeHistory = async (engine: Engine, instanceId: string, limit = 100): Promise<HistoryEntry[]> => {
  const entries: HistoryEntry[] = []
  let afterSeq: number | undefined
  for (let page = 0; page < 1000; page++) {
    const result = await engine.history(instanceId, { limit, ...(afterSeq === undefined ? {} : { afterSeq }) })
    entries.push(...result.entries)
    if (result.nextAfterSeq === undefined) return entries
    afterSeq = result.nextAfterSeq
  }
  throw new Error('the history did not end')
}

const brief = (entries: readonly HistoryEntry[]) =>
  entries.map((entry) => [entry.kind, entry.nodeId, entry.status].filter((part) => part !== undefined).join(' '))

describe.each(STORE_BACKENDS)('the history of an instance, on $name', (backendFactory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await backendFactory.open('history')
  })

  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })

  it('lists an approval: created, nodes running and completed with attempt and duration, the event, finished', async () => {
    const { engine, clock } = newTestEngine(backend)
    engine.register(approvalWorkflow)
    const { instanceId } = await engine.create({ workflowType: 'approval', context: { amount: 5 }, origin: 'api' })
    clock.advanceSeconds(30)
    await engine.addNodeEvent({
      instanceId,
      nodeId: 'review',
      eventTs: 1_700_000_000,
      content: { decision: 'approved' },
      origin: 'api',
    })
    clock.advanceSeconds(2)
    await engine.runWorkflow(instanceId, { mode: 'due' })

    const entries = await wholeHistory(engine, instanceId)
    expect(brief(entries)).toEqual([
      'created',
      'node submit running',
      'node submit completed',
      'node review running',
      'node review pending',
      'event review',
      'node review completed',
      'node approve running',
      'node approve completed',
      'finished completed',
    ])
    expect(entries.map((entry) => entry.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(entries[0]).toMatchObject({ kind: 'created', origin: 'api' })
    expect(entries[5]).toMatchObject({ kind: 'event', nodeId: 'review', eventTs: 1_700_000_000, origin: 'api' })
    expect(entries[5]?.superseded).toBeUndefined()
    expect(entries[6]).toMatchObject({ kind: 'node', nodeId: 'review', status: 'completed', attempt: 1 })
    expect(entries[6]?.durationMs).toBe(32_000)
    expect(entries[9]?.atMs).toBe(clock.nowMs())
  })

  it('records nothing with history: false, and runs the same', async () => {
    const { engine, clock } = newTestEngine(backend, { history: false })
    engine.register(approvalWorkflow)
    const { instanceId } = await engine.create({ workflowType: 'approval', context: { amount: 5 }, origin: 'api' })
    await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 1, content: { decision: 'approved' } })
    clock.advanceSeconds(2)
    const result = await engine.runWorkflow(instanceId, { mode: 'due' })
    const again = await engine.restartNode({ instanceId, nodeId: 'approve', force: true, run: true })

    expect(result.status).toBe('completed')
    expect(again.status).toBe('completed')
    expect(await wholeHistory(engine, instanceId)).toEqual([])
  })

  it('marks an event superseded when a newer one replaced it before any pass saw it', async () => {
    const { engine } = newTestEngine(backend)
    engine.register(approvalWorkflow)
    const { instanceId } = await engine.create({ workflowType: 'approval' })
    await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 100, content: { decision: 'maybe' } })
    await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 200, content: { decision: 'maybe' } })
    await engine.runWorkflow(instanceId, { mode: 'due' })
    // This one replaces an event the pass above saw: it supersedes nothing.
    await engine.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 300, content: { decision: 'approved' } })
    await engine.runWorkflow(instanceId, { mode: 'due' })

    const events = (await wholeHistory(engine, instanceId)).filter((entry) => entry.kind === 'event')
    expect(events.map((entry) => [entry.eventTs, entry.superseded === true])).toEqual([
      [100, true],
      [200, false],
      [300, false],
    ])
  })

  it('records an error with its class and message, and the instance failing', async () => {
    const { engine } = newTestEngine(backend)
    engine.register(failing)
    const { instanceId, status } = await engine.create({ workflowType: 'charge' })
    expect(status).toBe('failed')

    const entries = await wholeHistory(engine, instanceId)
    const error = entries.find((entry) => entry.kind === 'error')
    expect(error).toMatchObject({ nodeId: 'charge', attempt: 1, errorClass: 'FailedWithFailedError' })
    expect(error?.message).toContain('declined')
    expect(brief(entries).slice(-2)).toEqual(['node charge failed', 'finished failed'])
  })

  it('cuts an error message to 300 characters', async () => {
    const { engine } = newTestEngine(backend)
    engine.register(
      defineWorkflow({
        type: 'verbose',
        nodes: {
          only: {
            run: () => {
              throw new FailedWithFailedError('e'.repeat(5000))
            },
          },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'verbose' })
    const error = (await wholeHistory(engine, instanceId)).find((entry) => entry.kind === 'error')
    expect(error?.message?.length).toBe(300)
  })

  it('records restarts and cancels with their origin', async () => {
    const { engine } = newTestEngine(backend)
    engine.register(failing)
    engine.register(approvalWorkflow)
    const { instanceId } = await engine.create({ workflowType: 'charge' })
    await engine.restartInstance({ instanceId, origin: 'queue' })
    await engine.restartNode({ instanceId, nodeId: 'charge', force: true, origin: 'api' })
    const approval = await engine.create({ workflowType: 'approval' })
    await engine.cancel(approval.instanceId, { origin: 'api' })

    const restarts = (await wholeHistory(engine, instanceId)).filter((entry) => entry.kind === 'restart')
    expect(restarts).toMatchObject([{ origin: 'queue' }, { nodeId: 'charge', origin: 'api' }])
    const canceled = await wholeHistory(engine, approval.instanceId)
    expect(canceled.find((entry) => entry.kind === 'cancel')).toMatchObject({ origin: 'api' })
    expect(brief(canceled).slice(-3)).toEqual(['cancel', 'node review canceled', 'finished canceled'])
  })

  it('records the origin of an event through the events queue and of a scheduled start', async () => {
    const { engine } = newTestEngine(backend)
    engine.register(approvalWorkflow)
    const { instanceId } = await engine.create({ workflowType: 'approval' })
    const delivery = await new QueueConsumer(engine, silentLogger).deliver('events', {
      body: JSON.stringify({ instanceId, nodeId: 'review', eventTs: 5, content: { decision: 'approved' } }),
    })
    expect(delivery).toMatchObject({ kind: 'done' })
    const started = await new QueueConsumer(engine, silentLogger).deliver('start', {
      body: JSON.stringify({
        v: 1,
        kind: 'start',
        schedule: 'nightly',
        scheduledTime: '2026-12-01T00:00:00Z',
        workflowType: 'approval',
        context: {},
      }),
    })
    expect(started, JSON.stringify(started)).toMatchObject({ kind: 'done' })

    const event = (await wholeHistory(engine, instanceId)).find((entry) => entry.kind === 'event')
    expect(event).toMatchObject({ origin: 'queue', eventTs: 5 })
    const [scheduled] = (await engine.list({ workflowType: 'approval', limit: 100 })).items.filter((item) =>
      item.id.includes('nightly'),
    )
    expect(scheduled).toBeDefined()
    const history = await wholeHistory(engine, scheduled?.id as string)
    expect(history[0]).toMatchObject({ kind: 'created', origin: 'schedule' })
  })

  it('pages: every entry exactly once, in order, across archive items', async () => {
    const { engine } = newTestEngine(backend)
    engine.register(linear('paged', 60, 100))
    const { instanceId, status } = await engine.create({ workflowType: 'paged' })
    expect(status).toBe('completed')

    const all = await wholeHistory(engine, instanceId, 500)
    expect(all).toHaveLength(1 + 60 * 2 + 1)
    const paged = await wholeHistory(engine, instanceId, 7)
    expect(paged).toEqual(all)
    expect(paged.map((entry) => entry.seq)).toEqual(all.map((_, index) => index))
  })

  it('answers an unknown instance with InstanceNotFoundError', async () => {
    const { engine } = newTestEngine(backend)
    await expect(engine.history('no-such-instance')).rejects.toMatchObject({ name: 'InstanceNotFoundError' })
  })

  it(`keeps the first entries and the latest beyond ${MAX_HISTORY_ENTRIES}, counting those it dropped`, async () => {
    const { engine, clock } = newTestEngine(backend)
    engine.register(retrying)
    const { instanceId } = await engine.create({ workflowType: 'retrying', run: false })
    await passUntilFailed(engine, clock, instanceId)

    const page = await engine.history(instanceId, { limit: 1 })
    const all = await wholeHistory(engine, instanceId, 500)
    expect(page.dropped).toBeGreaterThan(0)
    expect(all.length + page.dropped).toBe((all[all.length - 1]?.seq as number) + 1)
    expect(all.length).toBeLessThanOrEqual(MAX_HISTORY_ENTRIES + 200)
    expect(all[0]).toMatchObject({ seq: 0, kind: 'created' })
    expect(brief(all).slice(-2)).toEqual(['node flaky failed', 'finished failed'])
  }, 120_000)
})

describe('the history in the DynamoDB layout', () => {
  let table: TestTable

  beforeAll(async () => {
    table = await createTestTable('history-layout')
  })

  afterEach(async () => {
    expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
  })

  it('cancels 192 waiting nodes in one write after 120 events, within the update-expression limit', async () => {
    const { engine } = newTestEngine(table)
    // start → 3 hubs → 64 leaves each: 192 leaves wait for an hour.
    const hubs = Array.from({ length: 3 }, (_, i) => `h${i}`)
    const nodes: Record<string, unknown> = { start: { next: hubs, run: () => {} } }
    for (const hub of hubs) {
      const leaves = Array.from({ length: 64 }, (_, j) => `${hub}l${j}`)
      nodes[hub] = { next: leaves, run: () => {} }
      for (const leaf of leaves) {
        nodes[leaf] = {
          run: () => {
            throw new NotReadyError(3600)
          },
        }
      }
    }
    engine.register(defineWorkflow({ type: 'fan-out', nodes } as Parameters<typeof defineWorkflow>[0]))
    const { instanceId, status } = await engine.create({ workflowType: 'fan-out' })
    expect(status).toBe('running')
    // Events appended while no pass runs: the recent history is over its 2 KB when the cancel takes the lease.
    for (const hub of hubs) {
      for (let j = 0; j < 40; j++) await engine.addNodeEvent({ instanceId, nodeId: `${hub}l${j}`, eventTs: 1 })
    }

    const canceled = await engine.cancel(instanceId, { origin: 'api' })

    expect(canceled.status).toBe('canceled')
    const all = await wholeHistory(engine, instanceId, 500)
    expect(all.filter((entry) => entry.kind === 'node' && entry.status === 'canceled')).toHaveLength(192)
    expect(all.filter((entry) => entry.kind === 'event')).toHaveLength(120)
    expect(all.map((entry) => entry.seq)).toEqual(all.map((_, index) => index))
    expect(brief(all).slice(-1)).toEqual(['finished canceled'])
  }, 60_000)

  it('keeps a 200-node instance item below 16 KB, its history leaving it with the archived records', async () => {
    const { engine, store } = newTestEngine(table)
    engine.register(linear('wide', 200, 100))
    const { instanceId, status } = await engine.create({ workflowType: 'wide' })
    expect(status).toBe('completed')

    const raw = await table.client.send(new GetCommand({ TableName: table.tableName, Key: instanceKey(instanceId) }))
    const item = raw.Item as Record<string, unknown>
    const itemBytes = JSON.stringify(marshall(item, { removeUndefinedValues: true })).length
    expect(itemBytes).toBeLessThan(16 * 1024)
    expect((item.h as unknown[]).length).toBeLessThan(60)
    const all = await wholeHistory(engine, instanceId, 500)
    expect(all).toHaveLength(1 + 200 * 2 + 1)
    expect((await store.readHistory(instanceId, { limit: 1 }))?.dropped).toBe(0)
  })
})

/** flaky errors on every attempt (one error entry a pass) until it has failed 1,150 times. */
const retrying = defineWorkflow({
  type: 'retrying',
  nodes: {
    flaky: {
      failMaxCount: 1150,
      run: () => {
        throw new Error('still broken')
      },
    },
  },
} as Parameters<typeof defineWorkflow>[0])

const passUntilFailed = async (engine: Engine, clock: FakeClock, instanceId: string): Promise<void> => {
  for (let pass = 0; pass < 1200; pass++) {
    const result = await engine.runWorkflow(instanceId)
    if (result.status === 'failed') return
    clock.advanceSeconds(3600)
  }
  throw new Error('the instance did not fail')
}
