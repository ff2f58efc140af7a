import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { SQSEvent } from 'aws-lambda'
import { DynamoDbStore } from '../adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../adapters/dynamodb/table.js'
import { LocalQueue } from '../adapters/memory/local-queue.js'
import { LocalScheduler } from '../adapters/memory/local-scheduler.js'
import type { ApiSettings } from '../api/api-settings.js'
import { createApiHandler } from '../api/handler.js'
import { callbackTokens } from '../core/callback-token.js'
import { Engine } from '../core/engine.js'
import type { Logger, LogLevel } from '../core/ports.js'
import { runTick } from '../core/tick.js'
import { createEventsHandler } from '../handlers/events-handler.js'
import { createRunHandler } from '../handlers/run-handler.js'
import { createStartHandler } from '../handlers/start-handler.js'
import { createIdGenerator, mathRandom, systemClock } from '../system/defaults.js'
import { workflows } from '../workflows/index.js'
import { type DataDirLock, lockDataDir } from './data-lock.js'
import { localDeadLetterRoutes } from './dead-letter-routes.js'
import { defaultCacheDir, localDynamoDbClientConfig, startDynamoDbLocal } from './dynamodb-local.js'
import { type ApiLambda, serveApi } from './http-server.js'
import { LocalEventBus } from './local-event-bus.js'
import { localCallbackSecret, localEventRoutes } from './local-events.js'

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

const MAX_RECEIVE_COUNT = 5

/** The HTTP port is taken: said before anything else starts, with what to do about it. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError'
  readonly code = 'PORT_IN_USE'
}

const portHint = (host: string, port: number): string =>
  [
    `PORT ${port} on ${host} is already in use (another tickflow, or another server).`,
    `Pick another port: PORT=${port === 3000 ? 3001 : 3000} npm start, or npm start -- --port 0 for a free one;`,
    `or find what listens there: lsof -i :${port} (macOS/Linux) or ss -ltnp 'sport = :${port}' (Linux).`,
  ].join('\n')

/** Binds the HTTP port first, so that a port in use is reported before DynamoDB Local is started for nothing. */
const listen = (server: Server, port: number, host: string): Promise<void> =>
  new Promise<void>((listening, failed) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') failed(new PortInUseError(portHint(host, port), { cause: error }))
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        failed(new Error(`HOST ${host} is not an address of this machine (${error.code})`, { cause: error }))
      } else failed(error)
    })
    server.listen(port, host, () => listening())
  })

/**
 * `npm start`: the same handlers as the Lambda functions, wired to DynamoDB Local, an HTTP server in place of API
 * Gateway, in-process queues in place of SQS (delivered as SQS-shaped batches), an in-process scheduler in place of
 * EventBridge Scheduler, and the tick on a timer.
 */
