import { createHash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { StoreError } from '../../core/errors.js'
import type { JsonObject, JsonValue } from '../../core/json.js'
import { instanceStoredBytes } from '../../core/limits.js'
import { INSTANCE_STATUSES, STORED_NODE_STATUSES } from '../../core/statuses.js'
import type { FailureSummary, HistoryEntry, InstanceRecord, NodeEventRecord, NodeRecord } from '../../core/store.js'
import { HISTORY_ORIGINS, type HistoryKind } from '../../schemas/history.js'
import {
  arrivalFromItem,
  arrivalSideKeys,
  storedArrivalsSchema,
  storedWaitSchema,
  waitFromItem,
  waitToItem,
} from './callback-items.js'
import { createdKey, dueShardFor, instanceIdOf, instanceKey, instancePk, SK } from './keys.js'
import { outboxFromItem, outboxItemSchema, outboxToItem } from './outbox-items.js'
import { INLINE_EVENT_BYTES, INLINE_INPUT_BYTES, INLINE_PAYLOAD_BYTES } from './write-layout.js'

/**
 * Stored item shapes. Node records use short attribute names because every write is billed by the size of the
 * whole instance item (1 WCU per KB): see the README's table layout for the long names.
 */
export const ITEM_SCHEMA_VERSION = 2

const jsonText = z.string()

const storedNodeSchema = z.object({
  st: z.enum(STORED_NODE_STATUSES),
  fc: z.number().int().optional(),
  caMs: z.number(),
  uaMs: z.number(),
  n: z.number().int().optional(),
  w: z.number().int().optional(),
  naMs: z.number().optional(),
  evTs: z.number().optional(),
  o: jsonText.optional(),
  wc: jsonText.optional(),
  pc: jsonText.optional(),
  rr: z.boolean().optional(),
  /** Key of the prior input (in `pin`) the node ran with. */
  ir: z.string().optional(),
  /** Worker calls started. */
  c: z.number().int().optional(),
  /** The attempt in flight: step, start time, fence. */
  as: z.object({ s: z.enum(['run', 'check']), ms: z.number(), f: z.number().int() }).optional(),
  /** The payload (o, wc, pc) is out of line: the sort key of its item, and the hash of its content. */
  pr: z.string().optional(),
  ph: z.string().optional(),
  /** The node's callback wait (see callback-items.ts). */
  cw: storedWaitSchema.optional(),
})
export type StoredNode = z.infer<typeof storedNodeSchema>

/** An event: its content inline (`c`), or the sort key of the item holding it (`r`). */
const storedEventSchema = z.object({
  ts: z.number(),
  c: jsonText.optional(),
  r: z.string().optional(),
  rMs: z.number(),
})
export type StoredEvent = z.infer<typeof storedEventSchema>

/**
 * A history entry as the instance item holds it, billed by the byte: one-letter names, the kind and status as
 * one- or two-letter codes, the attempt only when it is not 1 (README, "Table layout").
 */
const KIND_CODES = {
  created: 'c',
  node: 'n',
  event: 'e',
  error: 'x',
  restart: 'r',
  cancel: 'k',
  parked: 'p',
  finished: 'f',
} as const satisfies Record<HistoryKind, string>
const STATUS_CODES: Record<string, string> = {
  running: 'r',
  pending: 'p',
  finishing: 'fi',
  completed: 'c',
  failed: 'f',
  canceled: 'x',
  restarting: 'rs',
  init: 'i',
}
const invert = (codes: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(codes).map(([name, code]) => [code, name]))
const KIND_NAMES = invert(KIND_CODES) as Record<string, HistoryKind>
const STATUS_NAMES = invert(STATUS_CODES)

/** An entry with free text (an error, a parking) as a map with one-letter names. */
const mappedEntrySchema = z.object({
  k: z.enum(Object.values(KIND_CODES) as [string, ...string[]]),
  t: z.number(),
  n: z.string().optional(),
  s: z.string().optional(),
  a: z.number().int().optional(),
  d: z.number().optional(),
  e: z.number().optional(),
  r: z.number().optional(),
  c: z.string().optional(),
  m: z.string().optional(),
  p: z.string().optional(),
  o: z.enum(HISTORY_ORIGINS).optional(),
})

/**
 * Every other entry as one string, about 40 % smaller than the map: `k|t|n|s|a|d|e|r|o` (time in base 36, trailing
 * empty fields left out). Node ids, status codes and origins never contain `|`.
 */
const packedEntrySchema = z.string().regex(/^[a-z](\|[^|]*){1,8}$/)

const storedEntrySchema = z.union([packedEntrySchema, mappedEntrySchema])
export type StoredEntry = z.infer<typeof storedEntrySchema>

/** Kinds whose entries carry an attempt (stored only when it is not 1). */
const WITH_ATTEMPT: ReadonlySet<HistoryKind> = new Set(['node', 'error'])

const optionalNumber = (text: string | undefined, radix = 10): number | undefined =>
  text === undefined || text === '' ? undefined : Number.parseInt(text, radix)

export const entryToItem = (entry: HistoryEntry): StoredEntry => {
  const status = entry.status === undefined ? undefined : (STATUS_CODES[entry.status] ?? entry.status)
  const attempt = entry.attempt !== undefined && entry.attempt !== 1 ? entry.attempt : undefined
  if (entry.message === undefined && entry.errorClass === undefined && entry.code === undefined) {
    const fields = [
      KIND_CODES[entry.kind],
      entry.atMs.toString(36),
      entry.nodeId ?? '',
      status ?? '',
      attempt?.toString() ?? '',
      entry.durationMs?.toString() ?? '',
      entry.eventTs?.toString() ?? '',
      entry.replacesTs?.toString() ?? '',
      entry.origin ?? '',
    ]
    while (fields[fields.length - 1] === '') fields.pop()
    return fields.join('|')
  }
  const item: z.infer<typeof mappedEntrySchema> = { k: KIND_CODES[entry.kind], t: entry.atMs }
  if (entry.nodeId !== undefined) item.n = entry.nodeId
  if (status !== undefined) item.s = status
  if (attempt !== undefined) item.a = attempt
  if (entry.durationMs !== undefined) item.d = entry.durationMs
  if (entry.eventTs !== undefined) item.e = entry.eventTs
  if (entry.replacesTs !== undefined) item.r = entry.replacesTs
  if (entry.errorClass !== undefined) item.c = entry.errorClass
  if (entry.message !== undefined) item.m = entry.message
  if (entry.code !== undefined) item.p = entry.code
  if (entry.origin !== undefined) item.o = entry.origin
  return item
}

export const entryFromItem = (item: StoredEntry): HistoryEntry => {
  const stored =
    typeof item === 'string'
      ? (() => {
          const [k, t, n, s, a, d, e, r, o] = item.split('|')
          return {
            k: k as string,
            t: Number.parseInt(t ?? '0', 36),
            n: n || undefined,
            s: s || undefined,
            a: optionalNumber(a),
            d: optionalNumber(d),
            e: optionalNumber(e),
            r: optionalNumber(r),
            o: mappedEntrySchema.shape.o.parse(o || undefined),
          }
        })()
      : item
  const kind = KIND_NAMES[stored.k]
  if (kind === undefined || !Number.isFinite(stored.t)) throw corrupt(`history entry ${JSON.stringify(item)}`)
  const entry: HistoryEntry = { atMs: stored.t, kind }
  if (stored.n !== undefined) entry.nodeId = stored.n
  if (stored.s !== undefined) entry.status = STATUS_NAMES[stored.s] ?? stored.s
  if (stored.a !== undefined) entry.attempt = stored.a
  else if (WITH_ATTEMPT.has(kind)) entry.attempt = 1
  if (stored.d !== undefined) entry.durationMs = stored.d
  if (stored.e !== undefined) entry.eventTs = stored.e
  if (stored.r !== undefined) entry.replacesTs = stored.r
  if (typeof item !== 'string') {
    if (item.c !== undefined) entry.errorClass = item.c
    if (item.m !== undefined) entry.message = item.m
    if (item.p !== undefined) entry.code = item.p
  }
  if (stored.o !== undefined) entry.origin = stored.o
  return entry
}

export const instanceItemSchema = z.object({
  pk: z.string(),
  sk: z.literal(SK.instance),
  v: z.literal(ITEM_SCHEMA_VERSION),
  wfType: z.string(),
  businessId: z.string().optional(),
  status: z.enum(INSTANCE_STATUSES),
  /** The input inline, or the sort key of the item holding it. */
  input: jsonText.optional(),
  inr: z.string().optional(),
  createdAtMs: z.number(),
  updatedAtMs: z.number(),
  createdKey: z.string(),
  defVersion: z.string(),
  nodes: z.record(z.string(), storedNodeSchema),
  events: z.record(z.string(), storedEventSchema),
  evSeq: z.number().int(),
  fence: z.number().int(),
  leaseOwner: z.string().optional(),
  leaseUntilMs: z.number().optional(),
  dueAtMs: z.number().optional(),
  dueShard: z.string().optional(),
  reqHash: z.string().optional(),
  startAtMs: z.number().optional(),
  /** Parked: code (projected into the list indexes), reason and time. */
  parkCode: z.string().optional(),
  parkReason: z.string().optional(),
  parkAtMs: z.number().optional(),
  farWakeAtMs: z.number().optional(),
  /** The failure summary as JSON text: node, reason, time. */
  failure: jsonText.optional(),
  /** Inputs replaced by restarts that completed nodes ran with, as JSON text of a map key → input. */
  pin: jsonText.optional(),
  pinr: z.string().optional(),
  /** Archive items holding settled node records, oldest first (a record in a later one, or inline, wins). */
  arc: z.array(z.string()).optional(),
  /** What the instance stores as the engine counts it; every write adds its difference (see limits.ts). */
  bytes: z.number().optional(),
  /** The table's TTL attribute: a finished instance is deleted after this time (epoch seconds). */
  expiresAt: z.number().optional(),
  /** How many fenced writes the item has taken (see InstanceRecord.writeSeq). */
  wseq: z.number().int().optional(),
  /** The recent history entries (older ones are in archive items), the seq of the first, and how many were dropped. */
  h: z.array(storedEntrySchema).optional(),
  hb: z.number().int().optional(),
  hd: z.number().int().optional(),
  /** Callback completions and heartbeats by node, stored without the lease (see callback-items.ts). */
  cb: storedArrivalsSchema.optional(),
  /** The outbox of lifecycle events and its index mark (see outbox-items.ts). */
  ...outboxItemSchema.shape,
})
export type InstanceItem = z.infer<typeof instanceItemSchema>

const parseJson = (text: string | undefined, fallback: JsonValue): JsonValue =>
  text === undefined ? fallback : (JSON.parse(text) as JsonValue)

const textBytes = (text: string | undefined): number => (text === undefined ? 0 : Buffer.byteLength(text, 'utf8'))

/** Items in an instance's partition besides the instance item; each is written once and never changed. */
export const payloadItemSchema = z.object({ o: jsonText.optional(), wc: jsonText.optional(), pc: jsonText.optional() })
const eventItemSchema = z.object({ c: jsonText })
const inputItemSchema = z.object({ d: jsonText })
/** Settled node records, and the history entries moved out with them (`hb`: the seq of the first). */
export const archiveItemSchema = z.object({
  nodes: z.record(z.string(), storedNodeSchema),
  h: z.array(storedEntrySchema).optional(),
  hb: z.number().int().optional(),
})

/** A side item as written: keys, content, and the time to live that retires it if nothing refers to it any more. */
export type SideItem = { pk: string; sk: string; expiresAt?: number } & Record<string, unknown>

const corrupt = (what: string): StoreError =>
  new StoreError(`stored instance is malformed: ${what}`, false, {
    code: 'CORRUPT_ITEM',
  })

const unique = (): string => randomBytes(9).toString('base64url')

const payloadHash = (o: string | undefined, wc: string | undefined, pc: string | undefined): string =>
  createHash('sha1')
    .update(`${o ?? ''}\u0000${wc ?? ''}\u0000${pc ?? ''}`)
    .digest('base64url')
    .slice(0, 16)

/**
 * Encodes one write over the instance's items: each payload too large to be inline goes into an item of its own
 * (collected in `sideItems`, to be written before the instance item that refers to them), an unchanged payload keeps
 * the item it is in (recognised by its hash), and settled records can be gathered into an archive item.
 */
export class ItemPlanner {
  readonly sideItems: SideItem[] = []
  readonly #pk: string

  constructor(
    instanceId: string,
    /** Epoch seconds after which the side items written now may be deleted; undefined keeps them. */
    readonly expiresAt: number | undefined,
    /** Part of every new side item's key: orders items by the writer that made them. */
    readonly writer: string,
  ) {
    this.#pk = instancePk(instanceId)
  }

  #side(prefix: string, content: Record<string, unknown>): string {
    const sk = `${prefix}${this.writer}#${unique()}`
    const item: SideItem = { pk: this.#pk, sk, ...content }
    if (this.expiresAt !== undefined) item.expiresAt = this.expiresAt
    this.sideItems.push(item)
    return sk
  }

  /** A node record as stored; `known`, the node as stored before, lets an unchanged large payload keep its item. */
  node(nodeId: string, node: NodeRecord, known?: StoredNode): StoredNode {
    const item: StoredNode = { st: node.status, caMs: node.createdAtMs, uaMs: node.updatedAtMs }
    // Defaults are left out to keep the item small.
    if (node.failCount) item.fc = node.failCount
    if (node.attempt !== 1) item.n = node.attempt
    if (node.waits) item.w = node.waits
    if (node.nextAttemptAtMs !== undefined) item.naMs = node.nextAttemptAtMs
    if (node.seenEventTs !== undefined) item.evTs = node.seenEventTs
    if (node.resetOnRestart) item.rr = true
    if (node.inputRef !== undefined) item.ir = node.inputRef
    if (node.calls) item.c = node.calls
    if (node.attemptStarted) {
      item.as = { s: node.attemptStarted.step, ms: node.attemptStarted.atMs, f: node.attemptStarted.fence }
    }
    if (node.callback) item.cw = waitToItem(node.callback)
    const o = Object.keys(node.output).length ? JSON.stringify(node.output) : undefined
    const wc = node.workflowContext === undefined ? undefined : JSON.stringify(node.workflowContext)
    const pc = node.preNodeContext === undefined ? undefined : JSON.stringify(node.preNodeContext)
    if (textBytes(o) + textBytes(wc) + textBytes(pc) <= INLINE_PAYLOAD_BYTES) {
      if (o !== undefined) item.o = o
      if (wc !== undefined) item.wc = wc
      if (pc !== undefined) item.pc = pc
      return item
    }
    const hash = payloadHash(o, wc, pc)
    item.pr =
      known?.pr !== undefined && known.ph === hash
        ? known.pr
        : this.#side(`${SK.payload}${nodeId}#`, { ...(o ? { o } : {}), ...(wc ? { wc } : {}), ...(pc ? { pc } : {}) })
    item.ph = hash
    return item
  }

  nodes(nodes: Record<string, NodeRecord>): Record<string, StoredNode> {
    return Object.fromEntries(Object.entries(nodes).map(([id, node]) => [id, this.node(id, node)]))
  }

  event(nodeId: string, event: NodeEventRecord): StoredEvent {
    const c = JSON.stringify(event.content)
    if (textBytes(c) <= INLINE_EVENT_BYTES) return { ts: event.eventTs, c, rMs: event.receivedAtMs }
    return { ts: event.eventTs, r: this.#side(`${SK.event}${nodeId}#`, { c }), rMs: event.receivedAtMs }
  }

  /** An input (or the prior inputs' map) as `{ text }` inline or `{ ref }` to its own item. */
  input(value: unknown): { text: string } | { ref: string } {
    const text = JSON.stringify(value)
    return textBytes(text) <= INLINE_INPUT_BYTES ? { text } : { ref: this.#side(SK.input, { d: text }) }
  }

  /** Gathers settled records (and history entries, `base` the seq of the first) into one new archive item. */
  archive(nodes: Record<string, StoredNode>, history?: { base: number; entries: readonly StoredEntry[] }): string {
    return this.#side(SK.archive, {
      nodes,
      ...(history?.entries.length ? { h: [...history.entries], hb: history.base } : {}),
    })
  }
}

export const failureToItem = (failure: FailureSummary): string => JSON.stringify(failure)

const mapValues = <A, B>(record: Record<string, A>, fn: (value: A, key: string) => B): Record<string, B> =>
  Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value, key)]))

