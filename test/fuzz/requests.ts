import fc from 'fast-check'
import type { ApiEvent } from '../../src/api/handler.js'
import { apiEvent } from '../support/api-events.js'
import { type Json, nested, Obj, Raw, render, utf8Length } from './json-text.js'

/** One generated HTTP request, as fast-check prints it when a property fails. */
export interface FuzzRequest {
  method: string
  /** `rawPath` as API Gateway hands it over: still percent-encoded, or not, as the client sent it. */
  path: string
  /** `queryStringParameters`: API Gateway joins a repeated key's values with commas. */
  query?: Record<string, string>
  /** The body text as sent. */
  body?: string
  /** Absent: `application/json` when there is a body; null: no content-type header at all. */
  contentType?: string | null
  /** `encoded`: the body goes base64-encoded; `junk`: `body` goes as is, flagged base64 (usually invalid). */
  base64?: 'encoded' | 'junk'
}

/** The limits the fuzzed API runs with: small, so that requests around them are cheap to generate and store. */
export const FUZZ_LIMITS = { maxInputBytes: 2048, maxNodeContextBytes: 2048, maxInstanceBytes: 24 * 1024 }
export const FUZZ_MAX_BODY_BYTES = 6 * 1024
/** DEFAULT_LIMITS.maxDepth, unchanged here. */
const MAX_DEPTH = 24

/** Instances seeded before the run, one per interesting state. */
export const SEEDS = {
  pending: 'seed-pending',
  completed: 'seed-order',
  failed: 'seed-failed',
  canceled: 'seed-canceled',
  init: 'seed-init',
  billing: 'seed-billing',
  locked: 'seed-locked',
} as const

/** Client-chosen ids a generated create may use: keeps the table small (a second create is a replay or a 409). */
const ID_POOL = ['fz-0', 'fz-1', 'fz-2', 'fz-3', 'fz-4', 'fz-5']
const WORKFLOW_TYPES = ['approval', 'order', 'subscription-billing']
const NODES = ['submit', 'review', 'approve', 'validate', 'charge', 'reserve', 'ship', 'invoice', 'collect', 'notify']
const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype'] as const
const OBJECT_PROTO_NAMES = ['toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf']

export const toEvent = (request: FuzzRequest): ApiEvent => {
  const event = apiEvent(request.method, request.path, {
    ...(request.body === undefined ? {} : { rawBody: request.body }),
    ...(request.query === undefined ? {} : { query: request.query }),
    ...(request.base64 === 'encoded' ? { base64: true } : {}),
  })
  if (request.contentType === null) delete event.headers['Content-Type']
  else if (request.contentType !== undefined) event.headers['Content-Type'] = request.contentType
  if (request.base64 === 'junk') event.isBase64Encoded = true
  return event
}

// ---- characters and strings --------------------------------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))
const trickyChar = fc.constantFrom(
  '"',
  '\\',
  '/',
  '%',
  '#',
  '\u0000',
  '\n',
  '\u2028',
  '\ufeff',
  '\uffff',
  '😀',
  'é',
  ',',
  '&',
  '=',
  '?',
  '+',
  ' ',
  '.',
)
/** Any code point, lone surrogates included, with a bias to characters that mean something in URLs and JSON. */
const anyChar = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: trickyChar },
  { weight: 1, arbitrary: loneSurrogate },
)
export const junkString = (maxLength: number) => fc.string({ unit: anyChar, maxLength })

/** A string of `length` copies of a (possibly multi-byte) character: straddles character and byte limits. */
const repeated = (lengths: readonly number[]) =>
  fc
    .tuple(
      fc.constantFrom(...lengths),
      fc.integer({ min: -2, max: 2 }),
      fc.constantFrom('a', 'é', '😀', '"', '\\', '-'),
    )
    .map(([length, delta, ch]) => ch.repeat(Math.max(0, length + delta)))

// ---- JSON values -------------------------------------------------------------------------------------------------

const RAW_NUMBERS = [
  '1e308',
  '-1e308',
  '1e400',
  '-1e400',
  '-0',
  '0.0',
  '1E2',
  '1e-400',
  '4.9e-324',
  '9007199254740993',
  '-1',
  '1.5',
  '0',
  '253402300799',
  '253402300800',
  '8640000000000000',
  '8640000000000001',
  '1e16',
]
const anyNumber: fc.Arbitrary<Json> = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(...RAW_NUMBERS).map((text) => new Raw(text)),
)
const numberLikeString = fc.constantFrom(
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '1',
  '1e308',
  '0x10',
  '',
  ' ',
  'true',
  'null',
)
export const specialKey = fc.constantFrom(...SPECIAL_KEYS)

