import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { beforeAll, describe, expect, it } from 'vitest'
import { CapacityMeter } from '../../scripts/capacity-meter.js'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { DUE_PLACE_HORIZON_MS, dueShardFor, instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { defineWorkflow } from '../../src/core/builder.js'
import type { RunQueue, RunRequest } from '../../src/core/dispatch-ports.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { runTick } from '../../src/core/tick.js'
import { newDynamoClient } from '../support/dynamodb.js'
import { createTestTable, FakeClock, fixedRandom, sequentialIds, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { notYetNode } from '../support/polled.js'

/**
 * The due index keeps an instance at a place (`ds`) no later than its due time, and a due time at most an hour ahead
 * keeps the place it has (README, "Table layout"): a check polled every minute moves only the due time the index
 * projects (1 WCU), not its key (2 WCU). The tick reads the places up to now and hands out only what is due.
 */
let table: TestTable

beforeAll(async () => {
  table = await createTestTable('due-place')
})

class RecordingQueue implements RunQueue {
  readonly sent: RunRequest[] = []
  async sendRuns(requests: readonly RunRequest[]): Promise<{ failed: RunRequest[] }> {
    this.sent.push(...requests)
    return { failed: [] }
  }
}

/** `wait` runs, then its check says "not yet" for `retrySeconds`, again and again. */
const pollingType = (type: string, retrySeconds: number) =>
  defineWorkflow({ type, nodes: { wait: notYetNode(retrySeconds, { run: (ctx) => ctx.set('ticket', 'T-1') }) } })

let prefix = 0
/** An engine of its own on the shared table whose check `wait` says "not yet" for `retrySeconds`. */
const setUp = (retrySeconds: number, duePlaceHorizonMs?: number) => {
  const client = newDynamoClient()
  const meter = new CapacityMeter().attach(client)
  const clock = new FakeClock()
  const store = new DynamoDbStore({
    tableName: table.tableName,
    client,
    ...(duePlaceHorizonMs === undefined ? {} : { duePlaceHorizonMs }),
  })
  const engine = new Engine({ store, clock, ids: sequentialIds(`dp${++prefix}-`), random: fixedRandom(0) })
  const type = `due-place-${prefix}`
  engine.register(pollingType(type, retrySeconds))
  return { meter, clock, store, engine, type }
}

/** The due-index attributes of the instance item as stored. */
const placeOf = async (instanceId: string) => {
  const key = instanceKey(instanceId)
  const raw = await table.client.send(
    new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } } }),
  )
  const number = (name: string) => (raw.Item?.[name]?.N === undefined ? undefined : Number(raw.Item[name].N))
  return { dueAtMs: number('dueAtMs'), place: number('ds') }
}

/** The instances a tick hands out now, in a page size of `pageSize`. */
const tick = async (store: DynamoDbStore, clock: FakeClock, pageSize = 100) => {
  const queue = new RecordingQueue()
  const result = await runTick({ store, queue, clock, logger: silentLogger }, { remainingTimeMs: 30_000, pageSize })
  expect(result.complete).toBe(true)
  return queue.sent.map((request) => request.instanceId)
}

describe('the place of a polled instance in the due index', () => {
  it('stays while a check is polled every minute: each poll moves the due time only, and the tick finds it on time', async () => {
    const { meter, clock, store, engine, type } = setUp(60)
    const { instanceId } = await engine.create({ workflowType: type })
    clock.advanceSeconds(61)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const first = await placeOf(instanceId)
    expect(first.place).toBeLessThanOrEqual(first.dueAtMs as number)

    for (const _ of [1, 2, 3]) {
      const { dueAtMs, place } = await placeOf(instanceId)
      expect(place).toBe(first.place)
      clock.ms = (dueAtMs as number) - 1
      expect(await tick(store, clock)).not.toContain(instanceId)
      clock.ms = dueAtMs as number
      expect(await tick(store, clock)).toContain(instanceId)

      meter.reset()
      const result = await engine.runWorkflow(instanceId, { mode: 'due' })
      expect(result.executed).toEqual(['wait'])
      // The acquisition and the release (1 WCU each), and the due time the index projects (1 WCU).
      expect(meter.tableWriteUnits).toBe(2)
      expect(meter.writeUnits - meter.tableWriteUnits).toBe(1)
      expect(await placeOf(instanceId)).toEqual({ dueAtMs: clock.nowMs() + 60_000, place: first.place })
      expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    }
  })

  it('moves to the due time when that is more than the horizon ahead, where the tick finds it', async () => {
    const retrySeconds = DUE_PLACE_HORIZON_MS / 1000 + 60
    const { clock, store, engine, type } = setUp(retrySeconds)
    const { instanceId } = await engine.create({ workflowType: type })
    clock.advanceSeconds(retrySeconds + 1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    clock.advanceSeconds(retrySeconds + 1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const { dueAtMs, place } = await placeOf(instanceId)
    expect(dueAtMs).toBe(clock.nowMs() + retrySeconds * 1000)
    expect(place).toBe(dueAtMs)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    clock.ms = (dueAtMs as number) - 1
    expect(await tick(store, clock)).not.toContain(instanceId)
    clock.ms = dueAtMs as number
    expect(await tick(store, clock)).toContain(instanceId)
  })

  it('moves with every poll at a horizon of 0, as in an index keyed by the due time (4 WCU per poll)', async () => {
    const { meter, clock, store, engine, type } = setUp(60, 0)
    const { instanceId } = await engine.create({ workflowType: type })
    for (const _ of [1, 2]) {
      const { dueAtMs } = await placeOf(instanceId)
      clock.ms = dueAtMs as number
      meter.reset()
      expect((await engine.runWorkflow(instanceId, { mode: 'due' })).executed).toEqual(['wait'])
      expect(meter.writeUnits - meter.tableWriteUnits).toBe(2)
      expect(await placeOf(instanceId)).toEqual({ dueAtMs: clock.nowMs() + 60_000, place: clock.nowMs() + 60_000 })
      clock.ms += 59_999
      expect(await tick(store, clock)).not.toContain(instanceId)
    }
  })

  it('does not stop the tick: a page of places not yet due is read past to the due instance behind it', async () => {
    const { clock, store, engine, type } = setUp(600)
    const fast = `${type}-fast`
    engine.register(pollingType(fast, 60))
    const polled = await engine.create({ workflowType: type })
    // Another instance of the same shard, polled sooner: due before the polled one, and placed after it.
    clock.advanceSeconds(100)
    let other: string | undefined
    for (let i = 0; i < 64 && other === undefined; i++) {
      const { instanceId } = await engine.create({ workflowType: fast })
      if (dueShardFor(instanceId) === dueShardFor(polled.instanceId)) other = instanceId
    }
    if (other === undefined) throw new Error('no instance of the same shard was created')
    clock.ms = (await placeOf(other)).dueAtMs as number
    const polledPlace = await placeOf(polled.instanceId)
    const otherPlace = await placeOf(other)
    expect(polledPlace.place).toBeLessThan(otherPlace.place as number)
    expect(polledPlace.dueAtMs).toBeGreaterThan(clock.nowMs())

    const sent = await tick(store, clock, 1)
    expect(sent).toContain(other)
    expect(sent).not.toContain(polled.instanceId)
  })
})
