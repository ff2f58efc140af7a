import type { InstanceStatus } from '../schemas/statuses.js'
import type { CallbackClaims } from './callback-token.js'
import type { CallbackArrival, CallbackGuard } from './callbacks.js'
import type { NormalisedConfig } from './definition.js'
import type { InstanceChange } from './instance-change.js'
import type { OutboxIndex, OutboxStore } from './lifecycle-events.js'
import type { StoreCapacity } from './limits.js'
import type { HistoryEntry, InstanceRecord, NodeEventRecord, ParkedState, PartsRead, PartsWanted } from './records.js'

export type { InstanceChange } from './instance-change.js'
export type {
  AttemptStarted,
  FailureSummary,
  HistoryEntry,
  InstanceRecord,
  NextAttempt,
  NodeEventRecord,
  NodeRecord,
  ParkedState,
  PartsRead,
  PartsWanted,
  UnreadParts,
} from './records.js'

/** A page of history, oldest first. */
export interface HistoryPage {
  entries: HistoryEntry[]
  /** The last entry's seq when more may follow. */
  nextAfterSeq?: number
  /** Entries dropped at the cap (MAX_HISTORY_ENTRIES), between the first ones kept and the latest. */
  dropped: number
}

/** Reading an instance's history (a capability of its own, next to the instance store). */
export interface InstanceHistory {
  /**
   * The entries with `seq > afterSeq` (all with undefined), oldest first, at most `limit`; undefined for an unknown
   * instance.
   */
  readHistory(instanceId: string, query: { afterSeq?: number; limit: number }): Promise<HistoryPage | undefined>
}

export interface Lease {
  readonly instanceId: string
  readonly owner: string
  readonly fence: number
  readonly untilMs: number
}

/** What a write under the lease reports back. */
export interface WriteResult {
  /** The event counter after the write: a holder compares it to learn that an event arrived meanwhile. */
  eventSeq: number
}

/**
 * The writes of one lease, from the store that granted it: each `write` is conditioned on the lease (owner and
 * fence) and laid out over the store's items as the store sees fit — what is inline, what moves out, how a write
 * retried after its answer was lost is recognised —, knowing what this lease stored before.
 */
export interface LeaseWriter {
  readonly lease: Lease
  /**
   * Applies `change` if the lease still holds; throws LeaseLostError otherwise, and ItemTooLargeError when the change
   * grows the instance past `maxBytes` or past what the store can hold (nothing of it is stored then).
   */
  write(change: InstanceChange): Promise<WriteResult>
  /**
   * Clears the lease if it is still ours, changing nothing else (no error when it is not) — except, with
   * `attemptsNotMade`, the attempt this lease's acquisition recorded (see `armAttempt`), which its holder did not make.
   */
  abandon(options?: { attemptsNotMade?: boolean }): Promise<void>
  /** Reads, by key, parts of the instance the store did not read when it granted the lease (InstanceRecord.unread). */
  read(parts: PartsWanted): Promise<PartsRead>
}

/** How an event write keeps the instance within its budget, exactly under concurrency. */
export interface EventGuard {
  /** The event this one replaces, as read (null: none); refused with EventReplacedError if another replaced it. */
  replaces: NodeEventRecord | null
  /** What the write adds to the stored bytes (the new event less the one it replaces). */
  addBytes: number
  /** The total as the writer read it: where an item stored without a total starts from. */
  baseBytes: number
  /** Refused (PayloadTooLargeError) if the stored bytes would exceed this. */
  maxBytes: number
}

/** Raised by `putEvent` with a guard when the event it replaces changed since it was read: read again and retry. */
export class EventReplacedError extends Error {
  override readonly name = 'EventReplacedError'
}

/**
 * What a refused acquisition reports: the instance's state — status, lease, due time, parked state — without its
 * contents (node records, events, input, history), which a refusal never needs and a store may keep elsewhere.
 */
export type InstanceState = Omit<InstanceRecord, 'nodes' | 'events' | 'input' | 'priorInputs'>

