import { parseArgs } from 'node:util'
import { LOCAL_LOG_LEVELS, type LocalEnv, localEnvSchema } from '../schemas/local-settings.js'

/** Everything `npm start` is configured with, once parsed. */
export interface LocalSettings {
  port: number
  host: string
  tickIntervalSeconds: number
  logLevel: (typeof LOCAL_LOG_LEVELS)[number]
  dynamodbEndpoint: string | undefined
  tableName: string
  dataDir: string
  inMemory: boolean
  allowedHosts: string[]
}

export const START_USAGE = `usage: npm start [-- --in-memory] [--port N]

  --in-memory       keep nothing: DynamoDB Local in memory (TICKFLOW_IN_MEMORY=true)
  --port N          the HTTP API's port, 0 for a free one (PORT, default 3000)
  -h, --help        this text

Environment (an empty variable counts as unset):
  PORT                    HTTP port, 0-65535 (default 3000)
  HOST                    address to listen on (default 127.0.0.1)
  TICK_INTERVAL_SECONDS   seconds between ticks, 1-3600 (default 5)
  LOG_LEVEL               ${LOCAL_LOG_LEVELS.join(' | ')} (default info)
  DYNAMODB_ENDPOINT       use this DynamoDB instead of starting DynamoDB Local
  TABLE_NAME              the table (default tickflow; created if missing)
  TICKFLOW_DATA_DIR       where DynamoDB Local keeps its data (default .data)
  TICKFLOW_IN_MEMORY      true: the same as --in-memory (default false)
  ALLOWED_HOSTS           more host names to answer, comma-separated (always: 127.0.0.1, localhost, ::1, HOST)`

/** A setting that cannot be used: the message names the variable or option and what it must be. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError'
  readonly code = 'INVALID_SETTINGS'
  constructor(
    readonly problems: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`invalid settings:\n${problems.map((problem) => `  ${problem}`).join('\n')}`, options)
  }
}

const show = (value: string | undefined): string => (value === undefined ? 'unset' : JSON.stringify(value))

/**
 * Parses the command line and the environment. Returns `'help'` for `--help`; throws a SettingsError naming every
 * bad variable or option, and an unknown option.
 */
export const parseLocalSettings = (argv: readonly string[], env: NodeJS.ProcessEnv): LocalSettings | 'help' => {
  let values: { port?: string | undefined; 'in-memory'?: boolean | undefined; help?: boolean | undefined }
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        'in-memory': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values
  } catch (error) {
    throw new SettingsError([error instanceof Error ? error.message : String(error)], { cause: error })
  }
  if (values.help === true) return 'help'

  const input: Record<string, string> = {}
  for (const name of Object.keys(localEnvSchema.shape)) {
    const value = env[name]
    if (value !== undefined && value !== '') input[name] = value
  }
  const problems: string[] = []
  const parsed = localEnvSchema.safeParse(input)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0])
      problems.push(`${name}=${show(input[name])}: ${issue.message}`)
    }
  }
  let port: number | undefined
  if (values.port !== undefined) {
    const option = localEnvSchema.shape.PORT.safeParse(values.port)
    if (option.success) port = option.data
    else problems.push(`--port ${show(values.port)}: ${option.error.issues[0]?.message ?? 'invalid'}`)
  }
  if (problems.length > 0 || !parsed.success) throw new SettingsError(problems)
  const settings: LocalEnv = parsed.data
  return {
    port: port ?? settings.PORT,
    host: settings.HOST,
    tickIntervalSeconds: settings.TICK_INTERVAL_SECONDS,
    logLevel: settings.LOG_LEVEL,
    dynamodbEndpoint: settings.DYNAMODB_ENDPOINT,
    tableName: settings.TABLE_NAME,
    dataDir: settings.TICKFLOW_DATA_DIR,
    inMemory: values['in-memory'] === true || settings.TICKFLOW_IN_MEMORY,
    allowedHosts: settings.ALLOWED_HOSTS,
  }
}
