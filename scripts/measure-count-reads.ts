/**
 * Measures what one count costs as instances pile up: read units and index entries read by a count of a type with
 * 1,000 and with MANY instances (12,000 by default), bounded (the engine's 10,000 entries) and unbounded (how counts
 * read before the bound: every entry of the type).
 *
 *   npm run measure:count          (MANY=12000 by default; starts DynamoDB Local, or uses DYNAMODB_ENDPOINT)
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { COUNT_READ_LIMIT } from '../src/core/engine.js'
import { pool, syntheticInstance } from './bench-support.js'
import { CapacityMeter, withDynamoDb } from './capacity-meter.js'

const FEW = 1_000
const MANY = Number(process.env.MANY ?? 12_000)
// Reads every entry, as counts did before the bound.
const UNBOUNDED = 2 ** 31 - 1

await withDynamoDb(async (config) => {
  const client = new DynamoDBClient(config)
  const meter = new CapacityMeter().attach(client)
  const tableName = `measure-count-${Date.now()}`
  await ensureTable(client, tableName)
  const store = new DynamoDbStore({ tableName, client })
  const count = async (maxRead: number) => {
    meter.reset()
    const result = await store.countInstances({ workflowTypes: ['measure'] }, maxRead)
    return `${result.count}${result.complete ? '' : '+'} (${meter.requests.get('QueryCommand') ?? 0} queries, ${meter.scannedItems} entries read, ${meter.billedReadUnits} RCU billed)`
  }
  const rows: string[] = []
  await pool(FEW, 16, () => store.createInstance(syntheticInstance(Date.now(), 'completed', 'measure')))
  rows.push(`  ${FEW} instances: bounded ${await count(COUNT_READ_LIMIT)}; unbounded ${await count(UNBOUNDED)}`)
  await pool(MANY - FEW, 16, () => store.createInstance(syntheticInstance(Date.now(), 'completed', 'measure')))
  rows.push(`  ${MANY} instances: bounded ${await count(COUNT_READ_LIMIT)}; unbounded ${await count(UNBOUNDED)}`)
  console.log(`tickflow count cost: one count of one workflow type (DynamoDB Local, bound ${COUNT_READ_LIMIT})`)
  for (const row of rows) console.log(row)
})
