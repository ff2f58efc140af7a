import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, describe, expect, it } from 'vitest'
import { DynamoDbStore, translateAwsError } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { ItemTooLargeError, StoreError } from '../../src/core/errors.js'
import { describeStoreContract } from '../contract/store-contract.js'
import { createTestTable, type TestTable } from '../support/harness.js'
import { aNode, anInstance, T0 } from '../support/records.js'

const clients: DynamoDBClient[] = []

const freshTable = async (prefix: string): Promise<TestTable> => {
  const table = await createTestTable(prefix)
  clients.push(table.client)
  return table
}

afterAll(() => {
  for (const client of clients) client.destroy()
})

describeStoreContract('DynamoDbStore', async (options) => {
  const { tableName, client } = await freshTable('store-contract')
  return new DynamoDbStore({ tableName, client, ...options })
})

describe('DynamoDbStore faults', () => {
  it('reports a malformed stored item as a StoreError with code CORRUPT_ITEM', async () => {
    const { tableName, client } = await freshTable('store-corrupt')
    const store = new DynamoDbStore({ tableName, client })
    const doc = DynamoDBDocumentClient.from(client)
    await doc.send(
      new PutCommand({ TableName: tableName, Item: { pk: 'I#broken', sk: '#', v: 2, id: 'broken', status: 'odd' } }),
    )

    const error = await store.getInstance('broken').catch((e: unknown) => e)

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'CORRUPT_ITEM', retryable: false })
  })

  it('reports a missing table as a StoreError with code TABLE_NOT_FOUND', async () => {
    const { client } = await freshTable('store-missing')
    const store = new DynamoDbStore({ tableName: 'tickflow-no-such-table', client })

    const error = await store.getInstance('any').catch((e: unknown) => e)

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'TABLE_NOT_FOUND', retryable: false })
    expect((error as StoreError).message).toContain('tickflow-no-such-table')
  })
})

describe('translateAwsError', () => {
  const awsError = (name: string, httpStatusCode = 400, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode }, ...extra })

  it.each([
    'ProvisionedThroughputExceededException',
    'ThrottlingException',
    'RequestLimitExceeded',
    'TransactionConflictException',
  ])('maps %s to a retryable StoreError', (name) => {
    const cause = awsError(name)

    const error = translateAwsError(cause, 'putEvent', 'tbl')

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ retryable: true, code: 'STORE_UNAVAILABLE', httpStatus: 503 })
    expect(error.cause).toBe(cause)
    expect(error.message).toContain('putEvent')
  })

  it.each([
    { source: 'an HTTP 500 status', error: awsError('InternalServerError', 500) },
    { source: 'an unknown 503', error: awsError('SomethingNew', 503) },
    { source: 'the SDK retryable marker', error: awsError('SomethingNew', 400, { $retryable: {} }) },
  ])('treats an error as retryable from $source', ({ error }) => {
    expect((translateAwsError(error, 'getInstance', 'tbl') as StoreError).retryable).toBe(true)
  })

  it.each(['ValidationException', 'AccessDeniedException', 'ItemCollectionSizeLimitExceededException'])(
    'maps %s to a StoreError that is not retryable',
    (name) => {
      const error = translateAwsError(awsError(name), 'createInstance', 'tbl')

      expect(error).toMatchObject({ retryable: false, code: 'STORE_ERROR', httpStatus: 500 })
    },
  )

  it.each([
    'Item size has exceeded the maximum allowed size',
    'Item size to update has exceeded the maximum allowed size',
    'Invalid UpdateExpression: Expression size has exceeded the maximum allowed size; expression size: 4115',
  ])('maps the size refusal "%s" to a 413 PAYLOAD_TOO_LARGE, never a StoreError', (message) => {
    const cause = Object.assign(awsError('ValidationException'), { message })

    const error = translateAwsError(cause, 'writeUnderLease', 'tbl')

    expect(error).toBeInstanceOf(ItemTooLargeError)
    expect(error).not.toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', httpStatus: 413, details: { refusal: message } })
    expect(error.cause).toBe(cause)
  })

  it('maps ResourceNotFoundException to TABLE_NOT_FOUND naming the table', () => {
    const error = translateAwsError(awsError('ResourceNotFoundException'), 'getInstance', 'orders-table')

    expect(error).toMatchObject({ retryable: false, code: 'TABLE_NOT_FOUND' })
    expect(error.message).toContain("'orders-table'")
  })

  it('copes with a thrown value that is not an error object', () => {
    expect(translateAwsError(undefined, 'getInstance', 'tbl')).toMatchObject({ retryable: false, code: 'STORE_ERROR' })
  })
})

describe('DynamoDbStore payloads in items of their own', () => {
  const payloadItems = async (table: TestTable, instanceId: string): Promise<string[]> => {
    const doc = DynamoDBDocumentClient.from(table.client)
    const result = await doc.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :payload)',
        ExpressionAttributeValues: { ':pk': `I#${instanceId}`, ':payload': 'P#' },
        ConsistentRead: true,
      }),
    )
    return (result.Items ?? []).map((item) => String(item.sk))
  }

  it('writes a payload over 1 KB once, keeps it while it is unchanged, and writes a new one when it changes', async () => {
    const table = await freshTable('store-payloads')
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    await store.createInstance(anInstance('p1'))
    const got = await store.acquireLease('p1', 'runner', T0, T0 + 60_000)
    if (got.kind !== 'acquired') throw new Error('expected the lease')
    const big = aNode({ status: 'pending', output: { blob: 'b'.repeat(5000) } })

    const first = await store.writeUnderLease(got.lease, { updatedAtMs: T0 + 1, nodes: { n: big } })
    const token = first.payloadRefs?.n
    await store.writeUnderLease(got.lease, {
      updatedAtMs: T0 + 2,
      nodes: { n: { ...big, waits: 1, ...(token ? { payloadRef: token } : {}) } },
    })
    const kept = await payloadItems(table, 'p1')
    await store.writeUnderLease(got.lease, {
      updatedAtMs: T0 + 3,
      nodes: { n: { ...big, waits: 2, output: { blob: 'c'.repeat(5000) }, ...(token ? { payloadRef: token } : {}) } },
    })

    expect(token).toMatch(/^P#n#/)
    expect(kept).toHaveLength(1)
    expect(await payloadItems(table, 'p1')).toHaveLength(2)
    const node = (await store.getInstance('p1'))?.nodes.n
    expect(node).toMatchObject({ waits: 2, output: { blob: 'c'.repeat(5000) } })
  })
})

describe('DynamoDbStore refusals', () => {
  it('refuse an acquisition from the instance item alone, without reading the items it refers to', async () => {
    const table = await freshTable('store-refusals')
    const sent: string[] = []
    table.client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(String(context.commandName))
        return next(args)
      },
      { step: 'initialize', name: 'countCommands' },
    )
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    await store.createInstance(
      anInstance('r1', { nodes: { big: aNode({ status: 'completed', output: { blob: 'b'.repeat(5000) } }) } }),
    )
    sent.length = 0

    const result = await store.acquireLease('r1', 'runner', T0, T0 + 60_000, { dueBy: T0 })

    expect(result.kind).toBe('not-due')
    expect(result.record).toMatchObject({ id: 'r1', status: 'running' })
    expect(result.record).not.toHaveProperty('nodes')
    expect(sent).toEqual(['UpdateItemCommand'])
  })
})