/** The instance item of a new instance with its first history entries; its side items are left in `planner.sideItems`. */
export const recordToItem = (
  record: InstanceRecord,
  planner: ItemPlanner = new ItemPlanner(record.id, undefined, '0'),
  history: readonly HistoryEntry[] = [],
): InstanceItem => {
  const item: InstanceItem = {
    ...instanceKey(record.id),
    v: ITEM_SCHEMA_VERSION,
    wfType: record.workflowType,
    status: record.status,
    createdAtMs: record.createdAtMs,
    updatedAtMs: record.updatedAtMs,
    createdKey: createdKey(record.createdAtMs, record.id),
    defVersion: record.definitionVersion,
    nodes: planner.nodes(record.nodes),
    events: mapValues(record.events, (event, nodeId) => planner.event(nodeId, event)),
    evSeq: record.eventSeq,
    fence: record.fence,
  }
  const input = planner.input(record.input)
  if ('text' in input) item.input = input.text
  else item.inr = input.ref
  if (record.businessId !== undefined) item.businessId = record.businessId
  if (record.leaseOwner !== undefined) item.leaseOwner = record.leaseOwner
  if (record.leaseUntilMs !== undefined) item.leaseUntilMs = record.leaseUntilMs
  if (record.dueAtMs !== undefined) {
    item.dueAtMs = record.dueAtMs
    item.dueShard = dueShardFor(record.id)
  }
  if (record.requestHash !== undefined) item.reqHash = record.requestHash
  if (record.startAtMs !== undefined) item.startAtMs = record.startAtMs
  if (record.parked !== undefined) {
    item.parkCode = record.parked.code
    item.parkReason = record.parked.reason
    item.parkAtMs = record.parked.atMs
  }
  if (record.farWakeAtMs !== undefined) item.farWakeAtMs = record.farWakeAtMs
  if (record.failure !== undefined) item.failure = failureToItem(record.failure)
  if (record.priorInputs !== undefined) {
    const prior = planner.input(record.priorInputs)
    if ('text' in prior) item.pin = prior.text
    else item.pinr = prior.ref
  }
  item.bytes = record.storedBytes ?? instanceStoredBytes(record)
  if (record.expiresAtSeconds !== undefined) item.expiresAt = record.expiresAtSeconds
  // Always a list, so that writes under the lease can append to it by index (see writeUnderLeaseParams).
  item.h = history.map(entryToItem)
  Object.assign(item, outboxToItem(record.id, record.outbox))
  return item
}