export type AcquireResult =
  /**
   * `record` as it is now, leased; `previous`: its due time and parked state before the acquisition; `writer`: the
   * writes of this lease.
   */
  | {
      kind: 'acquired'
      lease: Lease
      record: InstanceRecord
      previous: { dueAtMs?: number; parked?: ParkedState }
      writer: LeaseWriter
    }
  | { kind: 'terminal'; record: InstanceState }
  /** Only with `dueBy`: the instance is not due (yet, or any more); nothing was written. */
  | { kind: 'not-due'; record: InstanceState }
  /** Only with `terminalOnly`: the instance is not terminal (any more); nothing was written. */
  | { kind: 'live'; record: InstanceState }

export interface AcquireOptions {
  /** For restarts: a terminal instance may be leased. */
  allowTerminal?: boolean
  /**
   * Only a terminal instance is leased, and it does not become due (the operation's first write makes it live and
   * due); a live one answers `live` without a write.
   */
  terminalOnly?: boolean
  /** For due passes: lease only if the instance is due at or before this time. */
  dueBy?: number
}

/** One entry of the due index. */
export interface DueItem {
  instanceId: string
  dueAtMs: number
}

export interface DuePage {
  items: DueItem[]
  cursor?: string
}

export interface ListQuery {
  workflowTypes: readonly string[]
  statuses?: readonly InstanceStatus[]
  /** Only parked instances (true) or only instances that are not parked (false). */
  parked?: boolean
  businessId?: string
  createdFromMs?: number
  createdToMs?: number
  limit: number
  cursor?: string
  order: 'asc' | 'desc'
}

export interface InstanceSummary {
  id: string
  workflowType: string
  businessId?: string
  status: InstanceStatus
  createdAtMs: number
  /** The parked code, for an instance that cannot run until it is restarted. */
  parked?: string
}

export interface ListPage {
  items: InstanceSummary[]
  /** Present when there may be more; pass it back to get the next page. */
  cursor?: string
}

/** What a long-poll watches: the status, and what a store needs to find a cheaper copy of it next time. */
export interface InstanceStatusView {
  status: InstanceStatus
  workflowType: string
  createdAtMs: number
}

export type CountQuery = Omit<ListQuery, 'limit' | 'cursor' | 'order'>

/**
 * A count that read at most a bound of index entries, so that its cost does not grow with the number of instances:
 * `complete: false` means it stopped there, and `count` is how many of the entries read matched ("at least").
 */
export interface CountResult {
  count: number
  complete: boolean
}

/** Raised by `createInstance` when the id is taken; carries what is stored. */
export class InstanceExistsError extends Error {
  override readonly name = 'InstanceExistsError'
  constructor(readonly existing: InstanceRecord) {
    super(`instance '${existing.id}' already exists`)
  }
}

/**
 * The storage port, split by capability so that a part of the engine can ask for only what it uses (the tick needs
 * the due index, a leased operation the instance and its lease). Implementations must make every state change a
 * single atomic, conditional change: the engine's correctness under concurrency rests on these conditions. The
 * rules the stores share (refusal reasons, list cursors, sort keys, filters, paging) live once in
 * `core/lease-rules.ts`, `core/event-rules.ts` and `adapters/store-catalogue.ts`; each store implements only I/O.
 */
