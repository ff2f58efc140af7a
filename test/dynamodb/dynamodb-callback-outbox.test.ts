import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { describeCallbackOutboxContract } from '../contract/callback-outbox-contract.js'
import { createTestTable } from '../support/harness.js'

const clients: DynamoDBClient[] = []
afterAll(() => {
  for (const client of clients) client.destroy()
})

describeCallbackOutboxContract('DynamoDbStore', async () => {
  const { tableName, client } = await createTestTable('callback-outbox')
  clients.push(client)
  return new DynamoDbStore({ tableName, client })
})
