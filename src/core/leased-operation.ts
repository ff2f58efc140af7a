import { ParkCode } from '../schemas/park-codes.js'
import type { InstanceStatus } from '../schemas/statuses.js'
import { isTerminalInstanceStatus } from '../schemas/statuses.js'
import type { CallbackClaims } from './callback-token.js'
import type { CallbackArrival, CallbackGuard } from './callbacks.js'
import type { WorkflowDefinition } from './definition.js'
import { type Definitions, parkCodeOf } from './definitions.js'
import { IllegalStateError, ItemTooLargeError, LeaseLostError, LockConflictError, NodeNotFoundError } from './errors.js'
import { changeEntries, entryMessage } from './history.js'
import { applyChange, withPartsRead } from './instance-change.js'
import { type LeaseSizing, type LeaseTimes, leaseTimes } from './lease-sizing.js'
import type { Lifecycle, LifecycleEvent } from './lifecycle-events.js'
import { growthBudget, instanceStoredBytes } from './limits.js'
import { MetricName, type Metrics } from './metrics.js'
import { type PassDeps, type PassMode, type PassOutcome, type PassResult, type PassSession, runPass } from './pass.js'
import type { Clock, IdGenerator, Logger } from './ports.js'
import {
  type EventGuard,
  type HistoryEntry,
  type InstanceChange,
  InstanceExistsError,
  type InstanceLeaseStore,
  type InstanceRecord,
  type InstanceState,
  type Lease,
  type LeaseWriter,
  type NextAttempt,
  type NodeEventRecord,
  type NodeRecord,
  type ParkedState,
  type PartsRead,
  type PartsWanted,
} from './store.js'
import { StoredSizes } from './stored-sizes.js'
import type { Wakeups } from './wakeups.js'

/**
 * The lease lifecycle, written once: acquire (which makes the instance due by the lease end), read inside the
 * lease, check, act, fenced writes, one releasing write that leaves the instance terminal, due at a time, or parked
 * with a reason, and the wake-up for that due time. Every operation goes through its one template (`perform`), and
 * every store write of an instance is made here, so that a runner dying anywhere leaves an instance the tick will
 * find.
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
  /** Which definition an instance runs on (a pass parks an instance whose definition or workers are missing). */
  definitions: Definitions
  /** What a pass needs besides its lease: workers, limits, randomness. */
  pass: PassDeps
  /** Lifecycle events out (see lifecycle-events.ts); none are written without it. */
  lifecycle?: Lifecycle
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

/** An acquisition that was refused, and the instance's state that refused it. */
export type Refusal = { kind: 'terminal' | 'not-due' | 'live'; record: InstanceState }

export type Acquired = { kind: 'held'; session: LeaseSession } | Refusal

/** How the releasing write leaves the instance. */
export interface Release {
  /** The instance's status after the operation (the writes before may already have stored it). */
  status: InstanceStatus
  /** When it next needs attention; ignored for a terminal status. */
  dueAtMs: number | null
  parked?: ParkedState
  /** The one attempt `dueAtMs` is for, if one is: a due pass's acquisition records it (see InstanceRecord.armNext). */
  armNext?: NextAttempt
}

export interface Released {
  dueAtMs: number | null
  eventArrived: boolean
}

/** Changes an operation made to the record under the lease that a pass's first write stores. */
export interface PendingChanges {
  nodes: readonly string[]
  status: boolean
  input?: boolean
  failure?: boolean
  priorInputs?: boolean
  /** The instance's deadline changed (a restart counts it afresh). */
  deadline?: boolean
  /** Entries of the operation (a restart) that the first write stores. */
  history?: HistoryEntry[]
}

/** A pass an operation asks for under its lease. */
export interface PassRequest {
  mode: PassMode
  /** The record the pass starts from, when the operation changed it under the lease (a restart). */
  record?: InstanceRecord
  pending?: PendingChanges
  /** The definition, when the operation resolved it already. */
  definition?: WorkflowDefinition
}

/** What an operation does under its lease, carried out by the template: one releasing write, or a pass. */
export type LeasedAct<T> =
  | { write: InstanceChange; release: Release; answer: (released: Released) => T }
  | { pass: PassRequest; answer: (result: PassResult) => T }

