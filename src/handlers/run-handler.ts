import type { Engine } from '../core/engine.js'
import { type BatchOptions, sqsConsumer } from './sqs-batch.js'

/** The run-queue consumer: one `due` pass per message (see QueueConsumer). */
export const createRunHandler = (deps: { engine: Engine } & BatchOptions) => sqsConsumer('run', deps)
