import { setTimeout as sleep } from 'node:timers/promises'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { beforeAll, describe, expect, it } from 'vitest'
import { createApiHandler } from '../../src/api/handler.js'
import { silentLogger } from '../../src/core/ports.js'
import { systemClock } from '../../src/runtime/defaults.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { createTestTable, newTestEngine, type TestTable } from '../support/harness.js'

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
