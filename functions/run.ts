import { createRunHandler } from '../src/handlers/run-handler.js'
import { buildWiring } from './wiring.js'

const { engine, logger, metrics, observe, deadLetters, env } = buildWiring()
if (!deadLetters) throw new Error('invalid environment: DEAD_LETTER_QUEUE_URL: required')

/** SQS run queue: one due pass per message, partial batch responses. */
export const handler = observe(
  createRunHandler({ engine, logger, metrics, deadLetters, maxReceiveCount: env.MAX_RECEIVE_COUNT }),
)
