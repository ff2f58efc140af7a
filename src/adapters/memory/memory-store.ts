import { z } from 'zod'
import type { NormalisedConfig } from '../../core/definition.js'
import { InstanceNotFoundError, ValidationError } from '../../core/errors.js'
import { eventRefusal, eventWriteRefusal, guardHolds } from '../../core/event-rules.js'
import { historyPage } from '../../core/history.js'
import {
  acquired,
  acquireRefusal,
  exceedsBudget,
  historyBaseMoved,
  holdsLease,
  leaseWriteRefusal,
  writeSeqMoved,
} from '../../core/lease-rules.js'
import { applyChange } from '../../core/leased-operation.js'
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
  type NodeEventRecord,
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
 * An in-process InstanceStore with the same conditional semantics as the DynamoDB store: each write evaluates the
 * shared conditions (`lease-rules.ts`, `event-rules.ts`) and answers their refusals; the catalogue is the shared
 * one (`store-catalogue.ts`) over a sorted read of the records. Used by fast tests of the engine, the behaviour
 * specs and the shared store contract suite; not durable.
 */
export class MemoryStore extends IndexedCatalogue implements InstanceStore {
  readonly #items = new Map<string, InstanceRecord>()
  /** History entries moved out of each instance's record, as the archive items of the DynamoDB layout hold them. */
  readonly #archivedHistory = new Map<string, { base: number; entries: HistoryEntry[] }[]>()
  readonly #definitions = new Map<string, NormalisedConfig>()

  constructor(options: CatalogueOptions = {}) {
    super(options)
  }

  async createInstance(record: InstanceRecord, lease?: Lease): Promise<void> {
    const existing = this.#items.get(record.id)
    if (existing) throw new InstanceExistsError(copy(existing))
    const stored = copy(record)
    stored.storedBytes ??= instanceStoredBytes(record)
    if (lease) {
      stored.leaseOwner = lease.owner
      stored.leaseUntilMs = lease.untilMs
      stored.fence = lease.fence
    }
    this.#items.set(record.id, stored)
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
    const refusal = acquireRefusal(copy(item), owner, nowMs, options)
    if (refusal instanceof Error) throw refusal
    if (refusal) return refusal
    const result = acquired(copy(item), owner, untilMs, options)
    this.#items.set(instanceId, copy(result.record))
    return result
  }

  async writeUnderLease(lease: Lease, change: InstanceChange): Promise<{ eventSeq: number }> {
    const item = this.#items.get(lease.instanceId)
    if (
      !item ||
      !holdsLease(item, lease) ||
      writeSeqMoved(item, change) ||
      exceedsBudget(item, change) ||
      historyBaseMoved(item, change)
    ) {
      const refusal = leaseWriteRefusal(item && copy(item), lease, change)
      if (refusal instanceof Error) throw refusal
      return refusal.landed
    }
    if (item.storedBytes === undefined && change.bytesBase !== undefined) item.storedBytes = change.bytesBase
    const out = change.historyOut
    if (out && !out.drop && out.count > 0) {
      const runs = this.#archivedHistory.get(lease.instanceId) ?? []
      runs.push({ base: item.historyBase ?? 0, entries: copy((item.history ?? []).slice(0, out.count)) })
      this.#archivedHistory.set(lease.instanceId, runs)
    }
    const next = applyChange(item, change)
    this.#items.set(lease.instanceId, next)
    return {
      eventSeq: item.eventSeq,
      ...(change.history || out ? { history: copy(next.history ?? []) } : {}),
    }
  }

  async releaseLease(lease: Lease): Promise<void> {
    const item = this.#items.get(lease.instanceId)
    if (item && holdsLease(item, lease)) {
      delete item.leaseOwner
      delete item.leaseUntilMs
    }
  }

  async putEvent(
    instanceId: string,
    nodeId: string,
    event: NodeEventRecord,
    nowMs: number,
    guard?: EventGuard,
    history?: HistoryEntry,
  ): Promise<void> {
    const item = this.#items.get(instanceId)
    if (!item) throw new InstanceNotFoundError(instanceId)
    if (eventRefusal(item, nodeId, event) || (guard && !guardHolds(item, nodeId, guard))) {
      const refusal = eventWriteRefusal(copy(item), nodeId, event, guard)
      if (refusal === 'landed') return
      throw refusal
    }
    if (guard && guard.addBytes !== 0) item.storedBytes = (item.storedBytes ?? guard.baseBytes) + guard.addBytes
    item.events[nodeId] = copy(event)
    if (history) item.history = [...(item.history ?? []), copy(history)]
    item.eventSeq += 1
    item.dueAtMs = nowMs
  }

  async markDue(instanceId: string, dueAtMs: number): Promise<void> {
    const item = this.#items.get(instanceId)
    if (!item || isTerminalInstanceStatus(item.status)) return
    if (item.dueAtMs === undefined || item.dueAtMs > dueAtMs) item.dueAtMs = dueAtMs
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
    const item = this.#items.get(instanceId)
    if (!item) return undefined
    return historyPage(
      {
        archived: this.#archivedHistory.get(instanceId) ?? [],
        hot: item.history ?? [],
        hotBase: item.historyBase ?? 0,
        dropped: item.historyDropped ?? 0,
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