/** An act that runs a pass; `answer` turns its result into the operation's. */
export const passAct = <T>(pass: PassRequest, answer: (result: PassResult) => T): LeasedAct<T> => ({ pass, answer })

/** An act that is one releasing write; `answer` turns what it released into the operation's result. */
export const writeAct = <T>(
  write: InstanceChange,
  release: Release,
  answer: (released: Released) => T,
): LeasedAct<T> => ({
  write,
  release,
  answer,
})

export interface UnderLease<T> {
  /**
   * Checks the record as read under the lease and says what to do. A refusal thrown here (the instance changed since
   * it was read) leaves the instance as it was before the lease.
   */
  act(session: LeaseSession): LeasedAct<T> | Promise<LeasedAct<T>>
  /** The answer when the lease was lost after the operation's first write landed (another runner took it over). */
  afterLeaseLost?(current: InstanceRecord | undefined): T
}

export interface LeasedOperation<T> extends UnderLease<T> {
  instanceId: string
  remainingTimeMs?: number | undefined
  dueOnly?: boolean
  terminalOnly?: boolean
  /** The answer when the acquisition is refused: the instance is terminal, not due, or live again. */
  refused(refusal: Refusal): T
}

/** Errors that refuse an operation under its lease: the instance is released as it was. */
const isRefusal = (error: unknown): boolean =>
  error instanceof IllegalStateError || error instanceof NodeNotFoundError || error instanceof ItemTooLargeError

export class LeasedOperations {
  constructor(readonly deps: LeasedDeps) {}

  times(remainingTimeMs: number | undefined): LeaseTimes {
    return leaseTimes(this.deps.clock.nowMs(), remainingTimeMs, this.deps.sizing)
  }

  /**
   * The template of every leased operation: acquire (or answer the refusal), check and act under the lease, carry
   * out the act — its releasing write, or a pass ended by one —, release unchanged on a refusal, answer after a lost
   * lease; any other failure gives the lease back with the instance due by its end (see `LeaseSession.abandon`).
   */
  async perform<T>(op: LeasedOperation<T>): Promise<T> {
    const acquired = await this.acquire({
      instanceId: op.instanceId,
      remainingTimeMs: op.remainingTimeMs,
      ...(op.dueOnly ? { dueOnly: true } : {}),
      ...(op.terminalOnly ? { terminalOnly: true } : {}),
    })
    if (acquired.kind !== 'held') return op.refused(acquired)
    return this.under(acquired.session, op)
  }

