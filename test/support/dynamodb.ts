import { randomBytes } from 'node:crypto'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { inject } from 'vitest'
import { localDynamoDbClientConfig } from '../../src/local/dynamodb-local.js'

export function dynamoEndpoint(): string {
  const endpoint = inject('dynamodbEndpoint')
  if (typeof endpoint !== 'string' || endpoint === '') {
    throw new Error(
      'no DynamoDB endpoint was provided: this test file ran without DynamoDB Local. Name what it needs in the file ' +
        '(createTestTable, newDynamoClient, dynamoEndpoint: see test/support/test-files.ts) so that vitest runs it ' +
        'in the project that starts DynamoDB Local.',
    )
  }
  return endpoint
}

export function newDynamoClient(): DynamoDBClient {
  return new DynamoDBClient(localDynamoDbClientConfig(dynamoEndpoint()))
}

const MAX_TABLE_NAME = 255

/** Test files share one server, so every table gets a name no other file or rerun can pick. */
export function uniqueTableName(prefix: string): string {
  const suffix = `-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
  const safePrefix = prefix.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, MAX_TABLE_NAME - suffix.length) || 't'
  return `${safePrefix}${suffix}`
}
