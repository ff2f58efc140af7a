import { z } from 'zod'
import type { CallbackClaims } from '../../core/callback-token.js'
import {
  type CallbackArrival,
  type CallbackGuard,
  callbackAccepts,
  callbackBudgetRefusal,
  callbackRefusal,
} from '../../core/callbacks.js'
import type { NormalisedConfig } from '../../core/definition.js'
import { InstanceNotFoundError, ValidationError } from '../../core/errors.js'
import { eventRefusal, eventWriteRefusal, guardHolds } from '../../core/event-rules.js'
import { historyPage, MAX_HISTORY_ENTRIES } from '../../core/history.js'
import { applyChange } from '../../core/instance-change.js'
import {
  acquired,
  acquireRefusal,
  exceedsBudget,
  holdsLease,
  leaseWriteRefusal,
  unarmAttempt,
} from '../../core/lease-rules.js'
import type { LifecycleEvent, OutboxPage } from '../../core/lifecycle-events.js'
import type { StoreCapacity } from '../../core/limits.js'
import { instanceStoredBytes } from '../../core/limits.js'
import {
  type AcquireOptions,
  type AcquireResult,
  type DueItem,
  type DuePage,
  type EventGuard,
  type HistoryEntry,
  type HistoryPage,
  type InstanceChange,
  InstanceExistsError,
  type InstanceRecord,
  type InstanceStatusView,
  type InstanceStore,
  type Lease,
  type LeaseWriter,
  type NodeEventRecord,
  type WriteResult,
} from '../../core/store.js'
import { isTerminalInstanceStatus } from '../../schemas/statuses.js'
import {
  type CatalogueEntry,
  type CatalogueOptions,
  createdKey,
  entryMatches,
  IndexedCatalogue,
  type IndexPage,
  type IndexPageRequest,
  inPartition,
} from '../store-catalogue.js'

const copy = <T>(value: T): T => structuredClone(value)

const byDue = (a: DueItem, b: DueItem): number =>
  a.dueAtMs - b.dueAtMs || (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0)

const dueCursorSchema = z.strictObject({ dueAtMs: z.number(), instanceId: z.string() })

const encodeDueCursor = (item: DueItem): string => Buffer.from(JSON.stringify(item)).toString('base64url')

const decodeDueCursor = (cursor: string): DueItem => {
  try {
    return dueCursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
  } catch {
    throw new ValidationError('cursor is not a due-index cursor', 'cursor')
  }
}

const entryOf = (record: InstanceRecord): CatalogueEntry => ({
  createdKey: createdKey(record.createdAtMs, record.id),
  id: record.id,
  workflowType: record.workflowType,
  ...(record.businessId === undefined ? {} : { businessId: record.businessId }),
  status: record.status,
  createdAtMs: record.createdAtMs,
  ...(record.parked === undefined ? {} : { parkCode: record.parked.code }),
})

/**
 * What MemoryStore holds of one instance. It stands in for the DynamoDB store in the engine's specs, so it accepts
 * the same limits that store does (see `DYNAMODB_CAPACITY`), though a process could hold more.
 */
export const MEMORY_CAPACITY: StoreCapacity = {
  maxPayloadBytes: 350 * 1024,
  maxInstanceBytes: 64 * 1024 * 1024,
  payloadHeldBy: '(350 KiB), as the DynamoDB store it stands in for',
  instanceReadBy: '(64 MiB), as the DynamoDB store it stands in for',
}

/** How many of the latest history entries an instance keeps besides its first MAX_HISTORY_ENTRIES. */
const RECENT_HISTORY_ENTRIES = 100

/** An instance's history: the first entries, then the latest (those between are dropped, and counted). */
interface KeptHistory {
  first: HistoryEntry[]
  recent: HistoryEntry[]
  dropped: number
}

/**
 * An in-process InstanceStore with the same conditional semantics as the DynamoDB store: each write evaluates the
 * shared conditions (`lease-rules.ts`, `event-rules.ts`) and answers their refusals, and applies a change as its
 * meaning says (`instance-change.ts`); the catalogue is the shared one (`store-catalogue.ts`) over a sorted read of
 * the records. It stands in for the DynamoDB store in the engine's specs, so it holds what that store can hold (its
 * capacity). Used by fast tests of the engine, the behaviour specs and the shared store contract suite; not durable.
 */
export class MemoryStore extends IndexedCatalogue implements InstanceStore {
  readonly capacity = MEMORY_CAPACITY
  readonly #items = new Map<string, InstanceRecord>()
  readonly #history = new Map<string, KeptHistory>()
  /**
   * What a due pass's acquisition recorded, by instance, as DynamoDbStore keeps it apart in `xn` (see armAttempt):
   * the node ('' when there was nothing to record) and the fence of that lease, until a write stores the node, the
   * lease that recorded it releases or gives it up unmade. While one is kept, an acquisition records nothing new.
   */
  readonly #recorded = new Map<string, { node: string; fence: number }>()
  readonly #definitions = new Map<string, NormalisedConfig>()