  /** The template's part under a lease already held (a create's unborn lease, or an acquisition). */
  async under<T>(session: LeaseSession, op: UnderLease<T>): Promise<T> {
    return session.hold(async () => {
      try {
        const act = await op.act(session)
        if ('write' in act) return act.answer(await session.release(act.write, act.release))
        return act.answer(await this.#pass(session, act.pass))
      } catch (error) {
        if (error instanceof LeaseLostError && session.writes > 0 && op.afterLeaseLost) {
          return op.afterLeaseLost(await this.deps.store.getInstance(session.lease.instanceId))
        }
        if (session.stored && !session.released && isRefusal(error)) await this.#releaseUnchanged(session)
        throw error
      }
    })
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
    const lifecycle = this.deps.lifecycle
    // Lifecycle events a writer left unpublished (it died after its write, or the bus refused them): whoever
    // reads the instance next publishes them again.
    const found = lifecycle ? acquired.record.outbox : undefined
    const recovered = found ? await (lifecycle as Lifecycle).recover(request.instanceId, found) : []
    if (acquired.kind === 'acquired') {
      const session = new LeaseSession(this.deps, acquired.lease, times, acquired.record, {
        writer: acquired.writer,
        previous: acquired.previous,
        dueOwed: request.terminalOnly === true,
      })
      await session.published(recovered)
      return { kind: 'held', session }
    }
    // (An outbox found empty is a mark left without events: clearing nothing removes the mark.)
    if (found && (recovered.length || !found.length)) await lifecycle?.settle(store, request.instanceId, recovered)
    // A terminal instance still in the due index was left there by an operation that died on it: take it out.
    if (acquired.kind === 'terminal' && acquired.record.dueAtMs !== undefined) {
      await store.clearTerminalDue(request.instanceId, now)
    }
    return { kind: acquired.kind, record: acquired.record }
  }

  /**
   * A lease on an instance that is not stored yet (create with run): its first write stores the whole instance
   * with `history` (its creation), leased and due by the lease end; `onStored` runs once it is.
   */
  unborn(
    record: InstanceRecord,
    history: readonly HistoryEntry[],
    remainingTimeMs: number | undefined,
    onStored: () => Promise<void>,
  ): LeaseSession {
    const times = this.times(remainingTimeMs)
    const lease: Lease = {
      instanceId: record.id,
      owner: this.deps.ids.newLeaseOwner(),
      fence: 1,
      untilMs: times.untilMs,
    }
    const put = async (stored: InstanceRecord, leased: Lease | undefined, entries: readonly HistoryEntry[]) => {
      if (leased) return this.deps.store.createLeased(stored, leased, entries)
      await this.#put(stored, entries)
      return undefined
    }
    const hooks: UnbornHooks = { put, onStored, history }
    return new LeaseSession(this.deps, lease, times, { ...record, fence: 1 }, { unborn: hooks, previous: {} })
  }

  /**
   * Stores a new instance that nobody holds (a create without run) with `history` (its creation), due when it says;
   * `onStored` runs once it is, then its wake-up is planned.
   */
  async storeNew(record: InstanceRecord, history: readonly HistoryEntry[], onStored: () => Promise<void>) {
    const lifecycle = this.deps.lifecycle
    let seq = 0
    const created = { updatedAtMs: record.createdAtMs, status: record.status }
    const emits = lifecycle?.eventsOf(
      record,
      { status: undefined, nodes: {} },
      created,
      0,
      () => `${record.id}:0.${seq++}`,
    )
    await this.#put(emits?.length ? { ...record, outbox: emits } : record, history)
    const published = lifecycle && emits?.length ? await lifecycle.publish(record.id, emits, false) : []
    if (published.length) await lifecycle?.settle(this.deps.store, record.id, published)
    await onStored()
    if (record.dueAtMs !== undefined) await this.deps.wakeups.plan(record.id, record.dueAtMs, this.deps.clock.nowMs())
  }

  /**
   * Stores an event without the lease (an event is never refused because a pass runs): the instance becomes due at
   * once, and its wake-up is planned — unless it is parked: then the event waits for the pass after a restart.
   */
  async storeEvent(
    instanceId: string,
    nodeId: string,
    event: NodeEventRecord,
    now: number,
    guard: EventGuard,
    history: HistoryEntry | undefined,
  ): Promise<'due' | 'parked'> {
    const stored = await this.deps.store.putEvent(instanceId, nodeId, event, now, guard, history)
    if (stored === 'due') await this.deps.wakeups.plan(instanceId, now, now)
    return stored
  }

  /**
   * Stores a callback's completion or heartbeat without the lease (a completion may arrive before the worker's own
   * write): a completion makes the instance due at once, and its wake-up is planned.
   */
  async storeCallback(
    claims: CallbackClaims,
    arrival: CallbackArrival,
    guard?: CallbackGuard,
  ): Promise<'stored' | 'duplicate'> {
    const now = this.deps.clock.nowMs()
    const stored = await this.deps.store.putCallback(claims, arrival, now, guard)
    if (stored === 'stored' && arrival.completion) await this.deps.wakeups.plan(claims.instanceId, now, now)
    return stored
  }

  /**
   * Creates an instance nobody holds; a put the SDK retried after its answer was lost finds its own instance (same
   * creation time and request), not a conflict. (A leased create is recognised by the store from its lease.)
   */
  async #put(record: InstanceRecord, history: readonly HistoryEntry[]): Promise<void> {
    try {
      await this.deps.store.createInstance(record, history)
    } catch (error) {
      if (!(error instanceof InstanceExistsError)) throw error
      const { existing } = error
      const ownRetry = existing.createdAtMs === record.createdAtMs && existing.requestHash === record.requestHash
      if (!ownRetry) throw error
    }
  }

