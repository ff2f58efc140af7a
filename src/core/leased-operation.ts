import type { InstanceStatus } from '../schemas/statuses.js'
import { isTerminalInstanceStatus, isTerminalNodeStatus } from '../schemas/statuses.js'
import { LeaseLostError, LockConflictError } from './errors.js'
import {
  changeEntries,
  entryMessage,
  HISTORY_ARCHIVE_AT_BYTES,
  HISTORY_MOVE_MAX,
  HISTORY_MOVE_OWN_MAX,
  historyBytes,
  MAX_HISTORY_ENTRIES,
} from './history.js'
import { jsonSizeBytes } from './json.js'
import { type LeaseSizing, type LeaseTimes, leaseTimes } from './lease-sizing.js'
import {
  ARCHIVE_AT_BYTES,
  failureStoredBytes,
  instanceStoredBytes,
  nodeBytesAround,
  nodeInlineBytes,
  nodePayloadBytes,
  nodeStoredBytes,
  priorInputsStoredBytes,
} from './limits.js'
import { MetricName, type Metrics } from './metrics.js'
import type { PassSession } from './pass.js'
import type { Clock, IdGenerator, Logger } from './ports.js'
import type {
  HistoryEntry,
  InstanceChange,
  InstanceLeaseStore,
  InstanceRecord,
  InstanceState,
  Lease,
  NodeRecord,
  ParkedState,
  WriteResult,
} from './store.js'
import type { Wakeups } from './wakeups.js'

/**
 * The lease lifecycle, written once: acquire (which makes the instance due by the lease end), read inside the
 * lease, fenced writes, one releasing write that leaves the instance terminal, due at a time, or parked with a
 * reason, and the wake-up for that due time. Every operation and pass goes through it, so that a runner dying
 * anywhere leaves an instance the tick will find.
 */

export interface LeasedDeps {
  store: InstanceLeaseStore
  clock: Clock
  ids: IdGenerator
  logger: Logger
  metrics?: Metrics
  wakeups: Wakeups
  sizing: LeaseSizing
  /** The instance budget: writes that grow the instance are conditioned on staying within it. */
  maxInstanceBytes: number
  /** How long a finished instance is kept before the table's TTL deletes it; 0 keeps it. */
  retentionDays: number
  /** Whether writes carry history entries (the engine's `history` option). */
  history: boolean
}

export interface AcquireRequest {
  instanceId: string
  /** The caller's remaining time (a Lambda's `getRemainingTimeInMillis()`); undefined outside Lambda. */
  remainingTimeMs?: number | undefined
  /** Due passes lease only what is due now. */
  dueOnly?: boolean
  /** Lease only a terminal instance, without making it due: the operation's first write makes it live and due. */
  terminalOnly?: boolean
}

export type Acquired =
  | { kind: 'held'; session: LeaseSession }
  | { kind: 'terminal' | 'not-due' | 'live'; record: InstanceState }

/** How the releasing write leaves the instance. */
export interface Release {
  /** The instance's status after the operation (the writes before may already have stored it). */
  status: InstanceStatus
  /** When it next needs attention; ignored for a terminal status. */
  dueAtMs: number | null
  parked?: ParkedState
}

export interface Released {
  dueAtMs: number | null
  eventArrived: boolean
}

export class LeasedOperations {
  constructor(readonly deps: LeasedDeps) {}

  times(remainingTimeMs: number | undefined): LeaseTimes {
    return leaseTimes(this.deps.clock.nowMs(), remainingTimeMs, this.deps.sizing)
  }

  async acquire(request: AcquireRequest): Promise<Acquired> {
    const { store, clock, ids } = this.deps
    const now = clock.nowMs()
    const times = leaseTimes(now, request.remainingTimeMs, this.deps.sizing)
    const acquired = await store
      .acquireLease(request.instanceId, ids.newLeaseOwner(), now, times.untilMs, {
        ...(request.terminalOnly ? { terminalOnly: true } : {}),
        ...(request.dueOnly ? { dueBy: now } : {}),
      })
      .catch((error: unknown) => {
        if (error instanceof LockConflictError)
          this.deps.metrics?.add(MetricName.leaseConflicts, 1, 'Count', { kind: 'held' })
        throw error
      })
    if (acquired.kind === 'acquired') {
      const session = new LeaseSession(this.deps, acquired.lease, times, acquired.record, {
        previous: acquired.previous,
        dueOwed: request.terminalOnly === true,
      })
      return { kind: 'held', session }
    }
    // A terminal instance still in the due index was left there by an operation that died on it: take it out.
    if (acquired.kind === 'terminal' && acquired.record.dueAtMs !== undefined) {
      await store.clearTerminalDue(request.instanceId, now)
    }
    return { kind: acquired.kind, record: acquired.record }
  }

