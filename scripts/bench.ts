/**
 * `npm run bench`: throughput, DynamoDB units, overhead over raw conditional writes, tick reads, HTTP latency, an
 * estimated AWS cost, what a node skipped by its condition costs, the hot path against raw updates and a long-lived
 * instance (a check polled BENCH_POLLS times, default 1000; width; restarts), all measured in one run on one DynamoDB Local (started here, or DYNAMODB_ENDPOINT). Progress
 * goes to stderr; stdout gets a short header and one Markdown table.
 *
 * Sizes can be lowered for a quick try (the defaults are what the README reports):
 *   BENCH_INSTANCES (1000), BENCH_IDLE (10000), BENCH_HTTP (300), BENCH_GRID_INSTANCES (3: per cell of the size
 *   grid; 0 skips the grid); BENCH_GRID_ONLY=1 runs the size grid alone; BENCH_HISTORY=off runs the engines with
 *   `history: false` (what the history costs, compared in the same conditions).
 */
import '../src/local/quiet-sdk.js'
import { spawnSync } from 'node:child_process'
import { cpus, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import { type AttributeValue, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { instanceKey } from '../src/adapters/dynamodb/keys.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { LocalQueue } from '../src/adapters/memory/local-queue.js'
import { defineWorkflow } from '../src/core/builder.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import { silentLogger } from '../src/core/ports.js'
import { runTick } from '../src/core/tick.js'
import { DYNAMODB_LOCAL_PACKAGE, DYNAMODB_LOCAL_PACKAGE_VERSION } from '../src/local/dynamodb-local.js'
import { startLocalRuntime } from '../src/local/runtime.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { measureSkipCost, skipCostRows } from './bench-control-flow.js'
import { type GridCell, gridTable, runSizeGrid } from './bench-grid.js'
import { type HotPathResult, hotPathTable, itemBytesTable, measureHotPath } from './bench-hot-path.js'
import { longLivedRows, runLongLived } from './bench-long-lived.js'
import {
  itemSizeBytes,
  mean,
  num,
  percentile,
  pool,
  rawConditionalUpdates,
  rawItem,
  syntheticInstance,
  usd,
} from './bench-support.js'
import { CapacityMeter, withDynamoDb } from './capacity-meter.js'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}

const CONCURRENCY = 16
const NODES = 5
const INSTANCES = envInt('BENCH_INSTANCES', 1000)
const IDLE = envInt('BENCH_IDLE', 10_000)
const HTTP_REQUESTS = envInt('BENCH_HTTP', 300)
const GRID_INSTANCES = Number(process.env.BENCH_GRID_INSTANCES ?? 3)
if (!Number.isInteger(GRID_INSTANCES) || GRID_INSTANCES < 0) throw new Error('BENCH_GRID_INSTANCES must be 0 or more')
const GRID_ONLY = process.env.BENCH_GRID_ONLY === '1'
/** Per creator, before the measured run: stores the definition, opens connections, warms the JIT. */
const WARMUP_PER_CREATOR = 5
/** Sequential creates on one engine: the pass duration without 16-way contention on 2 cores. */
const SEQUENTIAL = 100
const HTTP_WARMUP = 20
/** The jar `amplify-dynamodb-simulator` vendors (see src/local/dynamodb-local.ts). */
const DYNAMODB_LOCAL_VERSION = '1.25.1'

/** Assumed AWS prices, us-east-1, on-demand, USD (checked against secondary sources; see the printed notes). */
const PRICE = {
  writeRequestUnit: 0.625 / 1e6,
  readRequestUnit: 0.125 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecondArm: 0.0000133334,
  sqsRequest: 0.4 / 1e6,
  stepFunctionsTransition: 25 / 1e6,
}
/** serverless.yml: the `api` function (which runs create-with-run passes) and the `run` function have 1024 MB, arm64. */
const LAMBDA_MEMORY_MB = 1024
/** serverless.yml: the tick runs every minute with 256 MB. */
const TICKS_PER_MONTH = 30 * 24 * 60
const TICK_MEMORY_MB = 256

const started = performance.now()
const elapsed = () => ((performance.now() - started) / 1000).toFixed(1)
const progress = (message: string) => process.stderr.write(`[bench ${elapsed()} s] ${message}\n`)

// ---- the measured workflow ------------------------------------------------------------------------------------

/** Set while one instance is probed: node 3's worker reads the stored item then (nodes 1–2 stored, lease held). */
let probe: ((instanceId: string) => Promise<void>) | undefined

const step = (n: number) => (ctx: NodeContext) => ctx.set('step', n)
const linear5 = defineWorkflow({
  type: 'bench-linear5',
  nodes: {
    step1: { next: ['step2'], run: step(1) },
    step2: { next: ['step3'], run: step(2) },
    step3: {
      next: ['step4'],
      run: async (ctx) => {
        ctx.set('step', 3)
        if (probe) await probe(ctx.instanceId)
      },
    },
    step4: { next: ['step5'], run: step(4) },
    step5: { run: step(5) },
  },
})
const context = (i: number) => ({ orderId: `A-${String(i).padStart(5, '0')}`, amount: 12.5 })

interface MeterSnapshot {
  requests: Map<string, number>
  tableWriteUnits: number
  indexWriteUnits: Map<string, number>
  writeUnits: number
  readUnits: number
  billedReadUnits: number
  scannedItems: number
}

const snapshot = (meter: CapacityMeter): MeterSnapshot => ({
  requests: new Map(meter.requests),
  tableWriteUnits: meter.tableWriteUnits,
  indexWriteUnits: new Map(meter.indexWriteUnits),
  writeUnits: meter.writeUnits,
  readUnits: meter.readUnits,
  billedReadUnits: meter.billedReadUnits,
  scannedItems: meter.scannedItems,
})

const writeRequests = (figures: MeterSnapshot): number =>
  [...figures.requests]
    .filter(([command]) => /^(Put|Update|Delete|BatchWrite)/.test(command))
    .reduce((a, [, n]) => a + n, 0)

// ---- the run --------------------------------------------------------------------------------------------------

const rows: [string, string, string, string][] = []
const row = (section: string, what: string, result: string, notes = '') => rows.push([section, what, result, notes])
let dynamoLabel = ''
let grid: GridCell[] = []
let hotPath: HotPathResult | undefined

await withDynamoDb(async (config, server) => {
  const external = process.env.DYNAMODB_ENDPOINT
  dynamoLabel = external
    ? `DynamoDB at ${external} (DYNAMODB_ENDPOINT; expected DynamoDB Local ${DYNAMODB_LOCAL_VERSION})`
    : `DynamoDB Local ${DYNAMODB_LOCAL_VERSION} (${DYNAMODB_LOCAL_PACKAGE}@${DYNAMODB_LOCAL_PACKAGE_VERSION}), in memory, started by the benchmark, ${javaVersion()}`
  progress(`DynamoDB ready at ${config.endpoint}`)
  if (GRID_INSTANCES > 0) {
    progress(`grid: ${GRID_INSTANCES} instances per cell`)
    grid = await runSizeGrid(config, PRICE, GRID_INSTANCES, progress)
  }
  if (GRID_ONLY) return
  const stamp = Date.now()

  // 16 creators, each its own client and Engine on the same table, as 16 Lambdas would be; their clients are as the SDK
  // makes them, so the store's writes go direct (see "The direct wire" in the README). A meter is middleware, which
  // sends the writes through the SDK: 16 metered creators count the requests and capacity of the same run, apart.
  const meter = new CapacityMeter()
  const tableName = `bench-${stamp}`
  const creator = (metered: boolean) => {
    const client = new DynamoDBClient(config)
    if (metered) meter.attach(client)
    const engine = new Engine({
      store: new DynamoDbStore({ tableName, client }),
      clock: systemClock,
      ids: createIdGenerator(),
      random: mathRandom,
      history: process.env.BENCH_HISTORY !== 'off',
    })
    engine.register(linear5)
    return { client, engine }
  }
  const lambdas = Array.from({ length: CONCURRENCY }, () => creator(true))
  const plain = Array.from({ length: CONCURRENCY }, () => creator(false))
  const first = lambdas[0] as (typeof lambdas)[number]
  await ensureTable(first.client, tableName)

  const createRun = async (engine: Engine, i: number): Promise<number> => {
    const start = performance.now()
    const result = await engine.create({ workflowType: 'bench-linear5', context: context(i) })
    if (result.status !== 'completed') throw new Error(`instance ${result.instanceId} ended ${result.status}`)
    return performance.now() - start
  }

  // 1. Throughput: 1,000 instances of the 5-node workflow, created with run, 16 at a time.
  progress(`warm-up: ${WARMUP_PER_CREATOR} instances per creator`)
  await pool(CONCURRENCY * WARMUP_PER_CREATOR, CONCURRENCY, async (i, worker) => {
    await createRun((lambdas[worker] as (typeof lambdas)[number]).engine, 100_000 + i)
    await createRun((plain[worker] as (typeof plain)[number]).engine, 400_000 + i)
  })
  progress(`run: ${INSTANCES} instances x ${NODES} nodes at concurrency ${CONCURRENCY}`)
  const passes: number[] = []
  const cpuStart = process.cpuUsage()
  const runStart = performance.now()
  await pool(INSTANCES, CONCURRENCY, async (i, worker) => {
    passes.push(await createRun((plain[worker] as (typeof plain)[number]).engine, i))
  })
  const wallSeconds = (performance.now() - runStart) / 1000
  const cpu = process.cpuUsage(cpuStart)
  progress(`count: the same ${INSTANCES} instances on metered creators`)
  meter.reset()
  await pool(INSTANCES, CONCURRENCY, async (i, worker) => {
    await createRun((lambdas[worker] as (typeof lambdas)[number]).engine, 500_000 + i)
  })
  const engineFigures = snapshot(meter)
  const steps = INSTANCES * NODES
  const transitionsPerSecond = steps / wallSeconds
  const engineWrites = writeRequests(engineFigures)
  const engineWritesPerSecond = engineWrites / wallSeconds
  progress(`run: ${num(wallSeconds, 1)} s, ${num(transitionsPerSecond)} node transitions/s`)

  progress(`sequential: ${SEQUENTIAL} instances on one engine`)
  const sequential: number[] = []
  for (let i = 0; i < SEQUENTIAL; i++)
    sequential.push(await createRun((plain[0] as (typeof plain)[number]).engine, 200_000 + i))

  // The item of an instance in mid-run, read from inside node 3's worker.
  let midItem: Record<string, AttributeValue> | undefined
  probe = async (instanceId) => {
    const out = await first.client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: instanceKey(instanceId).pk }, sk: { S: instanceKey(instanceId).sk } },
        ConsistentRead: true,
      }),
    )
    midItem = out.Item
  }
  await createRun(first.engine, 300_000)
  probe = undefined
  if (!midItem) throw new Error('the probe did not read the mid-run item')
  const midSize = itemSizeBytes(midItem)

  // 3. Raw conditional updates on items of that size, as many as the engine's writes, 16 at a time.
  const rawTable = `bench-raw-${stamp}`
  await ensureTable(first.client, rawTable)
  const rawItems = INSTANCES
  const versions = Array.from({ length: rawItems }, () => 1)
  const rawKey = (i: number) => ({
    pk: { S: `R#${String(i).padStart(instanceKey('').pk.length + 24, '0')}` },
    sk: { S: instanceKey('').sk },
  })
  progress(`raw: inserting ${rawItems} items of ${midSize} bytes`)
  const template = midItem
  await pool(rawItems, CONCURRENCY, async (i, worker) => {
    const client = (lambdas[worker] as (typeof lambdas)[number]).client
    await client.send(new PutItemCommand({ TableName: rawTable, Item: rawItem(template, rawKey(i)) }))
  })
  const rawSize = itemSizeBytes(rawItem(template, rawKey(0)))
  progress(`raw: ${engineWrites} conditional updates at concurrency ${CONCURRENCY}`)
  // Timed on the plain clients, as the engine's run; counted on the metered ones, as many again.
  const rawStart = performance.now()
  await rawConditionalUpdates(
    plain.map(({ client }) => client),
    rawTable,
    rawKey,
    versions,
    engineWrites,
  )
  const rawSeconds = (performance.now() - rawStart) / 1000
  meter.reset()
  await rawConditionalUpdates(
    lambdas.map(({ client }) => client),
    rawTable,
    rawKey,
    versions,
    engineWrites,
  )
  const rawFigures = snapshot(meter)
  const rawPerSecond = engineWrites / rawSeconds
  progress(`raw: ${num(rawSeconds, 1)} s, ${num(rawPerSecond)} updates/s`)

  // 4. Tick reads with an empty table and with idle instances.
  const tickTable = `bench-tick-${stamp}`
  await ensureTable(first.client, tickTable)
  const tickStore = new DynamoDbStore({ tableName: tickTable, client: first.client })
  const tick = async () => {
    meter.reset()
    const start = performance.now()
    const result = await runTick(
      { store: tickStore, queue: new LocalQueue({ name: 'bench-run' }), clock: systemClock, logger: silentLogger },
      { remainingTimeMs: 60_000 },
    )
    return { result, ms: performance.now() - start, figures: snapshot(meter) }
  }
  progress('tick: empty table')
  const emptyTick = await tick()
  progress(`tick: inserting ${IDLE} idle instances`)
  const idleStores = lambdas.map(({ client }) => new DynamoDbStore({ tableName: tickTable, client }))
  await pool(IDLE, CONCURRENCY, async (i, worker) => {
    await (idleStores[worker] as DynamoDbStore).createInstance(
      syntheticInstance(Date.now(), i % 2 ? 'completed' : 'waiting', 'bench-idle'),
    )
  })
  progress(`tick: ${IDLE} idle instances`)
  const idleTick = await tick()
  if (emptyTick.result.due || idleTick.result.due) throw new Error('the tick found due work in an idle table')

  // 5. Create-and-run latency through the local HTTP runtime, sequential requests.
  progress('http: starting the local runtime')
  const runtime = await startLocalRuntime({
    port: 0,
    host: '127.0.0.1',
    inMemory: true,
    dataDir: '.data',
    dynamodbEndpoint: config.endpoint,
    tableName: `bench-http-${stamp}`,
    tickIntervalMs: 5_000,
    pumpIntervalMs: 200,
    logLevel: 'error',
    print: () => {},
  })
  const latencies: number[] = []
  try {
    const body = JSON.stringify({ workflowType: 'subscription-billing', context: { customer: 'c-1', amount: 30 } })
    for (let i = 0; i < HTTP_WARMUP + HTTP_REQUESTS; i++) {
      const start = performance.now()
      const response = await fetch(`${runtime.url}/workflows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      const answer = (await response.json()) as { status?: string }
      const ms = performance.now() - start
      if (response.status !== 201 || answer.status !== 'completed') {
        throw new Error(`POST /workflows answered ${response.status} ${JSON.stringify(answer)}`)
      }
      if (i >= HTTP_WARMUP) latencies.push(ms)
    }
  } finally {
    await runtime.stop()
  }
  progress(`http: ${HTTP_REQUESTS} requests, p50 ${num(percentile(latencies, 50), 1)} ms`)
  for (const { client } of [...lambdas, ...plain]) client.destroy()

  // 7. What a node skipped by its condition costs (scripts/bench-control-flow.ts).
  const skipCosts = await measureSkipCost(config, Math.min(INSTANCES, 300), progress)

  // 8. The hot path against raw conditional updates, interleaved (scripts/bench-hot-path.ts).
  hotPath = await measureHotPath(config, progress, server ? { serverPid: server.pid } : {})

  // 9. A long-lived instance: a check polled BENCH_POLLS times, width, restarts (scripts/bench-long-lived.ts).
  const longLived = await runLongLived(config, Number(process.env.BENCH_POLLS ?? 1000), progress)

  // ---- the table ----------------------------------------------------------------------------------------------
  const perStep = (value: number) => value / steps
  const requestParts = [...engineFigures.requests]
    .map(([command, count]) => `${command.replace(/Command$/, '')} ${num(perStep(count), 2)}`)
    .join(', ')
  const indexParts = [...engineFigures.indexWriteUnits]
    .map(([name, units]) => `index \`${name}\` ${num(perStep(units), 2)}`)
    .join(', ')

  row(
    '1',
    `node transitions/s (${num(INSTANCES)} × ${NODES}-node linear sync, create with run, ${CONCURRENCY} creators)`,
    num(transitionsPerSecond),
    `${num(INSTANCES / wallSeconds)} instances/s; ${CONCURRENCY} \`Engine\`s, one client each, one table`,
  )
  row(
    '1',
    'wall time of that run',
    `${num(wallSeconds, 2)} s`,
    `after ${CONCURRENCY * WARMUP_PER_CREATOR} warm-up instances (definition stored, connections open)`,
  )
  row(
    '1',
    'one create-with-run pass (5 nodes), under 16-way load: mean / p50 / p99',
    `${num(mean(passes), 1)} / ${num(percentile(passes, 50), 1)} / ${num(percentile(passes, 99), 1)} ms`,
    'client-side, per instance',
  )
  row(
    '1',
    `same pass, sequential on one engine (${SEQUENTIAL} instances): mean / p50 / p99`,
    `${num(mean(sequential), 1)} / ${num(percentile(sequential, 50), 1)} / ${num(percentile(sequential, 99), 1)} ms`,
    'no contention; used for the Lambda estimate below',
  )
  row(
    '1',
    'client CPU per node step (user + system, this process)',
    `${num((cpu.user + cpu.system) / 1000 / steps, 3)} ms`,
    `process.cpuUsage over run 1 (engine, SDK, marshalling; DynamoDB Local runs in its own JVM): user ${num(cpu.user / 1000 / steps, 3)} ms, system ${num(cpu.system / 1000 / steps, 3)} ms`,
  )
  row('2', 'DynamoDB requests per node', num(perStep(meterRequests(engineFigures)), 2), requestParts)
  row(
    '2',
    'write capacity units per node',
    num(perStep(engineFigures.writeUnits), 2),
    `table ${num(perStep(engineFigures.tableWriteUnits), 2)}, ${indexParts}`,
  )
  row(
    '2',
    'read capacity units per node',
    num(perStep(engineFigures.readUnits), 2),
    `billed (0.5 minimum per read request): ${num(perStep(engineFigures.billedReadUnits), 2)}`,
  )
  row(
    '3',
    'size of a mid-run instance item',
    `${num(midSize)} bytes`,
    `read inside node 3's worker (nodes 1–2 stored, lease held); DynamoDB size rules; raw copies ${num(rawSize)} bytes`,
  )
  row(
    '3',
    `raw conditional UpdateItem/s (${num(engineWrites)} updates, ${CONCURRENCY} clients)`,
    num(rawPerSecond),
    `\`SET fence, updatedAtMs\` if \`fence = :expected\` on ${num(rawItems)} copies of that item, in a table with tickflow's 3 indexes (no indexed attribute changes); ${num(rawFigures.writeUnits / engineWrites, 2)} WCU each; ${num(rawSeconds, 2)} s`,
  )
  row(
    '3',
    'engine write requests/s in run 1',
    num(engineWritesPerSecond),
    `${num(engineWrites)} PutItem + UpdateItem over ${num(wallSeconds, 2)} s (${num(engineWrites / INSTANCES, 2)} per instance)`,
  )
  row(
    '3',
    'raw updates/s ÷ engine writes/s',
    num(rawPerSecond / engineWritesPerSecond, 2),
    'engine overhead per write: 1.00 would mean no cost beyond the conditional write itself',
  )
  row(
    '3',
    'node transitions/s ÷ raw updates/s',
    num(transitionsPerSecond / rawPerSecond, 2),
    'node steps the engine completes per raw conditional update the same machine can do',
  )
  row('4', 'one tick, empty table', tickCell(emptyTick.figures), `${num(emptyTick.ms, 1)} ms`)
  row(
    '4',
    `one tick, ${num(IDLE)} idle instances`,
    tickCell(idleTick.figures),
    `half waiting 1 h, half completed, inserted with the store; ${num(idleTick.ms, 1)} ms`,
  )
  row(
    '4',
    'ratio idle ÷ empty (billed RCU)',
    num(idleTick.figures.billedReadUnits / emptyTick.figures.billedReadUnits, 3),
    'idle instances cost the tick nothing',
  )
  row(
    '5',
    `HTTP create-and-run latency, p50 (${HTTP_REQUESTS} sequential POST /workflows)`,
    `${num(percentile(latencies, 50), 1)} ms`,
    `\`subscription-billing\` (invoice → collect → notify, 3 nodes, synchronous with no declines; \`collect\` also runs its \`check\`, one more write); local runtime on a free port, same DynamoDB Local; after ${HTTP_WARMUP} warm-up requests`,
  )
  row(
    '5',
    'HTTP create-and-run latency, p99',
    `${num(percentile(latencies, 99), 1)} ms`,
    `mean ${num(mean(latencies), 1)} ms, max ${num(Math.max(...latencies), 1)} ms`,
  )

  // 6. Cost per million node steps, from the units measured above.
  const million = 1e6
  const dynamoCost =
    million *
    (perStep(engineFigures.writeUnits) * PRICE.writeRequestUnit +
      perStep(engineFigures.billedReadUnits) * PRICE.readRequestUnit)
  const passesPerStep = 1 / NODES
  const billedPassMs = mean(sequential.map((ms) => Math.ceil(ms)))
  const lambdaRequests = million * passesPerStep * PRICE.lambdaRequest
  const lambdaDuration =
    million * passesPerStep * (billedPassMs / 1000) * (LAMBDA_MEMORY_MB / 1024) * PRICE.lambdaGbSecondArm
  const sqsCost = 0
  const total = dynamoCost + lambdaRequests + lambdaDuration + sqsCost
  // Each DynamoDB request is a few ms over the network on AWS, against about 2 ms to DynamoDB Local on localhost.
  const slowPassMs = 100
  const slowDuration =
    million * passesPerStep * (slowPassMs / 1000) * (LAMBDA_MEMORY_MB / 1024) * PRICE.lambdaGbSecondArm
  const slowTotal = total - lambdaDuration + slowDuration
  const stepFunctions = million * PRICE.stepFunctionsTransition
  const tickMonthly =
    TICKS_PER_MONTH *
    (emptyTick.figures.billedReadUnits * PRICE.readRequestUnit +
      PRICE.lambdaRequest +
      (Math.ceil(emptyTick.ms) / 1000) * (TICK_MEMORY_MB / 1024) * PRICE.lambdaGbSecondArm)

  row(
    '6',
    'prices assumed (us-east-1, on-demand, USD)',
    '—',
    'DynamoDB $0.625 per million write request units, $0.125 per million read request units; Lambda arm64 $0.20 per million requests + $0.0000133334 per GB-s; SQS $0.40 per million requests; Step Functions Standard $25 per million state transitions (= $0.025 per 1,000); free tiers ignored',
  )
  row(
    '6',
    'DynamoDB per million node steps',
    usd(dynamoCost),
    `${num(perStep(engineFigures.writeUnits), 2)} WRU + ${num(perStep(engineFigures.billedReadUnits), 2)} RRU per step`,
  )
  row(
    '6',
    'Lambda requests per million node steps',
    usd(lambdaRequests),
    `one invocation per instance pass = ${num(passesPerStep, 2)} per step (${NODES}-node workflow, one pass)`,
  )
  row(
    '6',
    'Lambda duration per million node steps',
    usd(lambdaDuration),
    `${num(billedPassMs, 1)} ms billed per pass (sequential mean above, rounded up per ms) × ${LAMBDA_MEMORY_MB} MB (\`api\`/\`run\` in serverless.yml); a pass on AWS may well take longer (each write is a network round trip of a few ms): at ${slowPassMs} ms it would be ${usd(slowDuration)}, the total ${usd(slowTotal)} and the ratio below ${num(stepFunctions / slowTotal, 1)}×`,
  )
  row(
    '6',
    'SQS per million node steps',
    sqsCost === 0 ? '$0' : usd(sqsCost),
    'none: synchronous workflows created with run use no queue',
  )
  row(
    '6',
    'tickflow total per million node steps',
    usd(total),
    `plus a fixed ≈ ${usd(tickMonthly)} per month for the tick (every minute, 256 MB, ${num(emptyTick.figures.billedReadUnits, 1)} RCU per tick); storage and API Gateway not included`,
  )
  row(
    '6',
    'Step Functions Standard per million node steps',
    usd(stepFunctions),
    'one state transition per node step; the Lambda invocations its Task states would make are not added',
  )
  row('6', 'Step Functions ÷ tickflow', `${num(stepFunctions / total, 1)}×`, '')
  for (const [what, result, notes] of skipCostRows(skipCosts)) row('7', what, result, notes)
  for (const [what, result, notes] of longLivedRows(longLived)) row('9', what, result, notes)
})

