import type { TestProject } from 'vitest/node'
import { startDynamoDbLocal } from '../../src/local/dynamodb-local.js'

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string
  }
}

/**
 * One DynamoDB Local for the whole run of the files that need one (the `dynamodb` project of vitest.config.ts): a
 * JVM start costs seconds, tables are cheap, so test files share the server and isolate themselves by table name.
 * DYNAMODB_ENDPOINT points the run at a server that is already up instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.DYNAMODB_ENDPOINT
  if (external !== undefined && external !== '') {
    project.provide('dynamodbEndpoint', external)
    return async () => {}
  }
  const dynamo = await startDynamoDbLocal({ log: (msg) => process.stderr.write(`[dynamodb-local] ${msg}\n`) })
  project.provide('dynamodbEndpoint', dynamo.endpoint)
  return () => dynamo.stop()
}
