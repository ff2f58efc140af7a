import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, describe, expect, it } from 'vitest'
import { DynamoDbStore, translateAwsError } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { ITEM_SCHEMA_VERSION } from '../../src/adapters/dynamodb/item-codec.js'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { ItemTooLargeError, LeaseLostError, StoreError } from '../../src/core/errors.js'
import { describeStoreContract } from '../contract/store-contract.js'
import { drain, interceptRequests } from '../support/exchanges.js'
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
      new PutCommand({
        TableName: tableName,
        Item: { pk: 'I#broken', sk: '#', v: ITEM_SCHEMA_VERSION, id: 'broken', status: 'odd' },
      }),
    )

    const error = await store.getInstance('broken').catch((e: unknown) => e)

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'CORRUPT_ITEM', retryable: false })
  })

  it('refuses an item of another schema version by name, instead of misreading it', async () => {
    const { tableName, client } = await freshTable('store-schema')
    const store = new DynamoDbStore({ tableName, client })
    await DynamoDBDocumentClient.from(client).send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: 'I#old', sk: '#', v: 2, wfType: 'orders', status: 'running' },
      }),
    )

    const error = await store.getInstance('old').catch((e: unknown) => e)

    expect(error).toMatchObject({ code: 'ITEM_SCHEMA_MISMATCH', retryable: false })
    expect((error as StoreError).message).toContain('item schema 2')
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

    await got.writer.write({ updatedAtMs: T0 + 1, nodes: { n: big } })
    const first = await payloadItems(table, 'p1')
    await got.writer.write({ updatedAtMs: T0 + 2, nodes: { n: { ...big, waits: 1 } } })
    const kept = await payloadItems(table, 'p1')
    await got.writer.write({
      updatedAtMs: T0 + 3,
      nodes: { n: { ...big, waits: 2, output: { blob: 'c'.repeat(5000) } } },
    })

    expect(first).toHaveLength(1)
    expect(first[0]).toMatch(/^P#n#/)
    expect(kept).toEqual(first)
    // The payload it replaced is deleted right after: the partition holds what the instance refers to.
    const last = await payloadItems(table, 'p1')
    expect(last).toHaveLength(1)
    expect(last).not.toEqual(first)
    const node = (await store.getInstance('p1'))?.nodes.n
    expect(node).toMatchObject({ waits: 2, output: { blob: 'c'.repeat(5000) } })
  })

  it('keeps a payload that did not change in its item after the record was archived', async () => {
    const table = await freshTable('store-archived-payload')
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    const big = aNode({ status: 'completed', output: { blob: 'b'.repeat(5000) } })
    await store.createInstance(anInstance('p2', { nodes: { big } }))
    const got = await store.acquireLease('p2', 'runner', T0, T0 + 60_000)
    if (got.kind !== 'acquired') throw new Error('expected the lease')
    const before = await payloadItems(table, 'p2')

    await got.writer.write({ updatedAtMs: T0 + 1, nodes: { big: { ...big, updatedAtMs: T0 + 1 } } })

    expect(before).toHaveLength(1)
    expect(await payloadItems(table, 'p2')).toEqual(before)
  })
})

