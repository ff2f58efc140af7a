import { type InstanceStatus, isFailedOrCanceled, isTerminalNodeStatus, type SkipReason } from '../schemas/statuses.js'
import type { CallbackTokens } from './callback-token.js'
import {
  arrivalFor,
  CALLBACK_CLOCK_SKEW_MS,
  type CallbackArrival,
  type CallbackWait,
  callbackOutputRefusal,
  callbackWait,
  closedByFailure,
  interruptedWaitFor,
  isWaiting,
  keptFailure,
  resolveCallback,
  waitLookAtMs,
  withCallbackOutput,
} from './callbacks.js'
import { decisionCode, ExpressionFailedError, evaluateChoice, evaluateWhen } from './conditions.js'
import { assembleContext, splitContext } from './context-assembly.js'
import { blockingFailures, endOutcome, failureEffect, joinDecision, joinSettled } from './control-flow.js'
import {
  attemptDeadline,
  DeadlineExceededError,
  type DeadlineKind,
  deadlineReason,
  instanceDeadlineFrom,
  instanceTimedOut,
  nodeDeadlineAt,
  nodeTimedOut,
} from './deadlines.js'
import { END_NODE_ID, type NodeDefinition, type WorkflowDefinition } from './definition.js'
import { AttemptInterruptedError, ItemTooLargeError, PayloadTooLargeError, type ValidationError } from './errors.js'
import { sawEvent } from './event-rules.js'
import { entryMessage, nodeErrorEntry, noteNodeError } from './history.js'
import { copyInstanceRecord, copyNodeRecord, partsFor, withPartsRead } from './instance-change.js'
import { assertJsonValue, type JsonObject, jsonSizeBytes } from './json.js'
import { interruptedAttempt, unarmAttempt } from './lease-rules.js'
import type { LeaseTimes } from './lease-sizing.js'
import { growthBudget, type Limits, nodePayloadBytes } from './limits.js'
import { MetricName, type Metrics } from './metrics.js'
import { CONTEXT_KEYS, type ExecutionHooks, NodeContext } from './node-context.js'
import { type Clock, type Logger, type Random, timerAt } from './ports.js'
import type { Worker } from './registry.js'
import { mergeRetryPolicy, nextDelayMs } from './retry-policy.js'
import type {
  AttemptStarted,
  HistoryEntry,
  InstanceChange,
  InstanceRecord,
  Lease,
  NextAttempt,
  NodeRecord,
  PartsRead,
  PartsWanted,
} from './store.js'
import { classifyWorkerError, errorMessage } from './worker-signals.js'

export { DEFAULT_LIMITS, type Limits } from './limits.js'

/**
 * How long outcomes of finished workers may wait to be stored while their siblings still run: a runner that dies
 * meanwhile loses only attempts it has counted as started (the next lease counts them as failed and runs them
 * again), and a pass over many parallel nodes does not rewrite its instance once per node.
 */
const OUTCOME_FLUSH_MS = 1000

/** `explicit`: every waiting node runs now. `due`: only nodes whose next attempt, event or deadline is due. */
export type PassMode = 'explicit' | 'due'

export interface PassResult {
  instanceId: string
  workflowType: string
  status: InstanceStatus
  /** Nodes whose worker was called (or that were completed) in this pass, in the order they finished. */
  executed: string[]
  /** When the instance next needs attention; null when terminal or parked. */
  dueAtMs: number | null
  /** An external event arrived during the pass; the instance was left due at once. */
  eventArrived: boolean
  /** Why nothing ran: the instance is terminal, or (in a due pass) nothing is due, or it is parked. */
  skipped?: 'terminal' | 'not-due' | 'parked'
  /** Another runner holds the instance; this pass did nothing. */
  busy?: { leaseUntilMs: number | undefined; retryAfterSeconds: number }
  parked?: { code: string; reason: string }
}

export interface PassDeps {
  clock: Clock
  random: Random
  logger: Logger
  metrics?: Metrics
  limits: Limits
  worker(workflowType: string, nodeId: string): Worker | undefined
  /** Callback tokens and the URL a token is posted to; without them `ctx.callback` refuses. */
  callbacks?: { tokens: CallbackTokens; urlOf(token: string): string }
}

/** What a pass needs of the lease it runs under: its times and fenced writes that do not release it. */
export interface PassSession {
  readonly lease: Lease
  readonly times: LeaseTimes
  write(change: InstanceChange): Promise<{ eventSeq: number }>
  /** What the instance would store with `nodes` replaced, as far as the lease holder knows. */
  storedBytesWith(nodes: Readonly<Record<string, NodeRecord>>): number
  /** Reads parts of the instance the store did not read yet (see InstanceRecord.unread); what it read, if any. */
  read(wanted: PartsWanted): Promise<PartsRead | undefined>
  /**
   * The pass makes the attempt its acquisition recorded (see `armAttempt`): from now on it stays recorded whatever
   * happens. Until then, a lease given up after an error withdraws it.
   */
  armedAttemptMade(): void
}

/** Where a pass ended: the state, what is not yet stored, and when the instance next needs attention. */
export interface PassOutcome {
  state: InstanceRecord
  /** Changes made since the last write; the leased operation stores them with the release. */
  change: InstanceChange
  dueAtMs: number | null
  /** The one attempt the due time is for, when there is one: the release names it (see InstanceRecord.armNext). */
  armNext?: NextAttempt
  executed: string[]
  /**
   * When the store refuses to store `change` for its size (ItemTooLargeError): the outcome rebuilt from the state
   * before the outcomes in that change, with the node whose outcome grew the item the most failed for good and the
   * instance failed; undefined when no outcome of a node can be blamed.
   */
  afterRefusal(error: ItemTooLargeError): PassOutcome | undefined
}

type StepOutcome = {
  nodeId: string
  step: 'run' | 'check'
  context: JsonObject
  error?: unknown
  failed: boolean
  /** The deadline that ended the attempt, when one did (see deadlines.ts). */
  deadline?: DeadlineKind
  /**
   * The callback the worker asked for: its node waits for it — also when the worker then failed, for a completion
   * stored before that failure (see `closedByFailure`).
   */
  callback?: CallbackWait
}

/** An attempt that failed with `error`; `asked`: the callback its worker had asked for by then. */
const failedOutcome = (
  nodeId: string,
  step: 'run' | 'check',
  context: JsonObject,
  error: unknown,
  asked: CallbackWait | undefined,
): StepOutcome => ({ nodeId, step, context, error, failed: true, ...(asked ? { callback: asked } : {}) })

/**
 * One pass over an instance held under a lease: advance every node that can advance now. Each attempt is stored as
 * started before its worker is called (in the write that stores the outcome before it), each outcome before its
 * successors start. The caller stores the rest with the release.
 */
export const runPass = async (
  deps: PassDeps,
  definition: WorkflowDefinition,
  initial: InstanceRecord,
  session: PassSession,
  mode: PassMode,
  /** Changes already made to `initial` under this lease that the pass must store with its first write. */
  pending?: {
    nodes: readonly string[]
    status: boolean
    input?: boolean
    failure?: boolean
    priorInputs?: boolean
    deadline?: boolean
    history?: readonly HistoryEntry[]
  },
): Promise<PassOutcome> => {
  const pass = new Pass(deps, definition, initial, session, mode)
  pass.markDirty(pending?.nodes ?? [], pending?.status ?? false, pending?.input ?? false, pending?.failure ?? false)
  if (pending?.priorInputs) pass.markPriorInputsDirty()
  if (pending?.deadline) pass.markDeadlineDirty()
  if (pending?.history) pass.addHistory(pending.history)
  return pass.run()
}