const plainKey = fc.constantFrom('a', 'b', 'x', 'note', 'lines', 'requester', 'amount', 'customer', 'decision', 'n')
const objectKey = fc.oneof(
  { weight: 10, arbitrary: plainKey },
  { weight: 3, arbitrary: junkString(12) },
  { weight: 1, arbitrary: specialKey },
  { weight: 1, arbitrary: fc.constantFrom(...OBJECT_PROTO_NAMES) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('pre_node_context', 'workflow_context', 'node_event', 'system', 'reason', ''),
  },
)

const leaf: fc.Arbitrary<Json> = fc.oneof(fc.constant(null), fc.boolean(), anyNumber, junkString(16), numberLikeString)

const tree = fc.letrec<{ json: Json; obj: Obj; arr: readonly Json[] }>((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('obj'), tie('arr')),
  obj: fc.array(fc.tuple(objectKey, tie('json')), { maxLength: 4 }).map((entries) => new Obj(entries)),
  arr: fc.array(tie('json'), { maxLength: 4 }),
}))
/** Any JSON value, with special keys, lone surrogates and odd numbers here and there. */
const anyJson = tree.json
const anyObject = tree.obj

/** A value that `__proto__` would point at if something assigned it. */
const pollutionValue = fc.constantFrom(
  '{"polluted":true}',
  '{"polluted":"yes","toString":1}',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '[{"polluted":1}]',
  '"polluted"',
  'null',
  '1',
)
/** An object with a `__proto__`/`constructor`/`prototype` key somewhere 0-12 levels down. */
export const pollutedObject: fc.Arbitrary<Json> = fc
  .tuple(
    fc.array(fc.oneof(plainKey, specialKey, fc.constant(0)), { maxLength: 12 }),
    specialKey,
    pollutionValue,
    fc.array(fc.tuple(plainKey, leaf), { maxLength: 2 }),
  )
  .map(([path, key, value, siblings]) => {
    let node: Json = new Obj([[key, new Raw(value)], ...siblings])
    for (const step of [...path].reverse()) node = step === 0 ? [node] : new Obj([[step, node]])
    return node instanceof Obj ? node : new Obj([['a', node]])
  })

/** Objects or arrays 20-200 levels deep (the engine allows 24), possibly with a special key at every level. */
export const deepValue: fc.Arbitrary<Json> = fc
  .record({
    depth: fc.integer({ min: 20, max: 200 }),
    kind: fc.constantFrom('object', 'array', 'mixed') as fc.Arbitrary<'object' | 'array' | 'mixed'>,
    key: fc.oneof(plainKey, specialKey),
    leaf: leaf.map(render),
  })
  .map(({ depth, kind, key, leaf: text }) => nested(depth, kind, key, text))
/** A deep value wrapped in an object, as a context must be; also around the depth limit exactly. */
const deepObject: fc.Arbitrary<Json> = fc.oneof(
  deepValue.map((value) => new Obj([['deep', value]])),
  fc
    .tuple(fc.integer({ min: MAX_DEPTH - 2, max: MAX_DEPTH + 1 }), fc.oneof(plainKey, specialKey))
    .map(([depth, key]) => nested(depth, 'object', key, '1')),
)

/** `{"pad":"…"}` whose JSON is `target` ± a few bytes, in 1-4 byte characters (or 2-byte escapes). */
const sizedObject = (targets: readonly number[]): fc.Arbitrary<Json> =>
  fc
    .tuple(fc.constantFrom(...targets), fc.integer({ min: -3, max: 3 }), fc.constantFrom('x', 'é', '😀', '"', '\u0001'))
    .map(([target, delta, ch]) => {
      const unit = utf8Length(JSON.stringify(ch)) - 2
      return new Obj([['pad', ch.repeat(Math.max(0, Math.floor((target + delta - 10) / unit)))]])
    })

/** Wrong types for a field that wants something else. */
const wrongType: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  anyNumber,
  junkString(12),
  numberLikeString,
  fc.constant([]),
  fc.array(leaf, { maxLength: 3 }),
  anyObject,
)

const orderContext: fc.Arbitrary<Json> = fc
  .array(
    fc.oneof(
      fc.record({ sku: junkString(6), quantity: anyNumber, price: anyNumber }).map(
        ({ sku, quantity, price }) =>
          new Obj([
            ['sku', sku],
            ['quantity', quantity],
            ['price', price],
          ]),
      ),
      leaf,
    ),
    { maxLength: 4 },
  )
  .map((lines) => new Obj([['lines', lines]]))
const billingContext: fc.Arbitrary<Json> = fc
  .record({ customer: junkString(10), amount: anyNumber, declines: anyNumber, settle: anyNumber })
  .map(
    ({ customer, amount, declines, settle }) =>
      new Obj([
        ['customer', customer],
        ['amount', amount],
        ['declines', declines],
        ['settle_after_polls', settle],
      ]),
  )