describe('the DynamoDB layout, as a lease writer lays changes out', () => {
  const instanceItem = async (table: TestTable, instanceId: string): Promise<Record<string, unknown>> => {
    const doc = DynamoDBDocumentClient.from(table.client)
    const result = await doc.send(new GetCommand({ TableName: table.tableName, Key: instanceKey(instanceId) }))
    return result.Item ?? {}
  }

  it('moves quiet records out of the instance item without changing what it holds; a change brings one back', async () => {
    const table = await freshTable('layout-archive')
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    // Two inline outputs of about 950 bytes: settled together, they take more than ARCHIVE_AT_BYTES.
    const a = aNode({ status: 'completed', output: { a: 'x'.repeat(950) } })
    const b = aNode({ status: 'completed', output: { b: 'y'.repeat(950) } })
    // An attempt in flight, and a callback wait open, stay: writes without the lease look at them in the item.
    const c = aNode({ status: 'running', attemptStarted: { step: 'run', atMs: T0, fence: 1 } })
    const d = aNode({
      status: 'running',
      calls: 1,
      callback: { call: 1, fence: 1, requestedAtMs: T0, timeoutAtMs: T0 + 60_000 },
      nextAttemptAtMs: T0 + 60_000,
    })
    // Waiting with nothing in flight: nothing but a pass changes it, so it goes with the settled ones.
    const w = aNode({ status: 'pending', nextAttemptAtMs: T0 + 3_600_000 })
    await store.createInstance(anInstance('i1', { nodes: { c, d, w } }))
    const got = await store.acquireLease('i1', 'runner', T0, T0 + 60_000)
    if (got.kind !== 'acquired') throw new Error('expected the lease')

    // Settled records taking ARCHIVE_AT_BYTES together leave the instance item in the write that settles them.
    await got.writer.write({ updatedAtMs: T0 + 1, nodes: { a, b } })
    const archived = await store.getInstance('i1')
    const archivedItem = await instanceItem(table, 'i1')
    const a2 = aNode({ status: 'running', attempt: 2, updatedAtMs: T0 + 2 })
    await got.writer.write({ updatedAtMs: T0 + 2, nodes: { a: a2 } })
    const restarted = await store.getInstance('i1')
    const restartedItem = await instanceItem(table, 'i1')

    expect(archived?.nodes).toStrictEqual({ a, b, c, d, w })
    expect(Object.keys(archivedItem.n as object).sort()).toEqual(['c', 'd'])
    expect(archivedItem.arc).toHaveLength(1)
    expect(restarted?.nodes).toStrictEqual({ a: a2, b, c, d, w })
    expect(Object.keys(restartedItem.n as object).sort()).toEqual(['a', 'c', 'd'])
  })

  it('answers a write the SDK sent again after it landed as landed, and applies it once', async () => {
    const table = await freshTable('layout-retry')
    let repeatNext = false
    interceptRequests(table.client, async (exchange, send) => {
      const answer = await send()
      if (repeatNext && exchange.commandName === 'UpdateItemCommand') {
        repeatNext = false
        // The answer was lost: the very same request is sent again.
        await drain(answer)
        return send()
      }
      return answer
    })
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    await store.createInstance(anInstance('i1', { storedBytes: 1000 }))
    const got = await store.acquireLease('i1', 'runner', T0, T0 + 60_000)
    if (got.kind !== 'acquired') throw new Error('expected the lease')

    repeatNext = true
    await got.writer.write({
      updatedAtMs: T0 + 1,
      nodes: { a: aNode({ status: 'completed' }) },
      bytesDelta: 50,
      bytesBase: 1000,
    })
    await got.writer.write({ updatedAtMs: T0 + 2, bytesDelta: 5 })

    const after = await store.getInstance('i1')
    expect(repeatNext).toBe(false)
    expect(after?.storedBytes).toBe(1055)
    expect((await instanceItem(table, 'i1')).ws).toBe(2)
  })

  it('refuses a write whose instance is gone (its time to live deleted it) with LeaseLostError', async () => {
    const table = await freshTable('layout-gone')
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    await store.createInstance(anInstance('ghost'))
    const got = await store.acquireLease('ghost', 'runner', T0, T0 + 60_000)
    if (got.kind !== 'acquired') throw new Error('expected the lease')
    await DynamoDBDocumentClient.from(table.client).send(
      new DeleteCommand({ TableName: table.tableName, Key: instanceKey('ghost') }),
    )

    await expect(got.writer.write({ updatedAtMs: T0 })).rejects.toBeInstanceOf(LeaseLostError)
    expect(await store.getInstance('ghost')).toBeUndefined()
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

describe('DynamoDbStore with packed node records', () => {
  it('refuses an event for a completed or skipped node stored as one string, and changes nothing', async () => {
    const { tableName, client } = await freshTable('store-packed')
    const store = new DynamoDbStore({ tableName, client })
    await store.createInstance(
      anInstance('packed', {
        nodes: {
          done: aNode({ status: 'completed', calls: 1, updatedAtMs: T0 + 5, output: { ok: true } }),
          skip: aNode({ status: 'skipped', skipReason: 'condition_false' }),
          open: aNode({ status: 'pending' }),
        },
      }),
    )
    const doc = DynamoDBDocumentClient.from(client)
    const raw = async () =>
      (await doc.send(new GetCommand({ TableName: tableName, Key: instanceKey('packed'), ConsistentRead: true })))
        .Item as Record<string, unknown>
    const before = await raw()
    // What the condition of the event write sees: strings, not maps with a status.
    expect(before.n).toMatchObject({ done: 'c|0|5|{"ok":true}', skip: 'cf|0' })

    // The store's own write, without the engine's check before it: the condition alone must refuse.
    for (const nodeId of ['done', 'skip']) {
      const error = await store
        .putEvent('packed', nodeId, { eventTs: 1, content: {}, receivedAtMs: T0 }, T0)
        .then(() => undefined)
        .catch((e: unknown) => e)
      expect(error, nodeId).toMatchObject({ name: 'IllegalStateError' })
    }
    expect(await raw()).toStrictEqual(before)
    await store.putEvent('packed', 'open', { eventTs: 1, content: { go: 1 }, receivedAtMs: T0 }, T0)
    expect((await store.getInstance('packed'))?.events.open?.content).toEqual({ go: 1 })
  })
})

describe('DynamoDbStore when DynamoDB keeps a batch unprocessed', () => {
  it('reports side items it could not write as a retryable StoreError, like any throttled request', async () => {
    const { tableName, client } = await freshTable('store-throttled')
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args)
        if (context.commandName === 'BatchWriteItemCommand') {
          // Nothing written, everything handed back: what a throttled table does to a batch.
          const input = args.input as { RequestItems: Record<string, unknown[]> }
          ;(result.output as { UnprocessedItems?: unknown }).UnprocessedItems = input.RequestItems
        }
        return result
      },
      { step: 'initialize', name: 'alwaysUnprocessed' },
    )
    const store = new DynamoDbStore({ tableName, client })
    const big = { blob: 'x'.repeat(4096) }

    const error = await store
      .createInstance(
        anInstance('throttled', {
          nodes: {
            a: aNode({ status: 'completed', calls: 1, output: big }),
            b: aNode({ status: 'completed', calls: 1, output: big }),
          },
        }),
      )
      .catch((e: unknown) => e)

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ retryable: true })
    expect(await store.getInstance('throttled')).toBeUndefined()
  }, 30_000)
})
