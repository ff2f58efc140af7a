import type { QueueOperations } from '../core/consumer.js'
import { type BatchOptions, sqsConsumer } from './sqs-batch.js'

/** The events-queue consumer: stores each external event (see QueueConsumer). */
export const createEventsHandler = (deps: { engine: QueueOperations } & BatchOptions) => sqsConsumer('events', deps)
