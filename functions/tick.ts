import { createTickHandler } from '../src/handlers/tick-handler.js'
import { systemClock } from '../src/system/defaults.js'
import { buildWiring } from './wiring.js'

const { store, queue, logger, metrics, observe } = buildWiring()
if (!queue) throw new Error('invalid environment: RUN_QUEUE_URL: required')

/** EventBridge schedule (every minute): hands every due instance to the run queue. */
export const handler = observe(createTickHandler({ store, queue, clock: systemClock, logger, metrics }))
