import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import { DynamoDbStore, sideItemExpiryDays } from './adapters/dynamodb/dynamodb-store.js'
import { Engine, type EngineDeps } from './core/engine.js'
import { createIdGenerator, mathRandom, systemClock } from './system/defaults.js'

export interface CreateEngineOptions extends Partial<Omit<EngineDeps, 'store'>> {
  tableName: string
  client: DynamoDBClient | DynamoDBDocumentClient
  /** How far ahead a due time may lie and keep an instance's place in the due index (default an hour; 0: none). */
  duePlaceHorizonMs?: number
  /** False sends the store's writes through the SDK always (default true: see DynamoDbStoreOptions.directWrites). */
  directWrites?: boolean
}

/** An engine on a DynamoDB table, with the system clock, ULID ids and Math.random unless others are given. */
export const createEngine = (options: CreateEngineOptions): Engine => {
  const { tableName, client, duePlaceHorizonMs, directWrites, ...rest } = options
  const clock = rest.clock ?? systemClock
  return new Engine({
    ...rest,
    store: new DynamoDbStore({
      tableName,
      client,
      sideItemExpiryDays: sideItemExpiryDays(rest.retentionDays),
      ...(duePlaceHorizonMs === undefined ? {} : { duePlaceHorizonMs }),
      ...(directWrites === undefined ? {} : { directWrites }),
    }),
    clock,
    ids: rest.ids ?? createIdGenerator(clock),
    random: rest.random ?? mathRandom,
  })
}

export { DynamoDbStore, translateAwsError } from './adapters/dynamodb/dynamodb-store.js'
export { ensureTable, tableDefinition, timeToLiveSpecification } from './adapters/dynamodb/table.js'
export { EventBridgePublisher } from './adapters/eventbridge/eventbridge-publisher.js'
export { LocalQueue } from './adapters/memory/local-queue.js'
export { LocalScheduler } from './adapters/memory/local-scheduler.js'
export { MemoryStore } from './adapters/memory/memory-store.js'
export { EventBridgeRecurring } from './adapters/scheduler/eventbridge-recurring.js'
export { EventBridgeWakeups } from './adapters/scheduler/eventbridge-wakeups.js'
export { SqsDeadLetters } from './adapters/sqs/sqs-dead-letters.js'
export { SqsRunQueue } from './adapters/sqs/sqs-run-queue.js'
export { createApiHandler } from './api/handler.js'
export { defineWorkflow, type NodeSpec, type WorkflowModule, type WorkflowSpec } from './core/builder.js'
export { type CallbackClaims, type CallbackTokens, callbackTokens } from './core/callback-token.js'
export {
  type CallbackCompletion,
  CallbackConflictError,
  CallbackGoneError,
  type CallbackHandle,
  CallbackNotFoundError,
  type CallbackOptions,
} from './core/callbacks.js'
export {
  END_NODE_ID,
  loadDefinition,
  type NodeDefinition,
  ROOT_NODE_ID,
  type WorkflowDefinition,
} from './core/definition.js'
export type {
  DeadLetterSink,
  RecurringSchedule,
  RecurringScheduler,
  RunQueue,
  RunRequest,
  StartRequest,
  WakeupScheduler,
} from './core/dispatch-ports.js'
export {
  type CreateResult,
  Engine,
  type EngineDeps,
  type InstanceDetail,
  type NodeDetail,
  type OperationResult,
} from './core/engine.js'
export * from './core/errors.js'
export type { JsonObject, JsonValue } from './core/json.js'
export {
  type EventPublisher,
  LIFECYCLE_EVENT_SOURCE,
  LifecycleDetailType,
  type LifecycleEvent,
  type LifecycleOptions,
} from './core/lifecycle-events.js'
export { CONTEXT_KEYS, type ExecutionInfo, NodeContext } from './core/node-context.js'
export { DEFAULT_LIMITS, type Limits, type PassMode, type PassResult } from './core/pass.js'
export type { Clock, IdGenerator, Logger, Random } from './core/ports.js'
export type { Worker, WorkerStep } from './core/registry.js'
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './core/retry-policy.js'
export type {
  DefinitionStore,
  DueIndex,
  InstanceCatalogue,
  InstanceLeaseStore,
  InstanceStore,
  InstanceSummary,
  ListPage,
} from './core/store.js'
export { runTick, type TickResult } from './core/tick.js'
export {
  BusinessCriticalError,
  BusinessWarningError,
  FailedWithContinueError,
  FailedWithFailedError,
  NotReadyError,
} from './core/worker-signals.js'
export { createEventsHandler } from './handlers/events-handler.js'
export { createRunHandler } from './handlers/run-handler.js'
export { createStartHandler } from './handlers/start-handler.js'
export { createTickHandler } from './handlers/tick-handler.js'
export { type EventMessage, encodeEventMessage } from './schemas/queue-messages.js'
export { InstanceStatus, NodeStatus } from './schemas/statuses.js'
export type { WorkflowConfig } from './schemas/workflow-config.js'
export { createIdGenerator, jsonLogger, systemClock, ulid } from './system/defaults.js'
// The example workflows, to run or to test as they are (README, "Testing your workflows").
export { approvalWorkflow } from './workflows/approval.js'
export { workflows as exampleWorkflows } from './workflows/index.js'
export { orderWorkflow } from './workflows/order.js'
export { paymentWorkflow } from './workflows/payment.js'
export { subscriptionBillingWorkflow } from './workflows/subscription.js'