  /**
   * A pass under a held lease, ended by the releasing write. An instance whose definition or workers this
   * deployment lacks is parked with the reason instead: retrying cannot help until someone fixes and restarts it.
   * An outcome the store refuses for its size is stored without it (the node that made it too large fails); a
   * refusal no node outcome can be blamed for parks the instance — except the operation's own change (a restart),
   * which is refused as a whole.
   */
  async #pass(session: LeaseSession, request: PassRequest): Promise<PassResult> {
    const record = request.record ?? session.record
    let definition = request.definition
    if (!definition) {
      try {
        definition = await this.deps.definitions.of(record, true)
      } catch (error) {
        const code = parkCodeOf(error)
        if (!code) throw error
        return this.#park(session, code, (error as Error).message)
      }
    }
    session.useDefinition(definition)
    const { pending } = request
    let outcome: PassOutcome
    let released: Released
    try {
      outcome = await runPass(this.deps.pass, definition, record, session, request.mode, pending)
      try {
        released = await session.release(outcome.change, releaseOf(outcome))
      } catch (error) {
        const rebuilt = error instanceof ItemTooLargeError ? outcome.afterRefusal(error) : undefined
        if (!rebuilt) throw error
        outcome = rebuilt
        released = await session.release(outcome.change, releaseOf(outcome))
      }
    } catch (error) {
      if (!(error instanceof ItemTooLargeError) || !session.stored) throw error
      if (pending !== undefined && session.writes === 0) throw error
      return this.#park(session, ParkCode.itemTooLarge, error.message)
    }
    this.#countPass(record.workflowType, outcome.executed, outcome.state.nodes)
    return {
      instanceId: record.id,
      workflowType: record.workflowType,
      status: outcome.state.status,
      executed: outcome.executed,
      dueAtMs: released.dueAtMs,
      eventArrived: released.eventArrived,
    }
  }

  #countPass(workflowType: string, executed: readonly string[], nodes: Readonly<Record<string, { status: string }>>) {
    const { metrics } = this.deps
    if (!metrics) return
    const dimensions = { workflowType }
    const statuses = executed.map((id) => nodes[id]?.status)
    metrics.add(MetricName.passes, 1, 'Count', dimensions)
    const completed = statuses.filter((status) => status === 'completed').length
    const failed = statuses.filter((status) => status === 'failed').length
    if (completed) metrics.add(MetricName.nodesCompleted, completed, 'Count', dimensions)
    if (failed) metrics.add(MetricName.nodesFailed, failed, 'Count', dimensions)
  }

  async #park(session: LeaseSession, code: ParkCode, reason: string): Promise<PassResult> {
    const record = session.record
    const now = this.deps.clock.nowMs()
    const parked = { code, reason: reason.slice(0, 1000), atMs: now }
    this.deps.logger.log('error', 'workflow instance parked: it cannot run until it is fixed and restarted', {
      instanceId: record.id,
      workflowType: record.workflowType,
      code,
      reason: parked.reason,
    })
    await session.release({ updatedAtMs: now }, { status: record.status, dueAtMs: null, parked })
    return {
      instanceId: record.id,
      workflowType: record.workflowType,
      status: record.status,
      executed: [],
      dueAtMs: null,
      eventArrived: false,
      skipped: 'parked',
      parked: { code, reason: parked.reason },
    }
  }

  /** The releasing write of an operation that changed nothing: due and parked as they were before the lease. */
  async #releaseUnchanged(session: LeaseSession): Promise<void> {
    const now = this.deps.clock.nowMs()
    const { previous } = session
    const { status } = session.record
    await session.release(
      { updatedAtMs: session.record.updatedAtMs },
      previous.parked
        ? { status, dueAtMs: null, parked: previous.parked }
        : { status, dueAtMs: previous.dueAtMs ?? now },
    )
  }
}

interface UnbornHooks {
  /** Stores the new instance with its first history entries; leased by `lease` when given, with its writer. */
  put(
    record: InstanceRecord,
    lease: Lease | undefined,
    history: readonly HistoryEntry[],
  ): Promise<LeaseWriter | undefined>
  onStored(): Promise<void>
  /** Entries the instance is created with (its creation), before those of the first write. */
  history: readonly HistoryEntry[]
}

