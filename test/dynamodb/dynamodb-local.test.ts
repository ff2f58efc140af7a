import { once } from 'node:events'
import { createServer } from 'node:net'
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteTableCommand,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDynamoDbLocal } from '../../src/local/dynamodb-local.js'
import { newDynamoClient, uniqueTableName } from '../support/dynamodb.js'

describe('DynamoDB Local started by globalSetup', () => {
  const client = newDynamoClient()
  const tableName = uniqueTableName('dynamodb-local-smoke')

  beforeAll(async () => {
    const created = await client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    )
    // DynamoDB Local creates tables ACTIVE at once, so tests can use a table without a waiter.
    expect(created.TableDescription?.TableStatus).toBe('ACTIVE')
  })

  afterAll(async () => {
    await client.send(new DeleteTableCommand({ TableName: tableName }))
    client.destroy()
  })

  it('honours conditional writes and reports the old item and consumed capacity', async () => {
    const item = { pk: { S: 'run#1' }, state: { S: 'pending' }, attempt: { N: '1' } }

    const put = await client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(pk)',
        ReturnConsumedCapacity: 'TOTAL',
      }),
    )
    // DynamoDB Local 1.25.1 reported { TableName, CapacityUnits: 1 } for this 1 KB-or-less put.
    expect(put.ConsumedCapacity).toEqual({ TableName: tableName, CapacityUnits: 1 })

    const got = await client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: item.pk },
        ConsistentRead: true,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    )
    expect(got.Item).toEqual(item)
    // A strongly consistent read of up to 4 KB: DynamoDB Local reported CapacityUnits: 1.
    expect(got.ConsumedCapacity).toEqual({ TableName: tableName, CapacityUnits: 1 })

    const failed = client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { ...item, state: { S: 'running' } },
        ConditionExpression: 'attribute_not_exists(pk)',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        ReturnConsumedCapacity: 'TOTAL',
      }),
    )
    const err = await failed.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConditionalCheckFailedException)
    // DynamoDB Local returned the stored item, unchanged, on the exception.
    expect((err as ConditionalCheckFailedException).Item).toEqual(item)

    const after = await client.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: item.pk }, ConsistentRead: true }),
    )
    expect(after.Item).toEqual(item)
  })
})

describe('startDynamoDbLocal', () => {
  it('explains how to install Java when it is missing', async () => {
    await expect(startDynamoDbLocal({ javaPath: '/nonexistent/java' })).rejects.toThrow(
      /Java 17\+ is required[\s\S]*sudo apt-get install -y openjdk-17-jre-headless[\s\S]*brew install openjdk@17/,
    )
  })

  it('refuses a port that is already taken instead of trusting whoever answers there', async () => {
    const squatter = createServer()
    squatter.listen(0, '127.0.0.1')
    await once(squatter, 'listening')
    const address = squatter.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    try {
      await expect(startDynamoDbLocal({ port: address.port })).rejects.toThrow(/already in use/)
    } finally {
      squatter.close()
    }
  })
})