/** Parses an instance item; a malformed item is a store fault, never silently accepted. */
export const parseInstanceItem = (raw: unknown): InstanceItem => {
  const parsed = instanceItemSchema.safeParse(raw)
  if (!parsed.success) {
    throw corrupt(`${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`)
  }
  return parsed.data
}

/** Whether the instance item refers to items of its partition (then a read needs the partition, not the item). */
export const refersToSideItems = (item: InstanceItem): boolean => sideItemKeys(item).length > 0

/** The sort keys of the items of its partition the instance item refers to. */
export const sideItemKeys = (item: InstanceItem): string[] =>
  [
    item.inr,
    item.pinr,
    ...(item.arc ?? []),
    ...Object.values(item.nodes).map((node) => node.pr),
    ...Object.values(item.events).map((event) => event.r),
    ...arrivalSideKeys(item.cb),
  ].filter((key): key is string => key !== undefined)

/**
 * The instance from its item and the side items it refers to (by sort key). `partial`: a side item that is
 * missing reads as empty content instead of a fault — only for the conditions' answers, which need the lease,
 * due time and statuses, never the payloads.
 */
export const recordFromItems = (
  raw: unknown,
  side: ReadonlyMap<string, Record<string, unknown>> = new Map(),
  options: { partial?: boolean } = {},
): InstanceRecord => recordFromInstanceItem(parseInstanceItem(raw), side, options)