/** What the instance was before this lease was acquired (acquisition makes it due and unparks it). */
export interface BeforeLease {
  dueAtMs?: number
  parked?: ParkedState
}

/** A held lease: the record as read inside it, fenced writes through the store's writer, one releasing write. */
export class LeaseSession implements PassSession {
  #stored: boolean
  readonly #unborn: UnbornHooks | undefined
  #writer: LeaseWriter | undefined
  #released = false
  /** Leased without becoming due (a terminal instance): the first write that keeps the lease makes it due. */
  #dueOwed: boolean
  /**
   * The pass made the attempt the acquisition recorded (see `armAttempt`); until it does, giving up the lease after
   * an error withdraws it (see `abandon`).
   */
  #armedMade = false
  /** Writes that landed under this lease (the creating put included). */
  writes = 0
  readonly previous: BeforeLease
  #sizes: StoredSizes
  /** The status as last stored (or read). */
  #status: InstanceStatus
  /** Each node's status as last stored (or read): callers change the records they were given in place. */
  #nodeStatuses: Record<string, NodeRecord['status']>
  /** Lifecycle events of this lease (numbered for their ids), and how many the outbox holds unpublished. */
  #eventSeq = 0
  #pendingEvents: number
  /** The definition the instance runs on, once a pass resolved it (which nodes are optional). */
  #definition: WorkflowDefinition | undefined

  constructor(
    readonly deps: LeasedDeps,
    readonly lease: Lease,
    readonly times: LeaseTimes,
    /** The instance as read inside the lease (for an unborn session: as it will be created). */
    readonly record: InstanceRecord,
    options: { writer?: LeaseWriter; unborn?: UnbornHooks; previous: BeforeLease; dueOwed?: boolean },
  ) {
    this.#dueOwed = options.dueOwed === true
    this.#unborn = options.unborn
    this.#writer = options.writer
    this.#stored = options.unborn === undefined
    this.previous = options.previous
    this.#sizes = new StoredSizes(record)
    this.#status = record.status
    this.#nodeStatuses = statusesOf(record.nodes)
    this.#pendingEvents = record.outbox?.length ?? 0
  }

  useDefinition(definition: WorkflowDefinition): void {
    this.#definition = definition
  }

  /**
   * Events this lease published (its own, or ones it found) leave the outbox at once, in one request: the writes
   * that follow under the lease carry none of them (a write that emits nothing costs what it did without events).
   */
  async published(events: readonly LifecycleEvent[]): Promise<void> {
    if (!events.length) return
    this.#pendingEvents -= events.length
    await this.deps.lifecycle?.settle(this.deps.store, this.record.id, events)
  }