  /**
   * A lease on an instance that is not stored yet (create with run): its first write stores the whole instance,
   * leased and due by the lease end.
   */
  unborn(record: InstanceRecord, times: LeaseTimes, hooks: UnbornHooks): LeaseSession {
    const lease: Lease = {
      instanceId: record.id,
      owner: this.deps.ids.newLeaseOwner(),
      fence: 1,
      untilMs: times.untilMs,
    }
    return new LeaseSession(this.deps, lease, times, { ...record, fence: 1 }, { unborn: hooks, previous: {} })
  }
}

export interface UnbornHooks {
  /** Stores the new instance (leased by `lease` when given); the caller's idempotency rules live here. */
  put(record: InstanceRecord, lease?: Lease): Promise<void>
  onStored(): Promise<void>
}

/** What the instance was before this lease was acquired (acquisition makes it due and unparks it). */
export interface BeforeLease {
  dueAtMs?: number
  parked?: ParkedState
}

/**
 * The sizes of what the lease holder writes, as stored: each write's `bytesDelta` is computed from them. The holder
 * is the only writer of nodes, input, failure and prior inputs, so these stay exact; events (written without the
 * lease) only ever add to the stored total, which the store keeps and conditions on.
 */
class StoredSizes {
  /** Each node's stored bytes (see nodeStoredBytes) and its payload's bytes, measured once per stored version. */
  readonly nodes = new Map<string, number>()
  readonly #payloads = new Map<string, number>()
  /** The nodes of the change `delta` last measured, for `apply` and `inline` (each payload is sized once). */
  #measured = new Map<string, number>()
  input: number
  failure: number
  prior: number
  /** The stored total as last known (events that arrived since are not in it). */
  total: number

  constructor(record: InstanceRecord) {
    for (const [id, node] of Object.entries(record.nodes)) {
      const payload = nodePayloadBytes(node)
      this.#payloads.set(id, payload)
      this.nodes.set(id, nodeBytesAround(id, node, payload))
    }
    this.input = jsonSizeBytes(record.input)
    this.failure = failureStoredBytes(record.failure)
    this.prior = priorInputsStoredBytes(record.priorInputs)
    this.total = record.storedBytes ?? instanceStoredBytes(record)
  }

  delta(change: InstanceChange): number {
    this.#measured = new Map()
    let delta = 0
    for (const [id, node] of Object.entries(change.nodes ?? {})) {
      const payload = nodePayloadBytes(node)
      this.#measured.set(id, payload)
      delta += nodeBytesAround(id, node, payload) - (this.nodes.get(id) ?? 0)
    }
    if (change.input !== undefined) delta += jsonSizeBytes(change.input) - this.input
    if (change.failure !== undefined) delta += failureStoredBytes(change.failure ?? undefined) - this.failure
    if (change.priorInputs !== undefined) delta += priorInputsStoredBytes(change.priorInputs ?? undefined) - this.prior
    return delta
  }

