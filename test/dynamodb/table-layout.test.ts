import { CreateTableCommand } from '@aws-sdk/client-dynamodb'
import { describe, expect, it } from 'vitest'
import { ensureTable } from '../../src/adapters/dynamodb/table.js'
import { newDynamoClient, uniqueTableName } from '../support/dynamodb.js'

describe('ensureTable on a table that already exists', () => {
  it('refuses a table of the one-item layout (no sort key) with a clear error instead of failing every request', async () => {
    const client = newDynamoClient()
    const tableName = uniqueTableName('old-layout')
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    )

    const error = await ensureTable(client, tableName).catch((caught: unknown) => caught)

    expect(error).toMatchObject({ name: 'StoreError', code: 'TABLE_LAYOUT_MISMATCH', retryable: false })
    expect(String((error as Error).message)).toContain(`table '${tableName}' has the key schema pk (HASH)`)
    client.destroy()
  })

  it('accepts a table it made itself, again', async () => {
    const client = newDynamoClient()
    const tableName = uniqueTableName('same-layout')
    await ensureTable(client, tableName)

    await expect(ensureTable(client, tableName)).resolves.toBeUndefined()
    client.destroy()
  })
})
