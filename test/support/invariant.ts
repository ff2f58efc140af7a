import {
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandOutput,
  ScanCommand,
  type ScanCommandOutput,
} from '@aws-sdk/client-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import {
  parseInstanceItem,
  pendingDeletion,
  recordFromItems,
  unaccountedSideItems,
} from '../../src/adapters/dynamodb/item-codec.js'
import { INSTANCE_PK_PREFIX } from '../../src/adapters/dynamodb/keys.js'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { instanceStoredBytes } from '../../src/core/limits.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { isTerminalInstanceStatus } from '../../src/schemas/statuses.js'
import { newDynamoClient } from './dynamodb.js'

/**
 * The engine's invariant, checked on what a table holds (README, "Nothing is stranded"): every non-terminal
 * instance is
 * - *parked* with a reason (`parkCode` and a non-empty `parkReason` on the item, and no due time), or
 * - *leased* by a live lease and due no later than the lease end (`dueAtMs <= leaseUntilMs`), so that a holder that
 *   dies is resumed by the tick once its lease runs out, or
 * - *due* (it has `dueAtMs`, and the due-index shard that the tick reads).
 * A terminal instance (a timed-out one included) has no due time and no one-time wake-up left (nothing may wake it
 * up any more), and a skipped node never runs: it has no attempt in flight and no output.
 * The same rules hold on a MemoryStore, read through its `allRecords()` snapshot: there the due index is every
 * record with a due time, so `due-not-indexed` cannot arise and `unreadable` does not apply.
 *
 * A live lease with a due time later than its end is a violation even though the instance is due: a holder that
 * dies leaves the instance untouched until that later time (a day, in one crash run), not until the lease ends.
 */

export const VIOLATION_KINDS = [
  /** Not terminal, not parked, no live lease, no due time: nothing will ever advance it. */
  'stranded',
  /** Leased without a due time: if the holder dies, the tick never finds it. */
  'leased-without-due',
  /** Leased with a due time after the lease end: a dead holder's instance waits until then. */
  'due-after-lease',
  /** A due time without its place in the due index (shard, and `ds` at or before it): the tick would not find it in time. */
  'due-not-indexed',
  /** A place in the due index without a due time: every tick reads it, and none hands it out. */
  'placed-not-due',
  /** Parked without saying why. */
  'parked-without-reason',
  /** Terminal with a due time left behind. */
  'terminal-due',
  /** Terminal with a one-time wake-up schedule still recorded (`farWakeAtMs`). */
  'terminal-wake-up',
  /** A skipped node with an attempt in flight or an output: a skipped node never runs. */
  'skipped-ran',
  /** The item cannot be read back through the store's codec. */
  'unreadable',
  /** The instance's counted bytes are not what it holds as the engine counts it (plus its pending deletions). */
  'miscounted',
  /**
   * An item of the partition the instance item neither refers to nor lists as pending deletion: what the partition
   * holds is more than it counts. Only the lease the item is at may have one while it is held (its holder is between
   * a side item's put and the write that refers to it, or died there: the lease that takes over deletes it), and,
   * where `crashes` says so, a writer without a lease that died between the two (its time to live retires it).
   */
  'unaccounted-item',
] as const
export type ViolationKind = (typeof VIOLATION_KINDS)[number]

export interface Violation {
  kind: ViolationKind
  instanceId: string
  /** One readable line: the kind, the instance and the attributes that break the rule. */
  message: string
}

/**
 * What the checker reads: a table (client and name), a DynamoDbStore (read through a client of its own), or a
 * MemoryStore (its records).
 */
export type InvariantSource = { client: DynamoDBClient; tableName: string } | DynamoDbStore | MemoryStore

export interface InvariantOptions {
  /** Only these instances (the others on a shared table may live on another clock). */
  instanceIds?: Iterable<string> | ((instanceId: string) => boolean)
  /**
   * Writers were killed: an item a writer without a lease (an event's, a callback arrival's) put just before it died
   * is not a violation, as long as a time to live retires it. Nothing else a crash leaves is excused.
   */
  crashes?: boolean
}

