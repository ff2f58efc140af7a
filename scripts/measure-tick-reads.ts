/**
 * Measures the read capacity one tick consumes with no instances, and with many idle ones (waiting for a later
 * time, or finished): the tick queries the due index only, so idle instances should cost it nothing. Then with
 * instances polled within the hour, which keep a place in the due index before their due time: each tick reads them
 * until they are due (README, "Running by itself").
 *
 *   npm run measure:tick           (IDLE=5000, DUE=100, POLLED=1000 by default; starts DynamoDB Local, or uses
 *                                   DYNAMODB_ENDPOINT)
 */
import '../src/local/quiet-sdk.js'
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { instanceKey } from '../src/adapters/dynamodb/keys.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { LocalQueue } from '../src/adapters/memory/local-queue.js'
import { silentLogger } from '../src/core/ports.js'
import { runTick } from '../src/core/tick.js'
import { systemClock } from '../src/system/defaults.js'
import { pool, syntheticInstance } from './bench-support.js'
import { CapacityMeter, withDynamoDb } from './capacity-meter.js'

const IDLE = Number(process.env.IDLE ?? 5000)
const DUE = Number(process.env.DUE ?? 100)
const POLLED = Number(process.env.POLLED ?? 1000)
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
  // Polled every minute: due in a minute, placed where an earlier poll left them (as a release keeps the place).
  await pool(POLLED, CONCURRENCY, async () => {
    const now = Date.now()
    const record = { ...syntheticInstance(now, 'waiting', 'measure'), dueAtMs: now + 60_000 }
    await store.createInstance(record)
    const key = instanceKey(record.id)
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: key.pk }, sk: { S: key.sk } },
        UpdateExpression: 'SET ds = :place',
        ExpressionAttributeValues: { ':place': { N: String(now - 60_000) } },
      }),
    )
  })
  const polled = await tick()

  console.log('tickflow tick cost: one tick over the 8-shard due index (DynamoDB Local)')
  console.log(line('empty table:', empty))
  console.log(line(`${IDLE} idle instances:`, idle))
  console.log(`  ratio idle/empty (billed RCU):    ${(idle.billed / empty.billed).toFixed(3)}`)
  console.log(line(`+ ${DUE} due instances:`, due))
  console.log(line(`+ ${POLLED} polled, due in a minute:`, polled))
  console.log(
    `  RCU per polled instance per tick: ${((polled.billed - due.billed) / Math.max(1, POLLED)).toFixed(4)} billed`,
  )
  console.log('  idle = half waiting for a later time, half finished; billed = at least 0.5 RCU per query (AWS rule)')
})
