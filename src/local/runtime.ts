import { resolve } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../adapters/dynamodb/table.js'
import type { ApiSettings } from '../api/api-settings.js'
import { createApiHandler } from '../api/handler.js'
import { callbackTokens } from '../core/callback-token.js'
import { Engine, type EngineDeps } from '../core/engine.js'
import type { Logger, LogLevel } from '../core/ports.js'
import { createIdGenerator, mathRandom, systemClock } from '../system/defaults.js'
import { workflows } from '../workflows/index.js'
import { type DataDirLock, lockDataDir } from './data-lock.js'
import { defaultCacheDir, localDynamoDbClientConfig, startDynamoDbLocal } from './dynamodb-local.js'
import { type HttpFront, openHttpFront } from './http-front.js'
import { localCallbackSecret } from './local-callback-secret.js'
import { LocalEventBus } from './local-event-bus.js'
import { createLocalQueues, type LocalQueues, startBackgroundWork } from './queue-pump.js'

export { PortInUseError } from './http-front.js'

export interface LocalRuntimeOptions {
  /** 0 picks a free port. */
  port: number
  host: string
  /** Throwaway run: nothing is kept after Ctrl-C. */
  inMemory: boolean
  /** Where DynamoDB Local keeps its data between runs. */
  dataDir: string
  /** Use this DynamoDB instead of starting DynamoDB Local. */
  dynamodbEndpoint?: string
  tableName: string
  tickIntervalMs: number
  /** How often queues are drained and due wake-ups and schedules fired. */
  pumpIntervalMs: number
  logLevel: LogLevel
  /** CORS and the cursor secret, as the API function reads them (CORS_*, CURSOR_SECRET). */
  api?: ApiSettings
  /** Host names answered besides the loopback names and `host` (ALLOWED_HOSTS); others get 421. */
  allowedHosts?: readonly string[]
  /**
   * Callbacks and lifecycle events: the callback secret (default: made once and kept in the data directory), the
   * types whose node status changes are published too, and a webhook every event is forwarded to, signed.
   */
  events?: {
    callbackSecret?: string
    nodeEventTypes?: readonly string[] | boolean
    webhook?: { url: string; secret?: string }
  }
  /** Where the banner and the runtime's own lines go. */
  print: (line: string) => void
}

export interface LocalRuntime {
  url: string
  dynamodbEndpoint: string
  /** The Java process of DynamoDB Local, when this runtime started one. */
  dynamodbPid: number | undefined
  /** Where lifecycle events go (and can be watched). */
  events: LocalEventBus
  stop(): Promise<void>
}

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 }

/** One readable line per log entry: the local runtime is read by people, not by Logs Insights. */
const consoleLogger = (minLevel: LogLevel, print: (line: string) => void): Logger => ({
  log(level, message, fields) {
    if (LEVELS[level] < LEVELS[minLevel]) return
    const details = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''
    print(`${new Date().toISOString().slice(11, 23)} ${level.padEnd(5)} ${message}${details}`)
  },
})

