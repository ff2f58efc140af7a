import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CapacityMeter } from '../../scripts/capacity-meter.js'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { recordToItem } from '../../src/adapters/dynamodb/item-codec.js'
import { clearPendingParams } from '../../src/adapters/dynamodb/params.js'
import { MAX_ARCHIVES } from '../../src/adapters/dynamodb/write-layout.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { Engine, type EngineDeps } from '../../src/core/engine.js'
import { FAILURE_HEADROOM_BYTES } from '../../src/core/limits.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { newDynamoClient } from '../support/dynamodb.js'
import {
  createTestTable,
  FakeClock,
  fixedRandom,
  sequentialIds,
  type TestTable,
  TimerClock,
} from '../support/harness.js'
import { invariantViolations, partitionAccounting, scanPartitions } from '../support/invariant.js'
import { anInstance } from '../support/records.js'

/**
 * The partition layout keeps its promise (README, "Table layout"): what an instance's partition holds is what the
 * instance counts, whatever its age, and a pass reads and writes what it needs. Each case here is a long-lived
 * instance an operator runs: a check polled for a day, a node restarted again and again, events replaced as a
 * conversation goes on.
 */
let table: TestTable

beforeAll(async () => {
  table = await createTestTable('partition-promise')
})

afterEach(async () => {
  expect(await invariantViolations(table, Number.MAX_SAFE_INTEGER / 2)).toEqual([])
})

const KB = 1024

/** An engine of its own on the shared table, with a meter on its client. */
const metered = (overrides: Partial<EngineDeps> = {}) => {
  const client = newDynamoClient()
  const meter = new CapacityMeter().attach(client)
  const clock = new FakeClock()
  const store = new DynamoDbStore({ tableName: table.tableName, client })
  const engine = new Engine({ store, clock, ids: sequentialIds(), random: fixedRandom(0), ...overrides })
  return { engine, meter, clock, store, client }
}

/** Every item of an instance's partition, raw: its instance item first, then the others by sort key. */
const partition = async (instanceId: string): Promise<Record<string, unknown>[]> => {
  const partitions = await scanPartitions(table, [instanceId])
  // scanPartitions leaves out a partition without its instance item: that would hide whatever the partition holds.
  expect(partitions).toHaveLength(1)
  return partitions.flatMap(({ item, side }) => [item, ...side.values()])
}

/** A check that is never ready: its context holds `bytes` bytes, unchanged from poll to poll. */
const polled = (type: string, bytes: number, others: { count: number; bytes: number } = { count: 0, bytes: 0 }) => {
  const siblings = Array.from({ length: others.count }, (_, i) => `other${i}`)
  return defineWorkflow({
    type,
    nodes: {
      ...Object.fromEntries(
        siblings.map((id) => [id, { run: (ctx: NodeContext) => ctx.set('blob', 'o'.repeat(others.bytes)) }]),
      ),
      wait: {
        run: (ctx: NodeContext) => ctx.set('blob', 'w'.repeat(bytes)),
        check: () => {
          throw new NotReadyError(60)
        },
      },
    },
  } as Parameters<typeof defineWorkflow>[0])
}

/** Polls the instance `times` times, a minute apart, as its wake-ups would. */
const poll = async (engine: Engine, clock: FakeClock, instanceId: string, times: number) => {
  for (let i = 0; i < times; i++) {
    clock.advanceSeconds(61)
    const result = await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(result.executed).toEqual(['wait'])
    // The invariant after every poll, at the time it ran (not only once the test is over, at a far-future time).
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  }
}

