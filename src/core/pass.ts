import type { CallbackTokens } from './callback-token.js'
import { arrivalFor, type CallbackWait, callbackWait, isWaiting, resolveCallback } from './callbacks.js'
import { assembleContext, splitContext } from './context-assembly.js'
import { END_NODE_ID, type NodeDefinition, ROOT_NODE_ID, type WorkflowDefinition } from './definition.js'
import { AttemptInterruptedError, ItemTooLargeError, PayloadTooLargeError, type ValidationError } from './errors.js'
import { entryMessage } from './history.js'
import { assertJsonValue, isJsonObject, type JsonObject, jsonSizeBytes } from './json.js'
import type { LeaseTimes } from './lease-sizing.js'
import type { Limits } from './limits.js'
import { MetricName, type Metrics } from './metrics.js'
import { CONTEXT_KEYS, type ExecutionHooks, NodeContext } from './node-context.js'
import { type Clock, type Logger, type Random, timerAt } from './ports.js'
import type { Worker } from './registry.js'
import { mergeRetryPolicy, nextDelayMs } from './retry-policy.js'
import { type InstanceStatus, isTerminalNodeStatus } from './statuses.js'
import type { HistoryEntry, InstanceChange, InstanceRecord, Lease, NodeRecord } from './store.js'
import { classifyWorkerError, errorMessage } from './worker-signals.js'

export { DEFAULT_LIMITS, type Limits } from './limits.js'

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
}

/** Where a pass ended: the state, what is not yet stored, and when the instance next needs attention. */
export interface PassOutcome {
  state: InstanceRecord
  /** Changes made since the last write; the leased operation stores them with the release. */
  change: InstanceChange
  dueAtMs: number | null
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
  /** The callback the worker asked for: its node waits for it. */
  callback?: CallbackWait
}

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
    history?: readonly HistoryEntry[]
  },
): Promise<PassOutcome> => {
  const pass = new Pass(deps, definition, initial, session, mode)
  pass.markDirty(pending?.nodes ?? [], pending?.status ?? false, pending?.input ?? false, pending?.failure ?? false)
  if (pending?.priorInputs) pass.markPriorInputsDirty()
  if (pending?.history) pass.addHistory(pending.history)
  return pass.run()
}

class Pass {
  readonly #state: InstanceRecord
  readonly #executed = new Set<string>()
  readonly #finished: string[] = []
  readonly #inFlight = new Map<string, { promise: Promise<StepOutcome>; context: NodeContext }>()
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
  /** History entries the node outcomes since the last write made (errors); node status entries are the session's. */
  #history: HistoryEntry[] = []

  constructor(
    readonly deps: PassDeps,
    readonly definition: WorkflowDefinition,
    initial: InstanceRecord,
    readonly session: PassSession,
    readonly mode: PassMode,
  ) {
    this.#state = structuredClone(initial)
    this.#base = structuredClone(initial)
  }

  addHistory(entries: readonly HistoryEntry[]): void {
    this.#history.push(...entries)
  }