export const startLocalRuntime = async (options: LocalRuntimeOptions): Promise<LocalRuntime> => {
  const logger = consoleLogger(options.logLevel, options.print)
  const dataDir = resolve(options.dataDir)
  const dbPath = resolve(dataDir, 'dynamodb')
  const usesDataDir = !options.dynamodbEndpoint && !options.inMemory
  const stops: (() => Promise<void>)[] = []
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
  }
  let lock: DataDirLock | undefined
  if (usesDataDir) {
    lock = await lockDataDir(options.dataDir, dbPath, (line) => logger.log('warn', line))
    stops.push(() => (lock as DataDirLock).release())
  }
  // Until the engine is wired, requests are answered 503 rather than left hanging.
  let serve: ApiLambda | undefined
  const server = serveApi(
    async (event, context) =>
      serve
        ? serve(event, context)
        : {
            statusCode: 503,
            headers: { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' },
            body: JSON.stringify({ error: { code: 'STARTING', message: 'tickflow is starting', details: {} } }),
          },
    (error) => logger.log('error', 'request failed', { error: String(error) }),
  )
  let closing: Promise<void> | undefined
  const closeServer = () => {
    closing ??= new Promise<void>((closed) => {
      server.closeAllConnections()
      server.close(() => closed())
    })
    return closing
  }
  try {
    await listen(server, options.port, options.host)
  } catch (error) {
    await stopAll()
    throw error
  }
  const { port } = server.address() as AddressInfo
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`

  let dynamo: Awaited<ReturnType<typeof startDynamoDbLocal>> | undefined
  try {
    if (!options.dynamodbEndpoint) {
      dynamo = await startDynamoDbLocal({
        ...(options.inMemory ? { inMemory: true } : { inMemory: false, dbPath }),
        cacheDir: defaultCacheDir(),
        log: (line) => logger.log('info', line),
      })
      stops.push(async () => dynamo?.stop())
      await lock?.update({ dynamodbPid: dynamo.pid, url })
    }
  } catch (error) {
    await closeServer()
    await stopAll()
    throw error
  }
  const dynamodbEndpoint = options.dynamodbEndpoint ?? (dynamo?.endpoint as string)
  try {
    const client = new DynamoDBClient(localDynamoDbClientConfig(dynamodbEndpoint))
    await ensureTable(client, options.tableName).catch((error: unknown) => {
      if ((error as { code?: string }).code !== 'TABLE_LAYOUT_MISMATCH') throw error
      throw new Error(
        `${(error as Error).message} Locally: start with another TABLE_NAME, or another TICKFLOW_DATA_DIR ` +
          `(the data in ${options.dataDir}/ stays as it is).`,
        { cause: error },
      )
    })
    const store = new DynamoDbStore({ tableName: options.tableName, client })
    const now = () => systemClock.nowMs()
    const queue = (name: string) => {
      const deadLetter = new LocalQueue({ name: `${name}-dlq`, now })
      return {
        queue: new LocalQueue({ name, now, maxReceiveCount: MAX_RECEIVE_COUNT, deadLetter }),
        deadLetter,
      }
    }
    const run = queue('tickflow-run')
    const events = queue('tickflow-events')
    const start = queue('tickflow-start')
    const scheduler = new LocalScheduler({ now })
    const bus = new LocalEventBus({
      logger,
      ...(options.events?.webhook ? { webhook: options.events.webhook } : {}),
    })
    stops.push(() => bus.stop())
    const secret = await localCallbackSecret({
      given: options.events?.callbackSecret,
      dataDir,
      inMemory: options.inMemory || options.dynamodbEndpoint !== undefined,
    })
    const engine = new Engine({
      store,
      clock: systemClock,
      ids: createIdGenerator(systemClock),
      random: mathRandom,
      logger,
      queue: run.queue,
      scheduler,
      recurring: scheduler,
      callbacks: { tokens: callbackTokens([secret]), baseUrl: url },
      lifecycle: { publisher: bus, nodeEventTypes: options.events?.nodeEventTypes ?? false },
    })
    for (const workflow of workflows) engine.register(workflow)

    const lambdaContext = { getRemainingTimeInMillis: () => 60_000 }
    const consumers: [LocalQueue, (event: SQSEvent) => Promise<unknown>][] = [
      [
        run.queue,
        (event) =>
          createRunHandler({ engine, logger, deadLetters: run.deadLetter, maxReceiveCount: MAX_RECEIVE_COUNT })(
            event,
            lambdaContext,
          ),
      ],
      [
        events.queue,
        createEventsHandler({ engine, logger, deadLetters: events.deadLetter, maxReceiveCount: MAX_RECEIVE_COUNT }),
      ],
      [
        start.queue,
        createStartHandler({ engine, logger, deadLetters: start.deadLetter, maxReceiveCount: MAX_RECEIVE_COUNT }),
      ],
    ]

    // One pump at a time: it fires due wake-ups and schedules, then drains every queue.
    let pumping: Promise<void> | undefined
    const pump = async () => {
      const due = scheduler.due(now())
      if (due.runs.length) await run.queue.sendRuns(due.runs)
      for (const request of due.starts) start.queue.send(JSON.stringify({ v: 1, kind: 'start', ...request }))
      for (const [source, handler] of consumers) {
        for (let batch = 0; batch < 100; batch++) {
          const result = await source.deliver(handler as never)
          if (result.error)
            logger.log('error', 'queue handler failed', { queue: source.name, error: String(result.error) })
          if (result.delivered + result.failed === 0) break
        }
      }
    }
    const pumpTimer = setInterval(() => {
      pumping ??= pump()
        .catch((error: unknown) => logger.log('error', 'queue pump failed', { error: String(error) }))
        .finally(() => {
          pumping = undefined
        })
    }, options.pumpIntervalMs)
    const tickTimer = setInterval(() => {
      runTick(
        { store, queue: run.queue, clock: systemClock, logger },
        { remainingTimeMs: options.tickIntervalMs },
      ).catch((error: unknown) => logger.log('error', 'tick failed', { error: String(error) }))
    }, options.tickIntervalMs)
    stops.push(async () => {
      clearInterval(pumpTimer)
      clearInterval(tickTimer)
      await pumping
    })

    const api = createApiHandler({
      engine,
      logger,
      clock: systemClock,
      sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
      waitPollMs: 200,
      ...options.api,
    })
    const deadLetterRoutes = localDeadLetterRoutes([run, events, start])
    const eventRoutes = localEventRoutes(bus)
    serve = async (event, context) => {
      const local = deadLetterRoutes(event) ?? (await eventRoutes(event))
      if (local) return local
      // Local only: put a raw message on the events queue, the way an external system would with SQS.
      if (event.rawPath === '/_local/queues/events' && event.requestContext.http.method === 'POST') {
        const body = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8').toString('utf8')
        const messageId = events.queue.send(body)
        return {
          statusCode: 202,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ messageId }),
        }
      }
      return api(event, context)
    }
    // Stopped first: no request reaches an engine whose DynamoDB is going away.
    stops.push(closeServer)
    options.print(banner(url, options, dynamodbEndpoint))
    return { url, dynamodbEndpoint, dynamodbPid: dynamo?.pid, events: bus, stop: stopAll }
  } catch (error) {
    await closeServer()
    await stopAll()
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
