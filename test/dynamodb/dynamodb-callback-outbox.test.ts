import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { describeCallbackOutboxContract } from '../contract/callback-outbox-contract.js'
import { createTestTable } from '../support/harness.js'

const clients: DynamoDBClient[] = []
afterAll(() => {
  for (const client of clients) client.destroy()
})

// One table for the file: the cases use instance ids of their own (a table costs DynamoDB Local a fraction of a
// second to create), and the outbox cases read only the shards of their own instances' ids.
let shared: Promise<DynamoDbStore> | undefined
describeCallbackOutboxContract('DynamoDbStore', () => {
  shared ??= createTestTable('callback-outbox').then(({ tableName, client }) => {
    clients.push(client)
    return new DynamoDbStore({ tableName, client })
  })
  return shared
})