export interface InstanceLeaseStore extends OutboxStore {
  /** What the store can hold of one instance: the engine's limits must stay within it. */
  readonly capacity: StoreCapacity
  /** Stores a new instance with its first history entries. Throws InstanceExistsError when the id is taken. */
  createInstance(record: InstanceRecord, history?: readonly HistoryEntry[]): Promise<void>
  /** Stores a new instance already leased by `lease` (fence 1), and returns the writer of that lease. */
  createLeased(record: InstanceRecord, lease: Lease, history?: readonly HistoryEntry[]): Promise<LeaseWriter>
  /**
   * Takes the lease when no live lease exists (or it is `owner`'s) and the instance is not terminal (unless
   * `allowTerminal`, for restarts) and, with `dueBy`, is due by then; increments the fence. In the same write the
   * instance becomes due at `untilMs` (so a holder that dies is resumed by the tick) and stops being parked — except
   * with `dueBy` (it is due already, no later than the lease end) and with `terminalOnly` (it needs nothing).
   * Returns the record read atomically with the acquisition. Throws InstanceNotFoundError, LockConflictError.
   */
  acquireLease(
    instanceId: string,
    owner: string,
    nowMs: number,
    untilMs: number,
    options?: AcquireOptions,
  ): Promise<AcquireResult>
  /**
   * Stores an external event without taking the lease, so an event is never refused because a pass is running.
   * Conditions: instance exists and is not terminal, node not terminal, no newer event stored.
   * Throws InstanceNotFoundError, IllegalStateError, StaleEventError. Makes the instance due at `nowMs` — unless it
   * is parked: a parked instance is not due until someone acts (a restart), so the event is only kept for the pass
   * after that (`parked` answers so). With a guard, the size is checked in the same write (PayloadTooLargeError,
   * EventReplacedError).
   */
  putEvent(
    instanceId: string,
    nodeId: string,
    event: NodeEventRecord,
    nowMs: number,
    guard?: EventGuard,
    /** Appended to the instance's history in the same write. */
    history?: HistoryEntry,
  ): Promise<'due' | 'parked'>
  /**
   * Stores a callback's completion or heartbeat for the node its claims name, without the lease, if the condition
   * of `callbackAccepts` holds in the write — the wait's deadlines checked at `nowMs` —; a completion makes the instance due at `nowMs` (unless it is parked:
   * it is kept for the pass after a restart, as an event is) and counts as an event (a running pass notices it).
   * Answers `duplicate` for the same completion stored before; throws the refusal of `callbackRefusal` otherwise,
   * InstanceNotFoundError for an unknown instance. The arrival's `storedBytes` join the instance's stored bytes in
   * the same write, conditioned on the guard's budget (PayloadTooLargeError, nothing stored, when it has no room:
   * see `callbackBudgetRefusal`).
   */
  putCallback(
    claims: CallbackClaims,
    arrival: CallbackArrival,
    nowMs: number,
    guard?: CallbackGuard,
  ): Promise<'stored' | 'duplicate'>
  /**
   * Makes the instance due at `dueAtMs` unless it is terminal or parked (no lease needed: it only ever moves work
   * earlier).
   */
  markDue(instanceId: string, dueAtMs: number): Promise<void>
  /** Removes the due time of a terminal instance that nobody holds (left by an operation that died). */
  clearTerminalDue(instanceId: string, nowMs: number): Promise<void>
  /**
   * The whole instance. With `lazy`, what lives in items of its own may be left unread (InstanceRecord.unread):
   * enough for checks of statuses and sizes, cheaper for a large instance.
   */
  getInstance(instanceId: string, options?: { lazy?: boolean }): Promise<InstanceRecord | undefined>
  /**
   * A small read of the status alone; may lag a write slightly (eventually consistent where that is cheaper).
   * `known`, a view read earlier, lets a store read a small copy (an index entry) instead of the item.
   */
  getInstanceStatus(instanceId: string, known?: InstanceStatusView): Promise<InstanceStatusView | undefined>
}

/** The due index: what the tick reads to find instances that need a pass. */
export interface DueIndex {
  /** Number of shards of the due index; `queryDue` is asked once per shard. */
  readonly dueShards: number
  /**
   * Instances of one shard due at or before `nowMs`, without reading idle ones. A page may be short or empty and
   * still carry a cursor (DynamoDB reads places up to now, and keeps what is due): the caller reads on.
   */
  queryDue(shard: number, nowMs: number, limit: number, cursor?: string): Promise<DuePage>
}

/** The catalogue: instances listed and counted by type, business id, status and creation time. */
export interface InstanceCatalogue {
  /**
   * A page of summaries in creation order (then id). The cursor is the store's position (see
   * `adapters/store-catalogue.ts`): the same format in every store; one it did not issue is a ValidationError
   * naming `cursor`.
   */
  listInstances(query: ListQuery): Promise<ListPage>
  /** Reads at most `maxRead` index entries of the query's range, in all its partitions together. */
  countInstances(query: CountQuery, maxRead: number): Promise<CountResult>
}

/** Definition snapshots, so that an instance keeps running on the definition it started with. */
export interface DefinitionStore {
  /** Stores a definition snapshot once per (type, version); later calls are no-ops. */
  putDefinition(workflowType: string, version: string, config: NormalisedConfig): Promise<void>
  getDefinition(workflowType: string, version: string): Promise<NormalisedConfig | undefined>
}

/** Everything the engine uses: every capability of one store. */
export type InstanceStore = InstanceLeaseStore &
  DueIndex &
  InstanceCatalogue &
  DefinitionStore &
  InstanceHistory &
  OutboxIndex
