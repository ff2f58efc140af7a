/**
 * Measures the read capacity one tick consumes with no instances, and with many idle ones (waiting for a later
 * time, or finished): the tick queries the due index only, so idle instances should cost it nothing.
 *
 *   npm run measure:tick           (IDLE=5000 by default; starts DynamoDB Local, or uses DYNAMODB_ENDPOINT)
 */
import '../src/local/quiet-sdk.js'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { LocalQueue } from '../src/adapters/memory/local-queue.js'
import { silentLogger } from '../src/core/ports.js'
import { runTick } from '../src/core/tick.js'
import { systemClock } from '../src/system/defaults.js'
import { pool, syntheticInstance } from './bench-support.js'
import { CapacityMeter, withDynamoDb } from './capacity-meter.js'

const IDLE = Number(process.env.IDLE ?? 5000)
const DUE = Number(process.env.DUE ?? 100)
const CONCURRENCY = 16

const insert = (store: DynamoDbStore, count: number, kind: (i: number) => 'waiting' | 'completed' | 'due') =>
  pool(count, CONCURRENCY, (i) => store.createInstance(syntheticInstance(Date.now(), kind(i), 'measure')))

await withDynamoDb(async (config) => {
  const client = new DynamoDBClient(config)
  const meter = new CapacityMeter().attach(client)
  const tableName = `measure-tick-${Date.now()}`
  await ensureTable(client, tableName)
  const store = new DynamoDbStore({ tableName, client })
  const queue = new LocalQueue({ name: 'run' })
  const tick = async () => {
    meter.reset()
    const result = await runTick(
      { store, queue, clock: systemClock, logger: silentLogger },
      { remainingTimeMs: 60_000 },
    )
    return {
      result,
      reported: meter.readUnits,
      billed: meter.billedReadUnits,
      scanned: meter.scannedItems,
      queries: meter.requests.get('QueryCommand') ?? 0,
    }
  }
  const line = (label: string, figures: Awaited<ReturnType<typeof tick>>) =>
    `  ${label.padEnd(34)}${figures.queries} queries, ${figures.scanned} index entries read, ` +
    `${figures.reported} RCU reported, ${figures.billed} RCU billed; due ${figures.result.due}`

  const empty = await tick()
  await insert(store, IDLE, (i) => (i % 2 === 0 ? 'waiting' : 'completed'))
  const idle = await tick()
  await insert(store, DUE, () => 'due')
  const due = await tick()

  console.log('tickflow tick cost: one tick over the 8-shard due index (DynamoDB Local)')
  console.log(line('empty table:', empty))
  console.log(line(`${IDLE} idle instances:`, idle))
  console.log(`  ratio idle/empty (billed RCU):    ${(idle.billed / empty.billed).toFixed(3)}`)
  console.log(line(`+ ${DUE} due instances:`, due))
  console.log('  idle = half waiting for a later time, half finished; billed = at least 0.5 RCU per query (AWS rule)')
})
