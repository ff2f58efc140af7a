import { DeleteItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import fc from 'fast-check'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalScheduler } from '../../src/adapters/memory/local-scheduler.js'
import { createApiHandler } from '../../src/api/handler.js'
import type { Logger, LogLevel } from '../../src/core/ports.js'
import { workflows } from '../../src/workflows/index.js'
import { lambdaContext } from '../support/api-events.js'
import { createTestTable, FakeClock, newTestEngine, type TestTable } from '../support/harness.js'
import { invariantViolations, itemViolations } from '../support/invariant.js'
import { type Json, Obj, render, utf8Length } from './json-text.js'
import {
  ALL_ROUTE_KEYS,
  anyContentType,
  anyMethod,
  anyPath,
  anyQuery,
  BODIES,
  clean,
  createBody,
  deepValue,
  FUZZ_LIMITS,
  FUZZ_MAX_BODY_BYTES,
  type FuzzRequest,
  junkString,
  malformedBody,
  pollutedObject,
  ROUTES,
  type RouteKey,
  routePath,
  routeRequest,
  SEEDS,
  specialKey,
  strayBody,
  toEvent,
  WRITE_ROUTES,
} from './requests.js'

/**
 * Property-based fuzzing of the HTTP API: thousands of generated requests (methods, paths, queries, bodies, content
 * types, encodings) go through the real Lambda handler with an engine on DynamoDB Local, and every answer must keep
 * the API's contract:
 * - never a 5xx (no store outage is injected, so none is legitimate);
 * - every non-2xx is exactly `{"error": {"code", "message", "details"}}`, and a 400 VALIDATION_ERROR/MALFORMED_JSON,
 *   413 or 415 names the part of the request at fault in `details.field`;
 * - a rejected request (4xx), and any GET, leaves the table exactly as it was (consistent Scan before and after);
 * - nothing reaches Object.prototype.
 *
 * The engine runs on a fresh table with the example workflows and a few seeded instances (running with an approval
 * pending, completed, failed, canceled, init, retrying, locked by another runner), with small limits so that requests
 * around them are cheap. Requests run one at a time; the Scan after each one is the "before" of the next.
 *
 * FUZZ_SEED=<n> replays a run (the seed is printed at the end, fast-check prints each property's seed and path on a
 * failure); FUZZ_SCALE=<k> multiplies the number of runs (about 3,600 requests and 30 s at 1).
 */

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31)
const SCALE = Number(process.env.FUZZ_SCALE ?? 1)
const runs = (count: number) => Math.max(1, Math.round(count * SCALE))
const PROPERTY_TIMEOUT_MS = 120_000 * SCALE

// ---- harness -------------------------------------------------------------------------------------------------

interface LogLine {
  level: LogLevel
  message: string
  fields: Record<string, unknown>
}

/** Keeps the handler's fault logs (`unexpected error`, `request failed`) to explain a 5xx. */
class FaultLog implements Logger {
  #last: LogLine | undefined
  /** The fault logged since the last call, if any. */
  take(): LogLine | undefined {
    const last = this.#last
    this.#last = undefined
    return last
  }
  log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
    if (level === 'error' && (message === 'unexpected error' || message === 'request failed')) {
      this.#last = { level, message, fields }
    }
  }
}

interface Reply {
  status: number
  headers: Record<string, string>
  text: string
}

/** Every item of the table, keyed by `pk`, each in a canonical JSON form (sorted keys). */
interface Snapshot {
  items: Map<string, string>
  text: string
}

const canonical = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'))
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>
    return `{${Object.keys(record)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`)
      .join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

let table: TestTable
let clock: FakeClock
let handler: Handler
const faults = new FaultLog()
/** What the table held after the last request: the "before" of the next one. */
let current: Snapshot

interface Stats {
  requests: number
  byStatus: Map<number, number>
  byCode: Map<string, number>
}
const newStats = (): Stats => ({ requests: 0, byStatus: new Map(), byCode: new Map() })
/** The contract properties' requests. */
const stats = newStats()
/** The requests of the properties that document known bugs, kept apart so that their 500s stand out. */
const edgeCaseStats = newStats()
let startedAt = 0

