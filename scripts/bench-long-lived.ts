/**
 * The long-lived instance section of `npm run bench` (README, "Benchmark"): what a check polled a thousand times,
 * a wide instance, and an instance restarted again and again cost and store. Run alone with
 * `tsx scripts/bench-long-lived.ts` (BENCH_POLLS, default 1000).
 */
import '../src/local/quiet-sdk.js'
import { type AttributeValue, DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { defineWorkflow } from '../src/core/builder.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import type { Clock } from '../src/core/ports.js'
import { FailedWithFailedError, NotReadyError } from '../src/core/worker-signals.js'
import { createIdGenerator, mathRandom } from '../src/system/defaults.js'
import { itemSizeBytes, num, throughTheSdk } from './bench-support.js'
import { CapacityMeter, withDynamoDb } from './capacity-meter.js'

const KB = 1024

/** A clock the benchmark moves: polls a minute apart, a day in 1,440 polls. */
class SteppedClock implements Clock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  nowMs(): number {
    return this.ms
  }
}

type DynamoConfig = NonNullable<ConstructorParameters<typeof DynamoDBClient>[0]>

interface Harness {
  engine: Engine
  meter: CapacityMeter
  clock: SteppedClock
  client: DynamoDBClient
  tableName: string
}

/** An engine on `tableName` through `client`, on a clock the benchmark moves. */
const engineOn = (client: DynamoDBClient, tableName: string) => {
  const clock = new SteppedClock()
  const engine = new Engine({
    store: new DynamoDbStore({ tableName, client }),
    clock,
    ids: createIdGenerator(),
    random: mathRandom,
  })
  return { engine, clock }
}

const harness = async (config: DynamoConfig, tableName: string): Promise<Harness> => {
  const client = new DynamoDBClient(config)
  const meter = new CapacityMeter().attach(client)
  await ensureTable(client, tableName)
  return { ...engineOn(client, tableName), meter, client, tableName }
}

/** Every item of an instance's partition, raw. */
const partition = async (h: Harness, instanceId: string): Promise<Record<string, AttributeValue>[]> => {
  const items: Record<string, AttributeValue>[] = []
  let startKey: Record<string, AttributeValue> | undefined
  do {
    const page = await h.client.send(
      new QueryCommand({
        TableName: h.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `I#${instanceId}` } },
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    )
    items.push(...(page.Items ?? []))
    startKey = page.LastEvaluatedKey
  } while (startKey)
  return items
}

/** A check that is never ready over a context of `bytes`, beside `siblings` nodes storing `siblingBytes` each. */
const polledWorkflow = (type: string, bytes: number, siblings: number, siblingBytes: number) =>
  defineWorkflow({
    type,
    nodes: {
      ...Object.fromEntries(
        Array.from({ length: siblings }, (_, i) => [
          `other${i}`,
          { run: (ctx: NodeContext) => ctx.set('blob', 'o'.repeat(siblingBytes)) },
        ]),
      ),
      wait: {
        run: (ctx: NodeContext) => ctx.set('blob', 'w'.repeat(bytes)),
        check: () => {
          throw new NotReadyError(60)
        },
      },
    },
  } as Parameters<typeof defineWorkflow>[0])

export interface PollFigures {
  /** Poll number → reads, writes, requests of that poll, and the items the partition holds after it. */
  at: Map<number, { rcu: number; wcu: number; requests: number; items: number }>
}

/** Polls one check `polls` times, a minute apart, as its wake-ups would; measures polls 1, 100, 1000 (and the last). */
const pollCheck = async (
  h: Harness,
  type: string,
  siblings: number,
  siblingBytes: number,
  polls: number,
  progress: (message: string) => void,
): Promise<PollFigures> => {
  h.engine.register(polledWorkflow(type, 20 * KB, siblings, siblingBytes))
  const { instanceId } = await h.engine.create({ workflowType: type })
  const marks = new Set([1, 100, 1000, polls].filter((n) => n <= polls))
  const figures: PollFigures = { at: new Map() }
  for (let poll = 1; poll <= polls; poll++) {
    h.clock.ms += 61_000
    h.meter.reset()
    const result = await h.engine.runWorkflow(instanceId, { mode: 'due' })
    if (!result.executed.includes('wait')) throw new Error(`poll ${poll} did not run the check`)
    if (marks.has(poll)) {
      const at = {
        rcu: h.meter.billedReadUnits,
        wcu: h.meter.writeUnits,
        requests: h.meter.requestCount,
        items: (await partition(h, instanceId)).length,
      }
      figures.at.set(poll, at)
    }
    if (poll % 250 === 0) progress(`long-lived: ${type} poll ${poll}`)
  }
  return figures
}

export interface WidthFigures {
  /** Parallel nodes → WCU per node step when one pass polls them all, and when a pass polls one of them. */
  at: Map<number, { together: number; alone: number; aloneRcu: number }>
}