function meterRequests(figures: MeterSnapshot): number {
  return [...figures.requests.values()].reduce((a, b) => a + b, 0)
}

function tickCell(figures: MeterSnapshot): string {
  const queries = figures.requests.get('QueryCommand') ?? 0
  return `${queries} queries, ${figures.scannedItems} index entries read, ${num(figures.readUnits, 1)} RCU reported, ${num(figures.billedReadUnits, 1)} RCU billed`
}

function javaVersion(): string {
  // `java -version` writes to stderr.
  const result = spawnSync('java', ['-version'], { encoding: 'utf8' })
  return `${result.stderr ?? ''}${result.stdout ?? ''}`.split('\n')[0]?.trim() || 'Java (version unknown)'
}

// ---- output ---------------------------------------------------------------------------------------------------

const cpuList = cpus()
const cell = (text: string) => text.replaceAll('|', '\\|')
const lines = [
  '## tickflow benchmark',
  '',
  `Machine: ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${cpuList.length} cores, ${num(totalmem() / 2 ** 30, 1)} GiB memory; Node ${process.version}; ${dynamoLabel}.`,
  `Run: ${new Date().toISOString()}, ${num((performance.now() - started) / 1000, 1)} s in all.`,
  '',
  `Caveat: DynamoDB Local on a shared ${cpuList.length}-core machine is far slower than DynamoDB, and here it shares the CPU with the engine; absolute figures say little about AWS. Only ratios measured in the same run are meaningful. Capacity units are what DynamoDB Local reports with \`ReturnConsumedCapacity: INDEXES\`; costs are estimates from them.`,
  '',
  ...(GRID_ONLY
    ? []
    : [
        '| # | measurement | result | how / notes |',
        '| --- | --- | --- | --- |',
        ...rows.map(
          ([section, what, result, notes]) => `| ${section} | ${cell(what)} | ${cell(result)} | ${cell(notes)} |`,
        ),
      ]),
  ...(hotPath
    ? [
        '',
        "### 8. The hot path: the engine's client CPU against the store's own cost, in the same run",
        '',
        hotPathTable(hotPath),
        '',
        itemBytesTable(hotPath.completedItem),
      ]
    : []),
  ...(grid.length
    ? [
        '',
        `### Size grid (current layout: one item per instance; linear synchronous workflows created with run, ${GRID_INSTANCES} instances per cell, \`maxInstanceBytes\` at its 360 KiB maximum; DynamoDB on-demand prices above, Lambda not included)`,
        '',
        ...gridTable(grid),
      ]
    : []),
]
process.stdout.write(`${lines.join('\n')}\n`)