/** As recordFromItems, from an instance item already parsed (it is parsed once per read). */
export const recordFromInstanceItem = (
  item: InstanceItem,
  side: ReadonlyMap<string, Record<string, unknown>> = new Map(),
  options: { partial?: boolean } = {},
): InstanceRecord => {
  const sideItem = <T>(sk: string, schema: z.ZodType<T>): T | undefined => {
    const found = side.get(sk)
    if (found === undefined) {
      if (options.partial) return undefined
      throw corrupt(`the instance item refers to '${sk}', which is not stored`)
    }
    const parsed = schema.safeParse(found)
    if (!parsed.success) throw corrupt(`item '${sk}': ${parsed.error.issues[0]?.message}`)
    return parsed.data
  }
  const nodeFromItem = (stored: StoredNode): NodeRecord => {
    let { o, wc, pc } = stored
    if (stored.pr !== undefined) ({ o, wc, pc } = sideItem(stored.pr, payloadItemSchema) ?? {})
    const node: NodeRecord = {
      status: stored.st,
      failCount: stored.fc ?? 0,
      createdAtMs: stored.caMs,
      updatedAtMs: stored.uaMs,
      attempt: stored.n ?? 1,
      waits: stored.w ?? 0,
      output: parseJson(o, {}) as JsonObject,
    }
    if (stored.naMs !== undefined) node.nextAttemptAtMs = stored.naMs
    if (stored.evTs !== undefined) node.seenEventTs = stored.evTs
    if (wc !== undefined) node.workflowContext = parseJson(wc, {}) as JsonObject
    if (pc !== undefined) node.preNodeContext = parseJson(pc, {}) as JsonObject
    if (stored.rr) node.resetOnRestart = true
    if (stored.ir !== undefined) node.inputRef = stored.ir
    if (stored.c) node.calls = stored.c
    if (stored.as) node.attemptStarted = { step: stored.as.s, atMs: stored.as.ms, fence: stored.as.f }
    if (stored.cw) node.callback = waitFromItem(stored.cw)
    return node
  }
  const nodes: Record<string, NodeRecord> = {}
  for (const [id, stored] of Object.entries(storedNodesOf(item, side, options))) nodes[id] = nodeFromItem(stored)
  const text = (inline: string | undefined, ref: string | undefined): string | undefined =>
    ref === undefined ? inline : sideItem(ref, inputItemSchema)?.d
  const record: InstanceRecord = {
    id: instanceIdOf(item.pk),
    workflowType: item.wfType,
    status: item.status,
    input: parseJson(text(item.input, item.inr), {}) as JsonObject,
    createdAtMs: item.createdAtMs,
    updatedAtMs: item.updatedAtMs,
    definitionVersion: item.defVersion,
    nodes,
    events: mapValues(item.events, (event) => ({
      eventTs: event.ts,
      content: parseJson(event.r === undefined ? event.c : sideItem(event.r, eventItemSchema)?.c, null),
      receivedAtMs: event.rMs,
    })),
    eventSeq: item.evSeq,
    fence: item.fence,
  }
  if (item.businessId !== undefined) record.businessId = item.businessId
  if (item.leaseOwner !== undefined) record.leaseOwner = item.leaseOwner
  if (item.leaseUntilMs !== undefined) record.leaseUntilMs = item.leaseUntilMs
  if (item.dueAtMs !== undefined) record.dueAtMs = item.dueAtMs
  if (item.reqHash !== undefined) record.requestHash = item.reqHash
  if (item.startAtMs !== undefined) record.startAtMs = item.startAtMs
  if (item.parkCode !== undefined) {
    record.parked = { code: item.parkCode, reason: item.parkReason ?? '', atMs: item.parkAtMs ?? 0 }
  }
  if (item.farWakeAtMs !== undefined) record.farWakeAtMs = item.farWakeAtMs
  if (item.failure !== undefined) record.failure = JSON.parse(item.failure) as FailureSummary
  const pin = text(item.pin, item.pinr)
  if (pin !== undefined) record.priorInputs = JSON.parse(pin) as Record<string, JsonObject>
  if (item.bytes !== undefined) record.storedBytes = item.bytes
  if (item.expiresAt !== undefined) record.expiresAtSeconds = item.expiresAt
  if (item.cb !== undefined && Object.keys(item.cb).length) {
    record.callbacks = mapValues(item.cb, (arrival) => arrivalFromItem(arrival, (ref) => text(undefined, ref)))
  }
  const outbox = outboxFromItem(item)
  if (outbox !== undefined) record.outbox = outbox
  return record
}