const approvalContext: fc.Arbitrary<Json> = fc
  .record({ requester: fc.oneof(junkString(10), wrongType), amount: anyNumber })
  .map(
    ({ requester, amount }) =>
      new Obj([
        ['requester', requester],
        ['amount', amount],
      ]),
  )

/** Plain data objects with none of the keys the engine refuses. */
const plainObject: fc.Arbitrary<Json> = fc
  .array(fc.tuple(plainKey, fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }))), { maxLength: 4 })
  .map((entries) => new Obj(entries))

/** Contexts the engine stores: what the example workflows read, or plain data. */
const validContext: fc.Arbitrary<Json> = fc.oneof(orderContext, billingContext, approvalContext, plainObject)
/** Contexts near or past a limit: deep, oversize, polluted, or anything at all. */
const edgyContext: fc.Arbitrary<Json> = fc.oneof(
  { weight: 2, arbitrary: deepObject },
  { weight: 2, arbitrary: sizedObject([FUZZ_LIMITS.maxInputBytes, FUZZ_MAX_BODY_BYTES]) },
  { weight: 2, arbitrary: anyObject },
  { weight: 1, arbitrary: pollutedObject },
)

const validContent: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom({ decision: 'approved' }, { decision: 'rejected' }, { decision: 'maybe' }).map(toJsonObj),
  plainObject,
  leaf.filter((value) => !(value instanceof Raw) || Number.isFinite(Number(value.text))),
)
/** Event content past the limits: huge (a long string, a long array), deep, polluted, or anything. */
const edgyContent: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: anyJson },
  { weight: 2, arbitrary: sizedObject([FUZZ_LIMITS.maxInputBytes, FUZZ_MAX_BODY_BYTES]) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 100, max: 3000 })
      .map((length) => new Raw(`[${Array.from({ length }, () => '1').join(',')}]`)),
  },
  { weight: 1, arbitrary: repeated([FUZZ_LIMITS.maxInputBytes - 2, FUZZ_MAX_BODY_BYTES]) },
  { weight: 1, arbitrary: deepValue },
  { weight: 1, arbitrary: pollutedObject },
)

function toJsonObj(value: Record<string, string>): Obj {
  return new Obj(Object.entries(value))
}

// ---- bodies ------------------------------------------------------------------------------------------------------

/**
 * A body field: `valid` values the route accepts, `edgy` ones at or past a limit, `bad` ones of the wrong type or
 * shape; present with probability `presence`.
 */
interface FieldSpec {
  valid: fc.Arbitrary<Json>
  edgy?: fc.Arbitrary<Json>
  bad: fc.Arbitrary<Json>
  presence: number
  /** The route refuses a body without it: always present in a valid body. */
  required?: boolean
}

/** A route's body twice over: `valid` (only valid fields) and `noisy` (any field may be off). */
export interface BodyArbitraries {
  valid: fc.Arbitrary<Json>
  noisy: fc.Arbitrary<Json>
}

const presentFields = (fields: Record<string, FieldSpec>, noisy: boolean) =>
  fc.tuple(
    ...Object.entries(fields).map(([name, spec]) => {
      const value = noisy
        ? fc.oneof(
            { weight: 5, arbitrary: spec.valid },
            { weight: spec.edgy ? 2 : 0, arbitrary: spec.edgy ?? spec.valid },
            { weight: 1, arbitrary: spec.bad },
          )
        : spec.valid
      const entry = value.map((item): [string, Json] | undefined => [name, item])
      if (spec.required && !noisy) return entry
      // Absent first, with cross-shrinking: a counterexample keeps only the fields that matter.
      return fc.oneof(
        { withCrossShrink: true },
        { weight: Math.round((1 - spec.presence) * 100), arbitrary: fc.constant(undefined) },
        { weight: Math.round(spec.presence * 100), arbitrary: entry },
      )
    }),
  )

/**
 * An object body from field specs. The noisy one also gets unknown fields, special keys and repeated keys now and
 * then (JSON.parse keeps the last of repeated keys).
 */
const objectBody = (fields: Record<string, FieldSpec>): BodyArbitraries => {
  const keep = (present: ([string, Json] | undefined)[]) =>
    present.filter((entry): entry is [string, Json] => entry !== undefined)
  const extras = fc.oneof(
    { weight: 12, arbitrary: fc.constant([] as [string, Json][]) },
    { weight: 1, arbitrary: fc.array(fc.tuple(objectKey, anyJson), { minLength: 1, maxLength: 2 }) },
    { weight: 1, arbitrary: fc.tuple(specialKey, pollutionValue).map(([key, value]) => [[key, new Raw(value)]]) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(...Object.keys(fields)), wrongType).map(([key, value]) => [[key, value]]),
    },
  ) as fc.Arbitrary<[string, Json][]>
  return {
    valid: presentFields(fields, false).map((present) => new Obj(keep(present))),
    noisy: fc
      .tuple(presentFields(fields, true), extras, fc.boolean())
      .map(([present, extra, extrasFirst]) =>
        extrasFirst ? new Obj([...extra, ...keep(present)]) : new Obj([...keep(present), ...extra]),
      ),
  }
}