const scan = async (on: TestTable = table): Promise<Snapshot> => {
  const items = new Map<string, string>()
  let startKey: Record<string, unknown> | undefined
  do {
    const page = await on.client.send(
      new ScanCommand({
        TableName: on.tableName,
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey as never } : {}),
      }),
    )
    for (const item of page.Items ?? []) items.set(`${String(item.pk?.S)} ${String(item.sk?.S)}`, canonical(item))
    startKey = page.LastEvaluatedKey
  } while (startKey)
  const text = [...items.keys()]
    .sort()
    .map((key) => items.get(key))
    .join('\n')
  return { items, text }
}

/** Which items a request added, removed or changed, and for a change which attributes. */
const describeChange = (before: Snapshot, after: Snapshot): string => {
  const lines: string[] = []
  for (const [pk, item] of after.items) {
    const old = before.items.get(pk)
    if (old === undefined) lines.push(`added ${pk}`)
    else if (old !== item) {
      const was = JSON.parse(old) as Record<string, unknown>
      const now = JSON.parse(item) as Record<string, unknown>
      const names = [...new Set([...Object.keys(was), ...Object.keys(now)])].filter(
        (name) => canonical(was[name]) !== canonical(now[name]),
      )
      lines.push(
        `changed ${pk}: ${names.map((name) => `${name} ${canonical(was[name]).slice(0, 80)} -> ${canonical(now[name]).slice(0, 80)}`).join('; ')}`,
      )
    }
  }
  for (const pk of before.items.keys()) if (!after.items.has(pk)) lines.push(`removed ${pk}`)
  return lines.join('\n')
}

type Handler = ReturnType<typeof createApiHandler>

const send = async (request: FuzzRequest, using: Handler = handler): Promise<Reply> => {
  const result = await using(toEvent(request), lambdaContext())
  const headers = Object.fromEntries(
    Object.entries(result?.headers ?? {}).map(([key, value]) => [key.toLowerCase(), String(value)]),
  )
  return { status: result?.statusCode ?? 0, headers, text: typeof result?.body === 'string' ? result.body : '' }
}

// ---- the invariants ------------------------------------------------------------------------------------------

/** Own property names and values of the prototypes a polluting write would reach. */
const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype] as const
const prototypeState = () =>
  PROTOTYPES.map((proto) =>
    Object.getOwnPropertyNames(proto).map((name) => [name, Object.getOwnPropertyDescriptor(proto, name)?.value]),
  )
const PRISTINE = prototypeState()

const prototypeDamage = (): string | undefined => {
  if (({} as Record<string, unknown>).polluted !== undefined) return '({}).polluted is defined'
  if (([] as unknown as Record<string, unknown>).polluted !== undefined) return '[].polluted is defined'
  const now = prototypeState()
  for (const [index, props] of now.entries()) {
    const pristine = PRISTINE[index] ?? []
    if (props.length !== pristine.length) {
      const known = new Set(pristine.map(([name]) => name))
      return `prototype #${index} has new keys: ${props.map(([name]) => name).filter((name) => !known.has(name))}`
    }
    for (const [at, [name, value]] of props.entries()) {
      const [pristineName, pristineValue] = pristine[at] ?? []
      if (name !== pristineName || value !== pristineValue) return `prototype #${index} changed at ${String(name)}`
    }
  }
  return undefined
}

const ERROR_KEYS = ['code', 'details', 'message']
/** `details.field` names a part of the request. */
const FIELD = /^(?:content-type|(body|query|path)(?:[.[][\s\S]*)?)$/
const PATH_PARAMS = new Set(['id', 'node', 'type', 'name'])

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value)

