import { parseArgs } from 'node:util'
import { apiSettingsFromEnv } from '../api/api-settings.js'
import type { LogLevel } from '../core/ports.js'
import { parseApiEnv } from '../schemas/env.js'
import { startLocalRuntime } from './runtime.js'

/**
 * `npm start [-- --in-memory] [--port N]`: the local runtime. PORT, DYNAMODB_ENDPOINT, TICKFLOW_DATA_DIR,
 * TICK_INTERVAL_SECONDS and LOG_LEVEL configure it from the environment.
 */
const { values } = parseArgs({
  options: {
    'in-memory': { type: 'boolean', default: process.env.TICKFLOW_IN_MEMORY === 'true' },
    port: { type: 'string', default: process.env.PORT ?? '3000' },
  },
})

const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`invalid port: ${values.port}`)
  process.exit(2)
}
const logLevel = (process.env.LOG_LEVEL ?? 'info') as LogLevel
if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
  console.error(`invalid LOG_LEVEL: ${logLevel} (debug, info, warn or error)`)
  process.exit(2)
}

// CORS_* and CURSOR_SECRET, read as the API function reads them.
const api = (() => {
  try {
    return apiSettingsFromEnv(parseApiEnv(process.env))
  } catch (error) {
    console.error((error as Error).message)
    process.exit(2)
  }
})()

const print = (line: string) => process.stdout.write(`${line}\n`)

try {
  const runtime = await startLocalRuntime({
    port,
    host: process.env.HOST ?? '127.0.0.1',
    inMemory: values['in-memory'] === true,
    dataDir: process.env.TICKFLOW_DATA_DIR ?? '.data',
    ...(process.env.DYNAMODB_ENDPOINT ? { dynamodbEndpoint: process.env.DYNAMODB_ENDPOINT } : {}),
    tableName: 'tickflow',
    tickIntervalMs: Number(process.env.TICK_INTERVAL_SECONDS ?? 5) * 1000,
    pumpIntervalMs: 200,
    logLevel,
    api,
    print,
  })
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    print(`\n${signal}: stopping tickflow…`)
    await runtime.stop()
    print('stopped.')
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
} catch (error) {
  console.error(`tickflow could not start: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