class Pass {
  readonly #state: InstanceRecord
  readonly #executed = new Set<string>()
  readonly #finished: string[] = []
  readonly #inFlight = new Map<
    string,
    {
      promise: Promise<StepOutcome>
      context: NodeContext
      controller: AbortController
      /** The callback the worker has asked for so far. */
      asked: () => CallbackWait | undefined
    }
  >()
  readonly #checkNext = new Set<string>()
  readonly #dirtyNodes = new Set<string>()
  readonly #abort = new AbortController()
  /** The state as the last successful write left it stored (as read, before the first write). */
  readonly #base: InstanceRecord
  /** Nodes whose worker outcome was applied since the last successful write, and its step. */
  readonly #outcomesSinceWrite = new Map<string, 'run' | 'check'>()
  #dirtyStatus = false
  #dirtyInput = false
  #dirtyFailure = false
  #dirtyPriorInputs = false
  #dirtyDeadline = false
  /** History entries the node outcomes since the last write made (errors); node status entries are the session's. */
  #history: HistoryEntry[] = []
  /**
   * Attempts the acquisition recorded as started by this lease (see `armAttempt`), until the pass makes them — with
   * no write of its own: they are stored already — or, at its first look, finds it will not, and takes them back.
   * The state holds them as not made.
   */
  readonly #armed = new Map<string, AttemptStarted>()
  /** Nodes whose attempt the acquisition recorded and this pass took back. */
  readonly #disarmed = new Set<string>()

  constructor(
    readonly deps: PassDeps,
    readonly definition: WorkflowDefinition,
    initial: InstanceRecord,
    readonly session: PassSession,
    readonly mode: PassMode,
  ) {
    this.#state = copyInstanceRecord(initial)
    this.#base = copyInstanceRecord(initial)
    for (const [id, record] of Object.entries(this.#state.nodes)) {
      if (record.attemptStarted?.fence !== session.lease.fence) continue
      this.#armed.set(id, record.attemptStarted)
      this.#state.nodes[id] = unarmAttempt(record)
    }
  }

  /** Attempts the acquisition recorded that this pass does not make: its next write stores their nodes without. */
  #disarm(): void {
    for (const id of this.#armed.keys()) {
      this.#dirtyNodes.add(id)
      this.#disarmed.add(id)
    }
    this.#armed.clear()
  }

  addHistory(entries: readonly HistoryEntry[]): void {
    this.#history.push(...entries)
  }

  markPriorInputsDirty(): void {
    this.#dirtyPriorInputs = true
  }

  markDeadlineDirty(): void {
    this.#dirtyDeadline = true
  }

  markDirty(nodes: readonly string[], status: boolean, input: boolean, failure: boolean): void {
    for (const id of nodes) this.#dirtyNodes.add(id)
    if (status) this.#dirtyStatus = true
    if (input) this.#dirtyInput = true
    if (failure) this.#dirtyFailure = true
  }