const bool: fc.Arbitrary<Json> = fc.boolean()
const eventTs: FieldSpec = {
  valid: fc.oneof(fc.integer({ min: 0, max: 253_402_300_799 }), fc.integer({ min: 0, max: 2_000_000_000 })),
  edgy: fc.constantFrom('253402300799', '253402300800', '-0', '1e400', '0.0', '1E2').map((text) => new Raw(text)),
  bad: fc.oneof(anyNumber, wrongType),
  presence: 0.95,
  required: true,
}
const workflowTypeField: FieldSpec = {
  valid: fc.constantFrom(...WORKFLOW_TYPES),
  bad: fc.oneof(fc.constantFrom('nope', '9lives', '', ...SPECIAL_KEYS, ...OBJECT_PROTO_NAMES), wrongType),
  presence: 0.95,
  required: true,
}
const businessIdField: FieldSpec = {
  valid: fc.oneof(
    fc.constantFrom('biz-1', 'biz-2'),
    junkString(20).filter((text) => text.length > 0),
  ),
  edgy: repeated([256]),
  bad: fc.oneof(fc.constant(''), wrongType),
  presence: 0.3,
}

export const createBody = objectBody({
  workflowType: workflowTypeField,
  businessId: businessIdField,
  context: { valid: validContext, edgy: edgyContext, bad: wrongType, presence: 0.6 },
  run: { valid: bool, bad: wrongType, presence: 0.5 },
  id: {
    valid: fc.constantFrom(...ID_POOL, ...Object.values(SEEDS)),
    edgy: fc.oneof(repeated([128]), fc.constantFrom('count', 'a/b', '-abc', '', '.', '..', 'a b', ...SPECIAL_KEYS)),
    bad: fc.oneof(junkString(12), wrongType),
    presence: 0.9,
  },
  startAtMs: {
    valid: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    edgy: fc.constantFrom('8640000000000000', '8640000000000001', '-0', '1e400', '1.5').map((text) => new Raw(text)),
    bad: fc.oneof(anyNumber, wrongType),
    presence: 0.15,
  },
})
const eventBody = objectBody({
  eventTs,
  content: { valid: validContent, edgy: edgyContent, bad: edgyContent, presence: 0.7 },
})
const restartBody = objectBody({
  run: { valid: bool, bad: wrongType, presence: 0.4 },
  context: { valid: validContext, edgy: edgyContext, bad: wrongType, presence: 0.4 },
  resetCounters: { valid: bool, bad: wrongType, presence: 0.3 },
})
const nodeRestartBody = objectBody({
  force: { valid: bool, bad: wrongType, presence: 0.4 },
  resetCounters: { valid: bool, bad: wrongType, presence: 0.3 },
  run: { valid: bool, bad: wrongType, presence: 0.4 },
})
const runBody = objectBody({
  mode: {
    valid: fc.constantFrom('explicit', 'due'),
    bad: fc.oneof(fc.constantFrom('later', 'DUE'), wrongType),
    presence: 0.7,
  },
})

const cronField = fc.oneof(
  fc.constantFrom('*', '?', 'L', 'W', '15W', 'LW', '1#5', '6#6', '5L', 'L-2', '1-5', '5-1', '*/0', '0/1', '*/15'),
  fc.constantFrom('JAN-DEC', 'MON-FRI', 'FRI-MON', 'SUN', 'jan', '1970', '2199', '2200', '1969-2300'),
  fc.integer({ min: -1, max: 100 }).map(String),
  fc.array(fc.integer({ min: 0, max: 60 }).map(String), { minLength: 2, maxLength: 4 }).map((items) => items.join(',')),
)
const expression = fc.oneof(
  fc.array(cronField, { minLength: 5, maxLength: 7 }).map((fields) => `cron(${fields.join(' ')})`),
  fc
    .tuple(
      fc.oneof(fc.integer({ min: -1, max: 1000 }).map(String), fc.constantFrom('1e3', '9007199254740993', '', ' 5')),
      fc.constantFrom('minute', 'minutes', 'hour', 'hours', 'day', 'days', 'weeks', 'Minutes'),
    )
    .map(([value, unit]) => `rate(${value} ${unit})`),
  fc.constantFrom('at(2030-01-01T00:00:00)', 'cron()'),
  junkString(20),
  repeated([256]),
)
const scheduleBody = objectBody({
  name: {
    valid: fc.constantFrom('nightly', 'n1', 'fz.sched-1'),
    edgy: fc.oneof(fc.constantFrom('a/b', '-x', '', ...SPECIAL_KEYS), repeated([50])),
    bad: fc.oneof(junkString(8), wrongType),
    presence: 0.95,
    required: true,
  },
  expression: {
    valid: fc.constantFrom('cron(0 2 * * ? *)', 'cron(*/15 9-17 ? * MON-FRI *)', 'rate(5 minutes)', 'rate(1 day)'),
    edgy: expression,
    bad: wrongType,
    presence: 0.95,
    required: true,
  },
  timezone: {
    valid: fc.constantFrom('UTC', 'Etc/UTC'),
    edgy: fc.oneof(fc.constantFrom('Europe/Paris', 'Mars/Olympus', '', 'utc', '+01:00'), repeated([64])),
    bad: wrongType,
    presence: 0.3,
  },
  workflowType: workflowTypeField,
  context: { valid: validContext, edgy: edgyContext, bad: wrongType, presence: 0.4 },
  businessId: businessIdField,
  enabled: { valid: bool, bad: wrongType, presence: 0.3 },
  description: { valid: junkString(30), edgy: repeated([512]), bad: wrongType, presence: 0.3 },
})