  /** Publishes the events of a write that landed (none of one that did not). */
  async #publishLanded(emits: readonly LifecycleEvent[] | undefined): Promise<void> {
    const lifecycle = this.deps.lifecycle
    if (!lifecycle || !emits?.length) return
    await this.published(await lifecycle.publish(this.record.id, emits, false))
  }

  /** The lifecycle events of `change`, from the statuses as this lease last stored them. */
  #withEvents(change: InstanceChange): InstanceChange {
    const lifecycle = this.deps.lifecycle
    if (!lifecycle) return change
    const before = { status: this.#stored ? this.#status : undefined, nodes: this.#stored ? this.#nodeStatuses : {} }
    const nextId = () => `${this.record.id}:${this.lease.fence}.${this.#eventSeq++}`
    // The write that creates an instance emits its first status, whether or not the change names it.
    const subject = this.#stored || change.status !== undefined ? change : { ...change, status: this.record.status }
    const definition = this.#definition
    const isOptional = (nodeId: string) => definition?.byId.get(nodeId)?.optional === true
    const emits = lifecycle.eventsOf(this.record, before, subject, this.#pendingEvents, nextId, isOptional)
    if (!emits.length) return change
    this.#pendingEvents += emits.length
    return { ...change, emits }
  }

  get stored(): boolean {
    return this.#stored
  }

  /** The releasing write landed: the lease is given back. */
  get released(): boolean {
    return this.#released
  }

  /**
   * The change with its history entries: those the caller gives (errors, restarts, cancels), then one per node
   * status change and the instance's end, as this lease last stored them, and the parking of a releasing write.
   */
  #withEntries(change: InstanceChange): InstanceChange {
    return this.#withEvents(this.#withHistory(change))
  }

  #withHistory(change: InstanceChange): InstanceChange {
    const { history: given, ...rest } = change
    if (!this.deps.history) return rest
    const now = this.deps.clock.nowMs()
    const entries = [
      ...(given ?? []),
      ...changeEntries(now, { nodes: this.#nodeStatuses, status: this.#status }, change),
    ]
    // A releasing write that parks again as before the lease (an operation that changed nothing) is no news.
    if (change.parked && change.parked.atMs !== this.previous.parked?.atMs) {
      entries.push({ atMs: now, kind: 'parked', code: change.parked.code, message: entryMessage(change.parked.reason) })
    }
    return entries.length ? { ...rest, history: entries } : rest
  }

  armedAttemptMade(): void {
    this.#armedMade = true
  }

  /** What the instance would store with `nodes` replaced, as far as this lease knows. */
  storedBytesWith(nodes: Readonly<Record<string, NodeRecord>>): number {
    return this.#sizes.with(nodes)
  }

  /**
   * Reads the parts `wanted` names that the store did not read when it granted the lease, into the record; returns
   * what it read (for copies of the record), or undefined when there was nothing to read.
   */
  async read(wanted: PartsWanted): Promise<PartsRead | undefined> {
    const unread = this.record.unread
    if (unread === undefined || this.#writer === undefined) return undefined
    const missing: PartsWanted = {
      nodes: wanted.nodes.filter((id) => unread.nodes[id] !== undefined),
      events: wanted.events.filter((id) => unread.events[id] !== undefined),
      input: wanted.input && unread.input !== undefined,
      priorInputs: wanted.priorInputs.filter((key) => unread.priorInputs[key] !== undefined),
    }
    if (!missing.nodes.length && !missing.events.length && !missing.input && !missing.priorInputs.length) {
      return undefined
    }
    const read = await this.#writer.read(missing)
    withPartsRead(this.record, read)
    return read
  }

  /**
   * The change as sent: with the bytes it adds (conditioned on the budget when it grows the instance), and with the
   * expiry time when it makes the instance terminal (removed when it makes a finished instance run again).
   */
  #sized(change: InstanceChange, status?: InstanceStatus): { sent: InstanceChange; delta: number } {
    const delta = this.#sizes.delta(change)
    const sent = this.#retained(change, status)
    if (delta === 0) return { sent, delta }
    // A write that records a failure or the instance's end may use the headroom kept for it; others may not.
    const recordsFailure =
      (status !== undefined && isTerminalInstanceStatus(status) && status !== 'completed') ||
      (change.failure !== undefined && change.failure !== null) ||
      Object.values(change.nodes ?? {}).some((node) => node.status === 'failed')
    const max = recordsFailure
      ? this.deps.maxInstanceBytes
      : growthBudget({ maxInstanceBytes: this.deps.maxInstanceBytes })
    // The completions it consumes leave with it (see clearCallbacks): a write that applies one grows the instance by
    // what it adds beyond them.
    const freed = Object.values(change.clearCallbacks ?? {}).reduce(
      (sum, arrival) => sum + (arrival.storedBytes ?? 0),
      0,
    )
    const budget = delta - freed > 0 ? { maxBytes: max } : {}
    return { sent: { ...sent, bytesDelta: delta, bytesBase: this.#sizes.total, ...budget }, delta }
  }

  /** What a landed write leaves stored, as this lease knows it. */
  #landed(change: InstanceChange, delta: number): void {
    this.#sizes.apply(change, delta)
    if (change.status !== undefined) this.#status = change.status
    for (const [id, node] of Object.entries(change.nodes ?? {})) this.#nodeStatuses[id] = node.status
    this.writes += 1
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

  /** A fenced write that keeps the lease. The first write of an unborn session creates the instance. */
  async write(given: InstanceChange): Promise<{ eventSeq: number }> {
    const change = this.#withEntries(given)
    if (!this.#stored) {
      await this.#create(change, undefined)
      return { eventSeq: this.record.eventSeq }
    }
    const owed = this.#dueOwed && change.dueAtMs === undefined
    const { sent, delta } = this.#sized(owed ? { ...change, dueAtMs: this.lease.untilMs } : change)
    const result = await (this.#writer as LeaseWriter).write(sent)
    this.#landed(sent, delta)
    this.#dueOwed = false
    await this.#publishLanded(sent.emits)
    return result
  }

  /**
   * The releasing write. A terminal instance is left without a due time; any other is due at a time or parked with
   * a reason — one that would be neither is parked as NOTHING_RUNNABLE, so nothing is ever left waiting for nobody.
   * Then the wake-up for the due time is planned.
   */
  async release(change: InstanceChange, release: Release): Promise<Released> {
    const { clock, wakeups, logger } = this.deps
    const now = clock.nowMs()
    const terminal = isTerminalInstanceStatus(release.status)
    let dueAtMs = terminal ? null : release.dueAtMs
    let parked = terminal ? undefined : release.parked
    if (!terminal && dueAtMs === null && parked === undefined) {
      parked = { code: ParkCode.nothingRunnable, reason: 'no node of the instance can run and none waits', atMs: now }
      logger.log('error', 'instance left with nothing to run; parked', {
        instanceId: this.record.id,
        workflowType: this.record.workflowType,
      })
    }
    if (parked !== undefined) dueAtMs = null
    const far = wakeups.usesSchedule(dueAtMs, now)
    // The attempt the due time is for goes with it; parked, terminal or due otherwise, none is named.
    const armNext = parked === undefined && dueAtMs === release.dueAtMs ? release.armNext : undefined
    const final: InstanceChange = this.#withEntries({
      ...change,
      release: true,
      dueAtMs,
      ...(armNext ? { armNext } : {}),
      ...(this.#armedMade ? { recordedAttemptMade: true } : {}),
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
      const { eventSeq } = await (this.#writer as LeaseWriter).write(sent)
      this.#landed(sent, delta)
      eventArrived = eventSeq !== this.record.eventSeq && !terminal && parked === undefined
      await this.#publishLanded(sent.emits)
    }
    this.#released = true
    if (eventArrived) {
      // An event arrived while the pass ran: it may have changed what is due.
      dueAtMs = now
      await this.deps.store.markDue(this.record.id, now)
    }
    await wakeups.plan(this.record.id, dueAtMs, now, this.record.farWakeAtMs)
    return { dueAtMs, eventArrived }
  }

  /**
   * Gives the lease back after a failure, keeping everything stored — but the attempt the acquisition recorded when
   * the pass did not make it: the instance stays due by the lease end (set at acquisition, or due already), so the
   * tick resumes it. Nothing to do for a lost lease or an instance never stored.
   */
  async abandon(error: unknown): Promise<void> {
    if (this.#released || !this.#stored || error instanceof LeaseLostError) return
    this.#released = true
    await this.#writer?.abandon({ attemptsNotMade: !this.#armedMade }).catch((releaseError: unknown) => {
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
    const { history, ...meaning } = this.#retained(change)
    const record = applyChange(this.record, meaning)
    const emits = meaning.emits
    record.storedBytes = instanceStoredBytes(record)
    const entries = [...(this.#unborn?.history ?? []), ...(history ?? [])]
    if (final) {
      await hooks.put(record, undefined, entries)
    } else {
      // Leased and due by the lease end: a creator that dies from here on is resumed by the tick.
      record.dueAtMs = this.lease.untilMs
      this.#writer = await hooks.put(record, this.lease, entries)
    }
    this.#stored = true
    this.#sizes = new StoredSizes(record)
    this.#status = record.status
    this.#nodeStatuses = statusesOf(record.nodes)
    this.writes += 1
    await this.#publishLanded(emits)
    await hooks.onStored()
  }
}

/** How a pass's outcome leaves the instance. */
const releaseOf = (outcome: PassOutcome): Release => ({
  status: outcome.state.status,
  dueAtMs: outcome.dueAtMs,
  ...(outcome.armNext ? { armNext: outcome.armNext } : {}),
})

const statusesOf = (nodes: Readonly<Record<string, NodeRecord>>): Record<string, NodeRecord['status']> =>
  Object.fromEntries(Object.entries(nodes).map(([id, node]) => [id, node.status]))
