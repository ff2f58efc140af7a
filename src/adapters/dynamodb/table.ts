import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb'
import { INDEX } from './keys.js'

/**
 * The table tickflow needs. The same definition is declared in `infra/` for deployments; this builder serves
 * tests and the local runtime. Index projections hold only attributes that rarely change, because every change
 * of a projected attribute is billed as an extra index write.
 */
export const tableDefinition = (tableName: string): CreateTableCommandInput => ({
  TableName: tableName,
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'wfType', AttributeType: 'S' },
    { AttributeName: 'businessId', AttributeType: 'S' },
    { AttributeName: 'createdKey', AttributeType: 'S' },
    { AttributeName: 'dueShard', AttributeType: 'S' },
    { AttributeName: 'dueAtMs', AttributeType: 'N' },
  ],
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    {
      IndexName: INDEX.byType,
      KeySchema: [
        { AttributeName: 'wfType', KeyType: 'HASH' },
        { AttributeName: 'createdKey', KeyType: 'RANGE' },
      ],
      Projection: {
        ProjectionType: 'INCLUDE',
        NonKeyAttributes: ['id', 'businessId', 'status', 'createdAtMs', 'parkCode'],
      },
    },
    {
      IndexName: INDEX.byBusiness,
      KeySchema: [
        { AttributeName: 'businessId', KeyType: 'HASH' },
        { AttributeName: 'createdKey', KeyType: 'RANGE' },
      ],
      Projection: {
        ProjectionType: 'INCLUDE',
        NonKeyAttributes: ['id', 'wfType', 'status', 'createdAtMs', 'parkCode'],
      },
    },
    {
      IndexName: INDEX.due,
      KeySchema: [
        { AttributeName: 'dueShard', KeyType: 'HASH' },
        { AttributeName: 'dueAtMs', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    },
  ],
})

/** Creates the table if it does not exist and waits until it is active. */
export const ensureTable = async (client: DynamoDBClient, tableName: string): Promise<void> => {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }))
    return
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceNotFoundException') throw error
  }
  try {
    await client.send(new CreateTableCommand(tableDefinition(tableName)))
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceInUseException') throw error
  }
  await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: tableName })
}