/** A body that fits no route: arrays, scalars, null, arbitrary objects. */
export const strayBody: fc.Arbitrary<Json> = fc.oneof(anyJson, wrongType, pollutedObject)

const MALFORMED = [
  '{',
  '}',
  '{"a":}',
  "{'a':1}",
  '{"a":1,}',
  '[1,2',
  'NaN',
  'undefined',
  '\ufeff{}',
  '{"a":1}garbage',
  '"unterminated',
  '{"a":"\\x"}',
  '{"a":01}',
  ' ',
  '\u0000',
  '{"__proto__":}',
  '{"a":1}{"b":2}',
  '{"a" 1}',
  '--',
]
/** Text that is not JSON: fixed classics, truncated or corrupted good bodies, random text. */
export const malformedBody = (good: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom(...MALFORMED),
    fc
      .tuple(good, fc.double({ min: 0, max: 1, noNaN: true }))
      .filter(([text]) => text.length > 1)
      .map(([text, at]) => text.slice(0, Math.max(1, Math.floor(text.length * at)))),
    fc
      .tuple(good, fc.nat(), trickyChar)
      .map(([text, at, ch]) => text.slice(0, at % (text.length + 1)) + ch + text.slice(at % (text.length + 1))),
    junkString(40),
  )

// ---- paths -------------------------------------------------------------------------------------------------------

const percentBytes = fc
  .uint8Array({ minLength: 1, maxLength: 12 })
  .map((bytes) => [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0').toUpperCase()}`).join(''))

/** A path segment that is not a plain id: traversal, broken escapes, raw or encoded unicode, very long. */
const junkSegment = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2F',
    'a%2Fb',
    '%2f..%2f',
    '%00',
    '%',
    '%zz',
    '%E0%A4%A',
    '%C0%AF',
    '%FF',
    '%u0041',
    '+',
    '%20',
    ' ',
    '~',
    '*',
    'count',
    '%63ount',
    '%5F%5Fproto%5F%5F',
    ...SPECIAL_KEYS,
    ...OBJECT_PROTO_NAMES,
  ),
  percentBytes,
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 16 }).map(encodeURIComponent),
  junkString(16),
  fc
    .tuple(fc.integer({ min: 60, max: 3000 }), fc.constantFrom('a', 'Z9', 'é', '😀', '%41', '-', '.', '%E2%82%AC'))
    .map(([length, ch]) => ch.repeat(length)),
  fc.constantFrom(63, 64, 65, 127, 128, 129).map((length) => 'a'.repeat(length)),
)

const knownId = fc.constantFrom(...Object.values(SEEDS), ...ID_POOL, 'ghost-1', 'wf-000001')
const idSegment = fc.oneof(
  { weight: 8, arbitrary: knownId },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}$/).map(encodeURIComponent) },
  { weight: 3, arbitrary: junkSegment },
)
const nodeSegment = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...NODES, 'root', 'end') },
  { weight: 1, arbitrary: fc.constantFrom('nope', '9x', ...SPECIAL_KEYS, ...OBJECT_PROTO_NAMES) },
  { weight: 3, arbitrary: junkSegment },
)
const typeSegment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...WORKFLOW_TYPES, 'nope', '9lives') },
  { weight: 2, arbitrary: junkSegment },
)
const nameSegment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('nightly', 'n1', 'fz.sched-1', 'ghost') },
  { weight: 2, arbitrary: junkSegment },
)

export type RouteKey =
  | 'create'
  | 'list'
  | 'count'
  | 'get'
  | 'graph'
  | 'history'
  | 'run'
  | 'cancel'
  | 'restart'
  | 'nodeRestart'
  | 'event'
  | 'putSchedule'
  | 'listSchedules'
  | 'getSchedule'
  | 'deleteSchedule'
  | 'types'
  | 'type'
  | 'openapi'

