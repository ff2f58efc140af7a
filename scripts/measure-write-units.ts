/**
 * Measures what one completed node costs in DynamoDB: requests and consumed capacity units per node of a
 * 10-node linear synchronous workflow with a small context, created with run (one explicit pass).
 *
 *   npm run measure:wcu            (starts DynamoDB Local itself, or uses DYNAMODB_ENDPOINT)
 */
import '../src/local/quiet-sdk.js'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { defineWorkflow } from '../src/core/builder.js'
import { Engine } from '../src/core/engine.js'
import { NotReadyError } from '../src/core/worker-signals.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { CapacityMeter, withDynamoDb } from './capacity-meter.js'

const NODES = 10
const INSTANCES = Number(process.env.INSTANCES ?? 50)

await withDynamoDb(async (config) => {
  const client = new DynamoDBClient(config)
  const meter = new CapacityMeter().attach(client)
  const tableName = `measure-${Date.now()}`
  await ensureTable(client, tableName)
  const engine = new Engine({
    store: new DynamoDbStore({ tableName, client }),
    clock: systemClock,
    ids: createIdGenerator(),
    random: mathRandom,
  })
  const nodes = Object.fromEntries(
    Array.from({ length: NODES }, (_, index) => [
      `step${index + 1}`,
      {
        ...(index + 1 < NODES ? { next: [`step${index + 2}`] } : {}),
        run: (ctx: { set: (path: string, value: number) => void }) => ctx.set('step', index + 1),
      },
    ]),
  )
  engine.register(defineWorkflow({ type: 'linear10', nodes } as never))

  // The first create also stores the definition snapshot: a one-time cost, measured apart.
  meter.reset()
  await engine.create({ workflowType: 'linear10', context: { orderId: 'A-1001', amount: 12.5 } })
  const firstRequests = meter.requestCount
  const firstUnits = meter.writeUnits

  meter.reset()
  for (let i = 0; i < INSTANCES; i++) {
    const result = await engine.create({ workflowType: 'linear10', context: { orderId: `A-${i}`, amount: 12.5 } })
    if (result.status !== 'completed') throw new Error(`instance ended ${result.status}`)
  }
  const completedNodes = INSTANCES * NODES
  const perNode = (value: number) => (value / completedNodes).toFixed(3)
  console.log(`tickflow write cost: ${INSTANCES} instances x ${NODES}-node linear synchronous workflow`)
  console.log(`  first instance (also stores the definition): ${firstRequests} requests, ${firstUnits} WCU`)
  console.log(`  requests per completed node:        ${perNode(meter.requestCount)}`)
  for (const [command, count] of meter.requests) console.log(`    ${command.padEnd(22)} ${perNode(count)}`)
  console.log(`  write capacity units per node:      ${perNode(meter.writeUnits)}`)
  console.log(`    table                             ${perNode(meter.tableWriteUnits)}`)
  for (const [name, units] of meter.indexWriteUnits) console.log(`    index ${name.padEnd(28)}${perNode(units)}`)
  console.log(`  read capacity units per node:       ${perNode(meter.readUnits)}`)
  console.log('  (simple-workflow writes each node row 4 times)')

  // The same without the history (engine option `history: false`): what the history's entries cost.
  const quiet = new Engine({
    store: new DynamoDbStore({ tableName, client }),
    clock: systemClock,
    ids: createIdGenerator(),
    random: mathRandom,
    history: false,
  })
  quiet.register(defineWorkflow({ type: 'linear10', nodes } as never))
  meter.reset()
  for (let i = 0; i < INSTANCES; i++) {
    const result = await quiet.create({ workflowType: 'linear10', context: { orderId: `B-${i}`, amount: 12.5 } })
    if (result.status !== 'completed') throw new Error(`instance ended ${result.status}`)
  }
  console.log('with history: false (no history kept)')
  console.log(`  requests per completed node:        ${perNode(meter.requestCount)}`)
  console.log(`  write capacity units per node:      ${perNode(meter.writeUnits)}`)
  console.log(`    table                             ${perNode(meter.tableWriteUnits)}`)

  // The same with lifecycle events out (an event bus; the publisher accepts everything): what the outbox costs.
  // Each status change (running, completed) travels in the write that makes it, the instance enters the sparse
  // outbox index with the first, and one more request removes what was published when the lease ends.
  const published = { count: 0 }
  const eventful = new Engine({
    store: new DynamoDbStore({ tableName, client }),
    clock: systemClock,
    ids: createIdGenerator(),
    random: mathRandom,
    lifecycle: {
      publisher: {
        publish: async (events) => {
          published.count += events.length
          return { failed: [] }
        },
      },
    },
  })
  eventful.register(defineWorkflow({ type: 'linear10', nodes } as never))
  meter.reset()
  for (let i = 0; i < INSTANCES; i++) {
    const result = await eventful.create({ workflowType: 'linear10', context: { orderId: `C-${i}`, amount: 12.5 } })
    if (result.status !== 'completed') throw new Error(`instance ended ${result.status}`)
  }
  const perInstance = (value: number) => (value / INSTANCES).toFixed(3)
  console.log(`with lifecycle events (${published.count / INSTANCES} events per instance, through the outbox)`)
  console.log(`  requests per completed node:        ${perNode(meter.requestCount)}`)
  for (const [command, count] of meter.requests) console.log(`    ${command.padEnd(22)} ${perNode(count)}`)
  console.log(`  write capacity units per node:      ${perNode(meter.writeUnits)}`)
  console.log(`    table                             ${perNode(meter.tableWriteUnits)}`)
  for (const [name, units] of meter.indexWriteUnits) console.log(`    index ${name.padEnd(28)}${perNode(units)}`)
  console.log(`  per instance: ${perInstance(meter.requestCount)} requests, ${perInstance(meter.writeUnits)} WCU`)

  // A waiting node polled by the tick's due passes: each takes the lease, stores the attempt, calls the check and
  // stores its outcome with the release. The attempt record costs a write here: no write precedes the call otherwise.
  let nowMs = Date.now()
  const pollEngine = new Engine({
    store: new DynamoDbStore({ tableName, client }),
    clock: { nowMs: () => nowMs },
    ids: createIdGenerator(),
    random: { next: () => 0 },
  })
  pollEngine.register(
    defineWorkflow({
      type: 'polled',
      nodes: {
        wait: {
          run: () => {},
          check: () => {
            throw new NotReadyError(60)
          },
        },
      },
    }),
  )
  const polled = await Promise.all(
    Array.from({ length: 10 }, (_, i) => pollEngine.create({ workflowType: 'polled', context: { n: i } })),
  )
  meter.reset()
  const POLLS = 5
  for (let round = 0; round < POLLS; round++) {
    nowMs += 61_000
    for (const { instanceId } of polled) {
      const pass = await pollEngine.runWorkflow(instanceId, { mode: 'due' })
      if (pass.executed.length !== 1)
        throw new Error(`the poll of ${instanceId} called ${pass.executed.length} workers`)
    }
  }
  const perPoll = (value: number) => (value / (POLLS * polled.length)).toFixed(3)
  console.log(`a polled check: ${polled.length} instances x ${POLLS} due passes that each call check once`)
  console.log(`  requests per poll:                  ${perPoll(meter.requestCount)}`)
  console.log(`  write capacity units per poll:      ${perPoll(meter.writeUnits)}`)
  console.log(`    table                             ${perPoll(meter.tableWriteUnits)}`)
  for (const [name, units] of meter.indexWriteUnits) console.log(`    index ${name.padEnd(28)}${perPoll(units)}`)
})
