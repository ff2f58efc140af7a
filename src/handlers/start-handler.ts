import type { QueueOperations } from '../core/consumer.js'
import { type BatchOptions, sqsConsumer } from './sqs-batch.js'

/** The start-queue consumer: creates (and runs) the instance a recurring schedule asked for, idempotently. */
export const createStartHandler = (deps: { engine: QueueOperations } & BatchOptions) => sqsConsumer('start', deps)