export const ROUTES: Record<RouteKey, { method: string; template: string }> = {
  create: { method: 'POST', template: '/workflows' },
  list: { method: 'GET', template: '/workflows' },
  count: { method: 'GET', template: '/workflows/count' },
  get: { method: 'GET', template: '/workflows/{id}' },
  graph: { method: 'GET', template: '/workflows/{id}/graph' },
  history: { method: 'GET', template: '/workflows/{id}/history' },
  run: { method: 'POST', template: '/workflows/{id}/run' },
  cancel: { method: 'POST', template: '/workflows/{id}/cancel' },
  restart: { method: 'POST', template: '/workflows/{id}/restart' },
  nodeRestart: { method: 'POST', template: '/workflows/{id}/nodes/{node}/restart' },
  event: { method: 'POST', template: '/workflows/{id}/nodes/{node}/events' },
  putSchedule: { method: 'POST', template: '/schedules' },
  listSchedules: { method: 'GET', template: '/schedules' },
  getSchedule: { method: 'GET', template: '/schedules/{name}' },
  deleteSchedule: { method: 'DELETE', template: '/schedules/{name}' },
  types: { method: 'GET', template: '/workflow-types' },
  type: { method: 'GET', template: '/workflow-types/{type}' },
  openapi: { method: 'GET', template: '/openapi.json' },
}
const ROUTE_KEYS = Object.keys(ROUTES) as RouteKey[]

/** The route's path with each parameter filled from its generator. */
export const routePath = (template: string) =>
  fc
    .record({ id: idSegment, node: nodeSegment, type: typeSegment, name: nameSegment })
    .map(({ id, node, type, name }) =>
      template.replace('{id}', id).replace('{node}', node).replace('{type}', type).replace('{name}', name),
    )

type Mutation = 'trailing-slash' | 'double-slash' | 'extra-segment' | 'stage-prefix' | 'upper' | 'relative' | 'dots'
const mutate = (path: string, mutation: Mutation, extra: string): string => {
  switch (mutation) {
    case 'trailing-slash':
      return `${path}/`
    case 'double-slash':
      return path.replace('/', '//')
    case 'extra-segment':
      return `${path}/${extra}`
    case 'stage-prefix':
      return `/prod${path}`
    case 'upper':
      return path.toUpperCase()
    case 'relative':
      return path.slice(1)
    case 'dots':
      return `/workflows/../${path.slice(1)}`
  }
}

/** Any path: a route's, a route's bent out of shape, or made of random segments. */
export const anyPath = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ROUTE_KEYS).chain((key) => routePath(ROUTES[key].template)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...ROUTE_KEYS).chain((key) => routePath(ROUTES[key].template)),
        fc.constantFrom<Mutation>(
          'trailing-slash',
          'double-slash',
          'extra-segment',
          'stage-prefix',
          'upper',
          'relative',
          'dots',
        ),
        junkSegment,
      )
      .map(([path, mutation, extra]) => mutate(path, mutation, extra)),
  },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom('workflows', 'nodes', 'schedules', 'workflow-types', 'events'), junkSegment), {
        maxLength: 6,
      })
      .map((segments) => `/${segments.join('/')}`),
  },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('', '/', '//', '/openapi.json/x', '/.well-known'), junkString(30)) },
)

export const anyMethod = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE') },
  {
    weight: 2,
    arbitrary: fc.constantFrom('PUT', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'get', 'post', 'Delete', ''),
  },
  { weight: 1, arbitrary: junkString(8) },
)

// ---- queries -----------------------------------------------------------------------------------------------------

const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url')

/** A cursor as the service issues it (after the seeds' creation time). */
const issuedCursor = fc
  .constantFrom(...Object.values(SEEDS), ...ID_POOL)
  .map((id) => base64url(JSON.stringify({ v: 1, after: `001767268800000#${id}` })))

