import { PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { sideItemWriterFence } from '../../src/adapters/dynamodb/item-codec.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { newDynamoClient } from '../support/dynamodb.js'
import { interceptRequests } from '../support/exchanges.js'
import { createTestTable, FakeClock, fixedRandom, sequentialIds, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * A lease holder that dies between a side item's put and the write that would refer to it leaves that item
 * unreferenced (README, "Items nobody refers to"). The acquisition that takes the lease over deletes it; a writer
 * without a lease (an event) may be between its put and its write at any moment, so its items are left alone; and an
 * acquisition of a lease that was released reads nothing more.
 */
let table: TestTable
const clients: ReturnType<typeof newDynamoClient>[] = []
const LEASE_MS = 60_000

beforeAll(async () => {
  table = await createTestTable('orphan-sweep')
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

class Killed extends Error {}

const TYPE = 'orphan-sweep'
const workflow = defineWorkflow({
  type: TYPE,
  nodes: {
    // Over the inline size: its output goes into an item of its own, put before the write that refers to it.
    big: { next: ['wait'], run: (ctx: NodeContext) => ctx.set('report', 'r'.repeat(3000)) },
    wait: {
      run: () => {},
      check: () => {
        throw new NotReadyError(3600)
      },
    },
  },
})

const engineOn = (client: ReturnType<typeof newDynamoClient>, clock: FakeClock, prefix: string) => {
  const engine = new Engine({
    store: new DynamoDbStore({ tableName: table.tableName, client }),
    clock,
    ids: sequentialIds(prefix),
    random: fixedRandom(0),
    defaultLeaseMs: LEASE_MS,
  })
  engine.register(workflow)
  return engine
}

const partitionKeys = async (instanceId: string): Promise<string[]> => {
  const page = await table.client.send(
    new QueryCommand({
      TableName: table.tableName,
      ConsistentRead: true,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: `I#${instanceId}` } },
    }),
  )
  return (page.Items ?? []).map((item) => String(item.sk?.S))
}

/** A client whose runner dies at the first write under the lease that follows a put of side items. */
const dyingClient = () => {
  const client = newDynamoClient()
  clients.push(client)
  const state = { put: [] as string[], dead: false }
  interceptRequests(client, async (exchange, send) => {
    if (state.dead) throw new Killed('the runner is dead')
    const input = exchange.input as {
      RequestItems?: Record<string, { PutRequest?: { Item: { sk: { S: string } } } }[]>
    }
    if (exchange.commandName === 'BatchWriteItemCommand' || exchange.commandName === 'PutItemCommand') {
      for (const requests of Object.values(input.RequestItems ?? {})) {
        for (const request of requests) if (request.PutRequest) state.put.push(request.PutRequest.Item.sk.S)
      }
      if (exchange.commandName === 'PutItemCommand')
        state.put.push(String((exchange.input as { Item: { sk: { S: string } } }).Item.sk.S))
    } else if (exchange.commandName === 'UpdateItemCommand' && state.put.length) {
      state.dead = true
      throw new Killed('killed before the write that refers to the items it put')
    }
    return send()
  })
  return { client, state }
}

describe('items a dead lease holder put and never referred to', () => {
  it('are deleted by the acquisition that takes its lease over, and only theirs', async () => {
    const clock = new FakeClock()
    const api = engineOn(table.client, clock, 'sweep-api')
    const { instanceId } = await api.create({ workflowType: TYPE, run: false })

    const dying = dyingClient()
    const died = await engineOn(dying.client, clock, 'sweep-dead')
      .runWorkflow(instanceId)
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect(died).toBeDefined()
    expect(dying.state.dead).toBe(true)
    const orphans = dying.state.put.filter((sk) => sk.startsWith('P#big#'))
    expect(orphans).toHaveLength(1)
    expect(sideItemWriterFence(orphans[0] as string)).toBeGreaterThan(0)
    expect(await partitionKeys(instanceId)).toEqual(expect.arrayContaining(orphans))
    // The lease the item is at is still held (its holder died mid-write): not yet a violation.
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    // A lease-less writer's item, put but not yet referred to (an event between its put and its write).
    const inFlight = 'E#wait#0000000000.1#inflight'
    await table.client.send(
      new PutItemCommand({
        TableName: table.tableName,
        Item: { pk: { S: `I#${instanceId}` }, sk: { S: inFlight }, c: { S: '{}' }, expiresAt: { N: '9999999999' } },
      }),
    )

    // The lease ends; the next pass takes it over.
    const held = await new DynamoDbStore({ tableName: table.tableName, client: table.client }).getInstance(instanceId)
    expect(held?.leaseOwner).toBeDefined()
    clock.advanceMs((held?.leaseUntilMs ?? 0) - clock.nowMs() + 1)
    const result = await api.runWorkflow(instanceId)
    expect(result.executed).toContain('big')
    const keys = await partitionKeys(instanceId)
    for (const orphan of orphans) expect(keys).not.toContain(orphan)
    expect(keys).toContain(inFlight)
    // What is left: the instance item, the new output's item, the event's item.
    expect(keys.filter((sk) => sk.startsWith('P#big#'))).toHaveLength(1)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId], crashes: true })).toEqual([])
    // Without the excuse for killed lease-less writers, the event's item is what the checker reports.
    const strict = await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })
    expect(strict.map((violation) => violation.kind)).toEqual(['unaccounted-item'])
    expect(strict[0]?.message).toContain(inFlight)
  })

  it('are not looked for when the lease was released: the acquisition reads nothing more', async () => {
    const clock = new FakeClock()
    const api = engineOn(table.client, clock, 'sweep-clean')
    const { instanceId } = await api.create({ workflowType: TYPE })
    const client = newDynamoClient()
    clients.push(client)
    const commands: string[] = []
    interceptRequests(client, async (exchange, send) => {
      commands.push(exchange.commandName)
      return send()
    })
    clock.advanceMs(3_600_000)
    await engineOn(client, clock, 'sweep-clean-2').runWorkflow(instanceId, { mode: 'due' })
    expect(commands.length).toBeGreaterThan(0)
    expect(commands).not.toContain('QueryCommand')
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