/** Why `reply` breaks the contract, or undefined. */
const contractBreach = (request: FuzzRequest, reply: Reply): string | undefined => {
  if (!(reply.status >= 200 && reply.status < 500)) return `status ${reply.status}`
  // HEAD answers as GET would, without the body.
  if (request.method.toUpperCase() === 'HEAD') return reply.text === '' ? undefined : 'HEAD answered with a body'
  const json = /^application\/json/i.test(reply.headers['content-type'] ?? '')
  if (reply.status < 300) {
    if (!json || reply.text === '') return undefined
    try {
      JSON.parse(reply.text)
      return undefined
    } catch {
      return '2xx with a JSON content type but a body that is not JSON'
    }
  }
  if (!json) return `non-2xx with content-type ${reply.headers['content-type']}`
  let body: unknown
  try {
    body = JSON.parse(reply.text)
  } catch {
    return 'non-2xx body is not JSON'
  }
  if (!isPlainObject(body) || Object.keys(body).join() !== 'error') return 'body is not exactly {error}'
  const error = body.error
  if (!isPlainObject(error) || Object.keys(error).sort().join() !== ERROR_KEYS.join()) {
    return 'error is not exactly {code, message, details}'
  }
  const { code, message, details } = error
  if (typeof code !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(code)) return `bad code ${JSON.stringify(code)}`
  if (typeof message !== 'string' || message === '') return 'empty or missing message'
  if (!isPlainObject(details)) return 'details is not an object'
  if (reply.status === 405 && !reply.headers.allow) return '405 without an allow header'
  const needsField =
    (reply.status === 400 && (code === 'VALIDATION_ERROR' || code === 'MALFORMED_JSON')) ||
    reply.status === 413 ||
    reply.status === 415
  if (!needsField) return undefined
  const field = details.field
  if (typeof field !== 'string') return `${reply.status} ${code} without details.field`
  const match = FIELD.exec(field)
  if (!match) return `details.field ${JSON.stringify(field)} names no part of the request`
  const rest = field.slice((match[1] ?? '').length + 1)
  const name = /^[^.[]*/.exec(rest)?.[0] ?? ''
  if (match[1] === 'path' && !PATH_PARAMS.has(name)) return `details.field ${JSON.stringify(field)}: no such parameter`
  if (match[1] === 'query' && name !== '' && !Object.hasOwn(request.query ?? {}, name)) {
    return `details.field ${JSON.stringify(field)} names a query parameter that was not sent`
  }
  return undefined
}

const clip = (text: string, length = 600) => (text.length > length ? `${text.slice(0, length)}…` : text)

const count = (reply: Reply, into: Stats) => {
  into.requests++
  into.byStatus.set(reply.status, (into.byStatus.get(reply.status) ?? 0) + 1)
  const code = reply.status >= 300 ? (/"code":"([^"]*)"/.exec(reply.text)?.[1] ?? '?') : 'ok'
  into.byCode.set(`${reply.status} ${code}`, (into.byCode.get(`${reply.status} ${code}`) ?? 0) + 1)
}

/** Checks every invariant on one exchange; throws a description of each breach. */
const judge = (request: FuzzRequest, reply: Reply, before: Snapshot, after: Snapshot): void => {
  const problems: string[] = []
  const breach = contractBreach(request, reply)
  if (breach) problems.push(breach)
  const rejected = reply.status >= 400 && reply.status < 500
  const safe = request.method.toUpperCase() === 'GET'
  if ((rejected || safe) && after.text !== before.text) {
    problems.push(`${rejected ? 'a rejected request' : 'a GET'} changed the table:\n${describeChange(before, after)}`)
  }
  // Every instance the request wrote is still due, leased or parked (README, "Nothing is stranded").
  for (const [pk, text] of after.items) {
    // The instance items (sort key '#'); the other items of a partition carry no state the invariant judges.
    if (!pk.startsWith('I#') || !pk.endsWith(' #') || before.items.get(pk) === text) continue
    for (const violation of itemViolations(unmarshall(JSON.parse(text)), clock.nowMs())) {
      problems.push(`the invariant broke: ${violation.message}`)
    }
  }
  const damage = prototypeDamage()
  if (damage) problems.push(`prototype pollution: ${damage}`)
  if (problems.length > 0) {
    const logged = faults.take()
    const fault = logged ? `\nlogged: ${clip(JSON.stringify(logged.fields), 1500)}` : ''
    throw new Error(`${problems.join('\n')}\n→ ${reply.status} ${clip(reply.text)}${fault}`)
  }
}

/** Sends one request to the shared API and checks every invariant. */
const exercise = async (request: FuzzRequest, into: Stats): Promise<void> => {
  const before = current
  faults.take()
  const reply = await send(request)
  count(reply, into)
  current = await scan()
  judge(request, reply, before, current)
}

const property = (arbitrary: fc.Arbitrary<FuzzRequest>, numRuns: number, offset: number, into = stats) =>
  fc.assert(
    fc.asyncProperty(arbitrary, (request) => exercise(request, into)),
    { numRuns, seed: SEED + offset },
  )