describe('a check polled again and again over an unchanged 20 KB context', () => {
  it('keeps the items of its partition, and what it counts, the same whatever the number of polls', async () => {
    const { engine, clock } = metered()
    engine.register(polled('polled-20k', 20 * KB))
    const { instanceId } = await engine.create({ workflowType: 'polled-20k' })
    await poll(engine, clock, instanceId, 2)
    const early = await partition(instanceId)

    await poll(engine, clock, instanceId, 28)

    const late = await partition(instanceId)
    expect(late.length).toBe(early.length)
    const accounting = await partitionAccounting(table, instanceId)
    expect(accounting.unaccounted).toEqual([])
  }, 60_000)

  it('writes the instance item only, and reads what the poll needs, on every poll', async () => {
    const { engine, clock, meter } = metered()
    engine.register(polled('polled-cost', 20 * KB, { count: 3, bytes: 10 * KB }))
    const { instanceId } = await engine.create({ workflowType: 'polled-cost' })
    await poll(engine, clock, instanceId, 1)

    const costs: { reads: number; writes: number; puts: number }[] = []
    for (const _ of [1, 2, 3, 4, 5]) {
      meter.reset()
      await poll(engine, clock, instanceId, 1)
      costs.push({
        reads: meter.billedReadUnits,
        writes: meter.writeUnits,
        puts: (meter.requests.get('PutItemCommand') ?? 0) + (meter.requests.get('BatchWriteItemCommand') ?? 0),
      })
    }

    for (const cost of costs) {
      // No payload item is written for a context that did not change.
      expect(cost.puts).toBe(0)
      expect(cost.writes).toBeLessThanOrEqual(3 * 2)
      // The instance item from the acquisition, then the poll's own 20 KB context by key: 1 + ceil(20/4).
      expect(cost.reads).toBeLessThanOrEqual(1 + Math.ceil(20 / 4))
    }
  }, 60_000)
})

