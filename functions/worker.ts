import { createRunHandler } from '../src/handlers/run-handler.js'
import { buildRuntime } from './runtime.js'

const { engine, logger, metrics, observe, deadLetters, env } = buildRuntime()
if (!deadLetters) throw new Error('invalid environment: DEAD_LETTER_QUEUE_URL: required')

/** SQS run queue: one due pass per message, partial batch responses. */
export const handler = observe(
  createRunHandler({ engine, logger, metrics, deadLetters, maxReceiveCount: env.MAX_RECEIVE_COUNT }),
)
