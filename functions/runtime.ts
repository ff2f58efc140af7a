import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { SchedulerClient } from '@aws-sdk/client-scheduler'
import { SQSClient } from '@aws-sdk/client-sqs'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { EventBridgeRecurring } from '../src/adapters/scheduler/eventbridge-recurring.js'
import { EventBridgeWakeups } from '../src/adapters/scheduler/eventbridge-wakeups.js'
import { SqsDeadLetters } from '../src/adapters/sqs/sqs-dead-letters.js'
import { SqsRunQueue } from '../src/adapters/sqs/sqs-run-queue.js'
import type { DeadLetterSink, RunQueue } from '../src/core/dispatch-ports.js'
import { Engine } from '../src/core/engine.js'
import type { Logger } from '../src/core/ports.js'
import { createIdGenerator, jsonLogger, mathRandom, systemClock } from '../src/runtime/defaults.js'
import { parseRuntimeEnv, type RuntimeEnv } from '../src/schemas/env.js'
import { workflows } from '../src/workflows/index.js'

export interface Runtime {
  env: RuntimeEnv
  engine: Engine
  store: DynamoDbStore
  logger: Logger
  queue: RunQueue | undefined
  sqs: SQSClient
  /** The dead-letter queue of the queue this function consumes, when configured. */
  deadLetters: DeadLetterSink | undefined
}

/**
 * The composition root: built once per cold start and shared by every invocation of the function. Every function
 * gets the same engine; what is configured (queue, scheduler) decides which wake-ups it can make.
 */
export const buildRuntime = (rawEnv: Record<string, string | undefined> = process.env): Runtime => {
  const env = parseRuntimeEnv(rawEnv)
  const logger = jsonLogger(env.LOG_LEVEL)
  const dynamo = new DynamoDBClient(env.DYNAMODB_ENDPOINT ? { endpoint: env.DYNAMODB_ENDPOINT } : {})
  const sqs = new SQSClient(env.SQS_ENDPOINT ? { endpoint: env.SQS_ENDPOINT } : {})
  const store = new DynamoDbStore({ tableName: env.TABLE_NAME, client: dynamo })
  const queue = env.RUN_QUEUE_URL ? new SqsRunQueue({ client: sqs, queueUrl: env.RUN_QUEUE_URL }) : undefined
  const scheduling =
    env.SCHEDULER_GROUP && env.SCHEDULER_ROLE_ARN
      ? { client: new SchedulerClient({}), groupName: env.SCHEDULER_GROUP, roleArn: env.SCHEDULER_ROLE_ARN }
      : undefined
  const engine = new Engine({
    store,
    clock: systemClock,
    ids: createIdGenerator(systemClock),
    random: mathRandom,
    logger,
    retentionDays: env.RETENTION_DAYS,
    ...(queue ? { queue } : {}),
    ...(scheduling && env.RUN_QUEUE_ARN
      ? { scheduler: new EventBridgeWakeups({ ...scheduling, targetArn: env.RUN_QUEUE_ARN }) }
      : {}),
    ...(scheduling && env.START_QUEUE_ARN
      ? { recurring: new EventBridgeRecurring({ ...scheduling, targetArn: env.START_QUEUE_ARN }) }
      : {}),
  })
  for (const workflow of workflows) engine.register(workflow)
  const deadLetters = env.DEAD_LETTER_QUEUE_URL
    ? new SqsDeadLetters({ client: sqs, queueUrl: env.DEAD_LETTER_QUEUE_URL })
    : undefined
  return { env, engine, store, logger, queue, sqs, deadLetters }
}
