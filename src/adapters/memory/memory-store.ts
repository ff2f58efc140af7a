import type { NormalisedConfig } from '../../core/definition.js'
import {
  InstanceNotFoundError,
  ItemTooLargeError,
  LeaseLostError,
  LockConflictError,
  ValidationError,
} from '../../core/errors.js'
import { eventRefusal, guardRefusal } from '../../core/event-rules.js'
import { historyPage } from '../../core/history.js'
import { applyChange } from '../../core/leased-operation.js'
import { instanceStoredBytes } from '../../core/limits.js'
import { isTerminalInstanceStatus } from '../../core/statuses.js'
import {
  type AcquireOptions,
  type AcquireResult,
  type CountQuery,
  type CountResult,
  type DuePage,
  type EventGuard,
  type HistoryEntry,
  type HistoryPage,
  type InstanceChange,
  InstanceExistsError,
  type InstanceHistory,
  type InstanceRecord,
  type InstanceStatusView,
  type InstanceStore,
  type InstanceSummary,
  type Lease,
  type ListPage,
  type ListQuery,
  type NodeEventRecord,
} from '../../core/store.js'

const copy = <T>(value: T): T => structuredClone(value)

const matches = (record: InstanceRecord, query: CountQuery): boolean =>
  (query.businessId !== undefined
    ? record.businessId === query.businessId &&
      (query.workflowTypes.length !== 1 || record.workflowType === query.workflowTypes[0])
    : query.workflowTypes.includes(record.workflowType)) &&
  (query.statuses === undefined || query.statuses.includes(record.status)) &&
  (query.parked === undefined || query.parked === (record.parked !== undefined)) &&
  (query.createdFromMs === undefined || record.createdAtMs >= query.createdFromMs) &&
  (query.createdToMs === undefined || record.createdAtMs <= query.createdToMs)

const sortKey = (record: { createdAtMs: number; id: string }): string =>
  `${String(record.createdAtMs).padStart(15, '0')}#${record.id}`

/**
 * An in-process InstanceStore with the same conditional semantics as the DynamoDB store. Used by fast unit tests
 * of the engine and by the shared store contract suite; not durable.
 */