/** Values for each known query key: good ones, boundary ones and junk. */
const QUERY_VALUES: Record<string, fc.Arbitrary<string>> = {
  limit: fc.oneof(
    fc.constantFrom('1', '50', '1000', '0', '1001', '-1', '2.5', 'abc', '', ' ', '1e2', '0x10', 'NaN', '-0', '1,2'),
    fc.integer().map(String),
    fc.constant('9'.repeat(400)),
  ),
  cursor: fc.oneof(
    issuedCursor,
    junkString(40),
    anyJson.map((value) => base64url(render(value))),
    junkString(40).map((after) => base64url(JSON.stringify({ v: 1, after }))),
    fc.constantFrom('', 'not-a-cursor', 'e30', 'bnVsbA', 'W10'),
    fc.constantFrom(4095, 4096, 4097).map((length) => 'A'.repeat(length)),
  ),
  order: fc.constantFrom('asc', 'desc', 'ASC', 'sideways', '', 'asc,desc'),
  workflowType: fc.oneof(fc.constantFrom(...WORKFLOW_TYPES, 'nope', '9lives', '', ...SPECIAL_KEYS), junkString(10)),
  status: fc.oneof(
    fc.constantFrom('running', 'completed,failed', 'init, canceled', 'RUNNING', ',', ' ', 'a,b', 'sleeping'),
    fc
      .array(fc.constantFrom('init', 'running', 'completed', 'failed', 'canceled', ''), { minLength: 1, maxLength: 7 })
      .map((items) => items.join(',')),
  ),
  businessId: fc.oneof(fc.constantFrom('biz-1', 'biz-2', ''), junkString(20), repeated([256])),
  createdFromMs: fc.oneof(
    fc.constantFrom('0', '1767268800000', '8640000000000000', '8640000000000001', '1e300', '-5', 'soon', '', '1.5'),
    fc.nat().map(String),
    fc.constant('9'.repeat(30)),
  ),
  createdToMs: fc.oneof(
    fc.constantFrom('0', '1767268800000', '8640000000000000', '8640000000000001', '1e300', '-5', 'soon', '', '1.5'),
    fc.nat().map(String),
  ),
  wait: fc.constantFrom('terminal', 'forever', '', 'TERMINAL'),
  timeoutSeconds: fc.constantFrom('1', '2', '25', '26', '0', '-1', '1.5', 'abc', '', '1e1'),
  format: fc.constantFrom('json', 'mermaid', 'svg', '', 'JSON'),
}
const QUERY_KEYS = Object.keys(QUERY_VALUES)

const queryKey = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...QUERY_KEYS) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('colour', 'Limit', 'limit ', 'limit[]', '', ...SPECIAL_KEYS, ...OBJECT_PROTO_NAMES),
  },
  { weight: 1, arbitrary: junkString(10) },
)
const queryValueFor = (key: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: (Object.hasOwn(QUERY_VALUES, key) ? QUERY_VALUES[key] : undefined) ?? junkString(20) },
    { weight: 1, arbitrary: junkString(20) },
    { weight: 1, arbitrary: fc.constantFrom(100, 5000).map((length) => 'q'.repeat(length)) },
  )

/** A query string's parameters: repeated keys are comma-joined, as API Gateway does; own `__proto__` keys kept. */
export const anyQuery: fc.Arbitrary<Record<string, string>> = fc
  .array(
    queryKey.chain((key) => queryValueFor(key).map((value) => [key, value] as const)),
    { minLength: 1, maxLength: 5 },
  )
  .map((pairs) => {
    const joined = new Map<string, string>()
    for (const [key, value] of pairs) joined.set(key, joined.has(key) ? `${joined.get(key)},${value}` : value)
    return Object.fromEntries(joined)
  })

// ---- envelopes ---------------------------------------------------------------------------------------------------

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/vnd.tickflow+json',
  'application/problem+json;q=1',
  'text/plain',
  'text/json',
  'application/jsonp',
  'application/json-patch',
  ' application/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json, text/plain',
  '',
  '*/*',
]
export const anyContentType: fc.Arbitrary<string | null | undefined> = fc.oneof(
  { weight: 10, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: junkString(20) },
)

/** The body generators of each route that takes a body. */
export const BODIES: Partial<Record<RouteKey, BodyArbitraries>> = {
  create: createBody,
  run: runBody,
  restart: restartBody,
  nodeRestart: nodeRestartBody,
  event: eventBody,
  putSchedule: scheduleBody,
}