/** N parallel checks (all due together), and a pass that finds one of them due. */
const width = async (h: Harness, counts: readonly number[]): Promise<WidthFigures> => {
  const figures: WidthFigures = { at: new Map() }
  for (const count of counts) {
    const type = `wide-${count}`
    h.engine.register(
      defineWorkflow({
        type,
        nodes: Object.fromEntries(
          Array.from({ length: count }, (_, i) => [
            `w${String(i).padStart(3, '0')}`,
            {
              run: (ctx: NodeContext) => ctx.set('v', 'x'.repeat(100)),
              check: () => {
                throw new NotReadyError(60)
              },
            },
          ]),
        ),
      } as Parameters<typeof defineWorkflow>[0]),
    )
    const { instanceId } = await h.engine.create({ workflowType: type })
    h.clock.ms += 61_000
    h.meter.reset()
    const together = await h.engine.runWorkflow(instanceId, { mode: 'due' })
    const togetherWcu = h.meter.writeUnits / together.executed.length
    // One node made due on its own (an event for it): a pass that polls one node of many.
    await h.engine.addNodeEvent({ instanceId, nodeId: 'w000', eventTs: 1, content: { n: 1 } })
    h.meter.reset()
    const alone = await h.engine.runWorkflow(instanceId, { mode: 'due' })
    const aloneWcu = h.meter.writeUnits / Math.max(1, alone.executed.length)
    const aloneRcu = h.meter.billedReadUnits / Math.max(1, alone.executed.length)
    figures.at.set(count, { together: togetherWcu, alone: aloneWcu, aloneRcu })
  }
  return figures
}

export interface RestartFigures {
  restarts: number
  items: number
  /** What the partition holds by DynamoDB's size rules, and what the instance counts. */
  heldBytes: number
  countedBytes: number
  firstHeldBytes: number
}

/** An instance restarted again and again with a new 64 KB context: what its partition holds. */
const restarts = async (h: Harness, times: number): Promise<RestartFigures> => {
  h.engine.register(
    defineWorkflow({
      type: 'restarted',
      nodes: {
        first: { next: ['last'], run: (ctx) => ctx.set('saw', ctx.getString('workflow_context', 'generation') ?? '') },
        last: {
          run: () => {
            throw new FailedWithFailedError('needs a fix')
          },
        },
      },
    }),
  )
  const context = (generation: number) => ({ generation: String(generation), pad: 'p'.repeat(64_000 - 40) })
  const { instanceId } = await h.engine.create({ workflowType: 'restarted', context: context(0) })
  const held = async () => (await partition(h, instanceId)).reduce((sum, item) => sum + itemSizeBytes(item), 0)
  const firstHeldBytes = await held()
  for (let i = 1; i <= times; i++) await h.engine.restartInstance({ instanceId, context: context(i), run: true })
  const items = await partition(h, instanceId)
  const instanceItem = items.find((item) => item.sk?.S === '#')
  const counted = Number(instanceItem?.b?.N ?? instanceItem?.bytes?.N ?? 0)
  return { restarts: times, items: items.length, heldBytes: await held(), countedBytes: counted, firstHeldBytes }
}

export interface PollCpuFigures {
  instances: number
  rounds: number
  /** Client CPU per poll (ms): the store sending direct, and through the SDK (a client with middleware). */
  directMs: number
  sdkMs: number
}

/**
 * The client CPU of a poll (a check over a 20 KB context), the store sending direct and through the SDK, the two
 * ways in turns in one process against one table (as deployed: no meter on either client).
 */
const pollCpu = async (
  config: DynamoConfig,
  tableName: string,
  instances = 40,
  rounds = 5,
): Promise<PollCpuFigures> => {
  const way = (viaSdk: boolean) => {
    const client = new DynamoDBClient(config)
    if (viaSdk) throughTheSdk(client)
    const { engine, clock } = engineOn(client, tableName)
    engine.register(polledWorkflow('polled-cpu', 20 * KB, 0, 0))
    return { client, clock, engine, ids: [] as string[] }
  }
  const direct = way(false)
  const sdk = way(true)
  try {
    for (let i = 0; i < instances; i++) {
      for (const w of [direct, sdk]) w.ids.push((await w.engine.create({ workflowType: 'polled-cpu' })).instanceId)
    }
    const round = async (w: typeof direct): Promise<number> => {
      w.clock.ms += 61_000
      const since = process.cpuUsage()
      for (const id of w.ids) await w.engine.runWorkflow(id, { mode: 'due' })
      const used = process.cpuUsage(since)
      return (used.user + used.system) / 1000 / w.ids.length
    }
    await round(direct)
    await round(sdk)
    let directMs = 0
    let sdkMs = 0
    for (let r = 0; r < rounds; r++) {
      directMs += (await round(direct)) / rounds
      sdkMs += (await round(sdk)) / rounds
    }
    return { instances, rounds, directMs, sdkMs }
  } finally {
    direct.client.destroy()
    sdk.client.destroy()
  }
}

export interface LongLivedFigures {
  polls: number
  cpu: PollCpuFigures
  small: PollFigures
  large: PollFigures
  width: WidthFigures
  restarts: RestartFigures
}

