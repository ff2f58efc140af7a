import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { beforeAll, describe, expect, it } from 'vitest'
import { LocalScheduler } from '../../src/adapters/memory/local-scheduler.js'
import { createApiHandler } from '../../src/api/handler.js'
import { silentLogger } from '../../src/core/ports.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { apiEvent, lambdaContext, type RequestOptions } from '../support/api-events.js'
import { createTestTable, FakeClock, newTestEngine, type TestTable } from '../support/harness.js'

let table: TestTable

beforeAll(async () => {
  table = await createTestTable('api-schedules')
})

const setup = (withScheduler: boolean) => {
  const clock = new FakeClock()
  const scheduler = new LocalScheduler({ now: () => clock.nowMs() })
  const { engine } = newTestEngine(table, withScheduler ? { clock, recurring: scheduler } : { clock })
  engine.register(approvalWorkflow)
  const handler = createApiHandler({
    engine,
    logger: silentLogger,
    clock,
    sleep: async () => {},
    waitPollMs: 10,
  })
  const call = async (method: string, path: string, options: RequestOptions = {}) => {
    const response = (await handler(
      apiEvent(method, path, options),
      lambdaContext(),
    )) as APIGatewayProxyStructuredResultV2
    return { status: response.statusCode, body: response.body ? JSON.parse(String(response.body)) : undefined }
  }
  return { call, scheduler }
}

const nightly = {
  name: 'nightly',
  expression: 'cron(0 2 * * ? *)',
  workflowType: 'approval',
  context: { requester: 'cron' },
}

describe('recurring schedules over HTTP', () => {
  it('creates, lists, reads, replaces and deletes a schedule', async () => {
    const { call, scheduler } = setup(true)
    const created = await call('POST', '/schedules', { body: nightly })
    expect(created).toEqual({ status: 200, body: { ...nightly, enabled: true } })
    expect((await call('GET', '/schedules')).body.items.map((item: { name: string }) => item.name)).toEqual(['nightly'])
    expect((await call('GET', '/schedules/nightly')).body).toMatchObject({ ...nightly, enabled: true })
    await call('POST', '/schedules', { body: { ...nightly, enabled: false } })
    expect((await scheduler.get('nightly'))?.enabled).toBe(false)
    expect((await call('DELETE', '/schedules/nightly')).status).toBe(204)
    expect(await scheduler.list()).toEqual([])
  })

  it.each([
    ['an invalid cron expression', { ...nightly, expression: 'cron(99 * * * ? *)' }, 400, 'body.expression'],
    ['a rate with a bad unit', { ...nightly, expression: 'rate(5 fortnights)' }, 400, 'body.expression'],
    ['a name with a slash', { ...nightly, name: 'a/b' }, 400, 'body.name'],
    ['a context that is a list', { ...nightly, context: [1] }, 400, 'body.context'],
    ['an unknown workflow type', { ...nightly, workflowType: 'nope' }, 404, undefined],
  ])('rejects %s and stores nothing', async (_, body, status, field) => {
    const { call, scheduler } = setup(true)
    const response = await call('POST', '/schedules', { body })
    expect(response.status).toBe(status)
    if (field) expect(response.body.error.details.field).toBe(field)
    expect(await scheduler.list()).toEqual([])
  })

  it('shows when a schedule in a time zone fires next', async () => {
    const { call } = setup(true)
    await call('POST', '/schedules', { body: { ...nightly, timezone: 'America/New_York' } })
    const read = await call('GET', '/schedules/nightly')
    // The fake clock stands at 2026-01-01T12:00Z; 02:00 in New York (UTC-5) is 07:00 UTC the next day.
    expect(read.body).toMatchObject({
      nextFireAtMs: Date.parse('2026-01-02T07:00:00Z'),
      nextFireAt: '2026-01-02T07:00:00Z',
    })
    expect((await call('GET', '/schedules')).body.items[0].nextFireAt).toBe('2026-01-02T07:00:00Z')
  })

  it('answers 404 for an unknown schedule', async () => {
    const { call } = setup(true)
    expect((await call('GET', '/schedules/ghost')).body.error.code).toBe('SCHEDULE_NOT_FOUND')
    expect((await call('DELETE', '/schedules/ghost')).status).toBe(404)
  })

  it('answers 501 when the deployment has no scheduler', async () => {
    const { call } = setup(false)
    const response = await call('POST', '/schedules', { body: nightly })
    expect(response.status).toBe(501)
    expect(response.body.error.code).toBe('NOT_CONFIGURED')
  })
})