describe('a node restarted again and again', () => {
  it('keeps what its partition holds bounded, and counted', async () => {
    const { engine } = metered()
    engine.register(
      defineWorkflow({
        type: 'restarted-20k',
        nodes: { big: { run: (ctx) => ctx.set('blob', `${ctx.idempotencyKey}:${'r'.repeat(20 * KB)}`) } },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'restarted-20k' })
    const first = await partition(instanceId)

    for (let i = 0; i < 5; i++) await engine.restartNode({ instanceId, nodeId: 'big', force: true, run: true })

    const after = await partition(instanceId)
    expect(after.length).toBeLessThanOrEqual(first.length)
    expect((await partitionAccounting(table, instanceId)).unaccounted).toEqual([])
  }, 60_000)

  it('keeps no archive of records its restarts replaced: what a poll reads stays what it was', async () => {
    const { engine, meter, clock } = metered()
    const ids = ['a1', 'a2', 'a3', 'a4', 'a5']
    engine.register(
      defineWorkflow({
        type: 'restarted-archived',
        nodes: {
          ...Object.fromEntries(
            ids.map((id, i) => [
              id,
              { next: [ids[i + 1] ?? 'poll'], run: (ctx: NodeContext) => ctx.set('out', 'o'.repeat(900)) },
            ]),
          ),
          poll: {
            run: () => {},
            check: () => {
              throw new NotReadyError(60)
            },
          },
        },
      } as Parameters<typeof defineWorkflow>[0]),
    )
    const { instanceId } = await engine.create({ workflowType: 'restarted-archived' })
    const pollReads = async () => {
      clock.advanceSeconds(61)
      meter.reset()
      await engine.runWorkflow(instanceId, { mode: 'due' })
      return meter.billedReadUnits
    }
    const first = await partition(instanceId)
    const readsBefore = await pollReads()

    for (let i = 0; i < 25; i++) await engine.restartNode({ instanceId, nodeId: 'a1', run: true })

    // History archives are bounded by the entries kept (README, "History"): every other item is a node's.
    const nodeItems = (items: Record<string, unknown>[]) => items.filter((item) => !String(item.sk).startsWith('H#'))
    const after = await partition(instanceId)
    expect(nodeItems(after).length).toBeLessThanOrEqual(nodeItems(first).length)
    const archives = (items: Record<string, unknown>[]) => ((items[0] as { arc?: unknown[] }).arc ?? []).length
    expect(archives(after)).toBeLessThanOrEqual(archives(first))
    expect(await pollReads()).toBeLessThanOrEqual(readsBefore)
    expect((await partitionAccounting(table, instanceId)).unaccounted).toEqual([])
  }, 60_000)
})

describe('a wide instance whose nodes are stepped one at a time', () => {
  /** `count` parallel checks, each with a 100-byte output, never ready until an event says so. */
  const wide = (type: string, count: number) =>
    defineWorkflow({
      type,
      nodes: Object.fromEntries(
        Array.from({ length: count }, (_, i) => [
          `w${String(i).padStart(3, '0')}`,
          {
            run: (ctx: NodeContext) => ctx.set('v', 'x'.repeat(100)),
            check: (ctx: NodeContext) => {
              if ((ctx.event?.content as { ok?: boolean } | undefined)?.ok !== true) throw new NotReadyError(3600)
            },
          },
        ]),
      ),
    } as Parameters<typeof defineWorkflow>[0])

  /** WCU and RCU of the pass an event for one node makes due, and the instance item's size after it. */
  const stepAlone = async (count: number, nodes: readonly string[]) => {
    const { engine, meter, clock, store } = metered()
    engine.register(wide(`wide-alone-${count}`, count))
    const { instanceId } = await engine.create({ workflowType: `wide-alone-${count}` })
    const steps: { wcu: number; rcu: number; itemBytes: number }[] = []
    for (const nodeId of nodes) {
      await engine.addNodeEvent({ instanceId, nodeId, eventTs: 1, content: { ok: true } })
      clock.advanceSeconds(1)
      meter.reset()
      const result = await engine.runWorkflow(instanceId, { mode: 'due' })
      expect(result.executed.filter((id) => id !== 'end')).toEqual([nodeId])
      const [item] = await partition(instanceId)
      steps.push({ wcu: meter.writeUnits, rcu: meter.billedReadUnits, itemBytes: JSON.stringify(item).length })
      expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    }
    return { steps, items: (await partition(instanceId)).map((item) => String(item.sk)), instanceId, store }
  }

  it('costs what it costs in a narrow instance: waiting records that did not change are not rewritten', async () => {
    const narrow = await stepAlone(5, ['w000'])
    const broad = await stepAlone(200, ['w000'])
    const [small] = narrow.steps
    const [large] = broad.steps
    // Every step of the 200 waiting nodes would rewrite an instance item holding all 200 records (about 75 KB).
    expect(large?.wcu).toBeLessThanOrEqual(1.3 * (small?.wcu ?? 0))
    expect(large?.itemBytes).toBeLessThan(4 * KB)
  }, 120_000)

  it('keeps what each step reads and what the partition holds bounded as every node is stepped in turn', async () => {
    const count = 60
    const order = Array.from({ length: count }, (_, i) => `w${String(i).padStart(3, '0')}`)
    const { steps, items, instanceId, store } = await stepAlone(count, order)
    const wcu = steps.map((step) => step.wcu)
    const rcu = steps.map((step) => step.rcu)
    // The 60 waiting records take about 22 KB: held in the instance item, each step's acquisition and write would
    // cost about 23 WCU each. What grows here is the nodes' latest events, which stay in the instance item (~50 B
    // each), and the archive moves (every few steps) that take along an archive mostly replaced.
    const mean = wcu.reduce((sum, units) => sum + units, 0) / wcu.length
    expect(mean).toBeLessThanOrEqual(12)
    // The archives each acquisition reads: stale copies of stepped records do not pile up.
    expect(Math.max(...rcu)).toBeLessThanOrEqual(2 * (rcu[0] ?? 0) + 2)
    // History archives are bounded by the entries kept (README, "History"); node archives by MAX_ARCHIVES.
    expect(items.filter((sk) => sk.startsWith('A#')).length).toBeLessThanOrEqual(MAX_ARCHIVES + 1)
    expect(items.filter((sk) => !sk.startsWith('A#') && !sk.startsWith('H#'))).toEqual(['#'])
    expect((await store.getInstance(instanceId))?.status).toBe('completed')
    expect((await partitionAccounting(table, instanceId)).unaccounted).toEqual([])
  }, 180_000)
})

describe('events replaced as a conversation goes on', () => {
  it('leave only the latest event in the partition, and what it counts', async () => {
    const { engine } = metered()
    engine.register(polled('conversation', 10))
    const { instanceId } = await engine.create({ workflowType: 'conversation' })

    for (let i = 1; i <= 30; i++) {
      await engine.addNodeEvent({
        instanceId,
        nodeId: 'wait',
        eventTs: i,
        content: { turn: i, text: 't'.repeat(2 * KB) },
      })
    }

    const items = await partition(instanceId)
    expect(items.filter((item) => String(item.sk).startsWith('E#'))).toHaveLength(1)
    expect((await partitionAccounting(table, instanceId)).unaccounted).toEqual([])
  }, 60_000)
})

describe('an instance restarted with a new 64,000 B context again and again', () => {
  /** Node k completes with generation k's input and stays completed; node k + 1 fails until the next generation. */
  const generations = defineWorkflow({
    type: 'generations',
    nodes: Object.fromEntries(
      Array.from({ length: 10 }, (_, k) => [
        `n${k}`,
        {
          ...(k < 9 ? { next: [`n${k + 1}`] } : {}),
          run: (ctx: NodeContext) => {
            if (Number(ctx.getString('workflow_context', 'generation')) < k) throw new FailedWithFailedError('not yet')
            ctx.set('ran', k)
          },
        },
      ]),
    ),
  } as Parameters<typeof defineWorkflow>[0])
  const context = (generation: number) => ({ generation: String(generation), pad: 'p'.repeat(64_000 - 40) })

  it('accepts every restart within its budget, storing each input still needed once, and counting it', async () => {
    const { engine } = metered()
    engine.register(generations)
    const { instanceId, status } = await engine.create({ workflowType: 'generations', context: context(0) })
    expect(status).toBe('failed')

    for (let generation = 1; generation <= 8; generation++) {
      const restarted = await engine.restartInstance({ instanceId, context: context(generation), run: true })
      expect(restarted.status).toBe('failed')
    }

    const detail = await engine.get(instanceId)
    // Each completed node still sees the input it ran with.
    for (let k = 0; k <= 8; k++) {
      expect(detail.nodes.find((node) => node.id === `n${k}`)?.context?.workflow_context).toMatchObject({
        generation: String(k),
      })
    }
    const stored = (await partition(instanceId)).reduce((sum, item) => sum + Buffer.byteLength(JSON.stringify(item)), 0)
    // Nine distinct inputs of 64 KB are needed (one per completed node): about 9 × 64 KB, never one per restart twice.
    expect(stored).toBeLessThan(10 * 64 * KB)
    expect((await partitionAccounting(table, instanceId)).unaccounted).toEqual([])
  }, 60_000)
})

describe('an instance item at its largest, with history', () => {
  it('records 200 interrupted attempts of 64-character nodes holding 1 KB outputs and 480 B events', async () => {
    const clock = new TimerClock()
    const { engine } = metered({ clock, defaultLeaseMs: 60_000 })
    let called = 0
    const ids = Array.from({ length: 200 }, (_, i) => `n${String(i).padStart(3, '0')}${'n'.repeat(60)}`)
    engine.register(
      defineWorkflow({
        type: 'widest',
        nodes: Object.fromEntries(
          ids.map((id) => [
            id,
            {
              run: (ctx: NodeContext) => {
                if (ctx.get('out') === undefined) {
                  ctx.set('out', 'o'.repeat(980))
                  throw new NotReadyError(1)
                }
                called += 1
                return new Promise<void>(() => {})
              },
            },
          ]),
        ),
      } as Parameters<typeof defineWorkflow>[0]),
    )
    const { instanceId, status } = await engine.create({ workflowType: 'widest' })
    expect(status).toBe('running')
    for (const id of ids) await engine.addNodeEvent({ instanceId, nodeId: id, eventTs: 1, content: 'e'.repeat(470) })

    const pass = engine.runWorkflow(instanceId)
    while (called < ids.length) await new Promise((resolve) => setTimeout(resolve, 20))
    clock.advanceMs(61_000)
    const result = await pass

    expect(result.status).toBe('running')
    const nodes = (await engine.get(instanceId)).nodes.filter((node) => ids.includes(node.id))
    // Every attempt is counted as failed, and every node goes on waiting: none failed for the item's size.
    expect(nodes.map((node) => node.failCount)).toEqual(ids.map(() => 1))
    expect(nodes.filter((node) => node.status !== 'running')).toEqual([])
  }, 120_000)
})

describe('an instance at its budget', () => {
  it('still records a node failure and its end', async () => {
    const { engine, store } = metered({ limits: { maxInstanceBytes: 64 * KB, maxNodeContextBytes: 60 * KB } })
    engine.register(
      defineWorkflow({
        type: 'full',
        nodes: {
          fill: {
            next: ['fails'],
            run: (ctx) => ctx.set('blob', 'f'.repeat(Number(ctx.getNumber('workflow_context', 'fill')))),
          },
          fails: {
            run: () => {
              throw new FailedWithFailedError(`gave up: ${'r'.repeat(500)}`)
            },
          },
        },
      }),
    )
    // A first instance tells what a fill stores; the others are filled to within 300 B of the budget, and to just
    // below what outputs may fill of it.
    const budget = 64 * KB
    const probe = await engine.create({ workflowType: 'full', context: { fill: 50 * KB } })
    const stored = (await store.getInstance(probe.instanceId))?.storedBytes ?? budget
    for (const room of [300, FAILURE_HEADROOM_BYTES + 100]) {
      const fill = 50 * KB + (budget - stored) - room
      const result = await engine.create({ workflowType: 'full', context: { fill } })

      // Whichever node fails (the filling one, refused, or the failing one), the failure is stored: not parked,
      // no node left running.
      expect(result.status).toBe('failed')
      const detail = await engine.get(result.instanceId)
      expect(detail.parked).toBeUndefined()
      expect(detail.nodes.filter((node) => node.status === 'running')).toEqual([])
      const failed = detail.nodes.find((node) => node.id === detail.failure?.nodeId)
      expect(failed).toMatchObject({ status: 'failed', failCount: 1 })
    }
  }, 60_000)
})

describe('clean-up and limits at their edge', () => {
  it('deletes what a refused write wrote first even when DynamoDB leaves some of the deletes unprocessed', async () => {
    const limits = { maxInstanceBytes: 24 * KB, maxInputBytes: 16 * KB, maxNodeContextBytes: 8 * KB }
    const { engine, client } = metered({ limits })
    let unprocessedOnce = true
    engine.register(polled('refused-event', 10))
    const { instanceId } = await engine.create({ workflowType: 'refused-event', context: { pad: 'p'.repeat(12 * KB) } })
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        if (unprocessedOnce && context.commandName === 'BatchWriteItemCommand') {
          unprocessedOnce = false
          const input = args.input as { RequestItems: Record<string, unknown[]> }
          ;(result.output as { UnprocessedItems?: unknown }).UnprocessedItems = input.RequestItems
        }
        return result
      },
      { step: 'initialize', name: 'unprocessedOnce' },
    )
    const refused = await engine
      .addNodeEvent({ instanceId, nodeId: 'wait', eventTs: 1, content: { big: 'b'.repeat(14 * KB) } })
      .catch((error: unknown) => error)

    expect(refused).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
    expect((await partition(instanceId)).filter((item) => String(item.sk).startsWith('E#'))).toEqual([])
  })

  it('accepts an output of exactly the node limit', async () => {
    const { engine } = metered({ limits: { maxNodeContextBytes: 350 * KB } })
    engine.register(
      defineWorkflow({
        type: 'at-the-limit',
        // {"blob":"…"} is exactly 350 KiB.
        nodes: { big: { run: (ctx) => ctx.set('blob', 'x'.repeat(350 * KB - 11)) } },
      }),
    )

    const { status } = await engine.create({ workflowType: 'at-the-limit' })

    expect(status).toBe('completed')
  }, 60_000)
})

