import { setTimeout as sleep } from 'node:timers/promises'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { createApiHandler } from '../../src/api/handler.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { systemClock } from '../../src/system/defaults.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { newDynamoClient } from '../support/dynamodb.js'
import {
  createTestTable,
  FakeClock,
  fixedRandom,
  newTestEngine,
  sequentialIds,
  type TestTable,
} from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

let table: TestTable

beforeAll(async () => {
  table = await createTestTable('api-long-poll')
})

const setup = () => {
  const { engine } = newTestEngine(table, { clock: systemClock })
  engine.register(approvalWorkflow)
  const handler = createApiHandler({
    engine,
    logger: silentLogger,
    clock: systemClock,
    sleep: (ms) => sleep(ms),
    waitPollMs: 250,
  })
  const call = async (method: string, path: string, options = {}, remainingMs = 29_000) =>
    (await handler(apiEvent(method, path, options), lambdaContext(remainingMs))) as APIGatewayProxyStructuredResultV2
  return { engine, call }
}

describe('waiting for a result without a polling loop on the client', () => {
  it('returns within a second of the instance completing', async () => {
    const { call } = setup()
    const created = JSON.parse(String((await call('POST', '/workflows', { body: { workflowType: 'approval' } })).body))
    expect(created.status).toBe('running')
    const started = Date.now()
    const waiting = call('GET', `/workflows/${created.instanceId}`, {
      query: { wait: 'terminal', timeoutSeconds: '20' },
    }).then((response) => ({ response, at: Date.now() }))
    await sleep(1_200)
    await call('POST', `/workflows/${created.instanceId}/nodes/review/events`, {
      body: { eventTs: 1, content: { decision: 'approved' } },
    })
    const run = JSON.parse(String((await call('POST', `/workflows/${created.instanceId}/run`)).body))
    const completedAt = Date.now()
    expect(run.status).toBe('completed')
    const { response, at } = await waiting
    const lagMs = at - completedAt
    console.log(`long-poll: answered ${lagMs} ms after completion (${at - started} ms after the request)`)
    expect(response.statusCode).toBe(200)
    expect(JSON.parse(String(response.body)).status).toBe('completed')
    expect(lagMs).toBeLessThan(1_000)
  })

  it('answers with the instance as it is when the time is up', async () => {
    const { call } = setup()
    const created = JSON.parse(String((await call('POST', '/workflows', { body: { workflowType: 'approval' } })).body))
    const started = Date.now()
    const response = await call('GET', `/workflows/${created.instanceId}`, {
      query: { wait: 'terminal', timeoutSeconds: '1' },
    })
    const elapsed = Date.now() - started
    expect(JSON.parse(String(response.body)).status).toBe('running')
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(elapsed).toBeLessThan(5_000)
  })

  it('never waits longer than the invocation has left', async () => {
    const { call } = setup()
    const created = JSON.parse(String((await call('POST', '/workflows', { body: { workflowType: 'approval' } })).body))
    const started = Date.now()
    await call('GET', `/workflows/${created.instanceId}`, { query: { wait: 'terminal', timeoutSeconds: '20' } }, 2_000)
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it.each(['0', '26', 'soon'])('rejects timeoutSeconds=%s', async (timeoutSeconds) => {
    const { call } = setup()
    const response = await call('GET', '/workflows/any-id', { query: { wait: 'terminal', timeoutSeconds } })
    expect(response.statusCode).toBe(400)
    expect(JSON.parse(String(response.body)).error.details.field).toBe('query.timeoutSeconds')
  })
})

/** Every DynamoDB request an engine sends: its command, what it asked for, and the read units it consumed. */
interface Sent {
  command: string
  projection?: string
  index?: string
  consistent: boolean
  readUnits: number
}

const meteredEngine = () => {
  const client = newDynamoClient()
  const sent: Sent[] = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>
      input.ReturnConsumedCapacity = 'TOTAL'
      const result = await next(args)
      const consumed = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } }).ConsumedCapacity
      sent.push({
        command: String(context.commandName),
        ...(typeof input.ProjectionExpression === 'string' ? { projection: input.ProjectionExpression } : {}),
        ...(typeof input.IndexName === 'string' ? { index: input.IndexName } : {}),
        consistent: input.ConsistentRead === true,
        readUnits: consumed?.CapacityUnits ?? 0,
      })
      return result
    },
    { step: 'initialize', name: 'requestMeter' },
  )
  const clock = new FakeClock()
  const store = new DynamoDbStore({ tableName: table.tableName, client })
  const engine = new Engine({ store, clock, ids: sequentialIds('poll'), random: fixedRandom() })
  engine.register(approvalWorkflow)
  return { engine, clock, sent }
}

