/**
 * The hot path against the store's own cost, in one run: a 5-node sequential workflow whose nodes each write a
 * 108-byte output, created with run, against raw conditional UpdateItems on items of the same size, interleaved
 * round by round (engine, raw, engine, raw, …) at 16 and at 1 concurrent so that the machine's load falls on both.
 *
 * Prints, per concurrency: the client's CPU per node step and per raw update (user + system, this process only:
 * DynamoDB Local runs in its own), their ratio (tickflow's overhead), steps/s against the store's ceiling (raw
 * updates/s ÷ writes per step), requests, WCU and RCU per step, WCU per instance write, and the instance item's size
 * in mid-run and completed. Beside the raw update, two more shapes on the same items: the engine's step write as sent
 * (without its condition), and one carrying only a step's content under the lease's condition — the ceiling of any
 * engine that stores what a step produces, against which the engine's own guards can be told apart.
 *
 * `npm run bench:hot-path` runs it alone; `npm run bench` includes it.
 *   HOT_PATH_INSTANCES (200 per round at 16 concurrent; a third of it at 1), HOT_PATH_ROUNDS (3)
 */
import '../src/local/quiet-sdk.js'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { HttpWire } from '../src/adapters/dynamodb/http-wire.js'
import { instanceKey } from '../src/adapters/dynamodb/keys.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { defineWorkflow } from '../src/core/builder.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import type { WorkerStep } from '../src/core/registry.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import {
  attributeValueSize,
  inTurns,
  itemSizeBytes,
  num,
  pool,
  rawConditionalUpdates,
  rawItem,
  rawUpdateInput,
  throughTheSdk,
} from './bench-support.js'
import { CapacityMeter, processCpuMs, withDynamoDb } from './capacity-meter.js'

type DynamoConfig = NonNullable<ConstructorParameters<typeof DynamoDBClient>[0]>

export const HOT_PATH_NODES = 5
/** The bytes of each node's output as JSON (the issue that set the budget measured 108-byte outputs). */
export const HOT_PATH_OUTPUT_BYTES = 108

/** A node output of exactly HOT_PATH_OUTPUT_BYTES bytes of JSON. */
export const hotPathOutput = (n: number): { step: number; status: string; note: string } => {
  const bare = JSON.stringify({ step: n, status: 'approved', note: '' }).length
  return { step: n, status: 'approved', note: 'n'.repeat(HOT_PATH_OUTPUT_BYTES - bare) }
}

/** Set while one instance is probed: node 3's worker reads the stored item then (nodes 1–2 stored, lease held). */
let probe: ((instanceId: string) => Promise<void>) | undefined

const step = (n: number) => async (ctx: NodeContext) => {
  for (const [key, value] of Object.entries(hotPathOutput(n))) ctx.set(key, value)
  if (n === 3 && probe) await probe(ctx.instanceId)
}

/** A 5-node sequential workflow (`step1` → … → `step5`) whose node n runs `run(n)`. */
export const linearFive = (type: string, run: (n: number) => WorkerStep) =>
  defineWorkflow({
    type,
    nodes: {
      step1: { next: ['step2'], run: run(1) },
      step2: { next: ['step3'], run: run(2) },
      step3: { next: ['step4'], run: run(3) },
      step4: { next: ['step5'], run: run(4) },
      step5: { run: run(5) },
    },
  })

export const hotPathWorkflow = linearFive('hot-path-linear5', step)

export const hotPathContext = (i: number) => ({ orderId: `A-${String(i).padStart(5, '0')}`, amount: 12.5 })

