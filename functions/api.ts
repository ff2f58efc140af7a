import { setTimeout as sleep } from 'node:timers/promises'
import { apiSettingsFromEnv } from '../src/api/api-settings.js'
import { createApiHandler } from '../src/api/handler.js'
import { parseApiEnv } from '../src/schemas/env.js'
import { systemClock } from '../src/system/defaults.js'
import { buildWiring } from './wiring.js'

const { engine, logger, observe } = buildWiring()
const settings = apiSettingsFromEnv(parseApiEnv(process.env))

/** API Gateway HTTP API (payload format 2.0) → every engine operation. */
export const handler = observe(
  createApiHandler({
    engine,
    logger,
    clock: systemClock,
    sleep: (ms) => sleep(ms),
    waitPollMs: 250,
    ...settings,
  }),
)
