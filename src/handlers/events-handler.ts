import type { Engine } from '../core/engine.js'
import { type BatchOptions, sqsConsumer } from './sqs-batch.js'

/** The events-queue consumer: stores each external event (see QueueConsumer). */
export const createEventsHandler = (deps: { engine: Engine } & BatchOptions) => sqsConsumer('events', deps)