  /** What `node` takes in the instance item: the node as changed by the change just measured, or as stored. */
  inline(id: string, node: NodeRecord): number {
    return nodeInlineBytes(id, node, this.#measured.get(id) ?? this.#payloads.get(id) ?? nodePayloadBytes(node))
  }

  apply(change: InstanceChange, delta: number): void {
    // Archived records that this change did not touch are stored as they were: their sizes stay.
    for (const [id, node] of Object.entries({ ...change.archive, ...change.nodes })) {
      const payload = this.#measured.get(id)
      if (payload === undefined) continue
      this.#payloads.set(id, payload)
      this.nodes.set(id, nodeBytesAround(id, node, payload))
    }
    if (change.input !== undefined) this.input = jsonSizeBytes(change.input)
    if (change.failure !== undefined) this.failure = failureStoredBytes(change.failure ?? undefined)
    if (change.priorInputs !== undefined) this.prior = priorInputsStoredBytes(change.priorInputs ?? undefined)
    this.total += delta
  }
}

/**
 * More changed nodes than this in one write and the whole node map is written instead: one `nodes.#n = :n` per
 * node would pass DynamoDB's 4 KB update-expression limit near 200 nodes, the most a definition may have.
 */
const MAX_NODES_ONE_BY_ONE = 40

/** A held lease: the record as read inside it, fenced writes, and the one releasing write. */
export class LeaseSession implements PassSession {
  #stored: boolean
  readonly #unborn: UnbornHooks | undefined
  #released = false
  /** Leased without becoming due (a terminal instance): the first write that keeps the lease makes it due. */
  #dueOwed: boolean
  /** Writes that landed under this lease (the creating put included). */
  writes = 0
  readonly previous: BeforeLease
  #sizes!: StoredSizes
  /** Every node record as this lease last stored it (or read it). */
  #nodes!: Record<string, NodeRecord>
  /** The nodes whose records are in the instance item (the others are in archive items). */
  #hot!: Set<string>
  /** The instance item's write count as this lease last left it (see InstanceRecord.writeSeq). */
  #writeSeq!: number
  /** The status as last stored (or read). */
  #status!: InstanceStatus
  /** Each node's status as last stored (or read): callers change the records they were given in place. */
  #nodeStatuses!: Record<string, NodeRecord['status']>
  /**
   * The first entries of the instance item's history, as this lease knows them: the item's list as read or as a
   * write returned it. Entries appended since by events sit after these.
   */
  #history!: HistoryEntry[]
  #historyBase!: number
  #historyDropped!: number

  constructor(
    readonly deps: LeasedDeps,
    readonly lease: Lease,
    readonly times: LeaseTimes,
    /** The instance as read inside the lease (for an unborn session: as it will be created). */
    readonly record: InstanceRecord,
    options: { unborn?: UnbornHooks; previous: BeforeLease; dueOwed?: boolean },
  ) {
    this.#dueOwed = options.dueOwed === true
    this.#unborn = options.unborn
    this.#stored = options.unborn === undefined
    this.previous = options.previous
    this.#adopt(record)
  }

  /** What this lease knows is stored, from a record as read (or as the creating put stored it). */
  #adopt(record: InstanceRecord): void {
    this.#sizes = new StoredSizes(record)
    this.#nodes = { ...record.nodes }
    this.#hot = hotNodes(record)
    this.#writeSeq = record.writeSeq ?? 0
    this.#status = record.status
    this.#nodeStatuses = statusesOf(record.nodes)
    this.#history = [...(record.history ?? [])]
    this.#historyBase = record.historyBase ?? 0
    this.#historyDropped = record.historyDropped ?? 0
  }