const partialQuery = (model: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Record<string, string>> =>
  fc
    .record(model, { requiredKeys: [] })
    .map((query) => Object.fromEntries(Object.entries(query)) as Record<string, string>)

const validFilters = {
  workflowType: fc.constantFrom(...WORKFLOW_TYPES),
  status: fc
    .uniqueArray(fc.constantFrom('init', 'running', 'completed', 'failed', 'canceled'), { minLength: 1, maxLength: 3 })
    .map((items) => items.join(',')),
  businessId: fc.constantFrom('biz-1', 'biz-2'),
  createdFromMs: fc.constantFrom('0', '1767268800000'),
  createdToMs: fc.constantFrom('1767268800000', '8640000000000000'),
}
/** Queries each route accepts. */
const VALID_QUERIES: Partial<Record<RouteKey, fc.Arbitrary<Record<string, string>>>> = {
  list: partialQuery({
    ...validFilters,
    limit: fc.integer({ min: 1, max: 1000 }).map(String),
    order: fc.constantFrom('asc', 'desc'),
    cursor: issuedCursor,
  }),
  count: partialQuery(validFilters),
  get: partialQuery({ wait: fc.constant('terminal'), timeoutSeconds: fc.integer({ min: 1, max: 25 }).map(String) }),
  graph: partialQuery({ format: fc.constantFrom('json', 'mermaid') }),
  history: partialQuery({ limit: fc.integer({ min: 1, max: 500 }).map(String) }),
}

/** The nodes of each seeded instance's workflow; pool ids may hold any workflow. */
const NODES_OF: Record<string, readonly string[]> = {
  [SEEDS.pending]: ['submit', 'review', 'approve'],
  [SEEDS.canceled]: ['submit', 'review', 'approve'],
  [SEEDS.init]: ['submit', 'review', 'approve'],
  [SEEDS.locked]: ['submit', 'review', 'approve'],
  [SEEDS.completed]: ['validate', 'charge', 'reserve', 'ship'],
  [SEEDS.failed]: ['validate', 'charge', 'reserve', 'ship'],
  [SEEDS.billing]: ['invoice', 'collect', 'notify'],
}

/** A route's path with only well-formed parameters (a node of the instance's workflow, mostly). */
const validPath = (template: string) =>
  fc
    .record({
      id: knownId,
      other: fc.constantFrom(...NODES),
      pick: fc.nat(),
      own: fc.boolean(),
      type: fc.constantFrom(...WORKFLOW_TYPES, 'nope'),
      name: fc.constantFrom('nightly', 'n1', 'fz.sched-1', 'ghost'),
    })
    .map(({ id, other, pick, own, type, name }) => {
      const nodes = Object.hasOwn(NODES_OF, id) ? NODES_OF[id] : undefined
      const node = own && nodes ? (nodes[pick % nodes.length] ?? other) : other
      return template.replace('{id}', id).replace('{node}', node).replace('{type}', type).replace('{name}', name)
    })

const BODY_REQUIRED: readonly RouteKey[] = ['create', 'event', 'putSchedule']

/** A request to one route that breaks nothing on purpose: it should mostly succeed, or fail on the state. */
const validRequest = (key: RouteKey): fc.Arbitrary<FuzzRequest> => {
  const route = ROUTES[key]
  const body = BODIES[key]?.valid.map(render)
  return fc
    .record(
      {
        method: fc.constant(route.method),
        path: validPath(route.template),
        query: VALID_QUERIES[key] ?? fc.constant({}),
        base64: fc.oneof(
          { weight: 8, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: fc.constant('encoded' as const) },
        ),
        ...(body ? { body } : {}),
      },
      {
        requiredKeys: ['method', 'path', 'query', 'base64', ...(BODY_REQUIRED.includes(key) ? ['body' as const] : [])],
      },
    )
    .map(({ base64, ...request }) => clean(request.body === undefined ? request : { ...request, base64 }))
}

/**
 * A request to one route with noise everywhere: another method now and then, any path parameter, any query, any
 * body field off, a stray body, another content type.
 */
const noisyRequest = (key: RouteKey): fc.Arbitrary<FuzzRequest> => {
  const route = ROUTES[key]
  const bodies = BODIES[key]
  const body = bodies
    ? fc.oneof(
        { weight: 10, arbitrary: bodies.noisy.map(render) },
        { weight: 1, arbitrary: strayBody.map(render) },
        { weight: 1, arbitrary: fc.constant(undefined) },
      )
    : fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: strayBody.map(render) })
  return fc
    .record(
      {
        method: fc.oneof({ weight: 12, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: anyMethod }),
        path: fc.oneof(routePath(route.template), validPath(route.template)),
        query: fc.oneof(anyQuery, VALID_QUERIES[key] ?? anyQuery),
        body,
        contentType: fc.oneof(
          { weight: 12, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: anyContentType },
        ),
      },
      { requiredKeys: ['method', 'path'] },
    )
    .map(clean)
}

/** A request to one route: valid in about two cases out of five, noisy otherwise. */
export const routeRequest = (key: RouteKey): fc.Arbitrary<FuzzRequest> =>
  fc.oneof({ weight: 2, arbitrary: validRequest(key) }, { weight: 3, arbitrary: noisyRequest(key) })

/** Drops keys whose value is undefined (exactOptionalPropertyTypes, and shorter counterexamples). */
export const clean = (request: {
  method: string
  path: string
  query?: Record<string, string> | undefined
  body?: string | undefined
  contentType?: string | null | undefined
  base64?: 'encoded' | 'junk' | undefined
}): FuzzRequest => {
  const result: FuzzRequest = { method: request.method, path: request.path }
  // API Gateway leaves queryStringParameters out when there is no query string.
  if (request.query !== undefined && Object.keys(request.query).length > 0) result.query = request.query
  if (request.body !== undefined) result.body = request.body
  if (request.contentType !== undefined) result.contentType = request.contentType
  if (request.base64 !== undefined) result.base64 = request.base64
  return result
}

export const ALL_ROUTE_KEYS = ROUTE_KEYS
export const WRITE_ROUTES: readonly RouteKey[] = [
  'create',
  'run',
  'cancel',
  'restart',
  'nodeRestart',
  'event',
  'putSchedule',
]
