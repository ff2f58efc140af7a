import './quiet-sdk.js'
import { apiSettingsFromEnv } from '../api/api-settings.js'
import { parseApiEnv } from '../schemas/env.js'
import { type LocalEventsEnv, localEventsEnvSchema } from '../schemas/local-events-settings.js'
import { startLocalRuntime } from './runtime.js'
import { parseLocalSettings, SettingsError, START_USAGE } from './settings.js'

/**
 * `npm start [-- --in-memory] [--port N]`: the local runtime. Every setting (see `START_USAGE` and the README) is
 * checked before anything starts: a wrong one exits with status 2 naming it.
 */
let settings: Exclude<ReturnType<typeof parseLocalSettings>, 'help'>
try {
  const parsed = parseLocalSettings(process.argv.slice(2), process.env)
  if (parsed === 'help') {
    process.stdout.write(`${START_USAGE}\n`)
    process.exit(0)
  }
  settings = parsed
} catch (error) {
  if (!(error instanceof SettingsError)) throw error
  process.stderr.write(`tickflow: ${error.message}\n\n${START_USAGE}\n`)
  process.exit(2)
}

// CORS_* and CURSOR_SECRET, read as the API function reads them.
let api: ReturnType<typeof apiSettingsFromEnv>
try {
  api = apiSettingsFromEnv(parseApiEnv(process.env))
} catch (error) {
  process.stderr.write(`tickflow: ${(error as Error).message}\n`)
  process.exit(2)
}

// Callbacks and lifecycle events: CALLBACK_SECRET, NODE_EVENT_TYPES, TICKFLOW_WEBHOOK_URL and _SECRET.
let events: LocalEventsEnv
{
  const parsed = localEventsEnvSchema.safeParse(process.env)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`)
    process.stderr.write(`tickflow: invalid settings:\n  ${problems.join('\n  ')}\n`)
    process.exit(2)
  }
  events = parsed.data
}

const print = (line: string) => process.stdout.write(`${line}\n`)

try {
  const runtime = await startLocalRuntime({
    port: settings.port,
    host: settings.host,
    inMemory: settings.inMemory,
    dataDir: settings.dataDir,
    ...(settings.dynamodbEndpoint === undefined ? {} : { dynamodbEndpoint: settings.dynamodbEndpoint }),
    tableName: settings.tableName,
    tickIntervalMs: settings.tickIntervalSeconds * 1000,
    pumpIntervalMs: 200,
    logLevel: settings.logLevel,
    api,
    allowedHosts: settings.allowedHosts,
    events: {
      ...(events.CALLBACK_SECRET ? { callbackSecret: events.CALLBACK_SECRET } : {}),
      nodeEventTypes:
        events.NODE_EVENT_TYPES === undefined
          ? false
          : events.NODE_EVENT_TYPES === '*'
            ? true
            : events.NODE_EVENT_TYPES.split(','),
      ...(events.TICKFLOW_WEBHOOK_URL
        ? {
            webhook: {
              url: events.TICKFLOW_WEBHOOK_URL,
              ...(events.TICKFLOW_WEBHOOK_SECRET ? { secret: events.TICKFLOW_WEBHOOK_SECRET } : {}),
            },
          }
        : {}),
    },
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
  process.stderr.write(`tickflow could not start: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
}
