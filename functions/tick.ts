import { createTickHandler } from '../src/handlers/tick-handler.js'
import { systemClock } from '../src/runtime/defaults.js'
import { buildRuntime } from './runtime.js'

const { store, queue, logger, metrics, observe } = buildRuntime()
if (!queue) throw new Error('invalid environment: RUN_QUEUE_URL: required')

/** EventBridge schedule (every minute): hands every due instance to the run queue. */
export const handler = observe(createTickHandler({ store, queue, clock: systemClock, logger, metrics }))