let sharedClient: DynamoDBClient | undefined
const sourceOf = (source: Exclude<InvariantSource, MemoryStore>): { client: DynamoDBClient; tableName: string } => {
  if (source instanceof DynamoDbStore) {
    sharedClient ??= newDynamoClient()
    return { client: sharedClient, tableName: source.tableName }
  }
  return source
}

/**
 * Each instance item with the other items of its partition (payloads, events, archives) by sort key: of the whole
 * table, or of the partitions of `instanceIds` only.
 */
export const scanPartitions = async (
  source: Exclude<InvariantSource, MemoryStore>,
  instanceIds?: Iterable<string>,
): Promise<{ item: Record<string, unknown>; side: Map<string, Record<string, unknown>> }[]> => {
  const { client, tableName } = sourceOf(source)
  const items: Record<string, unknown>[] = []
  if (instanceIds !== undefined) {
    // Only these instances: each partition read whole with a consistent Query, not the whole table with a Scan (on
    // a table shared by hundreds of instances a Scan per check makes a run quadratic).
    for (const id of new Set(instanceIds)) {
      let partitionKey: QueryCommandOutput['LastEvaluatedKey']
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: tableName,
            ConsistentRead: true,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': { S: `${INSTANCE_PK_PREFIX}${id}` } },
            ...(partitionKey ? { ExclusiveStartKey: partitionKey } : {}),
          }),
        )
        for (const item of page.Items ?? []) items.push(unmarshall(item))
        partitionKey = page.LastEvaluatedKey
      } while (partitionKey)
    }
    return groupPartitions(items)
  }
  let startKey: ScanCommandOutput['LastEvaluatedKey']
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ConsistentRead: true,
        FilterExpression: 'begins_with(pk, :instance)',
        ExpressionAttributeValues: { ':instance': { S: 'I#' } },
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    )
    for (const item of page.Items ?? []) items.push(unmarshall(item))
    startKey = page.LastEvaluatedKey
  } while (startKey)
  return groupPartitions(items)
}

const groupPartitions = (
  items: Record<string, unknown>[],
): { item: Record<string, unknown>; side: Map<string, Record<string, unknown>> }[] => {
  const sides = new Map<string, Map<string, Record<string, unknown>>>()
  for (const item of items) {
    if (item.sk === '#') continue
    const side = sides.get(String(item.pk)) ?? new Map<string, Record<string, unknown>>()
    side.set(String(item.sk), item)
    sides.set(String(item.pk), side)
  }
  return items
    .filter((item) => item.sk === '#')
    .map((item) => ({ item, side: sides.get(String(item.pk)) ?? new Map<string, Record<string, unknown>>() }))
}

const describeItem = (item: Record<string, unknown>): string => {
  const fields = [
    'status',
    'dueAtMs',
    'ds',
    'dueShard',
    'leaseOwner',
    'leaseUntilMs',
    'parkCode',
    'parkReason',
  ] as const
  return fields
    .filter((field) => item[field] !== undefined)
    .map((field) => `${field}=${JSON.stringify(item[field])}`)
    .join(' ')
}

const describeRecord = (record: InstanceRecord): string =>
  (
    [
      ['status', record.status],
      ['dueAtMs', record.dueAtMs],
      ['leaseOwner', record.leaseOwner],
      ['leaseUntilMs', record.leaseUntilMs],
      ['parkCode', record.parked?.code],
      ['parkReason', record.parked?.reason],
    ] as const
  )
    .filter(([, value]) => value !== undefined)
    .map(([field, value]) => `${field}=${JSON.stringify(value)}`)
    .join(' ')

/** What a store's own representation adds to a record: whether its due time is indexed, whether it is marked parked. */
interface StoredFacts {
  /** The due time is in the index the tick reads. */
  dueIndexed: boolean
  /** The stored item carries park attributes (a record without `parked` may still have them half-written). */
  parkMarked: boolean
  /** The stored attributes, for the message. */
  described: string
}