describe('a long-poll reads only what it needs', () => {
  it('polls the status with small reads and reads the whole instance once, at the end', async () => {
    const { engine, clock, sent } = meteredEngine()
    // A large input makes the whole item cost many read units: the polls must not pay for it.
    const bulk = 'x'.repeat(40_000)
    const { instanceId } = await engine.create({ workflowType: 'approval', context: { requester: 'ada', bulk } })
    const other = newTestEngine(table, { clock }).engine
    other.register(approvalWorkflow)
    let sleeps = 0
    const handler = createApiHandler({
      engine,
      logger: silentLogger,
      clock,
      sleep: async (ms) => {
        clock.advanceMs(ms)
        // After the fifth wait, the instance completes elsewhere.
        if (++sleeps === 5) {
          await other.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 1, content: { decision: 'approved' } })
          await other.runWorkflow(instanceId)
        }
      },
      waitPollMs: 250,
    })
    sent.length = 0
    const response = (await handler(
      apiEvent('GET', `/workflows/${instanceId}`, { query: { wait: 'terminal', timeoutSeconds: '20' } }),
      lambdaContext(29_000),
    )) as APIGatewayProxyStructuredResultV2
    expect(response.statusCode).toBe(200)
    const detail = JSON.parse(String(response.body))
    expect(detail.status).toBe('completed')
    expect(detail.context.bulk).toBe(bulk)
    expect(sleeps).toBe(5)

    const polls = sent.filter((request) => request.projection !== undefined)
    // The whole instance: one consistent Query of its partition (the instance item and the items it refers to).
    const whole = sent.filter(
      (request) =>
        request.projection === undefined && request.index === undefined && request.command !== 'UpdateItemCommand',
    )
    const units = (requests: Sent[]) => requests.reduce((sum, request) => sum + request.readUnits, 0)
    console.log(
      `long-poll over a ${bulk.length / 1000} KB instance: ${sent.length} requests ` +
        `(${polls.length} status reads, ${units(polls)} RCU; ${whole.length} whole read, ${units(whole)} RCU)`,
    )
    // One status read before each of the five waits and one after the last; then the instance once, consistently.
    expect(polls).toHaveLength(6)
    expect(polls.every((request) => !request.consistent)).toBe(true)
    expect(polls[0]?.command).toBe('GetItemCommand')
    // After the first, the status comes from the instance's index entry: a few bytes, whatever the item's size.
    expect(polls.slice(1).every((request) => request.command === 'QueryCommand' && request.index === 'byType')).toBe(
      true,
    )
    expect(polls.slice(1).every((request) => request.readUnits <= 0.5)).toBe(true)
    expect(whole).toHaveLength(1)
    expect(whole[0]?.consistent).toBe(true)
    expect(sent).toHaveLength(7)
    // The five waits together cost less than one read of the whole instance.
    expect(units(polls.slice(1))).toBeLessThan(units(whole))
  })

  it('answers 404 for an unknown instance after one small read', async () => {
    const { engine, clock, sent } = meteredEngine()
    const handler = createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 250 })
    const response = (await handler(
      apiEvent('GET', '/workflows/no-such-instance', { query: { wait: 'terminal', timeoutSeconds: '5' } }),
      lambdaContext(29_000),
    )) as APIGatewayProxyStructuredResultV2
    expect(response.statusCode).toBe(404)
    expect(sent.map((request) => request.projection !== undefined)).toEqual([true])
  })
})

// After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
afterEach(async () => {
  expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
})
