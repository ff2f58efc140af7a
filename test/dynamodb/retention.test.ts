import { DescribeTimeToLiveCommand, GetItemCommand } from '@aws-sdk/client-dynamodb'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { FailedWithFailedError } from '../../src/core/worker-signals.js'
import { createTestTable, newTestEngine, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

let table: TestTable

beforeAll(async () => {
  table = await createTestTable('retention')
})

const DAY_SECONDS = 86_400

const retained = defineWorkflow({
  type: 'retained',
  nodes: {
    only: {
      run: (ctx) => {
        if (ctx.getBoolean('workflow_context', 'fail') === true) throw new FailedWithFailedError('asked to fail')
        ctx.set('done', true)
      },
    },
  },
})

const expiresAt = async (instanceId: string): Promise<number | undefined> => {
  const result = await table.client.send(
    new GetItemCommand({
      TableName: table.tableName,
      Key: { pk: { S: instanceKey(instanceId).pk }, sk: { S: instanceKey(instanceId).sk } },
      ConsistentRead: true,
    }),
  )
  const value = result.Item?.expiresAt?.N
  return value === undefined ? undefined : Number(value)
}

describe('retention of finished instances', () => {
  it('has the table expire items by their expiresAt attribute', async () => {
    const ttl = await table.client.send(new DescribeTimeToLiveCommand({ TableName: table.tableName }))
    expect(ttl.TimeToLiveDescription).toMatchObject({ AttributeName: 'expiresAt', TimeToLiveStatus: 'ENABLED' })
  })

  it.each([
    ['completed', {}],
    ['failed', { fail: true }],
  ])('sets expiresAt 30 days on, in epoch seconds, in the write that makes an instance %s', async (status, context) => {
    const { engine, clock } = newTestEngine(table)
    engine.register(retained)
    const { instanceId, status: ended } = await engine.create({ workflowType: 'retained', context })
    expect(ended).toBe(status)
    expect(await expiresAt(instanceId)).toBe(Math.floor(clock.nowMs() / 1000) + 30 * DAY_SECONDS)
  })

  it('sets it on cancel, removes it on restart, and follows retentionDays', async () => {
    const { engine, clock } = newTestEngine(table, { retentionDays: 7 })
    engine.register(retained)
    const { instanceId } = await engine.create({ workflowType: 'retained', run: false })
    expect(await expiresAt(instanceId)).toBeUndefined()
    await engine.cancel(instanceId)
    expect(await expiresAt(instanceId)).toBe(Math.floor(clock.nowMs() / 1000) + 7 * DAY_SECONDS)

    await engine.restartInstance({ instanceId })

    expect(await expiresAt(instanceId)).toBeUndefined()
  })

  it('keeps finished instances with retentionDays 0', async () => {
    const { engine } = newTestEngine(table, { retentionDays: 0 })
    engine.register(retained)
    const { instanceId, status } = await engine.create({ workflowType: 'retained' })
    expect(status).toBe('completed')
    expect(await expiresAt(instanceId)).toBeUndefined()
  })
})

// After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
afterEach(async () => {
  expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
})