describe('an item replaced and deleted', () => {
  /** The instance item's counted total and pending deletions, raw. */
  const counted = async (instanceId: string) => {
    const [item] = await partition(instanceId)
    return { b: Number(item?.b), gc: (item?.gc ?? {}) as Record<string, number> }
  }

  /** A check that stores a new 20 KB status on every poll, replacing the one before. */
  const restated = (type: string) => {
    let polls = 0
    return defineWorkflow({
      type,
      nodes: {
        w: {
          run: (ctx) => ctx.set('status', 's'.repeat(20 * KB)),
          check: (ctx) => {
            ctx.set('status', `${++polls}:${'s'.repeat(20 * KB)}`)
            throw new NotReadyError(60)
          },
        },
      },
    })
  }

  it('is no longer counted once deleted, so an event with room is stored', async () => {
    const { engine, clock } = metered({
      limits: { maxInstanceBytes: 64 * KB, maxNodeContextBytes: 32 * KB, maxInputBytes: 32 * KB },
    })
    engine.register(restated('restated-20k'))
    const { instanceId } = await engine.create({ workflowType: 'restated-20k' })
    clock.advanceSeconds(61)
    await engine.runWorkflow(instanceId, { mode: 'due' })

    // The poll's replaced payload is gone from the partition: 21 KB held, room for 24 KB more.
    await expect(
      engine.addNodeEvent({ instanceId, nodeId: 'w', eventTs: 1, content: { e: 'e'.repeat(24 * KB) } }),
    ).resolves.toMatchObject({ nodeId: 'w' })
    expect((await counted(instanceId)).gc).toEqual({})
  }, 60_000)

  it('leaves room for events replaced back to back', async () => {
    const { engine } = metered({
      limits: { maxInstanceBytes: 32 * KB, maxNodeContextBytes: 16 * KB, maxInputBytes: 16 * KB },
    })
    engine.register(polled('burst', 10))
    const { instanceId } = await engine.create({ workflowType: 'burst' })

    for (let ts = 1; ts <= 8; ts++) {
      await engine.addNodeEvent({ instanceId, nodeId: 'wait', eventTs: ts, content: { e: 'e'.repeat(8 * KB) } })
    }

    const items = await partition(instanceId)
    expect(items.filter((item) => String(item.sk).startsWith('E#'))).toHaveLength(1)
    expect((await counted(instanceId)).gc).toEqual({})
  }, 60_000)

  it('is taken off the count once, however many clean-ups clear it', async () => {
    const doc = DynamoDBDocumentClient.from(table.client)
    const stored = recordToItem(anInstance('cleared-twice', { status: 'completed' }))
    const before = Number(stored.b)
    await doc.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { ...stored, gc: { 'P#x#a': 300, 'P#x#b': 200 }, b: before + 500 },
      }),
    )
    const clear = (entries: Record<string, number>) =>
      doc.send(new UpdateCommand(clearPendingParams(table.tableName, 'cleared-twice', entries))).then(
        () => 'cleared',
        (error: Error) => error.name,
      )

    expect(await clear({ 'P#x#a': 300 })).toBe('cleared')
    // A clean-up that lists an entry another cleared already is refused whole: nothing is subtracted twice.
    expect(await clear({ 'P#x#a': 300, 'P#x#b': 200 })).toBe('ConditionalCheckFailedException')
    expect(await clear({ 'P#x#b': 200 })).toBe('cleared')

    const [item] = await partition('cleared-twice')
    expect(item).toMatchObject({ b: before, gc: {} })
  })

  it('is not counted on a finished instance, which no later write clears', async () => {
    const { engine } = metered()
    engine.register(
      defineWorkflow({
        type: 'restated-then-done',
        nodes: {
          w: {
            run: (ctx) => ctx.set('status', 's'.repeat(20 * KB)),
            check: (ctx) => ctx.set('status', `done:${'s'.repeat(20 * KB)}`),
          },
        },
      }),
    )

    const { instanceId, status } = await engine.create({ workflowType: 'restated-then-done' })

    expect(status).toBe('completed')
    const { b, gc } = await counted(instanceId)
    expect(gc).toEqual({})
    const accounting = await partitionAccounting(table, instanceId)
    expect(accounting.pending).toEqual([])
    expect(b).toBe(accounting.expected)
  }, 60_000)
})

