import type { QueueOperations } from '../core/consumer.js'
import { type BatchOptions, sqsConsumer } from './sqs-batch.js'

/** The run-queue consumer: one `due` pass per message (see QueueConsumer). */
export const createRunHandler = (deps: { engine: QueueOperations } & BatchOptions) => sqsConsumer('run', deps)
