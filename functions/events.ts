import { createEventsHandler } from '../src/handlers/events-handler.js'
import { buildWiring } from './wiring.js'

const { engine, logger, metrics, observe, deadLetters, env } = buildWiring()
if (!deadLetters) throw new Error('invalid environment: DEAD_LETTER_QUEUE_URL: required')

/** SQS events queue: external events for nodes, partial batch responses. */
export const handler = observe(
  createEventsHandler({ engine, logger, metrics, deadLetters, maxReceiveCount: env.MAX_RECEIVE_COUNT }),
)