  markPriorInputsDirty(): void {
    this.#dirtyPriorInputs = true
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

  async run(): Promise<PassOutcome> {
    const state = this.#state
    if (state.status === 'init' && state.startAtMs !== undefined && state.startAtMs > this.#now) {
      // A delayed start stays init until its time, whatever woke it.
      return this.#outcome(state.startAtMs)
    }
    if (state.status === 'init') this.#setStatus('running')
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
        const launches = this.#advance()
        // Every attempt is durable as started before its worker is called; the outcomes that led to it go along.
        if (launches.length || (this.#dirty() && this.#inFlight.size > 0)) {
          // A refused write is rebuilt without the outcome that made it too large; what was to launch is dropped.
          if (!(await this.#flushOrRecover())) continue
        }
        for (const launch of launches) this.#launch(launch.nodeId, launch.step)
        if (this.#inFlight.size === 0) break
        const first = await Promise.race([...[...this.#inFlight.values()].map((entry) => entry.promise), aborted])
        if (first === 'aborted') {
          this.#interruptInFlight()
          continue
        }
        this.#inFlight.delete(first.nodeId)
        this.#apply(first)
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

  #outcome(dueAtMs: number | null): PassOutcome {
    return {
      state: this.#state,
      change: this.#pendingChange(),
      dueAtMs,
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
        state.nodes[id] = structuredClone(stored)
      } else {
        delete state.nodes[id]
        this.#dirtyNodes.delete(id)
      }
    }
    for (const id of this.#outcomesSinceWrite.keys()) delete state.nodes[id]?.attemptStarted
    this.#outcomesSinceWrite.clear()
    this.#checkNext.clear()
    state.status = this.#base.status === 'init' ? 'running' : this.#base.status
    if (this.#base.failure) state.failure = structuredClone(this.#base.failure)
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
      this.#dirtyNodes.size > 0 || this.#dirtyStatus || this.#dirtyInput || this.#dirtyFailure || this.#dirtyPriorInputs
    )
  }

  #preds(node: NodeDefinition): boolean {
    return node.prev.every((prev) => prev === ROOT_NODE_ID || this.#state.nodes[prev]?.status === 'completed')
  }

  /** Attempts stored as started under an earlier lease never stored an outcome: each one counts as failed. */
  #accountInterruptedAttempts(): void {
    for (const node of this.definition.nodes) {
      const record = this.#state.nodes[node.id]
      const started = record?.attemptStarted
      if (!record || !started || started.fence >= this.session.lease.fence) continue
      delete record.attemptStarted
      this.#dirtyNodes.add(node.id)
      if (record.status !== 'running' && record.status !== 'pending') continue
      const error = new AttemptInterruptedError(
        `the attempt of ${started.step} started at epoch ms ${started.atMs} (lease fence ${started.fence}) ended ` +
          'without an outcome: its runner stopped, its worker hung past the lease, or the lease was lost',
      )
      this.#recordError(node, record, started.step, error)
    }
  }

  /** Nodes that can start an execution now. */
  #startable(): NodeDefinition[] {
    if (this.#state.status !== 'running' || this.#abort.signal.aborted) return []
    if (this.#now >= this.session.times.startDeadlineMs) return []
    return this.definition.nodes.filter((node) => {
      if (node.synthetic || this.#executed.has(node.id) || this.#inFlight.has(node.id)) return false
      const record = this.#state.nodes[node.id]
      if (!record || record.status === 'restarting') return this.#preds(node)
      if (isWaiting(record)) return false
      if (record.status === 'running' || record.status === 'pending') return this.#isDue(node, record)
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
    if (event && event.eventTs !== record.seenEventTs) return true
    return this.#deadlinePassed(node, record)
  }

  /**
   * Completes what needs no worker (finishing nodes, `end`), fails waiting nodes past their deadline without
   * calling them again, and marks every node to start now as started. Returns what to launch.
   */
  #advance(): { nodeId: string; step: 'run' | 'check' }[] {
    const state = this.#state
    if (state.status !== 'running') return []
    this.#settleCallbacks()
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (record?.status === 'finishing') {
        record.status = 'completed'
        record.updatedAtMs = this.#now
        this.#dirtyNodes.add(node.id)
        this.#markFinished(node.id)
      }
    }
    const end = this.definition.byId.get(END_NODE_ID)
    if (end && this.#preds(end)) {
      this.#setStatus('completed')
      this.#markFinished(END_NODE_ID)
      return []
    }
    const launches: { nodeId: string; step: 'run' | 'check' }[] = []
    for (const nodeId of this.#checkNext) {
      this.#checkNext.delete(nodeId)
      if (state.status !== 'running' || state.nodes[nodeId]?.status !== 'pending') continue
      launches.push({ nodeId, step: 'check' })
    }
    for (const node of this.#startable()) {
      const record = state.nodes[node.id]
      // A node that has waited past its deadline fails at it, unpolled: its last look already said "not yet".
      if (record && record.waits > 0 && this.#deadlinePassed(node, record)) {
        this.#executed.add(node.id)
        this.#timeOut(node, record, true)
        if (state.status !== 'running') return []
        continue
      }
      if (!record || record.status === 'restarting') this.#initialise(node, record)
      this.#executed.add(node.id)
      const current = state.nodes[node.id] as NodeRecord
      launches.push({ nodeId: node.id, step: current.status === 'pending' ? 'check' : 'run' })
    }
    const now = this.#now
    for (const launch of launches) {
      const record = state.nodes[launch.nodeId] as NodeRecord
      record.attemptStarted = { step: launch.step, atMs: now, fence: this.session.lease.fence }
      record.calls = (record.calls ?? 0) + 1
      this.#dirtyNodes.add(launch.nodeId)
    }
    return launches
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
        signal: this.#abort.signal,
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
        return { nodeId, step, context: nodeContext.toJSON(), error, failed: true }
      }
    }
    this.#inFlight.set(nodeId, { promise: call(), context: nodeContext })
  }

  /** The lease is about to end: every worker still running has its attempt counted as failed, now. */
  #interruptInFlight(): void {
    for (const [nodeId, entry] of [...this.#inFlight]) {
      this.#inFlight.delete(nodeId)
      const step = this.#state.nodes[nodeId]?.attemptStarted?.step ?? entry.context.info.step
      const error = new AttemptInterruptedError(
        `the worker's ${step} did not return before its lease ended; it was aborted and counts as a failed attempt`,
      )
      let context: JsonObject
      try {
        context = structuredClone(entry.context.toJSON())
      } catch {
        context = assembleContext(this.definition, this.#state, nodeId, this.#state.nodes[nodeId] as NodeRecord)
      }
      this.#apply({ nodeId, step, context, error, failed: true })
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
    if (hadEvent) record.seenEventTs = hadEvent.eventTs

    if (error === undefined) {
      if (record.status === 'canceled') return
      if (outcome.callback) {
        this.#awaitCallback(record, outcome.callback)
        return
      }
      this.#succeeded(node, record, outcome.step)
      return
    }
    this.#recordError(node, record, outcome.step, error, stored instanceof Error)
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
  #awaitCallback(record: NodeRecord, wait: CallbackWait): void {
    record.callback = wait
    record.waits = 0
    const resolution = resolveCallback(wait, undefined, this.#now)
    record.nextAttemptAtMs = resolution.kind === 'wait' ? resolution.untilMs : this.#now
  }

  /**
   * Resolves every open callback wait against what arrived for it: a completion is the outcome of the step that
   * asked for it (a failure, a timeout or a missed heartbeat a failed attempt, counted and retried by the node's
   * policy), a heartbeat moves the next look; the node is not called again in this pass.
   */
  #settleCallbacks(): void {
    const state = this.#state
    for (const node of this.definition.nodes) {
      const record = state.nodes[node.id]
      if (!record?.callback || !isWaiting(record)) continue
      const wait = record.callback
      const arrival = arrivalFor(record, state.callbacks?.[node.id])
      const resolution = resolveCallback(wait, arrival, this.#now)
      const step = record.status === 'pending' ? 'check' : 'run'
      if (resolution.kind === 'wait') {
        if (this.#deadlinePassed(node, record)) {
          this.#executed.add(node.id)
          record.callback = { ...wait, outcome: 'timeout' }
          this.#timeOut(node, record, true)
          continue
        }
        const heartbeat = resolution.heartbeatAtMs
        if (record.nextAttemptAtMs !== resolution.untilMs || heartbeat !== wait.heartbeatAtMs) {
          record.nextAttemptAtMs = resolution.untilMs
          if (heartbeat !== undefined) wait.heartbeatAtMs = heartbeat
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
        if (resolution.output !== undefined) record.output.callback_output = resolution.output
        this.#succeeded(node, record, step)
      } else {
        this.#recordError(node, record, step, resolution.error)
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
    const existing = record.output[CONTEXT_KEYS.system]
    const system: JsonObject = isJsonObject(existing) ? existing : {}
    record.output[CONTEXT_KEYS.system] = system
    system.last_error = errorMessage(error).slice(0, 2000)
    system.last_error_time = Math.floor(now / 1000)
    const fields = { instanceId: state.id, workflowType: state.workflowType, nodeId: node.id, step }
    if (signal.kind === 'not-ready') {
      if (record.status === 'canceled') return
      this.deps.logger.log('debug', 'node not ready', fields)
      this.#wait(node, record, signal.retryAfterSeconds, false)
      return
    }
    record.failCount += 1
    const errorClass = error instanceof Error ? error.name : typeof error
    this.#history.push({
      atMs: now,
      kind: 'error',
      nodeId: node.id,
      attempt: record.attempt,
      errorClass,
      message: entryMessage(String(system.last_error)),
    })
    this.deps.metrics?.add(MetricName.workerErrors, 1, 'Count', { workflowType: state.workflowType, errorClass })
    // The line's level is the error's severity: a BusinessWarningError (or a failure the node continues past) warns.
    const level = signal.kind === 'error' && signal.severity !== 'warning' ? 'error' : 'warn'
    this.deps.logger.log(level, signal.kind === 'failed-with-continue' ? 'node failed with continue' : 'node error', {
      ...fields,
      error: system.last_error,
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
      this.#failInstance(node, record, String(system.last_error))
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
    const size = jsonSizeBytes(split)
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
    if (instanceSize > limits.maxInstanceBytes) {
      return new PayloadTooLargeError(
        `instance would store ${instanceSize} bytes after node '${nodeId}', over the budget of ${limits.maxInstanceBytes}`,
        `nodes.${nodeId}.context`,
        instanceSize,
        limits.maxInstanceBytes,
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

  /** Reaching `max_wait_time_ts` fails the node for good, and counts as a failure however it was reached. */
  #timeOut(node: NodeDefinition, record: NodeRecord, count: boolean): void {
    const reason = `max_wait_time_ts exceeded: node waited more than ${node.maxWaitTimeSeconds} s since it was created`
    if (record.output[CONTEXT_KEYS.reason] === undefined) record.output[CONTEXT_KEYS.reason] = reason
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
    this.#failInstance(node, record, reason)
  }

  #failInstance(node: NodeDefinition, record: NodeRecord, reason: string): void {
    record.status = 'failed'
    delete record.nextAttemptAtMs
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

  #cancelOthers(except: string | undefined): void {
    for (const [id, other] of Object.entries(this.#state.nodes)) {
      if (id !== except && !isTerminalNodeStatus(other.status)) {
        other.status = 'canceled'
        other.updatedAtMs = this.#now
        delete other.nextAttemptAtMs
        this.#dirtyNodes.add(id)
      }
    }
  }

  /** Earliest time the instance needs a pass; null when it is terminal. A running instance always has one. */
  #computeDue(): number | null {
    const state = this.#state
    if (state.status !== 'running') return null
    const now = this.#now
    let due = Number.POSITIVE_INFINITY
    for (const node of this.definition.nodes) {
      if (node.synthetic) continue
      const record = state.nodes[node.id]
      if (!record || record.status === 'restarting') {
        if (this.#preds(node)) due = Math.min(due, now)
        continue
      }
      if (record.status === 'finishing') due = Math.min(due, now)
      if (record.status !== 'running' && record.status !== 'pending') continue
      due = Math.min(due, record.nextAttemptAtMs ?? now)
      if (isWaiting(record) && arrivalFor(record, state.callbacks?.[node.id])?.completion) due = now
      const event = state.events[node.id]
      if (event && event.eventTs !== record.seenEventTs) due = Math.min(due, now)
      if (node.maxWaitTimeSeconds > 0) due = Math.min(due, record.createdAtMs + node.maxWaitTimeSeconds * 1000 + 1)
    }
    if (due !== Number.POSITIVE_INFINITY) return Math.max(due, 0)
    // Nothing can ever run (a failed or canceled node blocks every path to `end`): fail it with the reason rather
    // than leave a running instance that waits for nothing.
    const blocking = Object.entries(state.nodes)
      .filter(([, record]) => record.status === 'failed' || record.status === 'canceled')
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
    if (this.#history.length) change.history = [...this.#history]
    const stale = [...this.#dirtyNodes].filter((id) => {
      const record = state.nodes[id]
      return (
        state.callbacks?.[id] !== undefined &&
        (!record || !isWaiting(record) || !arrivalFor(record, state.callbacks[id]))
      )
    })
    if (stale.length) change.clearCallbacks = stale
    return change
  }

  /** Writes the pending change; what it stored becomes the base a refused later write is rebuilt from. */
  async #flush(): Promise<void> {
    const change = this.#pendingChange()
    await this.session.write(change)
    const base = this.#base
    for (const id of this.#dirtyNodes) base.nodes[id] = structuredClone(this.#state.nodes[id] as NodeRecord)
    base.status = this.#state.status
    if (this.#state.failure) base.failure = structuredClone(this.#state.failure)
    else delete base.failure
    this.#outcomesSinceWrite.clear()
    this.#dirtyNodes.clear()
    this.#dirtyStatus = false
    this.#dirtyInput = false
    this.#dirtyFailure = false
    this.#dirtyPriorInputs = false
    this.#history = []
    for (const id of change.clearCallbacks ?? []) delete this.#state.callbacks?.[id]
  }
}