describe('a node of a wide instance whose record is archived, called by the attempt its acquisition recorded', () => {
  it('takes a callback completion that arrives before its check returns', async () => {
    const tokens = callbackTokens(['the-archived-armed-callback-secret-0123456789'])
    const { engine, clock, store } = metered({ callbacks: { tokens } })
    const answers: unknown[] = []
    const ids = Array.from({ length: 12 }, (_, i) => `n${String(i).padStart(2, '0')}`)
    engine.register(
      defineWorkflow({
        type: 'archived-armed-callback',
        nodes: Object.fromEntries(
          ids.map((id) => [
            id,
            {
              run: (ctx: NodeContext) => ctx.set('v', 'x'.repeat(200)),
              check: async (ctx: NodeContext) => {
                if ((ctx.event?.content as { go?: boolean } | undefined)?.go !== true) throw new NotReadyError(3600)
                const { token } = await ctx.callback({ timeoutSeconds: 600 })
                // The provider answers at once, before the check returns.
                answers.push(
                  await engine.completeCallback(token, { status: 'success', output: { paid: true } }).then(
                    (answer) => answer,
                    (error: unknown) => error,
                  ),
                )
              },
            },
          ]),
        ),
      } as Parameters<typeof defineWorkflow>[0]),
    )
    const { instanceId } = await engine.create({ workflowType: 'archived-armed-callback' })
    const [before] = await partition(instanceId)
    // The waiting records are archived: the node's record is not in the instance item.
    expect(Object.keys((before as { n: object }).n)).not.toContain('n00')

    await engine.addNodeEvent({ instanceId, nodeId: 'n00', eventTs: 1, content: { go: true } })
    clock.advanceSeconds(1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    expect(answers).toEqual([{ accepted: true, status: 'success' }])
    clock.advanceSeconds(1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const record = await store.getInstance(instanceId)
    expect(record?.nodes.n00?.status).toBe('completed')
    expect(record?.nodes.n00?.output.callback_output).toEqual({ paid: true })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  }, 60_000)
})