export const runLongLived = async (
  config: DynamoConfig,
  polls: number,
  progress: (message: string) => void,
): Promise<LongLivedFigures> => {
  const stamp = Date.now()
  const h = await harness(config, `bench-long-${stamp}`)
  try {
    progress(`long-lived: a 20 KB check polled ${polls} times, other nodes storing 10 KB`)
    const small = await pollCheck(h, 'polled-10k', 1, 10 * KB, polls, progress)
    progress(`long-lived: a 20 KB check polled ${polls} times, other nodes storing 2 MB`)
    const large = await pollCheck(h, 'polled-2m', 40, 50 * KB, polls, progress)
    progress('long-lived: width')
    const wide = await width(h, [5, 50, 200])
    progress('long-lived: 20 restarts with a new 64 KB context')
    const restarted = await restarts(h, 20)
    progress('long-lived: client CPU per poll, direct and through the SDK')
    const cpu = await pollCpu(config, h.tableName)
    return { polls, cpu, small, large, width: wide, restarts: restarted }
  } finally {
    h.client.destroy()
  }
}

/** The section's rows: [what, result, notes]. */
export const longLivedRows = (f: LongLivedFigures): [string, string, string][] => {
  const rows: [string, string, string][] = []
  const marks = [...f.small.at.keys()]
  const poll = (figures: PollFigures, mark: number) => figures.at.get(mark)
  const describe = (figures: PollFigures) =>
    marks
      .map((mark) => {
        const at = poll(figures, mark)
        return at ? `poll ${num(mark)}: ${num(at.rcu, 1)} RCU, ${num(at.wcu, 1)} WCU, ${at.requests} requests` : ''
      })
      .join('; ')
  const items = (figures: PollFigures) => marks.map((mark) => poll(figures, mark)?.items ?? 0).join(' → ')
  rows.push([
    `a check over a 20 KB context polled ${num(f.polls)} times, other nodes storing 10 KB`,
    describe(f.small),
    `items in its partition at those polls: ${items(f.small)} (target: constant); per poll at most 1 + ceil(20/4) = 6 RCU and 3 WCU`,
  ])
  rows.push([
    'the same, other nodes storing 2 MB',
    describe(f.large),
    `items: ${items(f.large)}; RCU per poll ÷ the 10 KB case at poll ${num(marks[marks.length - 1] ?? 1)}: ${num(
      (poll(f.large, marks[marks.length - 1] ?? 1)?.rcu ?? 0) /
        Math.max(0.5, poll(f.small, marks[marks.length - 1] ?? 1)?.rcu ?? 0),
      2,
    )} (target ≤ 1.2)`,
  ])
  const width = [...f.width.at]
  const first = width[0]?.[1]
  const last = width[width.length - 1]?.[1]
  rows.push([
    'WCU per node step, parallel checks polled together in one pass',
    width.map(([count, at]) => `${count}: ${num(at.together, 2)}`).join(', '),
    `${width[width.length - 1]?.[0]} ÷ ${width[0]?.[0]}: ${num((last?.together ?? 0) / Math.max(0.01, first?.together ?? 0), 2)} (target ≤ 1.3)`,
  ])
  rows.push([
    'WCU per node step, one check of many polled on its own (an event for it)',
    width.map(([count, at]) => `${count}: ${num(at.alone, 2)}`).join(', '),
    `${width[width.length - 1]?.[0]} ÷ ${width[0]?.[0]}: ${num((last?.alone ?? 0) / Math.max(0.01, first?.alone ?? 0), 2)} (target ≤ 1.3): waiting records with nothing in flight leave the instance item with the settled ones (README, "Table layout"); RCU per step: ${width.map(([count, at]) => `${count}: ${num(at.aloneRcu, 1)}`).join(', ')} (the acquisition reads the archives)`,
  ])
  rows.push([
    'client CPU per poll of a check over a 20 KB context',
    `${num(f.cpu.directMs, 2)} ms (through the SDK: ${num(f.cpu.sdkMs, 2)} ms; ${num(f.cpu.directMs / f.cpu.sdkMs, 2)} ×)`,
    `${f.cpu.instances} instances polled ${f.cpu.rounds} times each way, the two ways in turns; a client with middleware of its own sends through the SDK (README, "The direct wire")`,
  ])
  const r = f.restarts
  rows.push([
    `an instance restarted ${r.restarts} times with a new 64 KB context`,
    `${num(r.heldBytes)} bytes held in ${r.items} items`,
    `${num(r.firstHeldBytes)} bytes before the restarts; counted ${num(r.countedBytes)} (the engine's count: JSON of what it holds, plus an allowance per item)`,
  ])
  return rows
}

// Run alone: `tsx scripts/bench-long-lived.ts`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const polls = Number(process.env.BENCH_POLLS ?? 1000)
  await withDynamoDb(async (config) => {
    const figures = await runLongLived(config, polls, (message) => process.stderr.write(`${message}\n`))
    console.log('| measurement | result | notes |\n| --- | --- | --- |')
    for (const [what, result, notes] of longLivedRows(figures)) console.log(`| ${what} | ${result} | ${notes} |`)
  })
}
