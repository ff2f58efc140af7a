import { z } from 'zod'
import { StoreError } from '../../core/errors.js'
import type { JsonObject, JsonValue } from '../../core/json.js'
import { instanceStoredBytes } from '../../core/limits.js'
import { INSTANCE_STATUSES, STORED_NODE_STATUSES } from '../../core/statuses.js'
import type { FailureSummary, InstanceRecord, NodeEventRecord, NodeRecord } from '../../core/store.js'
import { createdKey, dueShardFor, instanceKey } from './keys.js'

/**
 * Stored item shapes. Node records use short attribute names because every write is billed by the size of the
 * whole instance item (1 WCU per KB): see the README's table layout for the long names.
 */
export const ITEM_SCHEMA_VERSION = 1

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
})
export type StoredNode = z.infer<typeof storedNodeSchema>

const storedEventSchema = z.object({ ts: z.number(), c: jsonText, rMs: z.number() })

export const instanceItemSchema = z.object({
  pk: z.string(),
  v: z.literal(ITEM_SCHEMA_VERSION),
  id: z.string(),
  wfType: z.string(),
  businessId: z.string().optional(),
  status: z.enum(INSTANCE_STATUSES),
  input: jsonText,
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
  /** What the instance stores as the engine counts it; every write adds its difference (see limits.ts). */
  bytes: z.number().optional(),
  /** The table's TTL attribute: a finished instance is deleted after this time (epoch seconds). */
  expiresAt: z.number().optional(),
})
export type InstanceItem = z.infer<typeof instanceItemSchema>

const parseJson = (text: string | undefined, fallback: JsonValue): JsonValue =>
  text === undefined ? fallback : (JSON.parse(text) as JsonValue)

export const nodeToItem = (node: NodeRecord): StoredNode => {
  const item: StoredNode = { st: node.status, caMs: node.createdAtMs, uaMs: node.updatedAtMs }
  // Defaults are left out to keep the item small.
  if (node.failCount) item.fc = node.failCount
  if (node.attempt !== 1) item.n = node.attempt
  if (node.waits) item.w = node.waits
  if (node.nextAttemptAtMs !== undefined) item.naMs = node.nextAttemptAtMs
  if (node.seenEventTs !== undefined) item.evTs = node.seenEventTs
  if (Object.keys(node.output).length) item.o = JSON.stringify(node.output)
  if (node.workflowContext !== undefined) item.wc = JSON.stringify(node.workflowContext)
  if (node.preNodeContext !== undefined) item.pc = JSON.stringify(node.preNodeContext)
  if (node.resetOnRestart) item.rr = true
  if (node.inputRef !== undefined) item.ir = node.inputRef
  if (node.calls) item.c = node.calls
  if (node.attemptStarted) {
    item.as = { s: node.attemptStarted.step, ms: node.attemptStarted.atMs, f: node.attemptStarted.fence }
  }
  return item
}

const nodeFromItem = (item: StoredNode): NodeRecord => {
  const node: NodeRecord = {
    status: item.st,
    failCount: item.fc ?? 0,
    createdAtMs: item.caMs,
    updatedAtMs: item.uaMs,
    attempt: item.n ?? 1,
    waits: item.w ?? 0,
    output: parseJson(item.o, {}) as JsonObject,
  }
  if (item.naMs !== undefined) node.nextAttemptAtMs = item.naMs
  if (item.evTs !== undefined) node.seenEventTs = item.evTs
  if (item.wc !== undefined) node.workflowContext = parseJson(item.wc, {}) as JsonObject
  if (item.pc !== undefined) node.preNodeContext = parseJson(item.pc, {}) as JsonObject
  if (item.rr) node.resetOnRestart = true
  if (item.ir !== undefined) node.inputRef = item.ir
  if (item.c) node.calls = item.c
  if (item.as) node.attemptStarted = { step: item.as.s, atMs: item.as.ms, fence: item.as.f }
  return node
}

export const failureToItem = (failure: FailureSummary): string => JSON.stringify(failure)

export const eventToItem = (event: NodeEventRecord): z.infer<typeof storedEventSchema> => ({
  ts: event.eventTs,
  c: JSON.stringify(event.content),
  rMs: event.receivedAtMs,
})

const mapValues = <A, B>(record: Record<string, A>, fn: (value: A) => B): Record<string, B> =>
  Object.fromEntries(Object.entries(record).map(([key, value]) => [key, fn(value)]))

export const recordToItem = (record: InstanceRecord): InstanceItem => {
  const item: InstanceItem = {
    ...instanceKey(record.id),
    v: ITEM_SCHEMA_VERSION,
    id: record.id,
    wfType: record.workflowType,
    status: record.status,
    input: JSON.stringify(record.input),
    createdAtMs: record.createdAtMs,
    updatedAtMs: record.updatedAtMs,
    createdKey: createdKey(record.createdAtMs, record.id),
    defVersion: record.definitionVersion,
    nodes: mapValues(record.nodes, nodeToItem),
    events: mapValues(record.events, eventToItem),
    evSeq: record.eventSeq,
    fence: record.fence,
  }
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
  if (record.priorInputs !== undefined) item.pin = JSON.stringify(record.priorInputs)
  item.bytes = record.storedBytes ?? instanceStoredBytes(record)
  if (record.expiresAtSeconds !== undefined) item.expiresAt = record.expiresAtSeconds
  return item
}

/** Parses an item read back from the table; a malformed item is a store fault, never silently accepted. */
export const recordFromItem = (raw: unknown): InstanceRecord => {
  const parsed = instanceItemSchema.safeParse(raw)
  if (!parsed.success) {
    throw new StoreError(
      `stored instance item is malformed: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`,
      false,
      { code: 'CORRUPT_ITEM' },
    )
  }
  const item = parsed.data
  const record: InstanceRecord = {
    id: item.id,
    workflowType: item.wfType,
    status: item.status,
    input: parseJson(item.input, {}) as JsonObject,
    createdAtMs: item.createdAtMs,
    updatedAtMs: item.updatedAtMs,
    definitionVersion: item.defVersion,
    nodes: mapValues(item.nodes, nodeFromItem),
    events: mapValues(item.events, (event) => ({
      eventTs: event.ts,
      content: parseJson(event.c, null),
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
  if (item.pin !== undefined) record.priorInputs = JSON.parse(item.pin) as Record<string, JsonObject>
  if (item.bytes !== undefined) record.storedBytes = item.bytes
  if (item.expiresAt !== undefined) record.expiresAtSeconds = item.expiresAt
  return record
}