  /**
   * The change with its history entries: those the caller gives (errors, restarts, cancels), then one per node
   * status change and the instance's end, as this lease last stored them, and the parking of a releasing write.
   */
  #withEntries(change: InstanceChange): InstanceChange {
    if (!this.deps.history) {
      const { history: _none, ...rest } = change
      return rest
    }
    const now = this.deps.clock.nowMs()
    const entries = [
      ...(change.history ?? []),
      ...changeEntries(now, { nodes: this.#nodeStatuses, status: this.#status }, change),
    ]
    // A releasing write that parks again as before the lease (an operation that changed nothing) is no news.
    if (change.parked && change.parked.atMs !== this.previous.parked?.atMs) {
      entries.push({ atMs: now, kind: 'parked', code: change.parked.code, message: entryMessage(change.parked.reason) })
    }
    const { history: _history, ...rest } = change
    return entries.length ? { ...rest, history: entries } : rest
  }

  /**
   * Moves the recent history out of the instance item with the settled records, or on its own once it takes
   * HISTORY_ARCHIVE_AT_BYTES there; beyond MAX_HISTORY_ENTRIES archived, it is dropped instead.
   */
  #historyLaidOut(change: InstanceChange): InstanceChange {
    const known = this.#history
    if (!known.length || (change.history?.length ?? 0) > HISTORY_MOVE_OWN_MAX) return change
    const archiving = change.archive !== undefined && Object.keys(change.archive).length > 0
    if (!archiving && historyBytes(known) < HISTORY_ARCHIVE_AT_BYTES) return change
    const moved = known.slice(0, HISTORY_MOVE_MAX)
    const archived = this.#historyBase - this.#historyDropped
    const drop = archived + moved.length > MAX_HISTORY_ENTRIES
    return {
      ...change,
      historyOut: { count: moved.length, entries: moved, base: this.#historyBase, ...(drop ? { drop: true } : {}) },
    }
  }

  /** What the instance would store with `nodes` replaced, as far as this lease knows (see StoredSizes). */
  storedBytesWith(nodes: Readonly<Record<string, NodeRecord>>): number {
    let total = this.#sizes.total
    for (const [id, node] of Object.entries(nodes))
      total += nodeStoredBytes(id, node) - (this.#sizes.nodes.get(id) ?? 0)
    return total
  }

  /**
   * The change as sent: with the bytes it adds (conditioned on the budget when it grows the instance), and with the
   * expiry time when it makes the instance terminal (removed when it makes a finished instance run again).
   */
  #sized(change: InstanceChange, status?: InstanceStatus): { sent: InstanceChange; delta: number } {
    const delta = this.#sizes.delta(change)
    let sent = this.#historyLaidOut(this.#laidOut(this.#retained(change, status)))
    // Which of the instance's writes this is: a retry of it after a lost answer is recognised as landed.
    sent = { ...sent, writeSeq: { expected: this.#writeSeq, next: this.#writeSeq + 1 } }
    const moved = Object.keys(sent.nodes ?? {}).length + Object.keys(sent.archive ?? {}).length
    if (moved > MAX_NODES_ONE_BY_ONE) {
      const hot: Record<string, NodeRecord> = {}
      for (const id of this.#hot) if (this.#nodes[id]) hot[id] = this.#nodes[id]
      Object.assign(hot, sent.nodes)
      for (const id of Object.keys(sent.archive ?? {})) delete hot[id]
      sent = { ...sent, allNodes: hot }
    }
    if (delta === 0) return { sent, delta }
    return {
      sent: {
        ...sent,
        bytesDelta: delta,
        bytesBase: this.#sizes.total,
        ...(delta > 0 ? { maxBytes: this.deps.maxInstanceBytes } : {}),
      },
      delta,
    }
  }

  /**
   * Where the change puts node records: a changed node's payload keeps the token of the payload stored for it (the
   * store writes it again only if it changed), and once the settled records in the instance item take
   * ARCHIVE_AT_BYTES they move, all together, into one archive item in the same write.
   */
  #laidOut(change: InstanceChange): InstanceChange {
    let nodes = change.nodes
    if (nodes) {
      nodes = { ...nodes }
      for (const [id, node] of Object.entries(nodes)) {
        const ref = this.#nodes[id]?.payloadRef
        if (ref !== undefined && node.payloadRef === undefined) nodes[id] = { ...node, payloadRef: ref }
      }
    }
    const after = { ...this.#nodes, ...nodes }
    const settled: string[] = []
    let settledBytes = 0
    for (const id of new Set([...this.#hot, ...Object.keys(nodes ?? {})])) {
      const node = after[id]
      if (!node || !isTerminalNodeStatus(node.status) || node.attemptStarted) continue
      settled.push(id)
      settledBytes += this.#sizes.inline(id, node)
    }
    if (settledBytes < ARCHIVE_AT_BYTES) return nodes ? { ...change, nodes } : change
    const archive: Record<string, NodeRecord> = {}
    for (const id of settled) archive[id] = after[id] as NodeRecord
    const rest = { ...nodes }
    for (const id of settled) delete rest[id]
    const { nodes: _nodes, ...others } = change
    return { ...others, ...(Object.keys(rest).length ? { nodes: rest } : {}), archive }
  }

  /** What a landed write leaves stored (copies: the holder goes on changing its own records). */
  #landed(change: InstanceChange, delta: number, result?: WriteResult): void {
    this.#sizes.apply(change, delta)
    for (const [id, node] of Object.entries(change.nodes ?? {})) {
      this.#nodes[id] = structuredClone(node)
      this.#hot.add(id)
    }
    for (const [id, node] of Object.entries(change.archive ?? {})) {
      this.#nodes[id] = structuredClone(node)
      this.#hot.delete(id)
    }
    for (const [id, ref] of Object.entries(result?.payloadRefs ?? {})) {
      const node = this.#nodes[id]
      if (node) node.payloadRef = ref
    }
    if (change.writeSeq !== undefined) this.#writeSeq = change.writeSeq.next
    if (change.status !== undefined) this.#status = change.status
    for (const [id, node] of Object.entries({ ...change.archive, ...change.nodes }))
      this.#nodeStatuses[id] = node.status
    if (change.historyOut) {
      this.#history = this.#history.slice(change.historyOut.count)
      this.#historyBase += change.historyOut.count
      if (change.historyOut.drop) this.#historyDropped += change.historyOut.count
    }
    if (result?.history) this.#history = result.history
    else if (change.history) this.#history.push(...change.history)
  }

  #retained(change: InstanceChange, finalStatus?: InstanceStatus): InstanceChange {
    // The releasing write names the final status even when an earlier write of the lease already stored it.
    const status = change.status ?? finalStatus
    if (status === undefined) return change
    if (isTerminalInstanceStatus(status)) {
      if (this.deps.retentionDays <= 0) return change
      const nowSeconds = Math.floor(this.deps.clock.nowMs() / 1000)
      return { ...change, expiresAtSeconds: nowSeconds + this.deps.retentionDays * 86_400 }
    }
    const wasFinished = isTerminalInstanceStatus(this.record.status) || this.record.expiresAtSeconds !== undefined
    return wasFinished ? { ...change, expiresAtSeconds: null } : change
  }

  get stored(): boolean {
    return this.#stored
  }

  /** A fenced write that keeps the lease. The first write of an unborn session creates the instance. */
  async write(given: InstanceChange): Promise<{ eventSeq: number }> {
    const change = this.#withEntries(given)
    if (!this.#stored) {
      await this.#create(change, undefined)
      return { eventSeq: this.record.eventSeq }
    }
    const owed = this.#dueOwed && change.dueAtMs === undefined
    const { sent, delta } = this.#sized(owed ? { ...change, dueAtMs: this.lease.untilMs } : change)
    const result = await this.deps.store.writeUnderLease(this.lease, sent)
    this.#landed(sent, delta, result)
    this.#dueOwed = false
    this.writes += 1
    return result
  }

  /**
   * The releasing write. A terminal instance is left without a due time; any other is due at a time or parked with
   * a reason — one that would be neither is parked as NOTHING_RUNNABLE, so nothing is ever left waiting for nobody.
   * Then the wake-up for the due time is planned.
   */
  async release(change: InstanceChange, release: Release): Promise<Released> {
    const { store, clock, wakeups, logger } = this.deps
    const now = clock.nowMs()
    const terminal = isTerminalInstanceStatus(release.status)
    let dueAtMs = terminal ? null : release.dueAtMs
    let parked = terminal ? undefined : release.parked
    if (!terminal && dueAtMs === null && parked === undefined) {
      parked = { code: 'NOTHING_RUNNABLE', reason: 'no node of the instance can run and none waits', atMs: now }
      logger.log('error', 'instance left with nothing to run; parked', {
        instanceId: this.record.id,
        workflowType: this.record.workflowType,
      })
    }
    if (parked !== undefined) dueAtMs = null
    const far = wakeups.usesSchedule(dueAtMs, now)
    const final: InstanceChange = this.#withEntries({
      ...change,
      release: true,
      dueAtMs,
      ...(parked ? { parked } : {}),
      ...(far
        ? { farWakeAtMs: dueAtMs as number }
        : this.record.farWakeAtMs !== undefined
          ? { farWakeAtMs: null }
          : {}),
    })
    let eventArrived = false
    if (!this.#stored) {
      await this.#create(final, final)
    } else {
      const { sent, delta } = this.#sized(final, release.status)
      const result = await store.writeUnderLease(this.lease, sent)
      const { eventSeq } = result
      this.#landed(sent, delta, result)
      this.writes += 1
      eventArrived = eventSeq !== this.record.eventSeq && !terminal && parked === undefined
    }
    this.#released = true
    if (eventArrived) {
      // An event arrived while the pass ran: it may have changed what is due.
      dueAtMs = now
      await store.markDue(this.record.id, now)
    }
    await wakeups.plan(this.record.id, dueAtMs, now, this.record.farWakeAtMs)
    return { dueAtMs, eventArrived }
  }

  /**
   * Gives the lease back after a failure, keeping everything stored: the instance stays due by the lease end (set
   * at acquisition), so the tick resumes it. Nothing to do for a lost lease or an instance never stored.
   */
  async abandon(error: unknown): Promise<void> {
    if (this.#released || !this.#stored || error instanceof LeaseLostError) return
    this.#released = true
    await this.deps.store.releaseLease(this.lease).catch((releaseError: unknown) => {
      this.deps.logger.log('warn', 'could not release lease after an error', {
        instanceId: this.lease.instanceId,
        workflowType: this.record.workflowType,
        error: String(releaseError),
      })
    })
  }

  /** Runs `fn` under this lease; on failure the lease is abandoned (see `abandon`) before the error is rethrown. */
  async hold<T>(fn: (session: LeaseSession) => Promise<T>): Promise<T> {
    try {
      return await fn(this)
    } catch (error) {
      await this.abandon(error)
      throw error
    }
  }

  /** Stores the unborn instance with `change` applied; with `final`, released (not leased) as that change says. */
  async #create(change: InstanceChange, final: InstanceChange | undefined): Promise<void> {
    const hooks = this.#unborn as UnbornHooks
    const record = applyChange(this.record, this.#retained(change))
    record.storedBytes = instanceStoredBytes(record)
    if (final) {
      await hooks.put(record)
    } else {
      // Leased and due by the lease end: a creator that dies from here on is resumed by the tick.
      record.dueAtMs = this.lease.untilMs
      await hooks.put(record, this.lease)
    }
    this.#stored = true
    this.#adopt(record)
    this.writes += 1
    await hooks.onStored()
  }
}

const statusesOf = (nodes: Readonly<Record<string, NodeRecord>>): Record<string, NodeRecord['status']> =>
  Object.fromEntries(Object.entries(nodes).map(([id, node]) => [id, node.status]))

const hotNodes = (record: InstanceRecord): Set<string> => {
  const archived = new Set(record.archivedNodeIds ?? [])
  return new Set(Object.keys(record.nodes).filter((id) => !archived.has(id)))
}

/** The record with `change` applied, as a store would apply it. */
export const applyChange = (record: InstanceRecord, change: InstanceChange): InstanceRecord => {
  const next = structuredClone(record)
  next.updatedAtMs = change.updatedAtMs
  const archived = new Set(next.archivedNodeIds ?? [])
  for (const [id, node] of Object.entries(change.nodes ?? {})) {
    next.nodes[id] = structuredClone(node)
    archived.delete(id)
  }
  for (const [id, node] of Object.entries(change.archive ?? {})) {
    next.nodes[id] = structuredClone(node)
    archived.add(id)
  }
  if (archived.size) next.archivedNodeIds = [...archived].sort()
  else delete next.archivedNodeIds
  if (change.status !== undefined) next.status = change.status
  if (change.input !== undefined) next.input = structuredClone(change.input)
  if (change.dueAtMs === null) delete next.dueAtMs
  else if (change.dueAtMs !== undefined) next.dueAtMs = change.dueAtMs
  if (change.parked === null) delete next.parked
  else if (change.parked !== undefined) next.parked = change.parked
  if (change.farWakeAtMs === null) delete next.farWakeAtMs
  else if (change.farWakeAtMs !== undefined) next.farWakeAtMs = change.farWakeAtMs
  if (change.failure === null) delete next.failure
  else if (change.failure !== undefined) next.failure = change.failure
  if (change.priorInputs === null) delete next.priorInputs
  else if (change.priorInputs !== undefined) next.priorInputs = structuredClone(change.priorInputs)
  if (change.bytesDelta !== undefined)
    next.storedBytes = (next.storedBytes ?? change.bytesBase ?? 0) + change.bytesDelta
  if (change.writeSeq !== undefined) next.writeSeq = change.writeSeq.next
  if (change.expiresAtSeconds === null) delete next.expiresAtSeconds
  else if (change.expiresAtSeconds !== undefined) next.expiresAtSeconds = change.expiresAtSeconds
  if (change.release) {
    delete next.leaseOwner
    delete next.leaseUntilMs
  }
  if (change.historyOut || change.history) {
    const out = change.historyOut?.count ?? 0
    next.history = [...(next.history ?? []).slice(out), ...structuredClone(change.history ?? [])]
    if (out) {
      next.historyBase = (next.historyBase ?? 0) + out
      if (change.historyOut?.drop) next.historyDropped = (next.historyDropped ?? 0) + out
    }
  }
  return next
}