export interface HotPathFigures {
  concurrency: number
  steps: number
  engineCpuMsPerStep: number
  /** The same engine whose store sends through the SDK (a client with middleware of its own): as before HttpWire. */
  sdkCpuMsPerStep: number
  /** DynamoDB Local's CPU (its process, from /proc) per engine write, per raw update, per shaped update: when known. */
  serverMsPerEngineWrite?: number
  serverMsPerRawUpdate?: number
  serverMsPerShapedUpdate?: number
  /** …and per update carrying only a step's content (see `contentOnly`). */
  serverMsPerContentUpdate?: number
  sdkStepsPerSecond: number
  rawCpuMsPerUpdate: number
  /** The same raw update sent as the store sends its writes (HttpWire). */
  rawDirectCpuMsPerUpdate: number
  /** Client CPU of an update shaped like the engine's step write (same expression and values, same client stack). */
  shapedCpuMsPerUpdate: number
  stepsPerSecond: number
  rawUpdatesPerSecond: number
  /** Updates shaped like the engine's step write, sent direct, per second: the store's ceiling for its own writes. */
  shapedUpdatesPerSecond: number
  /** Updates carrying only what a step must store, under the lease's condition, per second. */
  contentUpdatesPerSecond: number
  writesPerStep: number
  requestsPerStep: number
  wcuPerStep: number
  tableWcuPerStep: number
  rcuPerStep: number
  wcuPerInstanceWrite: number
}