export class MemoryStore implements InstanceStore, InstanceHistory {
  readonly #items = new Map<string, InstanceRecord>()
  /** History entries moved out of each instance's record, as the archive items of the DynamoDB layout hold them. */
  readonly #archivedHistory = new Map<string, { base: number; entries: HistoryEntry[] }[]>()
  readonly #definitions = new Map<string, NormalisedConfig>()

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
    if (options?.dueBy !== undefined && !isTerminalInstanceStatus(item.status)) {
      if (item.dueAtMs === undefined || item.dueAtMs > options.dueBy) return { kind: 'not-due', record: copy(item) }
    }
    const leaseFree = item.leaseOwner === undefined || (item.leaseUntilMs ?? 0) < nowMs || item.leaseOwner === owner
    const terminal = isTerminalInstanceStatus(item.status)
    if (terminal && !options?.allowTerminal && !options?.terminalOnly) return { kind: 'terminal', record: copy(item) }
    if (!leaseFree) throw new LockConflictError(instanceId, item.leaseUntilMs, nowMs)
    if (options?.terminalOnly && !terminal) return { kind: 'live', record: copy(item) }
    const previous = {
      ...(item.dueAtMs === undefined ? {} : { dueAtMs: item.dueAtMs }),
      ...(item.parked === undefined ? {} : { parked: copy(item.parked) }),
    }
    item.leaseOwner = owner
    item.leaseUntilMs = untilMs
    if (!options?.terminalOnly && options?.dueBy === undefined) {
      item.dueAtMs = untilMs
      delete item.parked
    }
    item.fence += 1
    return { kind: 'acquired', lease: { instanceId, owner, fence: item.fence, untilMs }, record: copy(item), previous }
  }

  async writeUnderLease(lease: Lease, change: InstanceChange): Promise<{ eventSeq: number }> {
    const item = this.#items.get(lease.instanceId)
    if (!item || item.leaseOwner !== lease.owner || item.fence !== lease.fence) {
      throw new LeaseLostError(lease.instanceId, lease.fence)
    }
    if (item.storedBytes === undefined && change.bytesBase !== undefined) item.storedBytes = change.bytesBase
    const bytes = (item.storedBytes ?? 0) + (change.bytesDelta ?? 0)
    if ((change.bytesDelta ?? 0) > 0 && change.maxBytes !== undefined && bytes > change.maxBytes) {
      throw new ItemTooLargeError(
        `the instance would store ${bytes} bytes, over its budget of ${change.maxBytes}`,
        `instance budget of ${change.maxBytes} bytes exceeded`,
      )
    }
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
    if (item && item.leaseOwner === lease.owner && item.fence === lease.fence) {
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
    const refusal = eventRefusal(item, nodeId, event)
    if (refusal) throw refusal
    if (guard) {
      const stored = item.events[nodeId]
      const replaced = guard.replaces
      const same =
        stored === undefined
          ? replaced === null
          : replaced !== null && stored.eventTs === replaced.eventTs && stored.receivedAtMs === replaced.receivedAtMs
      const room = guard.addBytes <= 0 || (item.storedBytes ?? 0) + guard.addBytes <= guard.maxBytes
      if (!same || !room) throw guardRefusal(item, nodeId, guard)
      item.storedBytes = (item.storedBytes ?? guard.baseBytes) + guard.addBytes
    }
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

  readonly dueShards = 1

  async queryDue(_shard: number, nowMs: number, limit: number, cursor?: string): Promise<DuePage> {
    const offset = cursor === undefined ? 0 : Number(cursor)
    if (!Number.isInteger(offset) || offset < 0) throw new ValidationError('cursor is not a due-index cursor', 'cursor')
    const due = [...this.#items.values()]
      .filter((item) => item.dueAtMs !== undefined && item.dueAtMs <= nowMs)
      .sort((a, b) => (a.dueAtMs as number) - (b.dueAtMs as number))
      .map((item) => ({ instanceId: item.id, dueAtMs: item.dueAtMs as number }))
    const items = due.slice(offset, offset + limit)
    return offset + limit < due.length ? { items, cursor: String(offset + limit) } : { items }
  }

  async listInstances(query: ListQuery): Promise<ListPage> {
    let after: string | undefined
    if (query.cursor !== undefined) {
      try {
        after = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')).after
      } catch {
        after = undefined
      }
      if (typeof after !== 'string') throw new ValidationError('cursor is not a cursor this store issued', 'cursor')
    }
    const sorted = [...this.#items.values()]
      .filter((item) => matches(item, query))
      .sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1))
    if (query.order === 'desc') sorted.reverse()
    const start =
      after === undefined
        ? sorted
        : sorted.filter((item) => (query.order === 'desc' ? sortKey(item) < after : sortKey(item) > after))
    const page = start.slice(0, query.limit)
    const items = page.map((item): InstanceSummary => {
      const summary: InstanceSummary = {
        id: item.id,
        workflowType: item.workflowType,
        status: item.status,
        createdAtMs: item.createdAtMs,
      }
      if (item.businessId !== undefined) summary.businessId = item.businessId
      if (item.parked !== undefined) summary.parked = item.parked.code
      return summary
    })
    const last = page[page.length - 1]
    return start.length > query.limit && last
      ? { items, cursor: Buffer.from(JSON.stringify({ after: sortKey(last) })).toString('base64url') }
      : { items }
  }

  async countInstances(query: CountQuery, maxRead: number): Promise<CountResult> {
    // As DynamoDB reads it: the entries of the partitions and time range, of which at most `maxRead` are read.
    const { statuses: _statuses, parked: _parked, ...keyed } = query
    const read = [...this.#items.values()].filter((item) => matches(item, keyed))
    const count = read.slice(0, maxRead).filter((item) => matches(item, query)).length
    return { count, complete: read.length <= maxRead }
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
