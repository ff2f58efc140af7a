import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { Engine } from '../src/core/engine.js'
import type { Logger } from '../src/core/ports.js'
import { createEngine } from '../src/index.js'
import { jsonLogger } from '../src/runtime/defaults.js'
import { parseRuntimeEnv } from '../src/schemas/env.js'
import { workflows } from '../src/workflows/index.js'

export interface Runtime {
  engine: Engine
  logger: Logger
}

/** The composition root: built once per cold start and shared by every invocation of the function. */
export const buildRuntime = (env: Record<string, string | undefined> = process.env): Runtime => {
  const config = parseRuntimeEnv(env)
  const logger = jsonLogger(config.LOG_LEVEL)
  const client = new DynamoDBClient(config.DYNAMODB_ENDPOINT ? { endpoint: config.DYNAMODB_ENDPOINT } : {})
  const engine = createEngine({ tableName: config.TABLE_NAME, client, logger })
  for (const workflow of workflows) engine.register(workflow)
  return { engine, logger }
}
