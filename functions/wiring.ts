import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics'
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware'
import { Tracer } from '@aws-lambda-powertools/tracer'
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { EventBridgeClient } from '@aws-sdk/client-eventbridge'
import { SchedulerClient } from '@aws-sdk/client-scheduler'
import { SQSClient } from '@aws-sdk/client-sqs'
import middy from '@middy/core'
import type { Context } from 'aws-lambda'
import { DynamoDbStore, sideItemExpiryDays } from '../src/adapters/dynamodb/dynamodb-store.js'
import { EventBridgePublisher } from '../src/adapters/eventbridge/eventbridge-publisher.js'
import { powertoolsLogger } from '../src/adapters/powertools/powertools-logger.js'
import { metricsDiagnostics, powertoolsMetrics } from '../src/adapters/powertools/powertools-metrics.js'
import { EventBridgeRecurring } from '../src/adapters/scheduler/eventbridge-recurring.js'
import { EventBridgeWakeups } from '../src/adapters/scheduler/eventbridge-wakeups.js'
import { type CallbackSecretSource, callbackTokensFrom } from '../src/adapters/secrets/callback-secret.js'
import { SqsDeadLetters } from '../src/adapters/sqs/sqs-dead-letters.js'
import { SqsRunQueue } from '../src/adapters/sqs/sqs-run-queue.js'
import type { DeadLetterSink, RunQueue } from '../src/core/dispatch-ports.js'
import { Engine, type EngineDeps } from '../src/core/engine.js'
import type { Metrics } from '../src/core/metrics.js'
import type { Logger } from '../src/core/ports.js'
import { type LambdaEnv, parseLambdaEnv } from '../src/schemas/env.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { workflows } from '../src/workflows/index.js'

export interface Wiring {
  env: LambdaEnv
  engine: Engine
  store: DynamoDbStore
  logger: Logger
  metrics: Metrics
  /** Wraps a handler in middy with the Lambda context on every log line, EMF metrics and, with TRACING=on, X-Ray. */
  observe<E, R>(handler: (event: E, context: Context) => Promise<R>): (event: E, context: Context) => Promise<R>
  queue: RunQueue | undefined
  sqs: SQSClient
  /** The dead-letter queue of the queue this function consumes, when configured. */
  deadLetters: DeadLetterSink | undefined
}

/**
 * The composition root: built once per cold start and shared by every invocation of the function. Every function
 * gets the same engine; what is configured (queue, scheduler) decides which wake-ups it can make.
 */
export const buildWiring = (rawEnv: Record<string, string | undefined> = process.env): Wiring => {
  const env = parseLambdaEnv(rawEnv)
  const powertools = new PowertoolsLogger({
    serviceName: env.POWERTOOLS_SERVICE_NAME,
    logLevel: env.LOG_LEVEL.toUpperCase() as 'DEBUG' | 'INFO' | 'WARN' | 'ERROR',
  })
  const logger = powertoolsLogger(powertools)
  const emf = new PowertoolsMetrics({
    namespace: env.POWERTOOLS_METRICS_NAMESPACE,
    serviceName: env.POWERTOOLS_SERVICE_NAME,
    logger: metricsDiagnostics(powertools),
  })
  const metrics = powertoolsMetrics(emf)
  // One switch: the tracer is built (and patches nothing) only when TRACING=on.
  const tracer = env.TRACING === 'on' ? new Tracer({ serviceName: env.POWERTOOLS_SERVICE_NAME }) : undefined
  const observe: Wiring['observe'] = (handler) => {
    const wrapped = middy(handler)
      .use(injectLambdaContext(powertools, { resetKeys: true }))
      .use(logMetrics(emf, { captureColdStartMetric: true }))
    if (tracer) wrapped.use(captureLambdaHandler(tracer, { captureResponse: false }))
    return wrapped as unknown as typeof handler
  }
  const dynamo = new DynamoDBClient(env.DYNAMODB_ENDPOINT ? { endpoint: env.DYNAMODB_ENDPOINT } : {})
  const sqs = new SQSClient(env.SQS_ENDPOINT ? { endpoint: env.SQS_ENDPOINT } : {})
  const store = new DynamoDbStore({
    tableName: env.TABLE_NAME,
    client: dynamo,
    sideItemExpiryDays: sideItemExpiryDays(env.RETENTION_DAYS),
    duePlaceHorizonMs: env.DUE_PLACE_HORIZON_SECONDS * 1000,
  })
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
    metrics,
    retentionDays: env.RETENTION_DAYS,
    ...callbacksOf(env),
    ...lifecycleOf(env, sqs),
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
  return { env, engine, store, logger, metrics, observe, queue, sqs, deadLetters }
}

/** Where the callback secret is: the environment, Secrets Manager or SSM (the first one set). */
const callbackSecretOf = (env: LambdaEnv): CallbackSecretSource | undefined => {
  if (env.CALLBACK_SECRET) return { kind: 'value', value: env.CALLBACK_SECRET }
  if (env.CALLBACK_SECRET_ARN) return { kind: 'secrets-manager', secretId: env.CALLBACK_SECRET_ARN }
  if (env.CALLBACK_SECRET_PARAMETER) return { kind: 'ssm', name: env.CALLBACK_SECRET_PARAMETER }
  return undefined
}

/** Callback tokens from the deployment's secret (fetched on first use), and the API's URL for their links. */
const callbacksOf = (env: LambdaEnv): Pick<EngineDeps, 'callbacks'> => {
  const source = callbackSecretOf(env)
  if (!source) return {}
  const baseUrl = env.CALLBACK_BASE_URL
  return { callbacks: { tokens: callbackTokensFrom(source), ...(baseUrl ? { baseUrl } : {}) } }
}

/** Lifecycle events to the deployment's EventBridge bus, when it has one. */
const lifecycleOf = (env: LambdaEnv, sqs: SQSClient): Pick<EngineDeps, 'lifecycle'> => {
  if (!env.EVENT_BUS_NAME) return {}
  const types = env.NODE_EVENT_TYPES
  const deadLetterQueue = env.LIFECYCLE_DEAD_LETTER_QUEUE_URL
  return {
    lifecycle: {
      publisher: new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: env.EVENT_BUS_NAME }),
      nodeEventTypes: types === undefined ? false : types === '*' ? true : types.split(','),
      ...(deadLetterQueue ? { deadLetters: new SqsDeadLetters({ client: sqs, queueUrl: deadLetterQueue }) } : {}),
    },
  }
}