/** What to undo when the runtime stops (or fails to start), undone in reverse order, each failure ignored. */
class Stops {
  readonly #stops: (() => Promise<void>)[] = []
  push(stop: () => Promise<void>): void {
    this.#stops.push(stop)
  }
  readonly run = async (): Promise<void> => {
    for (const stop of this.#stops.reverse()) await stop().catch(() => {})
  }
}

/** DynamoDB Local on the data directory (or in memory), unless the options name a DynamoDB to use. */
const startDynamoDb = async (
  options: LocalRuntimeOptions,
  dbPath: string,
  logger: Logger,
  stops: Stops,
): Promise<{ endpoint: string; pid: number | undefined }> => {
  if (options.dynamodbEndpoint) return { endpoint: options.dynamodbEndpoint, pid: undefined }
  const dynamo = await startDynamoDbLocal({
    ...(options.inMemory ? { inMemory: true } : { inMemory: false, dbPath }),
    cacheDir: defaultCacheDir(),
    log: (line) => logger.log('info', line),
  })
  stops.push(async () => dynamo.stop())
  return { endpoint: dynamo.endpoint, pid: dynamo.pid }
}

/** The table, created when missing; a table of another layout is refused with what to do locally. */
const openStore = async (options: LocalRuntimeOptions, endpoint: string): Promise<DynamoDbStore> => {
  const client = new DynamoDBClient(localDynamoDbClientConfig(endpoint))
  await ensureTable(client, options.tableName).catch((error: unknown) => {
    if ((error as { code?: string }).code !== 'TABLE_LAYOUT_MISMATCH') throw error
    throw new Error(
      `${(error as Error).message} Locally: start with another TABLE_NAME, or another TICKFLOW_DATA_DIR ` +
        `(the data in ${options.dataDir}/ stays as it is).`,
      { cause: error },
    )
  })
  return new DynamoDbStore({ tableName: options.tableName, client })
}

/** The engine of the local runtime, with every shipped workflow, its wake-ups on the in-process queue and scheduler. */
const createEngine = (
  store: DynamoDbStore,
  queues: LocalQueues,
  logger: Logger,
  events: Pick<EngineDeps, 'callbacks' | 'lifecycle'>,
): Engine => {
  const engine = new Engine({
    store,
    clock: systemClock,
    ids: createIdGenerator(systemClock),
    random: mathRandom,
    logger,
    queue: queues.run.queue,
    scheduler: queues.scheduler,
    recurring: queues.scheduler,
    ...events,
  })
  for (const workflow of workflows) engine.register(workflow)
  return engine
}

/**
 * The in-process event bus lifecycle events go to (watched by the dashboard and `tickflow events`, forwarded to a
 * webhook when one is set), and the callback tokens of the local secret, their URLs on this runtime.
 */
const startEvents = async (options: LocalRuntimeOptions, url: string, logger: Logger, stops: Stops) => {
  const bus = new LocalEventBus({
    logger,
    ...(options.events?.webhook ? { webhook: options.events.webhook } : {}),
  })
  stops.push(() => bus.stop())
  const secret = await localCallbackSecret({
    given: options.events?.callbackSecret,
    dataDir: resolve(options.dataDir),
    inMemory: options.inMemory || options.dynamodbEndpoint !== undefined,
  })
  const deps: Pick<EngineDeps, 'callbacks' | 'lifecycle'> = {
    callbacks: { tokens: callbackTokens([secret]), baseUrl: url },
    lifecycle: { publisher: bus, nodeEventTypes: options.events?.nodeEventTypes ?? false },
  }
  return { bus, deps }
}

/** Everything behind the HTTP front: the store, the engine, the queues and their pump, the tick, and the API. */
const wire = async (options: LocalRuntimeOptions, endpoint: string, front: HttpFront, logger: Logger, stops: Stops) => {
  const store = await openStore(options, endpoint)
  const now = () => systemClock.nowMs()
  const queues = createLocalQueues(now)
  const events = await startEvents(options, front.url, logger, stops)
  const engine = createEngine(store, queues, logger, events.deps)
  const { tickIntervalMs, pumpIntervalMs } = options
  stops.push(startBackgroundWork({ engine, store, logger, queues, now, tickIntervalMs, pumpIntervalMs }))
  front.serve(
    createApiHandler({
      engine,
      logger,
      clock: systemClock,
      sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
      waitPollMs: 200,
      ...options.api,
      local: { pairs: [queues.run, queues.events, queues.start], events: queues.events.queue, bus: events.bus },
    }),
  )
  // Stopped first: no request reaches an engine whose DynamoDB is going away.
  stops.push(front.close)
  return events.bus
}

/**
 * `npm start`: the same handlers as the Lambda functions, wired to DynamoDB Local, an HTTP server in place of API
 * Gateway, in-process queues in place of SQS (delivered as SQS-shaped batches), an in-process scheduler in place of
 * EventBridge Scheduler, and the tick on a timer.
 */
export const startLocalRuntime = async (options: LocalRuntimeOptions): Promise<LocalRuntime> => {
  const logger = consoleLogger(options.logLevel, options.print)
  const dbPath = resolve(resolve(options.dataDir), 'dynamodb')
  const stops = new Stops()
  let lock: DataDirLock | undefined
  if (!options.dynamodbEndpoint && !options.inMemory) {
    lock = await lockDataDir(options.dataDir, dbPath, (line) => logger.log('warn', line))
    stops.push(() => (lock as DataDirLock).release())
  }
  let front: HttpFront | undefined
  try {
    front = await openHttpFront(options.port, options.host, logger, {
      host: options.host,
      ...(options.allowedHosts ? { allowedHosts: options.allowedHosts } : {}),
      ...(options.api?.cors ? { allowedOrigins: options.api.cors.allowedOrigins } : {}),
    })
    const dynamo = await startDynamoDb(options, dbPath, logger, stops)
    if (!options.dynamodbEndpoint) await lock?.update({ dynamodbPid: dynamo.pid, url: front.url })
    const bus = await wire(options, dynamo.endpoint, front, logger, stops)
    options.print(banner(front.url, options, dynamo.endpoint))
    return { url: front.url, dynamodbEndpoint: dynamo.endpoint, dynamodbPid: dynamo.pid, events: bus, stop: stops.run }
  } catch (error) {
    await front?.close()
    await stops.run()
    throw error
  }
}

const banner = (url: string, options: LocalRuntimeOptions, dynamodbEndpoint: string): string => {
  const json = `-H 'content-type: application/json'`
  return [
    '',
    `tickflow is running at ${url}`,
    `  DynamoDB: ${dynamodbEndpoint} (${options.inMemory ? 'in memory: nothing is kept' : `data kept in ${options.dataDir}/`}), table '${options.tableName}'`,
    `  workflows: ${workflows.map((workflow) => workflow.config.id).join(', ')}`,
    `  tick every ${options.tickIntervalMs / 1000} s; queues and wake-ups in process`,
    `  dashboard: open ${url}/ in a browser`,
    `  lifecycle events: curl -s "${url}/_local/events?waitSeconds=20", or tickflow events --follow`,
    `  callbacks: a worker's ctx.callback() hands out ${url}/callbacks/TOKEN (tickflow callback TOKEN --success '{}')`,
    '',
    'Try:',
    `  curl -s -X POST ${url}/workflows ${json} -d '{"workflowType":"approval","context":{"requester":"ada","amount":120}}'`,
    `  curl -s -X POST ${url}/workflows/ID/nodes/review/events ${json} -d '{"eventTs":1,"content":{"decision":"approved"}}'`,
    `  curl -s "${url}/workflows/ID?wait=terminal&timeoutSeconds=20"`,
    `  curl -s ${url}/workflows/ID/graph`,
    `  curl -s -X POST ${url}/workflows ${json} -d '{"workflowType":"order","context":{"lines":[{"sku":"A-1","quantity":2,"price":9.5}]}}'`,
    `  curl -s -X POST ${url}/workflows ${json} -d '{"workflowType":"subscription-billing","context":{"customer":"c-1","amount":30,"declines":1}}'`,
    `  curl -s "${url}/workflows?workflowType=order"`,
    `  curl -s ${url}/openapi.json        # or open ${url}/docs in a browser`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n')
}