  get #now(): number {
    return this.deps.clock.nowMs()
  }

  /**
   * The time a callback wait's timeouts are judged at: when the lease was taken — the instance was read after it, and
   * a completion stored since is not in that read —, less the clock skew allowed between the pass and a completion's
   * writer. A wait timed out by then refused every completion stored after the read (see CALLBACK_CLOCK_SKEW_MS);
   * the clock now, later in the pass, would time out waits whose completion landed after the read.
   */
  get #callbacksSeenAtMs(): number {
    return this.session.times.startedAtMs - CALLBACK_CLOCK_SKEW_MS
  }

  async run(): Promise<PassOutcome> {
    const state = this.#state
    this.#lastFlushMs = this.#now
    if (state.status === 'init' && state.startAtMs !== undefined && state.startAtMs > this.#now) {
      // A delayed start stays init until its time, whatever woke it.
      return this.#outcome(state.startAtMs)
    }
    if (state.status === 'init') this.#setStatus('running')
    this.#startDeadline()
    this.#accountInterruptedAttempts()
    const aborted = new Promise<'aborted'>((resolve) => {
      const cancel = timerAt(this.deps.clock, this.session.times.abortAtMs, () => {
        this.#abort.abort(new AttemptInterruptedError('the lease of this attempt is about to end'))
        resolve('aborted')
      })
      this.#abort.signal.addEventListener('abort', () => resolve('aborted'), { once: true })
      this.#cancelTimer = cancel
    })
    try {
      for (;;) {
        await this.#readForAdvance()
        const launches = await this.#advance()
        this.#disarm()
        // Every attempt is durable as started before its worker is called; the outcomes that led to it go along.
        // Outcomes alone wait for the next write while siblings run (at most OUTCOME_FLUSH_MS): a pass over many
        // parallel nodes writes its instance a few times, not once per node. An attempt the acquisition recorded
        // needs no write: with nothing else to store, a poll is called right away.
        const unrecorded = launches.some((launch) => !launch.armed)
        if (
          unrecorded ||
          (launches.length && this.#dirty()) ||
          (this.#dirty() && this.#inFlight.size > 0 && this.#flushDue())
        ) {
          // A refused write is rebuilt without the outcome that made it too large; what was to launch is dropped.
          if (!(await this.#flushOrRecover())) continue
        }
        for (const launch of launches) {
          // From here the worker may be called: the attempt stays recorded whatever happens next.
          if (launch.armed) this.session.armedAttemptMade()
          this.#launch(launch.nodeId, launch.step)
        }
        if (this.#inFlight.size === 0) break
        const first = await Promise.race([...[...this.#inFlight.values()].map((entry) => entry.promise), aborted])
        if (first === 'aborted') {
          this.#interruptInFlight()
          continue
        }
        this.#inFlight.delete(first.nodeId)
        // The instance's deadline ends it, unless it ended otherwise meanwhile (a sibling failed it): then the
        // attempt is one more that a deadline interrupted. While a node waits for a callback, a completion may have
        // been stored since the read: the instance is timed out by a pass that read it after the deadline (see
        // #instanceTimedOut), and the attempt, ended by it, counts for nothing, as when the instance times out.
        if (first.deadline === 'instance' && this.#state.status === 'running') {
          if (this.#instanceTimedOut()) this.#timeOutInstance()
          else {
            delete this.#state.nodes[first.nodeId]?.attemptStarted
            this.#dirtyNodes.add(first.nodeId)
          }
        } else this.#apply(first)
      }
    } catch (error) {
      this.#abort.abort(error)
      await Promise.race([Promise.allSettled([...this.#inFlight.values()].map((entry) => entry.promise)), aborted])
      throw error
    } finally {
      this.#cancelTimer()
    }
    return this.#outcome(this.#computeDue())
  }

  #cancelTimer: () => void = () => {}

  /**
   * Reads what the next `#advance` may touch and the store did not read: the payloads and events of the nodes it may
   * run or time out and of their predecessors (their contexts), and the inputs they run with — by key, nothing more.
   */
  async #readForAdvance(): Promise<void> {
    const state = this.#state
    if (state.unread === undefined) return
    const candidates = new Set([
      ...this.#startable().map((node) => node.id),
      ...this.#checkNext,
      ...this.#callbacksToSettle(),
    ])
    // What control flow may decide now reads the same parts: a choice its node's output, a condition its inputs.
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (node.choice && record?.status === 'completed' && record.chosen === undefined) candidates.add(node.id)
      const open = !record || record.status === 'restarting'
      if (!node.synthetic && open && joinSettled(this.definition, state.nodes, node)) candidates.add(node.id)
    }
    await this.#readParts(candidates)
  }

  /** Reads the parts the nodes need (their own, their predecessors', their events, their inputs) left unread. */
  async #readParts(nodeIds: Iterable<string>): Promise<void> {
    if (this.#state.unread === undefined) return
    const ids = [...nodeIds]
    if (!ids.length) return
    const prev = (id: string) => this.definition.byId.get(id)?.prev ?? []
    const read = await this.session.read(partsFor(this.#state, ids, prev))
    if (!read) return
    withPartsRead(this.#state, read)
    // The base is what the store holds: its own copy, untouched by what the pass does to the state's.
    withPartsRead(this.#base, read)
  }

  /** When this pass last wrote (or started). */
  #lastFlushMs = 0

  /** Outcomes waiting to be stored have waited long enough to be written on their own. */
  #flushDue(): boolean {
    return this.#now - this.#lastFlushMs >= OUTCOME_FLUSH_MS
  }

  #outcome(dueAtMs: number | null): PassOutcome {
    this.#disarm()
    const armNext = this.#nextAttempt(dueAtMs)
    return {
      state: this.#state,
      change: this.#pendingChange(),
      dueAtMs,
      ...(armNext ? { armNext } : {}),
      executed: this.#finished,
      afterRefusal: (error) => (this.#recover(error) ? this.#outcome(this.#computeDue()) : undefined),
    }
  }

  /**
   * The store refused the pending change for its size. Retrying it would be refused again, and rerunning the node
   * would produce the same outcome: every node is put back as last stored, and the node whose outcome since then
   * is the largest fails for good, with the reason in `system.last_error` and the context it started with; the
   * other outcomes since then are dropped with the instance failed. False when no outcome can be blamed.
   */
  #recover(error: ItemTooLargeError): boolean {
    const state = this.#state
    let culprit: string | undefined
    let largest = -1
    for (const id of this.#outcomesSinceWrite.keys()) {
      const size = jsonSizeBytes(state.nodes[id])
      if (size > largest) {
        largest = size
        culprit = id
      }
    }
    if (culprit === undefined) return false
    const step = this.#outcomesSinceWrite.get(culprit) as 'run' | 'check'
    for (const id of [...this.#dirtyNodes]) {
      const stored = this.#base.nodes[id]
      if (stored) {
        state.nodes[id] = copyNodeRecord(stored)
      } else {
        delete state.nodes[id]
        this.#dirtyNodes.delete(id)
      }
    }
    for (const id of this.#outcomesSinceWrite.keys()) delete state.nodes[id]?.attemptStarted
    // As stored, a node this pass took its recorded attempt back from still has it: not made, not counted.
    for (const id of this.#disarmed) {
      const record = state.nodes[id]
      if (record?.attemptStarted?.fence === this.session.lease.fence) state.nodes[id] = unarmAttempt(record)
    }
    this.#outcomesSinceWrite.clear()
    this.#checkNext.clear()
    state.status = this.#base.status === 'init' ? 'running' : this.#base.status
    if (this.#base.failure) state.failure = { ...this.#base.failure }
    else delete state.failure
    const endAt = this.#finished.indexOf(END_NODE_ID)
    if (endAt >= 0) this.#finished.splice(endAt, 1)
    const node = this.definition.byId.get(culprit) as NodeDefinition
    const record = state.nodes[culprit] as NodeRecord
    record.updatedAtMs = this.#now
    const reason = new ItemTooLargeError(
      `the outcome of node '${culprit}' (${step}) could not be stored: ${error.refusal || error.message}`,
      error.refusal,
      { cause: error },
    )
    this.#recordError(node, record, step, reason, true)
    // The outcomes dropped with it are lost: the instance fails whatever its failure mode (their nodes canceled).
    if (state.status === 'running') this.#failInstance(node, errorMessage(reason))
    this.#dirtyStatus = true
    this.deps.logger.log('error', 'a node outcome was refused by the store for its size; the node failed', {
      instanceId: state.id,
      workflowType: state.workflowType,
      nodeId: culprit,
      error: error.refusal,
    })
    return true
  }

  /** Flushes the pending change; false when the store refused it for its size and the state was rebuilt. */
  async #flushOrRecover(): Promise<boolean> {
    try {
      await this.#flush()
      return true
    } catch (error) {
      if (!(error instanceof ItemTooLargeError) || !this.#recover(error)) throw error
      return false
    }
  }

  #setStatus(status: InstanceStatus): void {
    this.#state.status = status
    this.#dirtyStatus = true
  }

  #dirty(): boolean {
    return (
      this.#dirtyNodes.size > 0 ||
      this.#dirtyStatus ||
      this.#dirtyInput ||
      this.#dirtyFailure ||
      this.#dirtyPriorInputs ||
      this.#dirtyDeadline
    )
  }

  /**
   * Attempts stored as started under an earlier lease never stored an outcome: each one counts as failed — unless a
   * completion of the callback its worker asked for is stored for it (it arrived before the worker returned, and the
   * runner stopped before storing the outcome: see `interruptedWaitFor`). That completion was accepted as stored, so
   * it is the attempt's outcome, as if the worker had returned after asking for it: the node waits for it and
   * `#settleCallbacks` applies it in this pass (what the worker set is lost with its runner). A node past its own
   * deadline or its instance's fails as it would have.
   */
  #accountInterruptedAttempts(): void {
    for (const node of this.definition.nodes) {
      const record = this.#state.nodes[node.id]
      const started = record?.attemptStarted
      if (!record || !started || started.fence >= this.session.lease.fence) continue
      delete record.attemptStarted
      this.#dirtyNodes.add(node.id)
      if (record.status !== 'running' && record.status !== 'pending') continue
      const wait = interruptedWaitFor(record, started, this.#state.callbacks?.[node.id])
      if (wait && !this.#pastDeadline(node, record)) {
        this.#awaitCallback(node, record, wait)
        continue
      }
      this.#recordError(node, record, started.step, interruptedAttempt(started))
    }
  }

  /** The node is past its max wait or its own timeout, or its instance past its timeout (see #waitClosesAt). */
  #pastDeadline(node: NodeDefinition, record: NodeRecord): boolean {
    const closes = this.#waitClosesAt(node, record)
    return closes !== undefined && this.#now >= closes
  }

  /** New attempts may start: the instance runs and the lease has time left for them. */
  #canStart(): boolean {
    return (
      this.#state.status === 'running' &&
      !this.#abort.signal.aborted &&
      this.#now < this.session.times.startDeadlineMs &&
      // Past the instance's timeout, a pass that waits for a callback's margin to time it out starts nothing.
      !instanceTimedOut(this.#state, this.#now)
    )
  }

  /** Created nodes that can start an execution now (control flow decides which nodes are created). */
  #startable(): NodeDefinition[] {
    if (!this.#canStart()) return []
    return this.definition.nodes.filter((node) => {
      if (node.synthetic || this.#executed.has(node.id) || this.#inFlight.has(node.id)) return false
      const record = this.#state.nodes[node.id]
      // A node waiting for a callback is not called again: its callback settles it (see #settleCallbacks).
      if (record && isWaiting(record)) return false
      if (record?.status === 'running' || record?.status === 'pending') return this.#isDue(node, record)
      return false
    })
  }

  #deadlinePassed(node: NodeDefinition, record: NodeRecord): boolean {
    return node.maxWaitTimeSeconds > 0 && this.#now > record.createdAtMs + node.maxWaitTimeSeconds * 1000
  }

  #isDue(node: NodeDefinition, record: NodeRecord): boolean {
    if (this.mode === 'explicit') return true
    const now = this.#now
    if (record.nextAttemptAtMs === undefined || record.nextAttemptAtMs <= now) return true
    const event = this.#state.events[node.id]
    if (event && !sawEvent(record, event)) return true
    return this.#deadlinePassed(node, record) || nodeTimedOut(node, record, now)
  }

  /**
   * Completes what needs no worker (finishing nodes), makes what control flow decides now (the instance's deadline,
   * choices, joins and conditions, the end), fails waiting nodes past their deadline without calling them again,
   * and marks every node to start now as started. Returns what to launch.
   */
  async #advance(): Promise<{ nodeId: string; step: 'run' | 'check'; armed?: boolean }[]> {
    const state = this.#state
    if (state.status !== 'running') return []
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (record?.status === 'finishing') {
        record.status = 'completed'
        record.updatedAtMs = this.#now
        this.#dirtyNodes.add(node.id)
        this.#markFinished(node.id)
      }
    }
    if (this.#instanceTimedOut()) {
      // A completion stored before the read arrived before the deadline (later ones were refused): it is applied.
      this.#settleCallbacks(true)
      if (state.status === 'running') this.#timeOutInstance()
      return []
    }
    this.#settleCallbacks()
    if (state.status !== 'running') return []
    await this.#decide()
    const ending = state.status === 'running' ? endOutcome(this.definition, state.nodes) : 'wait'
    if (ending !== 'wait') this.#end(ending)
    if (state.status !== 'running') return []
    const launches: { nodeId: string; step: 'run' | 'check'; armed?: boolean }[] = []
    for (const nodeId of this.#checkNext) {
      this.#checkNext.delete(nodeId)
      if (state.status !== 'running' || state.nodes[nodeId]?.status !== 'pending') continue
      launches.push({ nodeId, step: 'check' })
    }
    for (const node of this.#startable()) {
      const record = state.nodes[node.id] as NodeRecord
      this.#executed.add(node.id)
      if (this.#expire(node, record)) {
        if (state.status !== 'running') return []
        continue
      }
      launches.push({ nodeId: node.id, step: record.status === 'pending' ? 'check' : 'run' })
    }
    const now = this.#now
    for (const launch of launches) {
      const record = state.nodes[launch.nodeId] as NodeRecord
      const armed = this.#armed.get(launch.nodeId)
      if (armed?.step === launch.step) {
        // Recorded by the acquisition, as stored: the attempt the pass makes now.
        this.#armed.delete(launch.nodeId)
        record.attemptStarted = { ...armed }
        record.calls = (record.calls ?? 0) + 1
        launch.armed = true
        continue
      }
      record.attemptStarted = { step: launch.step, atMs: now, fence: this.session.lease.fence }
      record.calls = (record.calls ?? 0) + 1
      this.#dirtyNodes.add(launch.nodeId)
    }
    return launches
  }

  /** Fails a node past a deadline before it is called again; true when it did. */
  #expire(node: NodeDefinition, record: NodeRecord): boolean {
    // A node that has waited past its max wait fails at it, unpolled: its last look already said "not yet".
    if (record.waits > 0 && this.#deadlinePassed(node, record)) {
      this.#timeOut(node, record, true)
      return true
    }
    if (!nodeTimedOut(node, record, this.#now)) return false
    this.#timeOut(node, record, true, deadlineReason('node', this.definition, node))
    return true
  }

  // ---- control flow (control-flow.ts decides, conditions.ts evaluates, deadlines.ts times) -------------------

  /** The instance's deadline is counted from when it starts running (a restart sets it itself). */
  #startDeadline(): void {
    const state = this.#state
    if (state.status !== 'running' || state.deadlineAtMs !== undefined) return
    const deadline = instanceDeadlineFrom(this.definition, this.#now)
    if (deadline === undefined) return
    state.deadlineAtMs = deadline
    this.#dirtyDeadline = true
  }

  /**
   * Makes every decision due now: the choice of each node that completed, then the join of each node not started
   * (or restarting) whose predecessors are all terminal, until no more can be made (a skip can settle the joins
   * after it). A node its join lets run has its condition evaluated once, and starts only when attempts may start.
   */
  async #decide(): Promise<void> {
    const state = this.#state
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (state.status !== 'running') return
      if (node.choice && record?.status === 'completed' && record.chosen === undefined) {
        await this.#readParts([node.id])
        await this.#choose(node, record)
      }
    }
    for (let decided = true; decided && state.status === 'running'; ) {
      decided = false
      for (const node of this.definition.nodes) {
        const record = state.nodes[node.id]
        if (node.synthetic || state.status !== 'running' || (record && record.status !== 'restarting')) continue
        const join = joinDecision(this.definition, state.nodes, node)
        if (join.kind === 'wait' || (join.kind === 'run' && !this.#canStart())) continue
        if (join.kind === 'skip') this.#skip(node, record, join.reason)
        else {
          // A skip just made can settle a join whose other parts the first read did not cover.
          await this.#readParts([node.id])
          await this.#admit(node, record)
        }
        decided = true
      }
    }
  }

  get #environment() {
    return { clock: this.deps.clock, random: this.deps.random }
  }

  /** Evaluates the condition of a node its join lets run: it is created, skipped, or fails for good. */
  async #admit(node: NodeDefinition, previous: NodeRecord | undefined): Promise<void> {
    const verdict = await evaluateWhen(this.#environment, this.definition, this.#state, node)
    if (verdict === false) {
      this.#skip(node, previous, 'condition_false')
      return
    }
    this.#initialise(node, previous)
    const record = this.#state.nodes[node.id] as NodeRecord
    // An expression gives the same answer every time: its failure is not retried.
    if (verdict instanceof ExpressionFailedError) this.#recordError(node, record, 'run', verdict, true)
    else if (node.when)
      this.#history.push({ atMs: this.#now, kind: 'decision', nodeId: node.id, code: decisionCode('when') })
  }

  /** The node will not run: terminal, no worker call, no output. */
  #skip(node: NodeDefinition, previous: NodeRecord | undefined, reason: SkipReason): void {
    const now = this.#now
    const record: NodeRecord = {
      status: 'skipped',
      skipReason: reason,
      failCount: previous?.failCount ?? 0,
      createdAtMs: now,
      updatedAtMs: now,
      attempt: previous?.attempt ?? 1,
      waits: 0,
      output: {},
    }
    if (previous?.calls) record.calls = previous.calls
    this.#state.nodes[node.id] = record
    this.#dirtyNodes.add(node.id)
  }

  /** Makes the choice of a node that completed; a rule that cannot be evaluated fails the node for good. */
  async #choose(node: NodeDefinition, record: NodeRecord): Promise<void> {
    const chosen = await evaluateChoice(this.#environment, this.definition, this.#state, node)
    this.#dirtyNodes.add(node.id)
    if (chosen instanceof ExpressionFailedError) {
      record.updatedAtMs = this.#now
      this.#recordError(node, record, 'run', chosen, true)
      return
    }
    record.chosen = chosen.next
    this.#history.push({ atMs: this.#now, kind: 'decision', nodeId: node.id, code: decisionCode(chosen) })
  }

  /** Every predecessor of `end` is terminal: the instance completes, or fails for a node that failed (isolate). */
  #end(outcome: 'completed' | 'failed'): void {
    const state = this.#state
    if (outcome === 'completed') {
      this.#setStatus('completed')
      this.#markFinished(END_NODE_ID)
      return
    }
    this.#setStatus('failed')
    if (!state.failure) {
      const nodeId = blockingFailures(this.definition, state.nodes)[0] as string
      state.failure = { nodeId, reason: `node '${nodeId}' failed`, atMs: this.#now }
      this.#dirtyFailure = true
    }
    this.deps.logger.log('warn', 'workflow instance failed once its independent branches finished', {
      instanceId: state.id,
      workflowType: state.workflowType,
      nodeId: state.failure.nodeId,
    })
  }

  /** The instance's timeout passed: it ends `timed_out`, its running workers aborted, nothing else started. */
  #timeOutInstance(): void {
    const state = this.#state
    const reason = deadlineReason('instance', this.definition)
    for (const [nodeId, entry] of [...this.#inFlight]) {
      this.#inFlight.delete(nodeId)
      entry.controller.abort(new DeadlineExceededError('instance', reason))
      delete state.nodes[nodeId]?.attemptStarted
      this.#dirtyNodes.add(nodeId)
    }
    this.#setStatus('timed_out')
    state.failure = { reason, atMs: this.#now }
    this.#dirtyFailure = true
    this.#cancelOthers(undefined)
    this.deps.logger.log('warn', 'workflow instance timed out', {
      instanceId: state.id,
      workflowType: state.workflowType,
    })
  }

  #markFinished(nodeId: string): void {
    if (!this.#finished.includes(nodeId)) this.#finished.push(nodeId)
  }

  /** Creates a node (all predecessors completed) or re-initialises a restarting one with a fresh context. */
  #initialise(node: NodeDefinition, previous: NodeRecord | undefined): void {
    const now = this.#now
    const reset = previous === undefined || previous.resetOnRestart === true
    const record: NodeRecord = {
      status: 'running',
      failCount: reset ? 0 : previous.failCount,
      createdAtMs: reset ? now : previous.createdAtMs,
      updatedAtMs: now,
      attempt: (previous?.attempt ?? 0) + 1,
      waits: 0,
      output: {},
    }
    if (previous?.calls) record.calls = previous.calls
    this.#state.nodes[node.id] = record
    this.#dirtyNodes.add(node.id)
  }

  #launch(nodeId: string, step: 'run' | 'check'): void {
    const state = this.#state
    const record = state.nodes[nodeId] as NodeRecord
    const context = assembleContext(this.definition, state, nodeId, record)
    const worker = this.deps.worker(state.workflowType, nodeId)
    const controller = new AbortController()
    const lease = this.#abort.signal
    let signal: AbortSignal | undefined
    let asked: CallbackWait | undefined
    const hooks = this.#callbackHooks(nodeId, record, (wait) => {
      asked = wait
    })
    const nodeContext = new NodeContext(
      context,
      {
        instanceId: state.id,
        workflowType: state.workflowType,
        nodeId,
        businessId: state.businessId,
        attempt: record.attempt,
        idempotencyKey: `${state.id}:${nodeId}:${record.attempt}`,
        step,
        // The lease's end and the attempt's own deadlines abort it; combined when the worker first asks for it (most
        // workers never do, and combining signals costs more than the rest of a trivial step's bookkeeping).
        get signal() {
          signal ??= AbortSignal.any([lease, controller.signal])
          return signal
        },
      },
      hooks,
    )
    const call = async (): Promise<StepOutcome> => {
      try {
        if (!worker) throw new Error(`no worker is registered for '${state.workflowType}.${nodeId}'`)
        const fn = step === 'run' ? worker.run : worker.check
        if (fn) await fn(nodeContext)
        return { nodeId, step, context: nodeContext.toJSON(), failed: false, ...(asked ? { callback: asked } : {}) }
      } catch (error) {
        return failedOutcome(nodeId, step, nodeContext.toJSON(), error, asked)
      }
    }
    const askedSoFar = () => asked
    const promise = this.#bounded(nodeId, step, nodeContext, controller, call, askedSoFar)
    this.#inFlight.set(nodeId, { promise, context: nodeContext, controller, asked: askedSoFar })
  }

  /**
   * The attempt's outcome, or, when a deadline comes first (see `attemptDeadline`), a failed outcome naming it, with
   * the context as the worker left it then; the worker's signal fires at that moment. The lease's own end is left to
   * the pass (`#interruptInFlight`).
   */
  #bounded(
    nodeId: string,
    step: 'run' | 'check',
    context: NodeContext,
    controller: AbortController,
    call: () => Promise<StepOutcome>,
    asked: () => CallbackWait | undefined,
  ): Promise<StepOutcome> {
    const node = this.definition.byId.get(nodeId) as NodeDefinition
    const limit = attemptDeadline(this.#state, node, this.#state.nodes[nodeId] as NodeRecord, this.#now)
    if (limit === undefined || limit.atMs >= this.session.times.abortAtMs) return call()
    let cancel: () => void = () => {}
    // The timer is set before the worker is called: a worker that moves a test's clock past it is still bounded.
    const expired = new Promise<StepOutcome>((resolve) => {
      cancel = timerAt(this.deps.clock, limit.atMs, () => {
        const error = new DeadlineExceededError(limit.kind, deadlineReason(limit.kind, this.definition, node))
        controller.abort(error)
        resolve({
          ...failedOutcome(nodeId, step, this.#snapshot(nodeId, context), error, asked()),
          deadline: limit.kind,
        })
      })
    })
    return Promise.race([call(), expired]).finally(() => cancel())
  }

  /** The context a worker still running has built so far (or the one it started with, if it cannot be copied). */
  #snapshot(nodeId: string, context: NodeContext): JsonObject {
    try {
      return structuredClone(context.toJSON())
    } catch {
      return assembleContext(this.definition, this.#state, nodeId, this.#state.nodes[nodeId] as NodeRecord)
    }
  }

  /** The lease is about to end: every worker still running has its attempt counted as failed, now. */
  #interruptInFlight(): void {
    for (const [nodeId, entry] of [...this.#inFlight]) {
      this.#inFlight.delete(nodeId)
      const step = this.#state.nodes[nodeId]?.attemptStarted?.step ?? entry.context.info.step
      const error = new AttemptInterruptedError(
        `the worker's ${step} did not return before its lease ended; it was aborted and counts as a failed attempt`,
      )
      this.#apply(failedOutcome(nodeId, step, this.#snapshot(nodeId, entry.context), error, entry.asked()))
    }
  }

  /** Applies a worker's outcome to the node; a successful run of a node with a check queues the check. */
  #apply(outcome: StepOutcome): void {
    const state = this.#state
    const node = this.definition.byId.get(outcome.nodeId) as NodeDefinition
    const record = state.nodes[outcome.nodeId] as NodeRecord
    const now = this.#now
    this.#dirtyNodes.add(node.id)
    this.#markFinished(node.id)
    this.#outcomesSinceWrite.set(node.id, outcome.step)
    delete record.attemptStarted
    let error: unknown = outcome.failed ? outcome.error : undefined
    const stored = this.#checkContext(node.id, record, outcome.context)
    if (stored instanceof Error) {
      // The worker's context cannot be stored: keep the context it started with and fail the node for good.
      error = stored
    } else {
      record.output = stored.output
      record.workflowContext = stored.workflowContext as JsonObject
      record.preNodeContext = stored.preNodeContext as JsonObject
    }
    const hadEvent = state.events[node.id]
    if (record.workflowContext === undefined) delete record.workflowContext
    if (record.preNodeContext === undefined) delete record.preNodeContext
    record.updatedAtMs = now
    if (hadEvent) {
      record.seenEventTs = hadEvent.eventTs
      record.seenEventAtMs = hadEvent.receivedAtMs
    }

    if (error === undefined) {
      if (record.status === 'canceled') return
      if (outcome.callback) {
        this.#awaitCallback(node, record, outcome.callback)
        return
      }
      this.#succeeded(node, record, outcome.step)
      return
    }
    // A worker that asked for a callback and then failed, or said its node is not ready: a completion stored before
    // this is stored is the attempt's outcome (the provider was told it was stored), so the node waits on, its wait
    // closed now; without one, the next pass stores this failure (README, "Callbacks"). Its node's and instance's
    // deadlines still win.
    const deadline = outcome.deadline === 'node' || outcome.deadline === 'instance'
    if (outcome.callback && !(stored instanceof Error) && record.status !== 'canceled' && !deadline) {
      this.#awaitCallback(node, record, closedByFailure(outcome.callback, error, now))
      return
    }
    // A node past its own timeout fails for good, with the reason, like one past its max wait.
    const timedOut = outcome.deadline === 'node' && record.status !== 'canceled'
    if (timedOut && record.output[CONTEXT_KEYS.reason] === undefined) {
      record.output = { ...record.output, [CONTEXT_KEYS.reason]: deadlineReason('node', this.definition, node) }
    }
    this.#recordError(node, record, outcome.step, error, stored instanceof Error || timedOut)
  }

  /** A step succeeded: a run is followed by its check (in this pass), a check completes the node. */
  #succeeded(node: NodeDefinition, record: NodeRecord, step: 'run' | 'check'): void {
    record.waits = 0
    delete record.nextAttemptAtMs
    const worker = this.deps.worker(this.#state.workflowType, node.id)
    if (step === 'run' && worker?.check) {
      record.status = 'pending'
      this.#checkNext.add(node.id)
      return
    }
    record.status = 'completed'
  }

  /** What `ctx.callback` does for this call: the token names the node, its attempt, this call and this lease. */
  #callbackHooks(nodeId: string, record: NodeRecord, asked: (wait: CallbackWait) => void): ExecutionHooks {
    const callbacks = this.deps.callbacks
    if (!callbacks) return {}
    const claims = {
      instanceId: this.#state.id,
      nodeId,
      attempt: record.attempt,
      call: record.calls ?? 0,
      fence: this.session.lease.fence,
    }
    return {
      callback: async (options) => {
        const wait = callbackWait(options, { call: claims.call, fence: claims.fence, nowMs: this.#now })
        asked(wait)
        const token = await callbacks.tokens.issue(claims)
        return { token, url: callbacks.urlOf(token), timeoutAtMs: wait.timeoutAtMs }
      },
    }
  }

  /** The worker asked for a callback and returned: its node waits for it (not a retry: no backoff, no count). */
  #awaitCallback(node: NodeDefinition, record: NodeRecord, wait: CallbackWait): void {
    record.callback = this.#withCloses(node, record, wait)
    // Not a new wait for a wait its worker's failure closed: that failure, stored next, counts in the node's backoff.
    if (!wait.workerFailure) record.waits = 0
    // A wait timed out already (one the worker's own failure closed) is looked at when a pass may time it out, as
    // any other deadline of it (see CALLBACK_CLOCK_SKEW_MS); a completion stored before makes the instance due at once.
    const resolution = resolveCallback(wait, undefined, this.#now)
    record.nextAttemptAtMs = this.#waitLookAt(
      record,
      resolution.kind === 'wait' ? resolution.untilMs : wait.timeoutAtMs,
    )
  }

  /**
   * The first deadline of the node or, with `instance`, of its instance (its max wait, its own timeout, the instance's
   * timeout): what fails the node, and ends a wait of it — no completion is accepted from then; undefined without one.
   */
  #waitClosesAt(node: NodeDefinition, record: NodeRecord, instance = true): number | undefined {
    let closes = (instance ? this.#state.deadlineAtMs : undefined) ?? Number.POSITIVE_INFINITY
    // The max wait is passed strictly after its end (see #deadlinePassed).
    if (node.maxWaitTimeSeconds > 0) closes = Math.min(closes, record.createdAtMs + node.maxWaitTimeSeconds * 1000 + 1)
    closes = Math.min(closes, nodeDeadlineAt(node, record) ?? Number.POSITIVE_INFINITY)
    return closes === Number.POSITIVE_INFINITY ? undefined : closes
  }

  /** The wait with the deadlines of its node and instance as they are now (see CallbackWait.closesAtMs). */
  #withCloses(node: NodeDefinition, record: NodeRecord, wait: CallbackWait): CallbackWait {
    const closes = this.#waitClosesAt(node, record)
    const { closesAtMs: _, ...rest } = wait
    return closes !== undefined && closes < wait.timeoutAtMs ? { ...rest, closesAtMs: closes } : rest
  }

  /** When a waiting node is looked at next: the skew after its wait's next deadline, or its node's or instance's. */
  #waitLookAt(record: NodeRecord, untilMs: number): number {
    return waitLookAtMs(Math.min(untilMs, record.callback?.closesAtMs ?? untilMs))
  }

  /**
   * A deadline of its node ends a node's callback wait, judged like the wait's own timeout from what the pass's read
   * could have seen (see #callbacksSeenAtMs): a completion stored after that read was refused. (The instance's
   * timeout is judged the same way by #instanceTimedOut.)
   */
  #waitClosed(node: NodeDefinition, record: NodeRecord): boolean {
    const closes = this.#waitClosesAt(node, record, false)
    return closes !== undefined && this.#callbacksSeenAtMs >= closes
  }

  /** Some node waits for a callback. */
  #callbacksOpen(): boolean {
    return Object.values(this.#state.nodes).some((record) => isWaiting(record))
  }

  /**
   * The instance's timeout has passed: judged from the pass's read when a node waits for a callback (see
   * #waitClosed), by the clock otherwise.
   */
  #instanceTimedOut(): boolean {
    return instanceTimedOut(this.#state, this.#callbacksOpen() ? this.#callbacksSeenAtMs : this.#now)
  }

  /**
   * Nodes whose callback wait ends now (completed, timed out, past a deadline of the node): settling it changes their
   * record, so their parts are read first.
   */
  #callbacksToSettle(): string[] {
    const state = this.#state
    return this.definition.nodes
      .filter((node) => {
        const record = state.nodes[node.id]
        if (!record?.callback || !isWaiting(record)) return false
        const arrival = arrivalFor(record, state.callbacks?.[node.id])
        const resolution = resolveCallback(record.callback, arrival, this.#callbacksSeenAtMs)
        return resolution.kind !== 'wait' || this.#waitClosed(node, record)
      })
      .map((node) => node.id)
  }

  /**
   * Resolves every open callback wait against what arrived for it: a completion is the outcome of the step that
   * asked for it (a failure, a timeout or a missed heartbeat a failed attempt, counted and retried by the node's
   * policy), a heartbeat moves the next look; the node is not called again in this pass.
   */
  #settleCallbacks(completedOnly = false): void {
    const state = this.#state
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (!record?.callback || !isWaiting(record)) continue
      const wait = record.callback
      const arrival = arrivalFor(record, state.callbacks?.[node.id])
      if (completedOnly && !arrival?.completion) continue
      const resolution = resolveCallback(wait, arrival, this.#callbacksSeenAtMs)
      const step = record.status === 'pending' ? 'check' : 'run'
      if (resolution.kind === 'wait') {
        // The node's own deadlines end the wait too: its max wait, or its `timeout_seconds` — judged, like the
        // wait's timeout, from what this pass's read could have seen.
        if (this.#waitClosed(node, record)) {
          this.#executed.add(node.id)
          record.callback = { ...wait, outcome: 'timeout' }
          if (nodeTimedOut(node, record, this.#callbacksSeenAtMs)) {
            this.#timeOut(node, record, true, deadlineReason('node', this.definition, node))
          } else this.#timeOut(node, record, true)
          continue
        }
        const heartbeat = resolution.heartbeatAtMs
        // The deadlines of the node and instance as they are now (a restart may have moved the instance's).
        const next = this.#withCloses(
          node,
          record,
          heartbeat === undefined ? wait : { ...wait, heartbeatAtMs: heartbeat },
        )
        const lookAt = waitLookAtMs(Math.min(resolution.untilMs, next.closesAtMs ?? resolution.untilMs))
        if (
          record.nextAttemptAtMs !== lookAt ||
          heartbeat !== wait.heartbeatAtMs ||
          next.closesAtMs !== wait.closesAtMs
        ) {
          record.nextAttemptAtMs = lookAt
          record.callback = next
          this.#dirtyNodes.add(node.id)
        }
        continue
      }
      this.#executed.add(node.id)
      this.#markFinished(node.id)
      this.#dirtyNodes.add(node.id)
      record.updatedAtMs = this.#now
      const fingerprint = resolution.kind === 'timeout' ? {} : { fingerprint: resolution.fingerprint }
      const outcome = resolution.kind === 'timeout' ? resolution.outcome : resolution.kind
      record.callback = { ...wait, outcome, ...fingerprint }
      if (resolution.kind === 'success') {
        // The node limit holds for what a completion adds as for a worker's context: one that arrived before its
        // worker returned was checked without the worker's output, and together they may not fit. Then the node
        // fails for good with the reason, keeping the output it had (the completion's bytes leave with its arrival).
        const tooLarge =
          resolution.output === undefined
            ? undefined
            : callbackOutputRefusal(node.id, record, resolution.output, this.deps.limits.maxNodeContextBytes)
        if (tooLarge) {
          this.#recordError(node, record, step, tooLarge, true)
          continue
        }
        // A new output, never the stored one changed in place: copies of the record share payloads, and a payload's
        // serialised text is kept by its object (see payloadText).
        if (resolution.output !== undefined) record.output = withCallbackOutput(record, resolution.output)
        this.#succeeded(node, record, step)
      } else {
        // A wait the worker's own failure closed comes to that failure when nothing completed it.
        const kept = resolution.kind === 'timeout' ? wait.workerFailure : undefined
        const error = kept ? keptFailure(kept, this.#now - wait.timeoutAtMs) : resolution.error
        this.#recordError(node, record, step, error)
      }
    }
  }

  /**
   * Accounts one error of a node: `last_error`, the fail count, and then the node's fate. A node a sibling's
   * failure canceled meanwhile keeps the account of its own error.
   */
  #recordError(node: NodeDefinition, record: NodeRecord, step: 'run' | 'check', error: unknown, fatal = false): void {
    const state = this.#state
    const now = this.#now
    this.#dirtyNodes.add(node.id)
    const signal = fatal ? ({ kind: 'failed-with-failed' } as const) : classifyWorkerError(error)
    const lastError = noteNodeError(record, error, now)
    const fields = { instanceId: state.id, workflowType: state.workflowType, nodeId: node.id, step }
    if (signal.kind === 'not-ready') {
      if (record.status === 'canceled') return
      this.deps.logger.log('debug', 'node not ready', fields)
      this.#wait(node, record, signal.retryAfterSeconds, false)
      return
    }
    record.failCount += 1
    const entry = nodeErrorEntry(node.id, record, error, lastError, now)
    this.#history.push(entry)
    this.deps.metrics?.add(MetricName.workerErrors, 1, 'Count', {
      workflowType: state.workflowType,
      errorClass: entry.errorClass,
    })
    // The line's level is the error's severity: a BusinessWarningError (or a failure the node continues past) warns.
    const level = signal.kind === 'error' && signal.severity !== 'warning' ? 'error' : 'warn'
    this.deps.logger.log(level, signal.kind === 'failed-with-continue' ? 'node failed with continue' : 'node error', {
      ...fields,
      error: lastError,
      failCount: record.failCount,
      ...(signal.kind === 'error' ? { severity: signal.severity } : {}),
    })
    if (record.status === 'canceled') return
    if (signal.kind === 'failed-with-continue') {
      record.status = 'completed'
      record.waits = 0
      delete record.nextAttemptAtMs
      return
    }
    if (signal.kind === 'failed-with-failed' || (node.failMaxCount > 0 && record.failCount >= node.failMaxCount)) {
      this.#failNode(node, record, lastError)
      return
    }
    this.#wait(node, record, undefined, true)
  }

  /**
   * Validates a worker's context (JSON only, no forbidden keys) and returns what the node stores of it, within the
   * size limits: its own output and overrides against the node limit, and the instance with them against the budget.
   * What the node inherits (the input, its predecessors' outputs, its event) is stored once elsewhere and not counted.
   */
  #checkContext(
    nodeId: string,
    record: NodeRecord,
    context: JsonObject,
  ): Pick<NodeRecord, 'output' | 'workflowContext' | 'preNodeContext'> | Error {
    const limits = this.deps.limits
    try {
      assertJsonValue(context, `nodes.${nodeId}.context`, limits)
    } catch (error) {
      return error as ValidationError
    }
    const split = splitContext(this.definition, this.#state, nodeId, context)
    // What the node stores of it, measured on the parts themselves (not on a wrapper around them).
    const size = nodePayloadBytes(split)
    if (size > limits.maxNodeContextBytes) {
      return new PayloadTooLargeError(
        `context node '${nodeId}' stores (its output and overrides) is ${size} bytes, over the limit of ${limits.maxNodeContextBytes}`,
        `nodes.${nodeId}.context`,
        size,
        limits.maxNodeContextBytes,
      )
    }
    const projected: NodeRecord = { ...record, ...split }
    if (split.workflowContext === undefined) delete projected.workflowContext
    if (split.preNodeContext === undefined) delete projected.preNodeContext
    const pending: Record<string, NodeRecord> = {}
    for (const id of this.#dirtyNodes) pending[id] = this.#state.nodes[id] as NodeRecord
    pending[nodeId] = projected
    const instanceSize = this.session.storedBytesWith(pending)
    const room = growthBudget(limits)
    if (instanceSize > room) {
      return new PayloadTooLargeError(
        `instance would store ${instanceSize} bytes after node '${nodeId}', over the ${room} bytes its budget of ` +
          `${limits.maxInstanceBytes} leaves for outputs`,
        `nodes.${nodeId}.context`,
        instanceSize,
        room,
      )
    }
    return split
  }

  /** Leaves the node waiting with its next attempt time, or fails it when its max wait time is exceeded. */
  #wait(node: NodeDefinition, record: NodeRecord, retryAfterSeconds: number | undefined, counted: boolean): void {
    const now = this.#now
    if (this.#deadlinePassed(node, record)) {
      this.#timeOut(node, record, !counted)
      return
    }
    record.waits += 1
    const policy = mergeRetryPolicy(this.definition.retry, node.retry)
    record.nextAttemptAtMs = now + nextDelayMs(policy, record.waits, this.deps.random.next(), retryAfterSeconds)
  }

  /**
   * Reaching `max_wait_time_ts` (or the node's `timeout_seconds`, with its own reason) fails the node for good, and
   * counts as a failure however it was reached.
   */
  #timeOut(
    node: NodeDefinition,
    record: NodeRecord,
    count: boolean,
    reason = `max_wait_time_ts exceeded: node waited more than ${node.maxWaitTimeSeconds} s since it was created`,
  ): void {
    if (record.output[CONTEXT_KEYS.reason] === undefined)
      record.output = { ...record.output, [CONTEXT_KEYS.reason]: reason }
    if (count) record.failCount += 1
    record.updatedAtMs = this.#now
    this.#history.push({
      atMs: this.#now,
      kind: 'error',
      nodeId: node.id,
      attempt: record.attempt,
      errorClass: 'DeadlineExceeded',
      message: entryMessage(reason),
    })
    this.#dirtyNodes.add(node.id)
    this.#failNode(node, record, reason)
  }

  /**
   * A node failed for good; what that does to the instance is the workflow's failure mode (see `failureEffect`): an
   * optional node's successors go on, `isolate` records the first failure and lets the joins skip what depends on
   * it, `fail_fast` fails the instance now.
   */
  #failNode(node: NodeDefinition, record: NodeRecord, reason: string): void {
    record.status = 'failed'
    delete record.nextAttemptAtMs
    const effect = failureEffect(this.definition, node)
    if (effect === 'fail_instance') {
      this.#failInstance(node, reason)
      return
    }
    const state = this.#state
    if (effect === 'isolate' && !state.failure) {
      state.failure = { nodeId: node.id, reason: reason.slice(0, 1000), atMs: this.#now }
      this.#dirtyFailure = true
    }
    this.deps.logger.log(
      'warn',
      effect === 'isolate' ? 'node failed; what depends on it is skipped' : 'optional node failed',
      {
        instanceId: state.id,
        workflowType: state.workflowType,
        nodeId: node.id,
      },
    )
  }

  /** The instance fails now (fail_fast): running nodes are canceled, those not yet started skipped. */
  #failInstance(node: NodeDefinition, reason: string): void {
    this.#setStatus('failed')
    this.#state.failure = { nodeId: node.id, reason: reason.slice(0, 1000), atMs: this.#now }
    this.#dirtyFailure = true
    this.#cancelOthers(node.id)
    this.deps.logger.log('warn', 'workflow instance failed', {
      instanceId: this.#state.id,
      workflowType: this.#state.workflowType,
      nodeId: node.id,
    })
  }

  /** The instance ended: nodes in flight or waiting are canceled, those waiting to restart never start. */
  #cancelOthers(except: string | undefined): void {
    for (const [id, other] of Object.entries(this.#state.nodes)) {
      const node = this.definition.byId.get(id)
      if (node && other.status === 'restarting') this.#skip(node, other, 'not_started')
      else if (id !== except && !isTerminalNodeStatus(other.status)) {
        other.status = 'canceled'
        other.updatedAtMs = this.#now
        delete other.nextAttemptAtMs
        this.#dirtyNodes.add(id)
      }
    }
  }

  /** Earliest time the instance needs a pass; null when it is terminal. A running instance always has one. */
  /**
   * The attempt the instance is due for at `dueAtMs`, when exactly one node's next attempt is then: the release names
   * it, and the due pass's acquisition records it (see `armAttempt`). A pass due for something else at that time (a
   * deadline) takes it back.
   */
  #nextAttempt(dueAtMs: number | null): NextAttempt | undefined {
    const state = this.#state
    if (dueAtMs === null || state.status !== 'running' || dueAtMs <= this.#now) return undefined
    let next: NextAttempt | undefined
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (record?.nextAttemptAtMs !== dueAtMs || isWaiting(record)) continue
      if (record.status !== 'running' && record.status !== 'pending') continue
      if (next) return undefined
      next = { nodeId: node.id, step: record.status === 'pending' ? 'check' : 'run' }
    }
    return next
  }

  #computeDue(): number | null {
    const state = this.#state
    if (state.status !== 'running') return null
    const now = this.#now
    let due = Number.POSITIVE_INFINITY
    for (const node of this.definition.nodes) {
      if (node.synthetic) continue
      const record = state.nodes[node.id]
      if (!record || record.status === 'restarting') {
        if (joinSettled(this.definition, state.nodes, node)) due = Math.min(due, now)
        continue
      }
      if (record.status === 'finishing') due = Math.min(due, now)
      if (record.status !== 'running' && record.status !== 'pending') continue
      due = Math.min(due, record.nextAttemptAtMs ?? now)
      if (isWaiting(record) && arrivalFor(record, state.callbacks?.[node.id])?.completion) due = now
      const event = state.events[node.id]
      if (event && !sawEvent(record, event)) due = Math.min(due, now)
      // A waiting node's next look already counts its deadlines, with the margin of a callback's (see #waitLookAt).
      if (isWaiting(record)) continue
      due = Math.min(due, this.#waitClosesAt(node, record, false) ?? due)
    }
    // Deadlines fire with nobody polling: the instance is due at the first one (with a callback's margin while a
    // node waits for one: see #instanceTimedOut).
    if (due !== Number.POSITIVE_INFINITY) {
      const deadline = state.deadlineAtMs
      if (deadline !== undefined && this.#callbacksOpen()) {
        // Past the timeout nothing starts: the pass that times the instance out, a margin later, is the next needed.
        due = instanceTimedOut(state, now) ? waitLookAtMs(deadline) : Math.min(due, waitLookAtMs(deadline))
      } else if (deadline !== undefined) due = Math.min(due, deadline)
      return Math.max(due, 0)
    }
    // Nothing can ever run (a failed or canceled node blocks every path to `end`): fail it with the reason rather
    // than leave a running instance that waits for nothing.
    const blocking = Object.entries(state.nodes)
      .filter(([, record]) => isFailedOrCanceled(record.status))
      .map(([id]) => id)
    this.#setStatus('failed')
    this.#state.failure = {
      reason: `no node can run: ${blocking.length ? `'${blocking.join("', '")}' block every path to the end` : 'nothing is waiting'}`,
      atMs: now,
    }
    this.#dirtyFailure = true
    this.#cancelOthers(undefined)
    return null
  }

  #pendingChange(): InstanceChange {
    const state = this.#state
    const change: InstanceChange = { updatedAtMs: this.#now }
    if (this.#dirtyNodes.size) {
      change.nodes = {}
      for (const id of this.#dirtyNodes) change.nodes[id] = state.nodes[id] as NodeRecord
    }
    if (this.#dirtyStatus) change.status = state.status
    if (this.#dirtyInput) change.input = state.input
    if (this.#dirtyFailure) change.failure = state.failure ?? null
    if (this.#dirtyPriorInputs) change.priorInputs = state.priorInputs ?? null
    if (this.#dirtyDeadline) change.deadlineAtMs = state.deadlineAtMs ?? null
    if (this.#history.length) change.history = [...this.#history]
    const stale: Record<string, CallbackArrival> = {}
    for (const id of this.#dirtyNodes) {
      const record = state.nodes[id]
      const arrival = state.callbacks?.[id]
      if (arrival && (!record || !isWaiting(record) || !arrivalFor(record, arrival))) stale[id] = arrival
    }
    if (Object.keys(stale).length) change.clearCallbacks = stale
    return change
  }

  /** Writes the pending change; what it stored becomes the base a refused later write is rebuilt from. */
  async #flush(): Promise<void> {
    const change = this.#pendingChange()
    await this.session.write(change)
    this.#lastFlushMs = this.#now
    const base = this.#base
    for (const id of this.#dirtyNodes) base.nodes[id] = copyNodeRecord(this.#state.nodes[id] as NodeRecord)
    base.status = this.#state.status
    if (this.#state.failure) base.failure = { ...this.#state.failure }
    else delete base.failure
    this.#outcomesSinceWrite.clear()
    this.#dirtyNodes.clear()
    this.#dirtyStatus = false
    this.#dirtyInput = false
    this.#dirtyFailure = false
    this.#dirtyPriorInputs = false
    this.#dirtyDeadline = false
    this.#history = []
    for (const id of Object.keys(change.clearCallbacks ?? {})) delete this.#state.callbacks?.[id]
  }
}