export interface HotPathResult {
  rows: HotPathFigures[]
  midItemBytes: number
  completedItemBytes: number
  completedItem: Record<string, AttributeValue>
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

const isWrite = (command: string) => /^(Put|Update|Delete|BatchWrite|TransactWrite)/.test(command)

/** The figures of the hot path at 16 and at 1 concurrent. */
export const measureHotPath = async (
  config: DynamoConfig,
  progress: (message: string) => void,
  options: { instances?: number; rounds?: number; serverPid?: number } = {},
): Promise<HotPathResult> => {
  const server = () => processCpuMs(options.serverPid)
  /** What a phase of the rounds used, summed over them: client CPU, wall time, and DynamoDB Local's CPU if known. */
  interface Phase {
    cpuMs: number
    wallMs: number
    serverMs: number | undefined
  }
  const phase = (): Phase => ({ cpuMs: 0, wallMs: 0, serverMs: server() === undefined ? undefined : 0 })
  const measured = async (into: Phase, work: () => Promise<unknown>): Promise<void> => {
    const cpu = process.cpuUsage()
    const start = performance.now()
    const serverAt = server()
    await work()
    into.wallMs += performance.now() - start
    into.cpuMs += cpuMs(cpu)
    const serverNow = server()
    if (into.serverMs !== undefined && serverAt !== undefined && serverNow !== undefined) {
      into.serverMs += serverNow - serverAt
    }
  }
  const instances = options.instances ?? Number(process.env.HOT_PATH_INSTANCES ?? 200)
  const rounds = options.rounds ?? Number(process.env.HOT_PATH_ROUNDS ?? 3)
  const stamp = Date.now()
  const tableName = `hot-path-${stamp}`
  const rawTable = `hot-path-raw-${stamp}`
  const meter = new CapacityMeter()
  const engineOn = (client: DynamoDBClient) => {
    const engine = new Engine({
      store: new DynamoDbStore({ tableName, client }),
      clock: systemClock,
      ids: createIdGenerator(),
      random: mathRandom,
    })
    engine.register(hotPathWorkflow)
    return engine
  }
  // Sixteen Lambdas as deployed: clients as the SDK makes them, so that the store's writes go direct (HttpWire).
  const lambdas = Array.from({ length: 16 }, () => {
    const client = new DynamoDBClient(config)
    return { client, engine: engineOn(client) }
  })
  // Sixteen more whose clients count requests and capacity: a meter is middleware, so these send through the SDK.
  const metered = Array.from({ length: 16 }, () => {
    const client = new DynamoDBClient(config)
    meter.attach(client)
    return { client, engine: engineOn(client) }
  })
  // Sixteen more with a middleware that does nothing: the store then sends through the SDK, as it did before the
  // direct wire; the same engine in the same run, for the difference the transport makes.
  const viaSdk = Array.from({ length: 16 }, () => {
    const client = new DynamoDBClient(config)
    throughTheSdk(client)
    return { client, engine: engineOn(client) }
  })
  const first = metered[0] as (typeof metered)[number]
  await ensureTable(first.client, tableName)
  await ensureTable(first.client, rawTable)

  let next = 0
  const createRun = async (worker: number, on: typeof lambdas = lambdas) => {
    const result = await (on[worker] as (typeof lambdas)[number]).engine.create({
      workflowType: 'hot-path-linear5',
      context: hotPathContext(next++),
    })
    if (result.status !== 'completed') throw new Error(`instance ${result.instanceId} ended ${result.status}`)
    return result.instanceId
  }
  const getItem = async (instanceId: string) => {
    const key = instanceKey(instanceId)
    const out = await first.client.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } }, ConsistentRead: true }),
    )
    if (!out.Item) throw new Error(`instance ${instanceId} is not stored`)
    return out.Item
  }

  progress('hot path: warm-up')
  await pool(16 * 5, 16, async (_, worker) => {
    await createRun(worker)
    await createRun(worker, metered)
    await createRun(worker, viaSdk)
  })

  // The item in mid-run (nodes 1–2 stored, node 3 running) and once completed; the probed instance's writes as sent.
  const sent: UpdateItemCommandInput[] = []
  let capturing = false
  first.client.middlewareStack.add(
    (next, context) => async (args) => {
      if (capturing && context.commandName === 'UpdateItemCommand')
        sent.push(structuredClone(args.input) as UpdateItemCommandInput)
      return next(args)
    },
    { step: 'initialize', name: 'hotPathCapture' },
  )
  let midItem: Record<string, AttributeValue> | undefined
  probe = async (instanceId) => {
    midItem = await getItem(instanceId)
  }
  capturing = true
  const probed = await createRun(0, metered)
  capturing = false
  probe = undefined
  if (!midItem) throw new Error('the probe did not read the mid-run item')
  const completedItem = await getItem(probed)

  // Raw items of the mid-run item's size, each updated by one worker only: a condition never fails for a race.
  const rawCount = 16 * 20
  const rawKey = (i: number) => ({ pk: { S: `R#${String(i).padStart(30, '0')}` }, sk: { S: instanceKey('').sk } })
  const template = midItem
  await pool(rawCount, 16, async (i, worker) => {
    const client = (lambdas[worker] as (typeof lambdas)[number]).client
    await client.send(new PutItemCommand({ TableName: rawTable, Item: rawItem(template, rawKey(i)) }))
  })
  const versions = Array.from({ length: rawCount }, () => 1)
  const rawUpdates = (count: number, concurrency: number) =>
    rawConditionalUpdates(
      lambdas.slice(0, concurrency).map(({ client }) => client),
      rawTable,
      rawKey,
      versions,
      count,
    )

  // The same raw update sent as the store sends its writes (HttpWire: signed, through the client's HTTP handler).
  const direct = lambdas.map(({ client }) => new HttpWire(client))
  const sendDirect = async (worker: number, input: object) => {
    const wire = direct[worker] as HttpWire
    const how = await wire.usable()
    if (!how) throw new Error('a client as the SDK makes it must send direct')
    await wire.send(how, 'UpdateItem', input)
  }
  const rawDirectUpdates = (count: number, concurrency: number) =>
    inTurns(count, concurrency, rawCount, async (worker, i) => {
      const version = versions[i] as number
      await sendDirect(worker, rawUpdateInput(rawTable, rawKey(i), version))
      versions[i] = version + 1
    })

  // The engine's write of a node step (node 2 completed, node 3 started), sent to the raw items as the engine's store
  // sends it (marshalled, direct): what the request alone costs the client, without the engine.
  // Its history is set, not appended, so that the items keep their size; no condition (no race to guard).
  const stepWrite = sent.find((input) => /\.#n0 = :n0, \w+\.#n1 = :n1/.test(input.UpdateExpression ?? ''))
  if (!stepWrite) throw new Error('no step write was captured')
  const {
    ':noH': _noH,
    ':owner': _owner,
    ':fence': _fence,
    ':wseq': _wseq,
    ':room': _room,
    ':es': _es,
    ...shapedValues
  } = stepWrite.ExpressionAttributeValues ?? {}
  const { ConditionExpression: _condition, ...unconditioned } = stepWrite
  const shaped = (i: number): UpdateItemCommandInput => ({
    ...unconditioned,
    TableName: rawTable,
    Key: rawKey(i),
    UpdateExpression: (stepWrite.UpdateExpression ?? '').replace(
      /list_append\((if_not_exists\(h, :noH\)|h), :h\)/,
      ':h',
    ),
    ExpressionAttributeValues: shapedValues,
  })
  const shapedUpdates = (count: number, concurrency: number) =>
    inTurns(count, concurrency, rawCount, async (worker, i) => {
      await sendDirect(worker, shaped(i))
    })
  // What any engine that stores a step must write: the two node records, the history entries and the time, under
  // the lease's condition (the raw items carry the probed instance's lease) — without the write's own guards (its
  // place in the instance's writes, the counted bytes and the room for them, the event counter and what it returns).
  const contentValues = Object.fromEntries(
    [':ua', ':h', ':n0', ':n1', ':owner', ':fence'].map((name) => [
      name,
      stepWrite.ExpressionAttributeValues?.[name] as AttributeValue,
    ]),
  )
  const contentOnly = (i: number): UpdateItemCommandInput => ({
    TableName: rawTable,
    Key: rawKey(i),
    UpdateExpression: 'SET ua = :ua, h = :h, n.#n0 = :n0, n.#n1 = :n1',
    ConditionExpression: 'lo = :owner AND f = :fence',
    ExpressionAttributeNames: stepWrite.ExpressionAttributeNames,
    ExpressionAttributeValues: contentValues,
  })
  const contentUpdates = (count: number, concurrency: number) =>
    inTurns(count, concurrency, rawCount, async (worker, i) => {
      await sendDirect(worker, contentOnly(i))
    })

  const rows: HotPathFigures[] = []
  for (const concurrency of [16, 1]) {
    const perRound = concurrency === 16 ? instances : Math.max(10, Math.round(instances / 3))
    // Requests and capacity per step, counted on the metered Lambdas (the same engine; its clients send through
    // the SDK, the same requests).
    progress(`hot path: ${concurrency} concurrent, counting requests and capacity: ${perRound} instances`)
    meter.reset()
    await pool(perRound, concurrency, async (_, worker) => {
      await createRun(worker, metered)
    })
    const counted = perRound * HOT_PATH_NODES
    const writesPerStep =
      [...meter.requests].filter(([command]) => isWrite(command)).reduce((a, [, n]) => a + n, 0) / counted
    const requestsPerStep = meter.requestCount / counted
    const wcuPerStep = meter.writeUnits / counted
    const tableWcuPerStep = meter.tableWriteUnits / counted
    const rcuPerStep = meter.readUnits / counted
    const engine = phase()
    const sdk = phase()
    const raw = phase()
    const rawDirect = phase()
    const shaped = phase()
    const content = phase()
    let rawDone = 0
    for (let round = 0; round < rounds; round++) {
      progress(`hot path: ${concurrency} concurrent, round ${round + 1}/${rounds}: ${perRound} instances`)
      await measured(engine, () =>
        pool(perRound, concurrency, async (_, worker) => {
          await createRun(worker)
        }),
      )
      await measured(sdk, () =>
        pool(perRound, concurrency, async (_, worker) => {
          await createRun(worker, viaSdk)
        }),
      )
      // As many raw updates as the engine's writes in this round.
      const roundWrites = Math.round(writesPerStep * perRound * HOT_PATH_NODES)
      await measured(raw, () => rawUpdates(roundWrites, concurrency))
      await measured(rawDirect, () => rawDirectUpdates(roundWrites, concurrency))
      await measured(shaped, () => shapedUpdates(roundWrites, concurrency))
      await measured(content, () => contentUpdates(roundWrites, concurrency))
      rawDone += roundWrites
    }
    const steps = perRound * rounds * HOT_PATH_NODES
    const stepsPerSecond = steps / (engine.wallMs / 1000)
    const rawUpdatesPerSecond = rawDone / (raw.wallMs / 1000)
    rows.push({
      concurrency,
      steps,
      engineCpuMsPerStep: engine.cpuMs / steps,
      sdkCpuMsPerStep: sdk.cpuMs / steps,
      ...(engine.serverMs === undefined
        ? {}
        : {
            serverMsPerEngineWrite: engine.serverMs / (writesPerStep * steps),
            serverMsPerRawUpdate: (raw.serverMs ?? 0) / rawDone,
            serverMsPerShapedUpdate: (shaped.serverMs ?? 0) / rawDone,
            serverMsPerContentUpdate: (content.serverMs ?? 0) / rawDone,
          }),
      sdkStepsPerSecond: steps / (sdk.wallMs / 1000),
      rawCpuMsPerUpdate: raw.cpuMs / rawDone,
      rawDirectCpuMsPerUpdate: rawDirect.cpuMs / rawDone,
      shapedCpuMsPerUpdate: shaped.cpuMs / rawDone,
      stepsPerSecond,
      rawUpdatesPerSecond,
      shapedUpdatesPerSecond: rawDone / (shaped.wallMs / 1000),
      contentUpdatesPerSecond: rawDone / (content.wallMs / 1000),
      writesPerStep,
      requestsPerStep,
      wcuPerStep,
      tableWcuPerStep,
      rcuPerStep,
      wcuPerInstanceWrite: tableWcuPerStep / writesPerStep,
    })
  }
  for (const { client } of [...lambdas, ...metered, ...viaSdk]) client.destroy()
  return { rows, midItemBytes: itemSizeBytes(midItem), completedItemBytes: itemSizeBytes(completedItem), completedItem }
}

