import { createStartHandler } from '../src/handlers/start-handler.js'
import { buildWiring } from './wiring.js'

const { engine, logger, metrics, observe, deadLetters, env } = buildWiring()
if (!deadLetters) throw new Error('invalid environment: DEAD_LETTER_QUEUE_URL: required')

/** SQS start queue: instances started by recurring schedules, partial batch responses. */
export const handler = observe(
  createStartHandler({ engine, logger, metrics, deadLetters, maxReceiveCount: env.MAX_RECEIVE_COUNT }),
)