  constructor(options: CatalogueOptions = {}) {
    super(options)
  }

  async createInstance(record: InstanceRecord, history: readonly HistoryEntry[] = []): Promise<void> {
    const existing = this.#items.get(record.id)
    if (existing) throw new InstanceExistsError(copy(existing))
    const stored = copy(record)
    stored.storedBytes ??= instanceStoredBytes(record)
    this.#items.set(record.id, stored)
    this.#history.set(record.id, { first: [], recent: [], dropped: 0 })
    this.#append(record.id, history)
  }

  async createLeased(
    record: InstanceRecord,
    lease: Lease,
    history: readonly HistoryEntry[] = [],
  ): Promise<LeaseWriter> {
    const existing = this.#items.get(record.id)
    if (existing && !holdsLease(existing, lease)) throw new InstanceExistsError(copy(existing))
    if (!existing) {
      await this.createInstance({ ...record, leaseOwner: lease.owner, leaseUntilMs: lease.untilMs, fence: lease.fence })
      this.#append(record.id, history)
    }
    return this.#writer(lease)
  }

  #writer(lease: Lease): LeaseWriter {
    return {
      lease,
      write: async (change) => this.#write(lease, change),
      // Everything of an instance is read with it: nothing is left to read by key.
      read: async () => ({ nodes: {}, events: {}, priorInputs: {} }),
      abandon: async (options = {}) => {
        const item = this.#items.get(lease.instanceId)
        if (item && holdsLease(item, lease)) {
          delete item.leaseOwner
          delete item.leaseUntilMs
          if (options.attemptsNotMade) this.#withdraw(item, lease)
        }
      },
    }
  }

  /** The attempt this lease's acquisition recorded and its holder did not make: not started, not counted. */
  #withdraw(item: InstanceRecord, lease: Lease): void {
    const recorded = this.#recorded.get(item.id)
    if (recorded?.fence !== lease.fence) return
    this.#recorded.delete(item.id)
    const node = item.nodes[recorded.node]
    if (node?.attemptStarted?.fence === lease.fence) item.nodes[recorded.node] = unarmAttempt(node)
  }

  #write(lease: Lease, change: InstanceChange): WriteResult {
    const item = this.#items.get(lease.instanceId)
    if (!item || !holdsLease(item, lease) || exceedsBudget(item, change)) {
      const refusal = leaseWriteRefusal(item && copy(item), lease, change)
      if (refusal instanceof Error) throw refusal
      return refusal.landed
    }
    // A recorded attempt goes as DynamoDbStore's does (see DynamoLeaseWriter's #attemptsLaidOut): with the write that
    // stores its node; with the release of the lease that recorded it, unless that lease made it; at once when there
    // was none, or when it is not a started attempt to anyone.
    const recorded = this.#recorded.get(item.id)
    const own = recorded?.fence === lease.fence
    const shown = recorded !== undefined && item.nodes[recorded.node]?.attemptStarted?.fence === recorded.fence
    if (recorded && (recorded.node === '' || change.nodes?.[recorded.node] || (!own && !shown))) {
      this.#recorded.delete(item.id)
    } else if (own && change.release && !change.recordedAttemptMade) this.#withdraw(item, lease)
    // applyChange copies what it takes from the change; what it keeps of the item is the store's own already.
    this.#items.set(lease.instanceId, applyChange(item, change))
    this.#append(lease.instanceId, change.history ?? [])
    return { eventSeq: item.eventSeq }
  }

  /** Keeps the first MAX_HISTORY_ENTRIES entries and the latest ones, counting those dropped between. */
  #append(instanceId: string, entries: readonly HistoryEntry[]): void {
    const kept = this.#history.get(instanceId)
    if (!kept) return
    for (const entry of entries) {
      if (kept.first.length < MAX_HISTORY_ENTRIES) {
        kept.first.push(copy(entry))
        continue
      }
      kept.recent.push(copy(entry))
      if (kept.recent.length > RECENT_HISTORY_ENTRIES) {
        kept.recent.shift()
        kept.dropped += 1
      }
    }
  }

  async acquireLease(
    instanceId: string,
    owner: string,
    nowMs: number,
    untilMs: number,
    options?: AcquireOptions,
  ): Promise<AcquireResult> {
    const item = this.#items.get(instanceId)
    if (!item) throw new InstanceNotFoundError(instanceId)
    // The rules read the item and build new records around it: the store keeps one, the caller gets a copy.
    const refusal = acquireRefusal(item, owner, nowMs, options)
    if (refusal instanceof Error) throw refusal
    if (refusal) return { ...refusal, record: copy(refusal.record) }
    // As DynamoDB: a due pass records the named attempt unless one recorded so before is still kept.
    const kept = this.#recorded.has(instanceId)
    const { armNext, ...unnamed } = item
    const result = acquired(kept ? unnamed : item, owner, nowMs, untilMs, options)
    if (kept && armNext) result.record.armNext = armNext
    this.#items.set(instanceId, result.record)
    if (options?.dueBy !== undefined && !kept) {
      this.#recorded.set(instanceId, { node: armNext?.nodeId ?? '', fence: result.lease.fence })
    }
    return { ...result, record: copy(result.record), writer: this.#writer(result.lease) }
  }

  async putEvent(
    instanceId: string,
    nodeId: string,
    event: NodeEventRecord,
    nowMs: number,
    guard?: EventGuard,
    history?: HistoryEntry,
  ): Promise<'due' | 'parked'> {
    const item = this.#items.get(instanceId)
    if (!item) throw new InstanceNotFoundError(instanceId)
    if (eventRefusal(item, nodeId, event) || (guard && !guardHolds(item, nodeId, guard))) {
      const refusal = eventWriteRefusal(copy(item), nodeId, event, guard)
      if (refusal === 'landed') return item.parked ? 'parked' : 'due'
      throw refusal
    }
    if (guard && guard.addBytes !== 0) item.storedBytes = (item.storedBytes ?? guard.baseBytes) + guard.addBytes
    item.events[nodeId] = copy(event)
    if (history) this.#append(instanceId, [history])
    item.eventSeq += 1
    // A parked instance keeps the event for the pass after a restart: it is not due until someone acts.
    if (item.parked) return 'parked'
    item.dueAtMs = nowMs
    // The pass the event makes due calls its node's check: its acquisition records that attempt (see armAttempt).
    item.armNext = { nodeId, step: 'check' }
    return 'due'
  }

  async putCallback(
    claims: CallbackClaims,
    arrival: CallbackArrival,
    nowMs: number,
    guard?: CallbackGuard,
  ): Promise<'stored' | 'duplicate'> {
    const item = this.#items.get(claims.instanceId)
    if (!item) throw new InstanceNotFoundError(claims.instanceId)
    // As DynamoDB's condition: the wait's deadlines by this write's clock (see callbackDeadlinePassed).
    const at = { nowMs, heartbeat: arrival.completion === undefined }
    if (!callbackAccepts(item, claims, at)) {
      const refusal = callbackRefusal(copy(item), claims, arrival.completion?.fingerprint, at)
      if (refusal === 'duplicate') return refusal
      throw refusal
    }
    const overBudget = guard && callbackBudgetRefusal(item, claims, arrival, guard)
    if (overBudget) throw overBudget
    // The arrival it replaces (of an earlier call, not yet cleared) stops counting as this one starts.
    const added = (arrival.storedBytes ?? 0) - (item.callbacks?.[claims.nodeId]?.storedBytes ?? 0)
    if (added !== 0) item.storedBytes = (item.storedBytes ?? guard?.baseBytes ?? 0) + added
    item.callbacks = { ...item.callbacks, [claims.nodeId]: copy(arrival) }
    if (arrival.completion) {
      item.eventSeq += 1
      // A parked instance keeps it for the pass after a restart, as it keeps an event.
      if (item.parked) return 'stored'
      item.dueAtMs = nowMs
      // The pass it makes due settles the callback: no attempt is named for it.
      delete item.armNext
    }
    return 'stored'
  }

  async clearOutbox(instanceId: string, events: readonly LifecycleEvent[]): Promise<void> {
    const item = this.#items.get(instanceId)
    if (!item?.outbox) return
    const done = new Set(events.map((event) => event.id))
    const left = item.outbox.filter((event) => !done.has(event.id))
    if (left.length) item.outbox = left
    else delete item.outbox
  }

  readonly outboxShards = 1

  /** The instances with unpublished lifecycle events since at or before `beforeMs`, oldest first. */
  async queryOutbox(_shard: number, beforeMs: number, limit: number, cursor?: string): Promise<OutboxPage> {
    const pending = [...this.#items.values()]
      .filter((item) => item.outbox?.length)
      .map((item) => ({
        instanceId: item.id,
        dueAtMs: Math.min(...(item.outbox ?? []).map((event) => event.detail.timeMs)),
      }))
      .filter((item) => item.dueAtMs <= beforeMs)
      .sort(byDue)
    const after = cursor === undefined ? undefined : decodeDueCursor(cursor)
    const rest = pending.filter((item) => after === undefined || byDue(item, after) > 0)
    const items = rest.slice(0, limit)
    const last = items[items.length - 1]
    const page = items.map((item) => ({ instanceId: item.instanceId, sinceMs: item.dueAtMs }))
    return rest.length > limit && last ? { items: page, cursor: encodeDueCursor(last) } : { items: page }
  }

  async markDue(instanceId: string, dueAtMs: number): Promise<void> {
    const item = this.#items.get(instanceId)
    if (!item || isTerminalInstanceStatus(item.status) || item.parked) return
    if (item.dueAtMs === undefined || item.dueAtMs > dueAtMs) {
      item.dueAtMs = dueAtMs
      delete item.armNext
    }
  }

  async clearTerminalDue(instanceId: string, nowMs: number): Promise<void> {
    const item = this.#items.get(instanceId)
    if (!item || !isTerminalInstanceStatus(item.status)) return
    if (item.leaseOwner !== undefined && (item.leaseUntilMs ?? 0) >= nowMs) return
    delete item.dueAtMs
  }

  async getInstance(instanceId: string): Promise<InstanceRecord | undefined> {
    const item = this.#items.get(instanceId)
    return item ? copy(item) : undefined
  }

  async getInstanceStatus(instanceId: string): Promise<InstanceStatusView | undefined> {
    const item = this.#items.get(instanceId)
    return item ? { status: item.status, workflowType: item.workflowType, createdAtMs: item.createdAtMs } : undefined
  }

  async readHistory(instanceId: string, query: { afterSeq?: number; limit: number }): Promise<HistoryPage | undefined> {
    const kept = this.#history.get(instanceId)
    if (!kept) return undefined
    return historyPage(
      {
        runs: [
          { base: 0, entries: kept.first },
          { base: kept.first.length + kept.dropped, entries: kept.recent },
        ],
        dropped: kept.dropped,
      },
      query,
    )
  }

  /** A copy of every stored instance, for checks that look at the whole store (the invariant check in tests). */
  allRecords(): InstanceRecord[] {
    return [...this.#items.values()].map(copy)
  }

  readonly dueShards = 1

  /**
   * The due entries after the cursor's (due time, id), so that an instance leaving the index between two pages
   * (leased by a runner) does not shift the next page past one that is still due, as an offset would.
   */
  async queryDue(_shard: number, nowMs: number, limit: number, cursor?: string): Promise<DuePage> {
    const after = cursor === undefined ? undefined : decodeDueCursor(cursor)
    const due = [...this.#items.values()]
      .filter(
        (item): item is InstanceRecord & { dueAtMs: number } => item.dueAtMs !== undefined && item.dueAtMs <= nowMs,
      )
      .map((item) => ({ instanceId: item.id, dueAtMs: item.dueAtMs }))
      .sort(byDue)
      .filter((item) => after === undefined || byDue(item, after) > 0)
    const items = due.slice(0, limit)
    const last = items[items.length - 1]
    return due.length > limit && last ? { items, cursor: encodeDueCursor(last) } : { items }
  }

  /** The index, as DynamoDB keeps it: the partition's entries within the range, sorted by created key. */
  protected async readIndexPage(request: IndexPageRequest): Promise<IndexPage> {
    const { partition, range, order, filter, limit } = request
    const sorted = [...this.#items.values()]
      .map(entryOf)
      .filter(
        (entry) => inPartition(entry, partition) && entry.createdKey >= range.low && entry.createdKey <= range.high,
      )
      .sort((a, b) => (a.createdKey < b.createdKey ? -1 : a.createdKey > b.createdKey ? 1 : 0))
    if (order === 'desc') sorted.reverse()
    const after = request.next?.after
    const start =
      typeof after === 'string'
        ? sorted.findIndex((entry) => (order === 'desc' ? entry.createdKey < after : entry.createdKey > after))
        : 0
    const read = start < 0 ? [] : sorted.slice(start, start + limit)
    const matching = read.filter((entry) => entryMatches(entry, filter))
    const last = read[read.length - 1]
    const more = start >= 0 && start + limit < sorted.length
    return {
      entries: request.countOnly ? [] : matching,
      matched: matching.length,
      read: read.length,
      ...(more && last ? { next: { position: { after: last.createdKey }, lastKey: last.createdKey } } : {}),
    }
  }

  async putDefinition(workflowType: string, version: string, config: NormalisedConfig): Promise<void> {
    const key = `${workflowType}@${version}`
    if (!this.#definitions.has(key)) this.#definitions.set(key, copy(config))
  }

  async getDefinition(workflowType: string, version: string): Promise<NormalisedConfig | undefined> {
    const config = this.#definitions.get(`${workflowType}@${version}`)
    return config ? copy(config) : undefined
  }
}