const violationsOf = (record: InstanceRecord, nowMs: number, facts: StoredFacts): Violation[] => {
  const violation = (kind: ViolationKind, why: string): Violation => ({
    kind,
    instanceId: record.id,
    message: `${kind}: instance '${record.id}' ${why} (${facts.described}, now=${nowMs})`,
  })
  const due = record.dueAtMs
  const ran = Object.entries(record.nodes)
    .filter(([, node]) => node.status === 'skipped' && (node.attemptStarted || Object.keys(node.output).length))
    .map(([id]) => violation('skipped-ran', `has node '${id}' skipped but with an attempt or an output`))
  if (isTerminalInstanceStatus(record.status)) {
    const left = [...ran]
    if (due !== undefined) left.push(violation('terminal-due', `is ${record.status} but still due at ${due}`))
    if (record.farWakeAtMs !== undefined) {
      left.push(violation('terminal-wake-up', `is ${record.status} but still has a wake-up at ${record.farWakeAtMs}`))
    }
    return left
  }
  const problems: Violation[] = [...ran]
  if (due !== undefined && !facts.dueIndexed) {
    problems.push(violation('due-not-indexed', 'has a due time but no place in the due index at or before it'))
  }
  if (record.parked !== undefined || facts.parkMarked) {
    if (!record.parked?.reason?.trim()) problems.push(violation('parked-without-reason', 'is parked without a reason'))
    if (due !== undefined) problems.push(violation('parked-without-reason', `is parked but still due at ${due}`))
    return problems
  }
  const leased = record.leaseOwner !== undefined && record.leaseUntilMs !== undefined && record.leaseUntilMs >= nowMs
  if (leased) {
    const until = record.leaseUntilMs as number
    if (due === undefined) {
      problems.push(violation('leased-without-due', `is ${record.status} and leased until ${until} with no due time`))
    } else if (due > until) {
      problems.push(violation('due-after-lease', `is leased until ${until} but due only at ${due}`))
    }
    return problems
  }
  if (due === undefined) {
    problems.push(violation('stranded', `is ${record.status}, not due, not leased and not parked`))
  }
  return problems
}

/**
 * The violations of one raw instance item at `nowMs` (pure: used by the checker and its own tests). With `side`, the
 * other items of its partition: an item it refers to that is not there makes it unreadable.
 */
