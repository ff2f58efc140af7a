import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type KeySchemaElement,
  type TableDescription,
  type TimeToLiveSpecification,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb'
import { StoreError } from '../../core/errors.js'
import { INDEX, TTL_ATTRIBUTE } from './keys.js'

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
    { AttributeName: 'sk', AttributeType: 'S' },
    { AttributeName: 'wfType', AttributeType: 'S' },
    { AttributeName: 'businessId', AttributeType: 'S' },
    { AttributeName: 'createdKey', AttributeType: 'S' },
    { AttributeName: 'dueShard', AttributeType: 'S' },
    { AttributeName: 'ds', AttributeType: 'N' },
    { AttributeName: 'obShard', AttributeType: 'S' },
    { AttributeName: 'obAtMs', AttributeType: 'N' },
  ],
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: INDEX.byType,
      KeySchema: [
        { AttributeName: 'wfType', KeyType: 'HASH' },
        { AttributeName: 'createdKey', KeyType: 'RANGE' },
      ],
      Projection: {
        ProjectionType: 'INCLUDE',
        NonKeyAttributes: ['businessId', 'status', 'createdAtMs', 'parkCode'],
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
        NonKeyAttributes: ['wfType', 'status', 'createdAtMs', 'parkCode'],
      },
    },
    {
      IndexName: INDEX.due,
      KeySchema: [
        { AttributeName: 'dueShard', KeyType: 'HASH' },
        { AttributeName: 'ds', KeyType: 'RANGE' },
      ],
      // The tick reads the places up to now and keeps what is due by the due time itself.
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['dueAtMs'] },
    },
    {
      IndexName: INDEX.outbox,
      KeySchema: [
        { AttributeName: 'obShard', KeyType: 'HASH' },
        { AttributeName: 'obAtMs', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    },
  ],
})

/**
 * The table's time to live: finished instances carry `expiresAt` (epoch seconds, set by the engine when they become
 * terminal, `retentionDays` later) and DynamoDB deletes them after it. CreateTable cannot set it; `ensureTable`
 * applies it with UpdateTimeToLive, `infra/table.yml` declares it as TimeToLiveSpecification.
 */
export const timeToLiveSpecification: TimeToLiveSpecification = { AttributeName: TTL_ATTRIBUTE, Enabled: true }

/**
 * Refuses a table whose key schema is not tickflow's (a table made for the one-item layout has no sort key): every
 * request on it would fail, and a key schema cannot be changed in place.
 */
const checkKeySchema = (tableName: string, keys: readonly KeySchemaElement[] | undefined): void => {
  const expected = tableDefinition(tableName).KeySchema ?? []
  const same =
    keys?.length === expected.length &&
    expected.every((key, i) => keys[i]?.AttributeName === key.AttributeName && keys[i]?.KeyType === key.KeyType)
  if (same) return
  const found = (keys ?? []).map((key) => `${key.AttributeName} (${key.KeyType})`).join(', ') || 'none'
  throw new StoreError(
    `table '${tableName}' has the key schema ${found}, not tickflow's pk (HASH), sk (RANGE): it was made for an ` +
      'earlier table layout, which cannot be changed in place. Use a new table name (README, "Table layout").',
    false,
    { code: 'TABLE_LAYOUT_MISMATCH' },
  )
}

/**
 * Adds the indexes a table made by an earlier version lacks (the `outbox` index, say), one at a time as DynamoDB
 * requires, and waits until each is active: a local table kept between runs keeps working after an upgrade.
 */
const addMissingIndexes = async (
  client: DynamoDBClient,
  tableName: string,
  table: TableDescription | undefined,
): Promise<void> => {
  const definition = tableDefinition(tableName)
  const present = new Set((table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName))
  for (const index of definition.GlobalSecondaryIndexes ?? []) {
    if (present.has(index.IndexName)) continue
    const keys = new Set(index.KeySchema?.map((key) => key.AttributeName))
    await client.send(
      new UpdateTableCommand({
        TableName: tableName,
        AttributeDefinitions: definition.AttributeDefinitions?.filter((a) => keys.has(a.AttributeName)),
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      }),
    )
    for (let wait = 0; wait < 120; wait++) {
      const now = await client.send(new DescribeTableCommand({ TableName: tableName }))
      const status = now.Table?.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === index.IndexName)?.IndexStatus
      if (status === 'ACTIVE') break
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
}

/**
 * Creates the table if it does not exist, waits until it is active, and turns its time to live on. An existing
 * table with another key schema is refused with TABLE_LAYOUT_MISMATCH.
 */
export const ensureTable = async (client: DynamoDBClient, tableName: string): Promise<void> => {
  let exists = true
  let described: TableDescription | undefined
  try {
    described = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table
    checkKeySchema(tableName, described?.KeySchema)
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceNotFoundException') throw error
    exists = false
  }
  if (!exists) {
    try {
      await client.send(new CreateTableCommand(tableDefinition(tableName)))
    } catch (error) {
      if ((error as { name?: string }).name !== 'ResourceInUseException') throw error
    }
    await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: tableName })
  } else {
    await addMissingIndexes(client, tableName, described)
  }
  const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }))
  const status = ttl.TimeToLiveDescription?.TimeToLiveStatus
  if (status === 'ENABLED' || status === 'ENABLING') return
  try {
    await client.send(
      new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: timeToLiveSpecification }),
    )
  } catch (error) {
    // Another process turned it on meanwhile.
    if (!/already enabled/i.test((error as { message?: string }).message ?? '')) throw error
  }
}