/** An instance item that refers to nothing else (a record read from it alone), or a fault. */
export const recordFromItem = (raw: unknown): InstanceRecord => recordFromItems(raw)

/** A node record as the instance item stores it when its payload is inline (a planner without side items). */
export const nodeToItem = (node: NodeRecord, nodeId = 'node'): StoredNode =>
  new ItemPlanner('-', undefined, '0').node(nodeId, node)

/**
 * Every node's record as stored: the archived ones from the archive items the instance item refers to (a record in
 * a later one wins), then those in the instance item itself, which win over any archived copy.
 */
export const storedNodesOf = (
  item: InstanceItem,
  side: ReadonlyMap<string, Record<string, unknown>>,
  options: { partial?: boolean } = {},
): Record<string, StoredNode> => {
  const nodes: Record<string, StoredNode> = {}
  for (const sk of item.arc ?? []) {
    const found = side.get(sk)
    if (found === undefined) {
      if (options.partial) continue
      throw corrupt(`the instance item refers to '${sk}', which is not stored`)
    }
    const parsed = archiveItemSchema.safeParse(found)
    if (!parsed.success) throw corrupt(`item '${sk}': ${parsed.error.issues[0]?.message}`)
    Object.assign(nodes, parsed.data.nodes)
  }
  return Object.assign(nodes, item.nodes)
}