/** The figures as Markdown rows: `| measure | 16 concurrent | 1 concurrent |`. */
export const hotPathTable = (result: HotPathResult): string => {
  const [many, one] = result.rows as [HotPathFigures, HotPathFigures]
  const line = (what: string, value: (row: HotPathFigures) => string) => `| ${what} | ${value(many)} | ${value(one)} |`
  return [
    `| hot path (${HOT_PATH_NODES} sequential steps, ${HOT_PATH_OUTPUT_BYTES}-byte outputs, history on) | 16 concurrent | 1 concurrent |`,
    '| --- | --- | --- |',
    line('node steps measured', (row) => num(row.steps)),
    line('client CPU per step (ms)', (row) => num(row.engineCpuMsPerStep, 3)),
    line('the same, the store sending through the SDK (as before the direct wire)', (row) =>
      num(row.sdkCpuMsPerStep, 3),
    ),
    line('client CPU per raw conditional update (ms)', (row) => num(row.rawCpuMsPerUpdate, 3)),
    line('client CPU per raw update sent as the store sends its writes (ms)', (row) =>
      num(row.rawDirectCpuMsPerUpdate, 3),
    ),
    line("client CPU per update shaped like the engine's step write, sent as the store sends it (ms)", (row) =>
      num(row.shapedCpuMsPerUpdate, 3),
    ),
    line('**CPU per step ÷ raw update** (target ≤ 1.35)', (row) =>
      num(row.engineCpuMsPerStep / row.rawCpuMsPerUpdate, 2),
    ),
    line('the same, the store sending through the SDK', (row) => num(row.sdkCpuMsPerStep / row.rawCpuMsPerUpdate, 2)),
    line("the step write's request alone ÷ raw update", (row) =>
      num(row.shapedCpuMsPerUpdate / row.rawCpuMsPerUpdate, 2),
    ),
    line('CPU per step ÷ raw update sent as the store sends: over the same transport', (row) =>
      num(row.engineCpuMsPerStep / row.rawDirectCpuMsPerUpdate, 2),
    ),
    line("CPU per step ÷ its requests alone (writes per step × shaped update): the engine's own share", (row) =>
      num(row.engineCpuMsPerStep / (row.writesPerStep * row.shapedCpuMsPerUpdate), 2),
    ),
    line('steps/s', (row) => num(row.stepsPerSecond)),
    line('steps/s, the store sending through the SDK', (row) => num(row.sdkStepsPerSecond)),
    line('store ceiling: raw updates/s ÷ writes per step', (row) => num(row.rawUpdatesPerSecond / row.writesPerStep)),
    line(
      "**steps/s ÷ ceiling** (target ≥ 0.95 at 16, ≥ 0.9 at 1; at 16 bounded by DynamoDB Local's CPU per write: `npm run bench:write-guards`)",
      (row) => num(row.stepsPerSecond / (row.rawUpdatesPerSecond / row.writesPerStep), 2),
    ),
    line('the same, the store sending through the SDK', (row) =>
      num(row.sdkStepsPerSecond / (row.rawUpdatesPerSecond / row.writesPerStep), 2),
    ),
    line(
      "updates shaped like the step write, per second ÷ writes per step: the ceiling for the engine's own writes",
      (row) => num(row.shapedUpdatesPerSecond / row.writesPerStep),
    ),
    line('steps/s ÷ that ceiling', (row) =>
      num(row.stepsPerSecond / (row.shapedUpdatesPerSecond / row.writesPerStep), 2),
    ),
    line(
      "updates carrying only a step's content (node records, history, time; the lease's condition) ÷ raw updates, per second: the ceiling ratio of any engine that stores a step",
      (row) => num(row.contentUpdatesPerSecond / row.rawUpdatesPerSecond, 2),
    ),
    line(
      "DynamoDB Local's CPU per engine write / raw update / shaped update / content-only update (ms; its process, /proc)",
      (row) =>
        row.serverMsPerEngineWrite === undefined
          ? 'not measured'
          : [
              row.serverMsPerEngineWrite,
              row.serverMsPerRawUpdate,
              row.serverMsPerShapedUpdate,
              row.serverMsPerContentUpdate,
            ]
              .map((ms) => num(ms ?? 0, 3))
              .join(' / '),
    ),
    line("the same, the engine's write and the content-only update ÷ the raw update's", (row) =>
      row.serverMsPerEngineWrite === undefined || !row.serverMsPerRawUpdate
        ? 'not measured'
        : `${num(row.serverMsPerEngineWrite / row.serverMsPerRawUpdate, 2)} / ${num((row.serverMsPerContentUpdate ?? 0) / row.serverMsPerRawUpdate, 2)}`,
    ),
    line('requests per step', (row) => num(row.requestsPerStep, 2)),
    line(
      '**WCU per step** (table + index; target ≤ 2.0)',
      (row) => `${num(row.wcuPerStep, 2)} (table ${num(row.tableWcuPerStep, 2)})`,
    ),
    line('**WCU per instance write** (target ≤ 1.0)', (row) => num(row.wcuPerInstanceWrite, 2)),
    line('RCU per step', (row) => num(row.rcuPerStep, 2)),
    `| instance item, mid-run / completed (bytes; target < 1024) | ${num(result.midItemBytes)} / ${num(result.completedItemBytes)} | |`,
  ].join('\n')
}

/** The completed item attribute by attribute, largest first: its name and value, in DynamoDB's bytes. */
export const itemBytesTable = (item: Record<string, AttributeValue>): string => {
  const rows = Object.entries(item)
    .map(([name, value]) => ({ name, bytes: name.length + attributeValueSize(value), value }))
    .sort((a, b) => b.bytes - a.bytes)
  const shown = (value: AttributeValue) => {
    const text = JSON.stringify(value)
    return text.length > 90 ? `${text.slice(0, 87)}…` : text
  }
  return [
    `| attribute of the completed item (${num(itemSizeBytes(item))} bytes) | bytes | value |`,
    '| --- | --- | --- |',
    ...rows.map((row) => `| \`${row.name}\` | ${row.bytes} | \`${shown(row.value).replaceAll('|', '\\|')}\` |`),
  ].join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await withDynamoDb(async (config, server) => {
    const result = await measureHotPath(config, (message) => process.stderr.write(`[hot path] ${message}\n`), {
      ...(server ? { serverPid: server.pid } : {}),
    })
    console.log(hotPathTable(result))
    console.log(`\n${itemBytesTable(result.completedItem)}`)
  })
}
