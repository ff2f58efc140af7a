import { createHash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { StoreError } from '../../core/errors.js'
import { type JsonObject, type JsonValue, jsonSizeBytes, payloadText } from '../../core/json.js'
import { armAttempt } from '../../core/lease-rules.js'
import { instanceStoredBytes, nodePayloadBytes } from '../../core/limits.js'
import type {
  FailureSummary,
  HistoryEntry,
  InstanceRecord,
  NextAttempt,
  NodeEventRecord,
  NodeRecord,
  UnreadParts,
} from '../../core/store.js'
import { HISTORY_ORIGINS, type HistoryKind, type HistoryOrigin } from '../../schemas/history-kinds.js'
import { parkCodeSchema } from '../../schemas/park-codes.js'
import {
  type InstanceStatus,
  type SkipReason,
  type StoredNodeStatus,
  TERMINAL_NODE_STATUSES,
} from '../../schemas/statuses.js'
import {
  arrivalFromItem,
  arrivalSideKeys,
  storedArrivalsSchema,
  storedWaitSchema,
  waitFromItem,
  waitToItem,
} from './callback-items.js'
import { invert } from './codes.js'
import { createdAtOf, createdKey, dueShardFor, instanceIdOf, instanceKey, instancePk, SK } from './keys.js'
import { outboxFromItem, outboxItemSchema, outboxToItem } from './outbox-items.js'
import { INLINE_ARRIVAL_BYTES, INLINE_EVENT_BYTES, INLINE_INPUT_BYTES, INLINE_PAYLOAD_BYTES } from './write-layout.js'

/**
 * Stored item shapes (README, "Table layout"). Every write is billed by the size of the whole instance item (1 WCU
 * per KB), so the instance item uses short attribute names and codes, and times relative to the instance's creation;
 * the attributes the indexes and the table's TTL use keep their names.
 */
export const ITEM_SCHEMA_VERSION = 6

const jsonText = z.string()

/** Node statuses as the item stores them. */
const STATUS_CODES = {
  running: 'r',
  pending: 'p',
  finishing: 'fi',
  completed: 'c',
  failed: 'f',
  canceled: 'x',
  restarting: 'rs',
  skipped: 's',
} as const satisfies Record<StoredNodeStatus, string>
const STATUS_NAMES = invert<StoredNodeStatus>(STATUS_CODES)

/**
 * An instance's status as stored: one or two letters (the list indexes project it and filter on it, in these
 * codes). Every reader of the item decodes it with `instanceStatusOf`.
 */
export const INSTANCE_STATUS_CODES = {
  init: 'i',
  running: 'r',
  completed: 'c',
  failed: 'f',
  canceled: 'x',
  timed_out: 't',
} as const satisfies Record<InstanceStatus, string>
const INSTANCE_STATUS_NAMES = invert<InstanceStatus>(INSTANCE_STATUS_CODES)
export const storedInstanceStatusSchema = z.enum(Object.values(INSTANCE_STATUS_CODES) as [string, ...string[]])
export const instanceStatusOf = (code: string): InstanceStatus => INSTANCE_STATUS_NAMES[code] as InstanceStatus

/** The stored codes of the terminal node statuses (a condition on an event for a finished node names them). */
export const TERMINAL_NODE_CODES: readonly string[] = TERMINAL_NODE_STATUSES.map(
  (status) => STATUS_CODES[status as StoredNodeStatus],
)

export const nodeStatusCode = (status: StoredNodeStatus): string => STATUS_CODES[status]

/** Worker calls a record counts when it stores none (`c`): most nodes made one; a skipped node made none. */
const defaultCalls = (status: StoredNodeStatus): number => (status === 'skipped' ? 0 : 1)

/**
 * Skip reasons as stored (`sr`, and the code of a skip's history entry): a skipped node is a few bytes in every later
 * write of the instance item, so its record is kept as small as it can be.
 */
const SKIP_REASON_CODES = {
  condition_false: 'cf',
  not_chosen: 'nc',
  upstream_skipped: 'us',
  upstream_failed: 'uf',
  not_started: 'ns',
} as const satisfies Record<SkipReason, string>
const SKIP_REASON_NAMES = invert<SkipReason>(SKIP_REASON_CODES)

const storedNodeSchema = z.object({
  /** Status code. */
  s: z.string(),
  /** Created (left out when it equals updated: a node skipped when it was decided) and updated, in ms after the instance's creation. */
  a: z.number().optional(),
  u: z.number(),
  fc: z.number().int().optional(),
  /** Attempt (1 + restarts) when it is not 1. */
  at: z.number().int().optional(),
  w: z.number().int().optional(),
  /** Next attempt, in ms after the instance's creation. */
  na: z.number().optional(),
  /** `event_ts` of the event the last execution saw (seconds). */
  et: z.number().optional(),
  /** When that event was received, in ms after the instance's creation (with `et`, it names the event). */
  er: z.number().optional(),
  o: jsonText.optional(),
  wc: jsonText.optional(),
  pc: jsonText.optional(),
  /** The payload (o, wc, pc) out of line: `<sort key>|<hash>|<bytes>`. */
  p: z.string().optional(),
  rr: z.boolean().optional(),
  /** Key of the prior input (in `pi`) the node ran with. */
  ir: z.string().optional(),
  /** Worker calls started, when not 1. */
  c: z.number().int().optional(),
  /** The attempt in flight: `<r|c>|<started, ms after creation>|<fence>`. */
  as: z.string().optional(),
  /** The last error and when it happened (epoch seconds). */
  le: z.string().optional(),
  lt: z.number().optional(),
  /** Skip reason of a skipped node (its code). */
  sr: z.enum(Object.values(SKIP_REASON_CODES) as [string, ...string[]]).optional(),
  /** The successor a choice took (null: none). */
  ch: z.string().nullable().optional(),
  /** The callback the node waits for, or last waited for: a short map (see callback-items.ts). */
  cw: storedWaitSchema.optional(),
})
export type StoredNode = z.infer<typeof storedNodeSchema>

/**
 * The two commonest settled records, as the instance item stores them: not a map but one string, for a record stays
 * in every later write of the instance item and a map costs 3 bytes plus a name and a byte per field.
 * - a node skipped when it was decided: `<skip reason code>|<updated>` (`cf|2bs`);
 * - a node completed by one worker call, its output inline: `c|<created>|<updated>|<output JSON>`
 *   (`c|15o|22c|{"step":3}`; created left empty when it equals updated, an empty output as nothing).
 * Times in ms after the instance's creation, base 36. Read back as the record they stand for.
 */
const PACKED_RECORD = /^(?:([a-z]{2})\|([0-9a-z]+)|c\|([0-9a-z]*)\|([0-9a-z]+)\|([\s\S]*))$/
const packedRecordSchema = z
  .string()
  .regex(PACKED_RECORD)
  .transform((packed, ctx): StoredNode => {
    const [, reason, skippedAt, created, updated, output] = PACKED_RECORD.exec(packed) as RegExpExecArray
    if (reason === undefined) {
      const node: StoredNode = { s: STATUS_CODES.completed, u: Number.parseInt(updated as string, 36) }
      if (created) node.a = Number.parseInt(created, 36)
      if (output) node.o = output
      return node
    }
    if (SKIP_REASON_NAMES[reason] === undefined) {
      ctx.addIssue({ code: 'custom', message: `unknown skip reason code '${reason}'` })
      return z.NEVER
    }
    return { s: STATUS_CODES.skipped, u: Number.parseInt(skippedAt as string, 36), sr: reason }
  })
/** A node record as the item holds it: a map, or packed. */
const storedNodeValueSchema = z.union([storedNodeSchema, packedRecordSchema])

const PACKABLE: Readonly<Record<string, ReadonlySet<string>>> = {
  [STATUS_CODES.skipped]: new Set(['s', 'u', 'sr']),
  [STATUS_CODES.completed]: new Set(['s', 'a', 'u', 'o']),
}
const packableTime = (ms: number | undefined): boolean => ms === undefined || (Number.isInteger(ms) && ms >= 0)

/** The stored form of a record: packed when it is one of the two forms above (see `packedRecordSchema`). */
export const packNode = (node: StoredNode): StoredNode | string => {
  const fields = PACKABLE[node.s]
  if (fields === undefined || !packableTime(node.u) || !packableTime(node.a)) return node
  for (const key in node) if (!fields.has(key) && node[key as keyof StoredNode] !== undefined) return node
  if (node.s === STATUS_CODES.completed) {
    const created = node.a === undefined || node.a === node.u ? '' : node.a.toString(36)
    return `c|${created}|${node.u.toString(36)}|${node.o ?? ''}`
  }
  if (node.sr === undefined || node.a !== undefined) return node
  return `${node.sr}|${node.u.toString(36)}`
}

/** Records as stored: see `packNode`. */
export const packNodes = (nodes: Readonly<Record<string, StoredNode>>): Record<string, StoredNode | string> =>
  Object.fromEntries(Object.entries(nodes).map(([id, node]) => [id, packNode(node)]))

/** An event: `t` event_ts, `r` received (ms after creation), content inline (`c`) or in an item (`k`, `b` bytes). */
const storedEventSchema = z.object({
  t: z.number(),
  r: z.number(),
  c: jsonText.optional(),
  k: z.string().optional(),
  b: z.number().optional(),
})
export type StoredEvent = z.infer<typeof storedEventSchema>

/** A prior input (see InstanceRecord.priorInputs): inline text, or the key of its item and its bytes. */
const storedInputSchema = z.object({ t: jsonText.optional(), k: z.string().optional(), b: z.number().optional() })
export type StoredInput = z.infer<typeof storedInputSchema>

/**
 * A history entry as the instance item holds it, billed by the byte: one-letter names, the kind and status as
 * codes, the time in ms after the instance's creation (base 36 in the packed form), the attempt only when not 1.
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
  decision: 'd',
} as const satisfies Record<HistoryKind, string>
/** A status entry names a node's or the instance's status: the two code tables agree where they share a status. */
const ENTRY_STATUS_CODES: Record<string, string> = { ...STATUS_CODES, ...INSTANCE_STATUS_CODES }
const ORIGIN_CODES = {
  api: 'a',
  queue: 'q',
  tick: 't',
  schedule: 's',
  engine: 'e',
} as const satisfies Record<HistoryOrigin, string>
const KIND_NAMES = invert<HistoryKind>(KIND_CODES)
const ENTRY_STATUS_NAMES = invert(ENTRY_STATUS_CODES)
const ORIGIN_NAMES = invert<HistoryOrigin>(ORIGIN_CODES)

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
 * Every other entry as one string: a head, the time (ms after the instance's creation, base 36), then the kind's
 * fields in the order that kind uses them most, trailing empty fields left out (see PACKED_FIELDS). A node status
 * entry's head is its status code in capitals (`C|6t|step1|237`: step1 completed after 237 ms); any other entry's
 * is its kind code (`c|0|e`, `f|bb|c`). Node ids, status codes, origin codes and `p` codes never contain `|`.
 */
const packedEntrySchema = z.string().regex(/^([a-z]|[A-Z]+)(\|[^|]*){1,9}$/)

const storedEntrySchema = z.union([packedEntrySchema, mappedEntrySchema])
export type StoredEntry = z.infer<typeof storedEntrySchema>

type PackedField = 'n' | 's' | 'a' | 'd' | 'e' | 'r' | 'o' | 'p'

/** The fields of a node status entry after its head and time (the status is the head). */
const NODE_FIELDS: readonly PackedField[] = ['n', 'd', 'a', 'p', 'o', 'e', 'r']
/** A skip's entry: the reason right after the node (`S||side1|cf`). */
const SKIP_FIELDS: readonly PackedField[] = ['n', 'p', 'a', 'd', 'o', 'e', 'r']
const nodeFields = (statusCode: string): readonly PackedField[] =>
  statusCode === STATUS_CODES.skipped ? SKIP_FIELDS : NODE_FIELDS
/** The fields of other entries, by kind code: the ones each kind uses first, so that few empty fields are kept. */
const PACKED_FIELDS: Readonly<Record<string, readonly PackedField[]>> = {
  [KIND_CODES.created]: ['o', 'p', 'n', 's', 'a', 'd', 'e', 'r'],
  [KIND_CODES.finished]: ['s', 'p', 'o', 'n', 'a', 'd', 'e', 'r'],
  [KIND_CODES.decision]: ['n', 'p', 's', 'a', 'd', 'e', 'r', 'o'],
}
const GENERIC_FIELDS: readonly PackedField[] = ['n', 's', 'a', 'd', 'e', 'r', 'o', 'p']
const packedFields = (kindCode: string): readonly PackedField[] => PACKED_FIELDS[kindCode] ?? GENERIC_FIELDS

/** Kinds whose entries carry an attempt (stored only when it is not 1). */
const WITH_ATTEMPT: ReadonlySet<HistoryKind> = new Set(['node', 'error'])

const optionalNumber = (text: string | undefined, radix = 10): number | undefined =>
  text === undefined || text === '' ? undefined : Number.parseInt(text, radix)

/** A skipped node's entry carries its skip reason as its code: stored as the reason's short code. */
const isSkipEntry = (entry: Pick<HistoryEntry, 'kind' | 'status'>): boolean =>
  entry.kind === 'node' && entry.status === 'skipped'

/**
 * The entries one write appends, as stored: each after the first of the batch whose time is the one before it
 * leaves its time out (`R||step2`: step2 started when the entry before it happened). A batch is never split by a
 * move (see `batchStartsAt`), so every such entry has the one it refers to before it in the same list.
 */
export const entriesToItems = (entries: readonly HistoryEntry[], baseMs: number): StoredEntry[] =>
  entries.map((entry, index) => entryToItem(entry, baseMs, index > 0 ? entries[index - 1]?.atMs : undefined))

/** Whether a stored entry leaves its time to the entry before it: it cannot be the first of a list. */
export const continuesBatch = (item: StoredEntry): boolean => typeof item === 'string' && item.split('|', 2)[1] === ''

/** The entries of one stored list (the instance item's or an archive's), in order. */
export const entriesFromItems = (items: readonly StoredEntry[], baseMs: number): HistoryEntry[] => {
  let previous: number | undefined
  return items.map((item) => {
    const entry = entryFromItem(item, baseMs, previous)
    previous = entry.atMs
    return entry
  })
}

/**
 * An entry as stored, its time relative to `baseMs` (the instance's creation); with `previousAtMs` (the entry before
 * it in the same write), a packed entry at that same time leaves it out.
 */
export const entryToItem = (given: HistoryEntry, baseMs: number, previousAtMs?: number): StoredEntry => {
  const skipCode =
    isSkipEntry(given) && given.code !== undefined ? SKIP_REASON_CODES[given.code as SkipReason] : undefined
  const entry = skipCode === undefined ? given : { ...given, code: skipCode }
  const status = entry.status === undefined ? undefined : (ENTRY_STATUS_CODES[entry.status] ?? entry.status)
  const attempt = entry.attempt !== undefined && entry.attempt !== 1 ? entry.attempt : undefined
  const t = entry.atMs - baseMs
  if (entry.message === undefined && entry.errorClass === undefined && !entry.code?.includes('|') && t >= 0) {
    const values: Record<PackedField, string> = {
      n: entry.nodeId ?? '',
      s: status ?? '',
      a: attempt?.toString() ?? '',
      d: entry.durationMs?.toString(36) ?? '',
      e: entry.eventTs?.toString() ?? '',
      r: entry.replacesTs?.toString() ?? '',
      o: entry.origin === undefined ? '' : ORIGIN_CODES[entry.origin],
      p: entry.code ?? '',
    }
    const folded = entry.kind === 'node' && status !== undefined && ENTRY_STATUS_NAMES[status] !== undefined
    const head = folded ? (status as string).toUpperCase() : KIND_CODES[entry.kind]
    const time = previousAtMs === entry.atMs ? '' : t.toString(36)
    const order = folded ? nodeFields(status as string) : packedFields(head)
    const fields = [head, time, ...order.map((field) => values[field])]
    while (fields[fields.length - 1] === '') fields.pop()
    return fields.join('|')
  }
  const item: z.infer<typeof mappedEntrySchema> = { k: KIND_CODES[entry.kind], t }
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

/** An entry as stored; `previousAtMs`, the time of the entry before it in its list (for an entry that leaves it out). */
export const entryFromItem = (item: StoredEntry, baseMs: number, previousAtMs?: number): HistoryEntry => {
  const stored =
    typeof item === 'string'
      ? (() => {
          const [head = '', t, ...rest] = item.split('|')
          const nodeStatus = head !== head.toLowerCase() ? head.toLowerCase() : undefined
          const order = nodeStatus === undefined ? packedFields(head) : nodeFields(nodeStatus)
          const field = (name: PackedField) => {
            const at = order.indexOf(name)
            return at < 0 ? undefined : rest[at] || undefined
          }
          return {
            k: nodeStatus === undefined ? head : KIND_CODES.node,
            // No time: the entry before it in the list's (its write's batch).
            t: t === '' && previousAtMs !== undefined ? previousAtMs - baseMs : Number.parseInt(t ?? '', 36),
            n: field('n'),
            s: nodeStatus ?? field('s'),
            a: optionalNumber(field('a')),
            d: optionalNumber(field('d'), 36),
            e: optionalNumber(field('e')),
            r: optionalNumber(field('r')),
            o: ((code) => (code ? ORIGIN_NAMES[code] : undefined))(field('o')),
            p: field('p'),
          }
        })()
      : item
  const kind = KIND_NAMES[stored.k]
  if (kind === undefined || !Number.isFinite(stored.t)) throw corrupt(`history entry ${JSON.stringify(item)}`)
  const entry: HistoryEntry = { atMs: baseMs + stored.t, kind }
  if (stored.n !== undefined) entry.nodeId = stored.n
  if (stored.s !== undefined) entry.status = ENTRY_STATUS_NAMES[stored.s] ?? stored.s
  if (stored.a !== undefined) entry.attempt = stored.a
  else if (WITH_ATTEMPT.has(kind)) entry.attempt = 1
  if (stored.d !== undefined) entry.durationMs = stored.d
  if (stored.e !== undefined) entry.eventTs = stored.e
  if (stored.r !== undefined) entry.replacesTs = stored.r
  if (typeof item !== 'string') {
    if (item.c !== undefined) entry.errorClass = item.c
    if (item.m !== undefined) entry.message = item.m
  }
  if (stored.p !== undefined) entry.code = (isSkipEntry(entry) ? SKIP_REASON_NAMES[stored.p] : undefined) ?? stored.p
  if (stored.o !== undefined) entry.origin = stored.o
  return entry
}

export const instanceItemSchema = z.object({
  pk: z.string(),
  sk: z.literal(SK.instance),
  v: z.literal(ITEM_SCHEMA_VERSION),
  wfType: z.string(),
  businessId: z.string().optional(),
  status: storedInstanceStatusSchema,
  /** The list indexes' sort key: the creation time (the only place the item keeps it, see `createdAtOf`), then the id. */
  createdKey: z.string(),
  /** Definition version. */
  dv: z.string(),
  /** Updated, in ms after creation. */
  ua: z.number(),
  /** The input inline, or the sort key of the item holding it. */
  in: jsonText.optional(),
  ik: z.string().optional(),
  /** The bytes an input in an item of its own counts for. */
  ib: z.number().optional(),
  /** Node records not archived, and events, by node id. */
  n: z.record(z.string(), storedNodeValueSchema),
  e: z.record(z.string(), storedEventSchema),
  /** Grows with every stored event. */
  es: z.number().int(),
  /** The lease's fencing token: raised by every acquisition. */
  f: z.number().int(),
  /** The lease's owner and end (epoch ms), while it is held. */
  lo: z.string().optional(),
  lu: z.number().optional(),
  dueAtMs: z.number().optional(),
  /** The instance's place in the due index: at or before `dueAtMs`, kept while it is near (DUE_PLACE_HORIZON_MS). */
  ds: z.number().optional(),
  dueShard: z.string().optional(),
  /** Fingerprint of an idempotent create. */
  rh: z.string().optional(),
  startAtMs: z.number().optional(),
  /** Parked: code (projected into the list indexes), reason and time. */
  parkCode: parkCodeSchema.optional(),
  parkReason: z.string().optional(),
  parkAtMs: z.number().optional(),
  farWakeAtMs: z.number().optional(),
  /** The failure summary as JSON text: node, reason, time. */
  failure: jsonText.optional(),
  /** Inputs replaced by restarts that completed nodes ran with, one per distinct input. */
  pi: z.record(z.string(), storedInputSchema).optional(),
  /** Node archive items (settled records), oldest first. */
  arc: z.array(z.string()).optional(),
  /** History archive items (entries moved out of the instance item), oldest first. */
  ha: z.array(z.string()).optional(),
  /** What the instance stores as the engine counts it, plus the items pending deletion (see limits.ts). */
  b: z.number().optional(),
  /** Items replaced by a write, deleted right after it, still counted: sort key → bytes. */
  gc: z.record(z.string(), z.number()).optional(),
  /** The table's TTL attribute: a finished instance is deleted after this time (epoch seconds). */
  expiresAt: z.number().optional(),
  /** When the instance times out (its `timeout_seconds` after it started or was restarted; epoch ms). */
  dlMs: z.number().optional(),
  /** How many fenced writes the item has taken. */
  ws: z.number().int().optional(),
  /** The recent history entries (older ones are in history archives), the seq of the first, how many dropped. */
  h: z.array(storedEntrySchema).optional(),
  hb: z.number().int().optional(),
  hd: z.number().int().optional(),
  /**
   * Callback completions and heartbeats that arrived without the lease, by node id, until a pass consumes them (see
   * callback-items.ts; absent on an instance that never waited for a callback).
   */
  cb: storedArrivalsSchema.optional(),
  /**
   * The outbox (see outbox-items.ts): `ob`, the lifecycle events written and not yet published, a string set of
   * short entries; `obShard` and `obAtMs`, the key of the sparse `outbox` index (kept named, as index keys are).
   * Present only from a write that emits events until they are published: a write that emits none carries nothing.
   */
  ob: outboxItemSchema.shape.ob,
  obShard: outboxItemSchema.shape.obShard,
  obAtMs: outboxItemSchema.shape.obAtMs,
  /**
   * The attempt the due time is for, as the last release named it (`<node>|<r|c>`, '' for none, never absent; see
   * InstanceRecord.armNext).
   * A due pass's acquisition copies it to `xn`, with its own time (`xt`, epoch ms) and the fence before it (`xf`):
   * the attempt stands started by that lease until a write of the lease stores the node or releases. An empty `xn`
   * is an acquisition that had none to record; one left by a dead runner stays until the next holder's write.
   */
  nx: z.string().optional(),
  xn: z.string().optional(),
  xt: z.number().optional(),
  xf: z.number().int().optional(),
})
export type InstanceItem = z.infer<typeof instanceItemSchema>

const parseJson = (text: string | undefined, fallback: JsonValue): JsonValue =>
  text === undefined ? fallback : (JSON.parse(text) as JsonValue)

/** The UTF-8 bytes of a stored text (0 when absent). */
export const textBytes = (text: string | undefined): number =>
  text === undefined ? 0 : Buffer.byteLength(text, 'utf8')

/** The bytes of a node's payload texts kept inline in its record (an absent output counts as `{}`). */
export const inlinePayloadBytes = (node: StoredNode): number =>
  textBytes(node.o ?? '{}') + textBytes(node.wc) + textBytes(node.pc)

/** Items in an instance's partition besides the instance item; each is written once and never changed. */
const payloadItemSchema = z.object({ o: jsonText.optional(), wc: jsonText.optional(), pc: jsonText.optional() })
const eventItemSchema = z.object({ c: jsonText })
const inputItemSchema = z.object({ d: jsonText })
/** Settled node records moved out of the instance item together. */
const archiveItemSchema = z.object({ n: z.record(z.string(), storedNodeValueSchema) })
/** History entries moved out of the instance item together (`hb`: the seq of the first). */
const historyArchiveSchema = z.object({ h: z.array(storedEntrySchema), hb: z.number().int() })

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

/** A payload reference: the sort key of its item, the hash of its content, the bytes it counts for. */
interface PayloadRef {
  sk: string
  hash: string
  bytes: number
}

export const payloadRefOf = (node: StoredNode): PayloadRef | undefined => {
  if (node.p === undefined) return undefined
  const [sk = '', hash = '', bytes = '0'] = node.p.split('|')
  return { sk, hash, bytes: Number(bytes) }
}

/** The attempt in flight as stored. */
/** A next attempt as `nx` and `xn` store it: `<node>|<r|c>`. */
export const nextAttemptToItem = (attempt: NextAttempt): string =>
  `${attempt.nodeId}|${attempt.step === 'check' ? 'c' : 'r'}`

export const nextAttemptFromItem = (text: string): NextAttempt | undefined => {
  const at = text.lastIndexOf('|')
  if (at <= 0) return undefined
  return { nodeId: text.slice(0, at), step: text.slice(at + 1) === 'c' ? 'check' : 'run' }
}

const attemptToItem = (started: NonNullable<NodeRecord['attemptStarted']>, baseMs: number): string =>
  `${started.step === 'run' ? 'r' : 'c'}|${started.atMs - baseMs}|${started.fence}`

const attemptFromItem = (text: string, baseMs: number): NonNullable<NodeRecord['attemptStarted']> => {
  const [step, at, fence] = text.split('|')
  return { step: step === 'c' ? 'check' : 'run', atMs: baseMs + Number(at), fence: Number(fence) }
}

/**
 * Encodes one write over the instance's items: each payload too large to be inline goes into an item of its own
 * (collected in `sideItems`, to be written before the instance item that refers to them), and an unchanged payload
 * keeps the item it is in (recognised by its hash).
 */
export class ItemPlanner {
  readonly sideItems: SideItem[] = []
  readonly #pk: string

  constructor(
    instanceId: string,
    /** The instance's creation: stored times are relative to it. */
    readonly baseMs: number,
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

  /**
   * A node record as stored. `known`, the node as stored before, lets an unchanged payload keep its item; with
   * `keepPayload`, the payload is not the record's to give (it was not read): the known one is kept as it is.
   */
  node(nodeId: string, node: NodeRecord, known?: StoredNode, keepPayload = false): StoredNode {
    const base = this.baseMs
    const item: StoredNode = { s: STATUS_CODES[node.status], u: node.updatedAtMs - base }
    if (node.status !== 'skipped' || node.createdAtMs !== node.updatedAtMs) item.a = node.createdAtMs - base
    // Defaults are left out to keep the item small.
    if (node.failCount) item.fc = node.failCount
    if (node.attempt !== 1) item.at = node.attempt
    if (node.waits) item.w = node.waits
    if (node.nextAttemptAtMs !== undefined) item.na = node.nextAttemptAtMs - base
    if (node.seenEventTs !== undefined) item.et = node.seenEventTs
    if (node.seenEventAtMs !== undefined) item.er = node.seenEventAtMs - base
    if (node.resetOnRestart) item.rr = true
    if (node.inputRef !== undefined) item.ir = node.inputRef
    if ((node.calls ?? 0) !== defaultCalls(node.status)) item.c = node.calls ?? 0
    if (node.lastError !== undefined) item.le = node.lastError
    if (node.lastErrorAtSeconds !== undefined) item.lt = node.lastErrorAtSeconds
    if (node.attemptStarted) item.as = attemptToItem(node.attemptStarted, base)
    if (node.skipReason !== undefined) item.sr = SKIP_REASON_CODES[node.skipReason]
    if (node.chosen !== undefined) item.ch = node.chosen
    if (node.callback) item.cw = waitToItem(node.callback, base)
    if (keepPayload && known) {
      for (const key of ['o', 'wc', 'pc', 'p'] as const) if (known[key] !== undefined) item[key] = known[key]
      return item
    }
    const o = Object.keys(node.output).length ? payloadText(node.output) : undefined
    const wc = node.workflowContext === undefined ? undefined : payloadText(node.workflowContext)
    const pc = node.preNodeContext === undefined ? undefined : payloadText(node.preNodeContext)
    const bytes = textBytes(o) + textBytes(wc) + textBytes(pc)
    if (bytes <= INLINE_PAYLOAD_BYTES) {
      if (o !== undefined) item.o = o
      if (wc !== undefined) item.wc = wc
      if (pc !== undefined) item.pc = pc
      return item
    }
    item.p = this.#payloadRef(nodeId, { o, wc, pc }, known, nodePayloadBytes(node))
    return item
  }

  /**
   * A payload's reference (`p`: `<key>|<hash>|<bytes>`): the item `known` (the node as stored before) refers to when
   * it holds the same content, else a new payload item.
   */
  #payloadRef(
    nodeId: string,
    { o, wc, pc }: { o?: string | undefined; wc?: string | undefined; pc?: string | undefined },
    known: StoredNode | undefined,
    bytes: number,
  ): string {
    const hash = payloadHash(o, wc, pc)
    const before = known && payloadRefOf(known)
    const sk =
      before !== undefined && before.hash === hash
        ? before.sk
        : this.#side(`${SK.payload}${nodeId}#`, { ...(o ? { o } : {}), ...(wc ? { wc } : {}), ...(pc ? { pc } : {}) })
    return `${sk}|${hash}|${bytes}`
  }

  /**
   * A stored record whose payload is inline, with that payload moved into a payload item of its own (see
   * DynamoLeaseWriter's `#spilled`): the same content behind a reference, like any large payload. `known`, the
   * node as stored before, lends its item when it holds that same content.
   */
  spill(nodeId: string, node: StoredNode, known?: StoredNode): StoredNode {
    const { o, wc, pc, ...rest } = node
    return { ...rest, p: this.#payloadRef(nodeId, { o, wc, pc }, known, inlinePayloadBytes(node)) }
  }

  event(nodeId: string, event: NodeEventRecord, bytes: number): StoredEvent {
    const c = JSON.stringify(event.content)
    const r = event.receivedAtMs - this.baseMs
    if (textBytes(c) <= INLINE_EVENT_BYTES) return { t: event.eventTs, r, c }
    return { t: event.eventTs, r, k: this.#side(`${SK.event}${nodeId}#`, { c }), b: bytes }
  }

  /** An input as `{ text }` inline or `{ ref }` to its own item. */
  input(value: unknown): { text: string } | { ref: string } {
    const text = JSON.stringify(value)
    return textBytes(text) <= INLINE_INPUT_BYTES ? { text } : { ref: this.#side(SK.input, { d: text }) }
  }

  /**
   * A callback arrival's content (its output, or its error and cause) as JSON text, inline up to
   * INLINE_ARRIVAL_BYTES or in an input item of its own (`d`): arrivals are written beside every waiting node, so
   * their share of the instance item is kept small.
   */
  arrivalContent(text: string): { text: string } | { ref: string } {
    return textBytes(text) <= INLINE_ARRIVAL_BYTES ? { text } : { ref: this.#side(SK.input, { d: text }) }
  }

  /** A prior input, inline or in an item of its own, with the bytes it counts for. */
  priorInput(value: JsonObject, bytes: number): StoredInput {
    const laid = this.input(value)
    return 'text' in laid ? { t: laid.text } : { k: laid.ref, b: bytes }
  }

  /** Gathers settled records into one new archive item. */
  archive(nodes: Record<string, StoredNode>): string {
    return this.#side(SK.archive, { n: packNodes(nodes) })
  }

  /** Gathers history entries (`base` the seq of the first) into one new history archive item. */
  historyArchive(base: number, entries: readonly StoredEntry[]): string {
    return this.#side(SK.history, { h: [...entries], hb: base })
  }
}

export const failureToItem = (failure: FailureSummary): string => JSON.stringify(failure)

const mapValues = <A, B>(record: Record<string, A>, fn: (value: A, key: string) => B): Record<string, B> =>
  Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value, key)]))

/** The instance item of a new instance with its first history entries; its side items are left in `planner.sideItems`. */
export const recordToItem = (
  record: InstanceRecord,
  planner: ItemPlanner = new ItemPlanner(record.id, record.createdAtMs, undefined, '0'),
  history: readonly HistoryEntry[] = [],
): InstanceItem => {
  const base = record.createdAtMs
  const item: InstanceItem = {
    ...instanceKey(record.id),
    v: ITEM_SCHEMA_VERSION,
    wfType: record.workflowType,
    status: INSTANCE_STATUS_CODES[record.status],
    createdKey: createdKey(record.createdAtMs, record.id),
    dv: record.definitionVersion,
    ua: record.updatedAtMs - base,
    n: mapValues(record.nodes, (node, nodeId) => planner.node(nodeId, node)),
    e: mapValues(record.events, (event, nodeId) => planner.event(nodeId, event, jsonSizeBytes(event.content))),
    gc: {},
    es: record.eventSeq,
    f: record.fence,
    b: record.storedBytes ?? instanceStoredBytes(record),
  }
  const input = planner.input(record.input)
  if ('text' in input) item.in = input.text
  else {
    item.ik = input.ref
    item.ib = jsonSizeBytes(record.input)
  }
  if (record.businessId !== undefined) item.businessId = record.businessId
  if (record.leaseOwner !== undefined) item.lo = record.leaseOwner
  if (record.leaseUntilMs !== undefined) item.lu = record.leaseUntilMs
  if (record.dueAtMs !== undefined) {
    item.dueAtMs = record.dueAtMs
    item.ds = record.dueAtMs
    item.dueShard = dueShardFor(record.id)
  }
  if (record.requestHash !== undefined) item.rh = record.requestHash
  if (record.startAtMs !== undefined) item.startAtMs = record.startAtMs
  if (record.parked !== undefined) {
    item.parkCode = record.parked.code
    item.parkReason = record.parked.reason
    item.parkAtMs = record.parked.atMs
  }
  if (record.farWakeAtMs !== undefined) item.farWakeAtMs = record.farWakeAtMs
  if (record.failure !== undefined) item.failure = failureToItem(record.failure)
  if (record.priorInputs !== undefined) {
    item.pi = mapValues(record.priorInputs, (value) => planner.priorInput(value, jsonSizeBytes(value)))
  }
  if (record.expiresAtSeconds !== undefined) item.expiresAt = record.expiresAtSeconds
  if (record.deadlineAtMs !== undefined) item.dlMs = record.deadlineAtMs
  // Always a list, so that writes under the lease can append to it by index (see writeUnderLeaseParams).
  item.h = entriesToItems(history, base)
  Object.assign(item, outboxToItem(record.id, record.outbox))
  // Always there ('' for none): a due pass's acquisition copies it (see acquireLeaseParams).
  item.nx = record.armNext === undefined ? '' : nextAttemptToItem(record.armNext)
  return item
}

/** Parses an instance item; a malformed item is a store fault, never silently accepted. */
export const parseInstanceItem = (raw: unknown): InstanceItem => {
  const version = (raw as { v?: unknown } | undefined)?.v
  if (version !== ITEM_SCHEMA_VERSION && typeof version === 'number') {
    throw new StoreError(
      `stored instance has item schema ${version}; this version of tickflow reads schema ${ITEM_SCHEMA_VERSION} ` +
        '(README, "Table layout": finish the instances of an older deployment on its own stage)',
      false,
      { code: 'ITEM_SCHEMA_MISMATCH' },
    )
  }
  const parsed = instanceItemSchema.safeParse(raw)
  if (!parsed.success) {
    throw corrupt(`${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`)
  }
  return parsed.data
}

/** Whether the instance item refers to items of its partition (then a full read needs the partition). */
export const refersToSideItems = (item: InstanceItem): boolean => sideItemKeys(item).length > 0

/** The sort keys of the items of its partition the instance item refers to. */
export const sideItemKeys = (item: InstanceItem): string[] =>
  [
    item.ik,
    ...Object.values(item.pi ?? {}).map((input) => input.k),
    ...(item.arc ?? []),
    ...(item.ha ?? []),
    ...Object.values(item.n).map((node) => payloadRefOf(node)?.sk),
    ...Object.values(item.e).map((event) => event.k),
    ...arrivalSideKeys(item.cb),
  ].filter((key): key is string => key !== undefined)

/**
 * Every item of its partition the instance refers to: those `sideItemKeys` names, and the payloads of the node
 * records its archives hold (`side`: the partition's other items, archives included). A record in the instance item
 * or a later archive wins over an archived copy; what a shadowed copy names was replaced (and is pending deletion).
 */
export const referencedSideItems = (
  item: InstanceItem,
  side: ReadonlyMap<string, Record<string, unknown>>,
): Set<string> => {
  const keys = new Set(sideItemKeys(item))
  for (const node of Object.values(storedNodesOf(item, side, { partial: true }))) {
    const ref = payloadRefOf(node)
    if (ref) keys.add(ref.sk)
  }
  return keys
}

/**
 * The fence of the lease whose write made a side item (see ItemPlanner: `<prefix><fence, 10 digits>.<n>#<unique>`);
 * 0 for a write without a lease (an event, a callback arrival, a create); undefined for a key of another form.
 */
export const sideItemWriterFence = (sk: string): number | undefined => {
  const match = /(\d{10})\.\d+#[^#]+$/.exec(sk)
  return match ? Number(match[1]) : undefined
}

/**
 * The items of the partition (`side`: every item but the instance item) that the instance item neither refers to nor
 * lists as pending deletion, each with the fence of the lease whose write made it (see sideItemWriterFence).
 */
export const unaccountedSideItems = (
  item: InstanceItem,
  side: ReadonlyMap<string, Record<string, unknown>>,
): { sk: string; fence: number | undefined }[] => {
  const referenced = referencedSideItems(item, side)
  const pending = pendingDeletion(item)
  return [...side.keys()]
    .filter((sk) => !referenced.has(sk) && !pending.has(sk))
    .map((sk) => ({ sk, fence: sideItemWriterFence(sk) }))
}

/** Items replaced by a write and deleted right after it, by sort key, with the bytes they are counted at. */
export const pendingDeletion = (item: InstanceItem): Map<string, number> => new Map(Object.entries(item.gc ?? {}))

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
    const archive = sideContent(side, sk, archiveItemSchema, options.partial === true)
    if (archive) Object.assign(nodes, archive.n)
  }
  return Object.assign(nodes, item.n)
}

/** The node archives the instance item lists, in its order, with the nodes each holds (undefined: not read). */
export const archivedNodeIds = (
  item: InstanceItem,
  side: ReadonlyMap<string, Record<string, unknown>>,
): [string, string[] | undefined][] =>
  (item.arc ?? []).map((sk) => {
    const archive = sideContent(side, sk, archiveItemSchema, true)
    return [sk, archive && Object.keys(archive.n)]
  })

/** A side item's content, parsed; undefined when it is missing and `partial` allows it. */
const sideContent = <T>(
  side: ReadonlyMap<string, Record<string, unknown>>,
  sk: string,
  schema: z.ZodType<T>,
  partial: boolean,
): T | undefined => {
  const found = side.get(sk)
  if (found === undefined) {
    if (partial) return undefined
    throw corrupt(`the instance item refers to '${sk}', which is not stored`)
  }
  const parsed = schema.safeParse(found)
  if (!parsed.success) throw corrupt(`item '${sk}': ${parsed.error.issues[0]?.message}`)
  return parsed.data
}

/** A payload's parts from a payload item (or from the texts inline). */
const payloadFrom = (texts: { o?: string | undefined; wc?: string | undefined; pc?: string | undefined }) => {
  const parts: Pick<NodeRecord, 'output' | 'workflowContext' | 'preNodeContext'> = {
    output: parseJson(texts.o, {}) as JsonObject,
  }
  if (texts.wc !== undefined) parts.workflowContext = parseJson(texts.wc, {}) as JsonObject
  if (texts.pc !== undefined) parts.preNodeContext = parseJson(texts.pc, {}) as JsonObject
  return parts
}

/** A node record from its stored form; a payload out of line is taken from `side`, or left unread. */
const nodeFromItem = (
  stored: StoredNode,
  baseMs: number,
  payload?: { o?: string | undefined; wc?: string | undefined; pc?: string | undefined },
): NodeRecord => {
  const texts = stored.p === undefined ? stored : (payload ?? {})
  const node: NodeRecord = {
    status: STATUS_NAMES[stored.s] ?? (stored.s as StoredNodeStatus),
    failCount: stored.fc ?? 0,
    createdAtMs: baseMs + (stored.a ?? stored.u),
    updatedAtMs: baseMs + stored.u,
    attempt: stored.at ?? 1,
    waits: stored.w ?? 0,
    ...payloadFrom(texts),
  }
  if (stored.na !== undefined) node.nextAttemptAtMs = baseMs + stored.na
  if (stored.et !== undefined) node.seenEventTs = stored.et
  if (stored.er !== undefined) node.seenEventAtMs = baseMs + stored.er
  if (stored.rr) node.resetOnRestart = true
  if (stored.ir !== undefined) node.inputRef = stored.ir
  node.calls = stored.c ?? defaultCalls(node.status)
  if (node.calls === 0) delete node.calls
  if (stored.le !== undefined) node.lastError = stored.le
  if (stored.lt !== undefined) node.lastErrorAtSeconds = stored.lt
  if (stored.as !== undefined) node.attemptStarted = attemptFromItem(stored.as, baseMs)
  if (stored.sr !== undefined) node.skipReason = SKIP_REASON_NAMES[stored.sr] as SkipReason
  if (stored.ch !== undefined) node.chosen = stored.ch
  if (stored.cw !== undefined) node.callback = waitFromItem(stored.cw, baseMs)
  return node
}

/**
 * The instance from its item and the side items it refers to (by sort key). With `lazy`, what lives in items of
 * its own that `side` does not hold is left unread (`record.unread`: a lease reads it by key when it needs it);
 * `partial` reads such content as empty — only for the answers of refused conditions, which need the lease, due
 * time and statuses, never the payloads.
 */
export const recordFromInstanceItem = (
  item: InstanceItem,
  side: ReadonlyMap<string, Record<string, unknown>> = new Map(),
  options: { partial?: boolean; lazy?: boolean; stored?: Record<string, StoredNode> } = {},
): InstanceRecord => {
  const base = createdAtOf(item.createdKey)
  const tolerant = options.partial === true || options.lazy === true
  const unread: UnreadParts = { nodes: {}, events: {}, priorInputs: {} }
  const nodes: Record<string, NodeRecord> = {}
  for (const [id, stored] of Object.entries(options.stored ?? storedNodesOf(item, side, { partial: tolerant }))) {
    const ref = payloadRefOf(stored)
    const payload = ref && sideContent(side, ref.sk, payloadItemSchema, tolerant)
    if (ref && payload === undefined) unread.nodes[id] = ref.bytes
    nodes[id] = nodeFromItem(stored, base, payload)
  }
  const events: Record<string, NodeEventRecord> = {}
  for (const [id, event] of Object.entries(item.e)) {
    const text = event.k === undefined ? event.c : sideContent(side, event.k, eventItemSchema, tolerant)?.c
    if (event.k !== undefined && text === undefined) unread.events[id] = event.b ?? 0
    events[id] = { eventTs: event.t, content: parseJson(text, null), receivedAtMs: base + event.r }
  }
  const inputText = item.ik === undefined ? item.in : sideContent(side, item.ik, inputItemSchema, tolerant)?.d
  if (item.ik !== undefined && inputText === undefined) unread.input = item.ib ?? 0
  const record: InstanceRecord = {
    id: instanceIdOf(item.pk),
    workflowType: item.wfType,
    status: instanceStatusOf(item.status),
    input: parseJson(inputText, {}) as JsonObject,
    createdAtMs: base,
    updatedAtMs: base + item.ua,
    definitionVersion: item.dv,
    nodes,
    events,
    eventSeq: item.es,
    fence: item.f,
  }
  if (item.businessId !== undefined) record.businessId = item.businessId
  if (item.lo !== undefined) record.leaseOwner = item.lo
  if (item.lu !== undefined) record.leaseUntilMs = item.lu
  if (item.dueAtMs !== undefined) record.dueAtMs = item.dueAtMs
  if (item.rh !== undefined) record.requestHash = item.rh
  if (item.startAtMs !== undefined) record.startAtMs = item.startAtMs
  if (item.parkCode !== undefined) {
    record.parked = { code: item.parkCode, reason: item.parkReason ?? '', atMs: item.parkAtMs ?? 0 }
  }
  if (item.farWakeAtMs !== undefined) record.farWakeAtMs = item.farWakeAtMs
  if (item.failure !== undefined) record.failure = JSON.parse(item.failure) as FailureSummary
  if (item.pi !== undefined) {
    const prior: Record<string, JsonObject> = {}
    for (const [key, input] of Object.entries(item.pi)) {
      const text = input.k === undefined ? input.t : sideContent(side, input.k, inputItemSchema, tolerant)?.d
      if (input.k !== undefined && text === undefined) unread.priorInputs[key] = input.b ?? 0
      prior[key] = parseJson(text, {}) as JsonObject
    }
    record.priorInputs = prior
  }
  // What is counted, without the items pending deletion (those are counted until deleted, apart).
  const pending = [...pendingDeletion(item).values()].reduce((sum, bytes) => sum + bytes, 0)
  if (item.b !== undefined) record.storedBytes = item.b - pending
  if (item.expiresAt !== undefined) record.expiresAtSeconds = item.expiresAt
  if (item.dlMs !== undefined) record.deadlineAtMs = item.dlMs
  if (item.cb !== undefined && Object.keys(item.cb).length) {
    // An output over 1 KB is in an item of its own, read with the instance item (only a completion has one).
    record.callbacks = mapValues(item.cb, (arrival) =>
      arrivalFromItem(arrival, (sk) => sideContent(side, sk, inputItemSchema, options.partial === true)?.d),
    )
  }
  const outbox = outboxFromItem(item)
  if (outbox !== undefined) record.outbox = outbox
  // An attempt a due pass's acquisition recorded is started by its lease, by the rule every store applies; an
  // acquisition finds the next one to record only where no earlier one is left (DynamoDB keeps the earlier one).
  const armed = item.xn ? nextAttemptFromItem(item.xn) : undefined
  if (armed) armAttempt(nodes, armed, item.xt ?? base, (item.xf ?? item.f - 1) + 1)
  else if (item.xn === undefined && item.nx) {
    const next = nextAttemptFromItem(item.nx)
    if (next) record.armNext = next
  }
  if (
    options.lazy &&
    (Object.keys(unread.nodes).length ||
      Object.keys(unread.events).length ||
      unread.input !== undefined ||
      Object.keys(unread.priorInputs).length)
  ) {
    record.unread = unread
  }
  return record
}

/**
 * The instance from its item and the side items it refers to. `partial`: a side item that is missing reads as
 * empty content instead of a fault (for the answers of refused conditions).
 */
export const recordFromItems = (
  raw: unknown,
  side: ReadonlyMap<string, Record<string, unknown>> = new Map(),
  options: { partial?: boolean } = {},
): InstanceRecord => recordFromInstanceItem(parseInstanceItem(raw), side, options)

/** An instance item that refers to nothing else (a record read from it alone), or a fault. */
export const recordFromItem = (raw: unknown): InstanceRecord => recordFromItems(raw)

/** A node record as the instance item stores it when its payload is inline (a planner without side items). */
export const nodeToItem = (node: NodeRecord, nodeId = 'node', baseMs = 0): StoredNode =>
  new ItemPlanner('-', baseMs, undefined, '0').node(nodeId, node)

/** The contents of side items read by key, as the parts of a record they hold. */
export const sideItemContent = {
  payload: (raw: Record<string, unknown>) => payloadFrom(payloadItemSchema.parse(raw)),
  event: (raw: Record<string, unknown>): JsonValue => parseJson(eventItemSchema.parse(raw).c, null),
  input: (raw: Record<string, unknown>): JsonObject => parseJson(inputItemSchema.parse(raw).d, {}) as JsonObject,
  historyArchive: (raw: Record<string, unknown>) => historyArchiveSchema.safeParse(raw),
}
