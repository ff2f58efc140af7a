import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, describe, expect, it } from 'vitest'
import { DynamoDbStore, translateAwsError } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { ItemTooLargeError, StoreError } from '../../src/core/errors.js'
import type { InstanceStatus } from '../../src/core/statuses.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { allPages, describeStoreContract } from '../contract/store-contract.js'
import { createTestTable, type TestTable } from '../support/harness.js'
import { anInstance, T0 } from '../support/records.js'

const clients: DynamoDBClient[] = []

const freshTable = async (prefix: string): Promise<TestTable> => {
  const table = await createTestTable(prefix)
  clients.push(table.client)
  return table
}

afterAll(() => {
  for (const client of clients) client.destroy()
})

describeStoreContract('DynamoDbStore', async () => {
  const { tableName, client } = await freshTable('store-contract')
  return new DynamoDbStore({ tableName, client })
})

/** Instances of this file's own type, finished unless overridden. */
const aSparseInstance = (id: string, overrides: Partial<InstanceRecord>): InstanceRecord =>
  anInstance(id, { workflowType: 'sparse', status: 'completed', ...overrides })

describe('DynamoDbStore list paging when filters reject most items', () => {
  const TYPES = ['sparse', 'scarce']
  const SIZE = 40
  /** Every seventh instance failed; the rest completed. Creation times are mixed relative to ids. */
  const rows = Array.from({ length: SIZE }, (_, n) => ({
    id: `s${String(n).padStart(2, '0')}`,
    workflowType: TYPES[n % TYPES.length] as string,
    businessId: 'shared',
    status: (n % 7 === 3 ? 'failed' : 'completed') as InstanceStatus,
    createdAtMs: T0 + ((n * 11) % SIZE) * 1000,
  }))
  const failedAsc = rows
    .filter((row) => row.status === 'failed')
    .sort((a, b) => a.createdAtMs - b.createdAtMs)
    .map((row) => row.id)

  describe.each([
    { partitions: 'one workflow type', query: { workflowTypes: ['sparse'] }, types: ['sparse'] },
    { partitions: 'two workflow types', query: { workflowTypes: TYPES }, types: TYPES },
    { partitions: 'a business id', query: { workflowTypes: TYPES, businessId: 'shared' }, types: TYPES },
  ])('reading one index page per call, over $partitions', ({ query, types }) => {
    const expectedAsc = failedAsc.filter((id) => types.includes(rows.find((row) => row.id === id)?.workflowType ?? ''))

    it.each(['asc', 'desc'] as const)('returns every match exactly once in %s order', async (order) => {
      const { tableName, client } = await freshTable('store-sparse')
      const store = new DynamoDbStore({ tableName, client, maxPagesPerList: 1 })
      for (const row of rows) await store.createInstance(aSparseInstance(row.id, row))

      const pages = await allPages(store, { ...query, statuses: ['failed'], limit: 2, order })

      const ids = pages.flatMap((page) => page.items.map((item) => item.id))
      expect(expectedAsc.length).toBeGreaterThan(2)
      expect(ids).toEqual(order === 'asc' ? expectedAsc : [...expectedAsc].reverse())
      // Short pages that still carry a cursor show that the read stopped at the page budget, not at the limit.
      expect(pages.some((page) => page.items.length < 2 && page.cursor !== undefined)).toBe(true)
      expect(pages.every((page) => page.items.length <= 2)).toBe(true)
    })
  })
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