export const itemViolations = (
  item: Record<string, unknown>,
  nowMs: number,
  side?: ReadonlyMap<string, Record<string, unknown>>,
  options: Pick<InvariantOptions, 'crashes'> = {},
): Violation[] => {
  let record: InstanceRecord
  try {
    record = recordFromItems(item, side ?? new Map(), { partial: side === undefined })
  } catch (error) {
    const rawId = typeof item.id === 'string' ? item.id : String(item.pk ?? '?').replace(/^I#/, '')
    const kind = 'unreadable'
    const why = `cannot be read: ${error instanceof Error ? error.message : String(error)}`
    return [
      { kind, instanceId: rawId, message: `${kind}: instance '${rawId}' ${why} (${describeItem(item)}, now=${nowMs})` },
    ]
  }
  // The tick finds the instance by its place in the due index (`ds`): no later than its due time.
  const since = typeof item.ds === 'number' ? item.ds : undefined
  const due = typeof item.dueAtMs === 'number' ? item.dueAtMs : undefined
  const problems = violationsOf(record, nowMs, {
    dueIndexed: item.dueShard !== undefined && since !== undefined && due !== undefined && since <= due,
    parkMarked: item.parkCode !== undefined || item.parkReason !== undefined,
    described: describeItem(item),
  })
  if (since !== undefined && due === undefined) {
    const kind = 'placed-not-due'
    problems.push({
      kind,
      instanceId: record.id,
      message: `${kind}: instance '${record.id}' has a place in the due index (ds=${since}) but no due time`,
    })
  }
  return side === undefined ? problems : [...problems, ...accountingViolations(item, record, side, options)]
}

/** What the partition holds against what its instance item counts (see `partitionAccounting`). */
const accountingViolations = (
  item: Record<string, unknown>,
  record: InstanceRecord,
  side: ReadonlyMap<string, Record<string, unknown>>,
  options: Pick<InvariantOptions, 'crashes'>,
): Violation[] => {
  const parsed = parseInstanceItem(item)
  const problems: Violation[] = []
  const violation = (kind: ViolationKind, why: string): Violation => ({
    kind,
    instanceId: record.id,
    message: `${kind}: instance '${record.id}' ${why}`,
  })
  if (record.storedBytes !== undefined && record.storedBytes !== instanceStoredBytes(record)) {
    problems.push(
      violation('miscounted', `counts ${record.storedBytes} bytes but holds ${instanceStoredBytes(record)}`),
    )
  }
  for (const { sk, fence } of unaccountedSideItems(parsed, side)) {
    // The lease the item is at, not released: its holder may be between the put and the write, or died there.
    if (fence !== undefined && fence > 0 && fence === parsed.f && parsed.lo !== undefined) continue
    if (options.crashes && fence === 0 && side.get(sk)?.expiresAt !== undefined) continue
    problems.push(violation('unaccounted-item', `holds '${sk}', which it neither refers to nor counts`))
  }
  return problems
}

/** The violations of one record as a MemoryStore keeps it (its due index is every record with a due time). */
export const recordViolations = (record: InstanceRecord, nowMs: number): Violation[] =>
  violationsOf(record, nowMs, { dueIndexed: true, parkMarked: false, described: describeRecord(record) })

const selector = (ids: InvariantOptions['instanceIds']): ((id: string) => boolean) => {
  if (ids === undefined) return () => true
  if (typeof ids === 'function') return ids
  const set = new Set(ids)
  return (id) => set.has(id)
}

/** Every violation of the invariant in the table at `nowMs`; an empty list when it holds. */
export const invariantViolations = async (
  source: InvariantSource,
  nowMs: number,
  options: InvariantOptions = {},
): Promise<Violation[]> => {
  const include = selector(options.instanceIds)
  if (source instanceof MemoryStore) {
    return source
      .allRecords()
      .filter((record) => include(record.id))
      .flatMap((record) => recordViolations(record, nowMs))
  }
  const ids = options.instanceIds
  const partitions = await scanPartitions(source, ids === undefined || typeof ids === 'function' ? undefined : ids)
  return partitions
    .filter(({ item }) => include(typeof item.id === 'string' ? item.id : String(item.pk).replace(/^I#/, '')))
    .flatMap(({ item, side }) => itemViolations(item, nowMs, side, options))
}

export class InvariantViolationError extends Error {
  override readonly name = 'InvariantViolationError'
  constructor(
    readonly violations: readonly Violation[],
    context?: string,
  ) {
    super(
      `${violations.length} instance(s) break the invariant${context ? ` ${context}` : ''}:\n` +
        violations.map((violation) => `  ${violation.message}`).join('\n'),
    )
  }
}

/** Throws an InvariantViolationError listing every violation; `context` names the step that was checked. */
export const assertInvariant = async (
  source: InvariantSource,
  nowMs: number,
  options: InvariantOptions & { context?: string } = {},
): Promise<void> => {
  const violations = await invariantViolations(source, nowMs, options)
  if (violations.length > 0) throw new InvariantViolationError(violations, options.context)
}

/** What an instance's partition holds against what its instance item refers to and counts. */
export interface PartitionAccounting {
  /** Items of the partition the instance item neither refers to nor lists as pending deletion. */
  unaccounted: string[]
  /** Items listed as pending deletion (replaced, deleted right after the write that replaced them). */
  pending: string[]
  /** The instance's counted total, and what its record is counted at (see `instanceStoredBytes`) plus pending. */
  counted: number
  expected: number
}

/**
 * The partition of one instance, accounted: every item other than the instance item must be referenced by it (and
 * counted in its total) or listed as pending deletion (and counted until deleted).
 */
export const partitionAccounting = async (
  source: Exclude<InvariantSource, MemoryStore>,
  instanceId: string,
): Promise<PartitionAccounting> => {
  const partitions = await scanPartitions(source)
  const found = partitions.find(({ item }) => item.pk === `I#${instanceId}`)
  if (!found) throw new Error(`instance '${instanceId}' is not stored`)
  const parsed = parseInstanceItem(found.item)
  const pendingBytes = pendingDeletion(parsed)
  const unaccounted = unaccountedSideItems(parsed, found.side)
    .map(({ sk }) => sk)
    .sort()
  const record = recordFromItems(found.item, found.side)
  const pendingTotal = [...pendingBytes.values()].reduce((sum, bytes) => sum + bytes, 0)
  return {
    unaccounted,
    pending: [...pendingBytes.keys()].sort(),
    counted: record.storedBytes ?? 0,
    expected: instanceStoredBytes(record) + pendingTotal,
  }
}