/** The API as a Lambda cold start builds it: a new engine (nothing cached) with the example workflows. */
const coldApi = (on: TestTable, recurring?: LocalScheduler): Handler => {
  const { engine, clock: coldClock } = newTestEngine(on, {
    clock,
    limits: FUZZ_LIMITS,
    ...(recurring ? { recurring } : {}),
  })
  for (const workflow of workflows) engine.register(workflow)
  return createApiHandler({
    engine,
    logger: faults,
    clock: coldClock,
    // A long-poll moves the fake clock instead of waiting.
    sleep: async (ms) => coldClock.advanceMs(ms),
    waitPollMs: 5_000,
    maxBodyBytes: FUZZ_MAX_BODY_BYTES,
  })
}

// ---- setup ---------------------------------------------------------------------------------------------------

const call = async (method: string, path: string, body?: unknown) => {
  const reply = await send({ method, path, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  return { status: reply.status, body: JSON.parse(reply.text || '{}') as Record<string, unknown> }
}

const seedInstance = async (body: Record<string, unknown>, status: string) => {
  const created = await call('POST', '/workflows', body)
  expect(created.status).toBe(201)
  const detail = await call('GET', `/workflows/${body.id}`)
  expect(detail.body.status).toBe(status)
}

beforeAll(async () => {
  table = await createTestTable('fuzz-http-api')
  clock = new FakeClock()
  // A recurring scheduler, so that /schedules answers instead of 501 NOT_CONFIGURED.
  handler = coldApi(table, new LocalScheduler({ now: () => clock.nowMs() }))

  await seedInstance(
    { workflowType: 'approval', id: SEEDS.pending, businessId: 'biz-1', context: { requester: 'ann', amount: 120 } },
    'running',
  )
  await seedInstance(
    { workflowType: 'order', id: SEEDS.completed, context: { lines: [{ sku: 'a', quantity: 2, price: 3.5 }] } },
    'completed',
  )
  await seedInstance({ workflowType: 'order', id: SEEDS.failed, context: { lines: [] } }, 'failed')
  await seedInstance({ workflowType: 'approval', id: SEEDS.canceled, businessId: 'biz-2' }, 'running')
  expect((await call('POST', `/workflows/${SEEDS.canceled}/cancel`)).status).toBe(200)
  await seedInstance(
    { workflowType: 'approval', id: SEEDS.init, run: false, startAtMs: clock.nowMs() + 3_600_000 },
    'init',
  )
  await seedInstance(
    { workflowType: 'subscription-billing', id: SEEDS.billing, context: { customer: 'c-1', amount: 30, declines: 2 } },
    'running',
  )
  await seedInstance({ workflowType: 'approval', id: SEEDS.locked }, 'running')
  // Another runner holds this one for a year: every operation that needs the lease answers 409 LOCK_CONFLICT.
  await new DynamoDbStore({ tableName: table.tableName, client: table.client }).acquireLease(
    SEEDS.locked,
    'other-runner',
    clock.nowMs(),
    clock.nowMs() + 365 * 86_400_000,
  )
  expect(
    (await call('POST', '/schedules', { name: 'nightly', expression: 'rate(1 day)', workflowType: 'approval' })).status,
  ).toBe(200)

  current = await scan()
  startedAt = Date.now()
}, 60_000)

const distribution = (of: Stats) => {
  const statuses = [...of.byStatus].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`)
  const codes = [...of.byCode].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, n]) => `${key}: ${n}`)
  return `  statuses: ${statuses.join(', ')}\n  codes: ${codes.join(', ')}`
}

afterAll(() => {
  if (stats.requests + edgeCaseStats.requests === 0) return
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1)
  console.log(
    `[http-api fuzz] seed ${SEED}: ${stats.requests + edgeCaseStats.requests} requests in ${seconds} s ` +
      `(table of ${current.items.size} items at the end)\n` +
      `contract properties, ${stats.requests} requests:\n${distribution(stats)}\n` +
      `edge-case properties, ${edgeCaseStats.requests} requests:\n${distribution(edgeCaseStats)}`,
  )
})

// ---- generators specific to one property ---------------------------------------------------------------------

const BODY_ROUTES: RouteKey[] = ['create', 'event', 'restart', 'nodeRestart', 'run', 'putSchedule']
/** A route's body, valid or noisy. */
const bodyOf = (key: RouteKey): fc.Arbitrary<Json> => {
  const bodies = BODIES[key]
  return bodies ? fc.oneof(bodies.valid, bodies.noisy) : strayBody
}

/** Pads a body with JSON whitespace to exactly `target` bytes (when it is shorter): same value, new size. */
const padTo = (text: string, target: number, where: 'before' | 'after', ws: string): string => {
  const missing = target - utf8Length(text)
  if (missing <= 0) return text
  const padding = ws.repeat(missing)
  return where === 'before' ? padding + text : text + padding
}

/** Content types, base64, malformed JSON and bodies a few bytes either side of maxBodyBytes. */
const envelopeRequest: fc.Arbitrary<FuzzRequest> = fc.constantFrom(...BODY_ROUTES).chain((key) => {
  const good = bodyOf(key).map(render)
  const body = fc.oneof(
    { weight: 2, arbitrary: good },
    { weight: 3, arbitrary: malformedBody(good) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          good,
          fc.integer({ min: -3, max: 3 }),
          fc.constantFrom<'before' | 'after'>('before', 'after'),
          fc.constantFrom(' ', '\n', '\t', '\r'),
        )
        .map(([text, delta, where, ws]) => padTo(text, FUZZ_MAX_BODY_BYTES + delta, where, ws)),
    },
    { weight: 1, arbitrary: junkString(60) },
  )
  return fc
    .record(
      {
        method: fc.constant(ROUTES[key].method),
        path: routePath(ROUTES[key].template),
        body,
        contentType: fc.oneof(
          { weight: 1, arbitrary: fc.constant(undefined) },
          { weight: 2, arbitrary: anyContentType },
        ),
        base64: fc.oneof(
          { weight: 3, arbitrary: fc.constant(undefined) },
          { weight: 2, arbitrary: fc.constant('encoded' as const) },
          { weight: 1, arbitrary: fc.constant('junk' as const) },
        ),
      },
      { requiredKeys: ['method', 'path', 'body'] },
    )
    .map(clean)
})

/** `__proto__`, `constructor` and `prototype` everywhere: in bodies at any depth, in query keys, in paths. */
const pollutionRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc.constantFrom(...BODY_ROUTES).chain((key) =>
    fc
      .record({
        path: routePath(ROUTES[key].template),
        body: fc
          .tuple(
            bodyOf(key),
            fc.constantFrom('context', 'content', '__proto__', 'constructor', 'prototype'),
            fc.oneof(pollutedObject, deepValue),
          )
          .map(([body, field, value]) =>
            render(body instanceof Obj ? new Obj([...body.entries, [field, value]]) : body),
          ),
      })
      .map(({ path, body }) => ({ method: ROUTES[key].method, path, body })),
  ),
  fc
    .tuple(
      fc.constantFrom<RouteKey>('list', 'count', 'get', 'graph', 'history'),
      anyQuery,
      specialKey,
      fc.oneof(junkString(10), fc.constant('{"polluted":true}')),
    )
    .chain(([key, query, special, value]) =>
      routePath(ROUTES[key].template).map((path) => ({
        method: 'GET',
        path,
        query: Object.fromEntries([...Object.entries(query), [special, value]]),
      })),
    ),
  fc.tuple(specialKey, specialKey, fc.boolean()).map(([first, second, event]) =>
    event
      ? {
          method: 'POST',
          path: `/workflows/${SEEDS.pending}/nodes/${second}/events`,
          body: `{"eventTs":1,"content":{"${first}":{"polluted":true}}}`,
        }
      : { method: 'GET', path: `/workflow-types/${first}` },
  ),
)

/**
 * Cursors shaped like the ones the service issues, `{"v":1,"after":"<15-digit ms>#<id>"}` in base64url, but forged:
 * the service does not sign its cursors, so a client can send any `after`.
 */
const forgedCursorRequest: fc.Arbitrary<FuzzRequest> = fc
  .record({
    ms: fc.oneof(
      fc.constant(999_999_999_999_999),
      fc.constant(1_767_268_800_000),
      fc.integer({ min: 0, max: 999_999_999_999_999 }),
    ),
    bounded: fc.boolean(),
    tail: junkString(6),
    order: fc.constantFrom('asc', 'desc'),
    partition: fc.constantFrom<Record<string, string>>({}, { workflowType: 'approval' }, { businessId: 'biz-1' }),
  })
  .map(({ ms, bounded, tail, order, partition }) => {
    const after = `${String(ms).padStart(15, '0')}#${tail}`
    const cursor = Buffer.from(JSON.stringify({ v: 1, after })).toString('base64url')
    return {
      method: 'GET',
      path: '/workflows',
      query: { order, cursor, ...(bounded ? { createdToMs: String(ms) } : {}), ...partition },
    }
  })

// ---- properties ----------------------------------------------------------------------------------------------

describe('the HTTP API under fuzzing', () => {
  // Whatever the requests did, every instance is still due, leased or parked (README, "Nothing is stranded").
  afterEach(async () => {
    expect((await invariantViolations(table, clock.nowMs())).map((violation) => violation.message)).toEqual([])
  })

  it(
    'routes any method and path to a 2xx or a well-formed 4xx',
    async () => {
      const request = fc
        .record(
          {
            method: anyMethod,
            path: anyPath,
            query: anyQuery,
            body: fc.oneof(strayBody.map(render), createBody.noisy.map(render)),
          },
          { requiredKeys: ['method', 'path'] },
        )
        .map(clean)
      await property(request, runs(600), 1)
    },
    PROPERTY_TIMEOUT_MS,
  )

  it(
    'answers generated requests to every route (queries, path parameters, bodies) within the contract',
    async () => {
      await property(fc.oneof(...ALL_ROUTE_KEYS.map(routeRequest)), runs(1100), 2)
    },
    PROPERTY_TIMEOUT_MS,
  )

  it(
    'stores nothing for a rejected write, whatever its body',
    async () => {
      await property(fc.oneof(...WRITE_ROUTES.map(routeRequest)), runs(900), 3)
    },
    PROPERTY_TIMEOUT_MS,
  )

  it(
    'rejects wrong content types, bad base64, malformed JSON and oversize bodies with the field at fault',
    async () => {
      await property(envelopeRequest, runs(600), 4)
    },
    PROPERTY_TIMEOUT_MS,
  )

  it(
    'never lets __proto__, constructor or prototype keys reach a prototype or the table',
    async () => {
      await property(pollutionRequest, runs(400), 5)
    },
    PROPERTY_TIMEOUT_MS,
  )

  /** A cursor forged with characters outside the issued format must not turn a key range inside out. */
  it(
    'answers a forged list cursor with a page or a 400, never a 5xx',
    async () => {
      // Not scaled: enough runs to meet a non-ASCII cursor for sure (about one run in six does).
      await property(forgedCursorRequest, 200, 6, edgeCaseStats)
    },
    PROPERTY_TIMEOUT_MS,
  )
})

describe('a cold-started API, before it stored any workflow definition', () => {
  let cold: TestTable
  const TAKEN = 'taken-1'

  beforeAll(async () => {
    cold = await createTestTable('fuzz-cold-start')
    const body = JSON.stringify({ workflowType: 'approval', id: TAKEN })
    expect((await send({ method: 'POST', path: '/workflows', body }, coldApi(cold))).status).toBe(201)
  }, 60_000)

  /** Deletes what a run added, so that every run (and every shrink) starts from the same table. */
  const restore = async (before: Snapshot, after: Snapshot) => {
    for (const key of after.items.keys()) {
      if (!before.items.has(key)) {
        const [pk, sk] = key.split(' ') as [string, string]
        await cold.client.send(
          new DeleteItemCommand({ TableName: cold.tableName, Key: { pk: { S: pk }, sk: { S: sk } } }),
        )
      }
    }
  }

  /** The definition snapshot is stored only after the instance, so a refused create stores nothing. */
  it(
    'stores nothing for a create refused because its id is taken',
    async () => {
      const request = createBody.valid.map(
        (body): FuzzRequest => ({
          method: 'POST',
          path: '/workflows',
          body: render(
            body instanceof Obj ? new Obj([...body.entries.filter(([key]) => key !== 'id'), ['id', TAKEN]]) : body,
          ),
        }),
      )
      await fc.assert(
        fc.asyncProperty(request, async (sent) => {
          const before = await scan(cold)
          faults.take()
          const reply = await send(sent, coldApi(cold))
          count(reply, edgeCaseStats)
          const after = await scan(cold)
          try {
            judge(sent, reply, before, after)
          } finally {
            await restore(before, after)
          }
        }),
        // Not scaled: enough runs to hit a cold type for sure (each run has a 2 in 3 chance).
        { numRuns: 30, seed: SEED + 7 },
      )
      expect((await invariantViolations(cold, clock.nowMs())).map((violation) => violation.message)).toEqual([])
    },
    PROPERTY_TIMEOUT_MS,
  )
})

describe('after every request', () => {
  it('left Object.prototype and the other prototypes as they were', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(prototypeDamage()).toBeUndefined()
    expect(stats.requests).toBeGreaterThan(0)
  })
})
