import { END_NODE_ID, type NodeDefinition, ROOT_NODE_ID, type WorkflowDefinition } from './definition.js'
import { PayloadTooLargeError, type ValidationError } from './errors.js'
import { assertJsonValue, isJsonObject, type JsonObject, jsonSizeBytes } from './json.js'
import { CONTEXT_KEYS, NodeContext } from './node-context.js'
import { assembleContext, splitContext } from './node-contexts.js'
import type { Clock, Logger, Random } from './ports.js'
import type { Worker } from './registry.js'
import { mergeRetryPolicy, nextDelayMs } from './retry-policy.js'
import { type InstanceStatus, isTerminalNodeStatus } from './statuses.js'
import type { InstanceChange, InstanceRecord, InstanceStore, Lease, NodeRecord } from './store.js'
import { classifyWorkerError, errorMessage } from './worker-signals.js'

export interface Limits {
  /** Largest node context (as JSON) a worker may leave behind. */
  maxNodeContextBytes: number
  /** Largest instance input or event content. */
  maxInputBytes: number
  /** Budget for the whole stored instance, well below DynamoDB's 400 KB item limit. */
  maxInstanceBytes: number
  maxDepth: number
}

export const DEFAULT_LIMITS: Limits = {
  maxNodeContextBytes: 64 * 1024,
  maxInputBytes: 64 * 1024,
  maxInstanceBytes: 300 * 1024,
  maxDepth: 24,
}

/** `explicit`: every waiting node runs now. `due`: only nodes whose next attempt, event or deadline is due. */
export type PassMode = 'explicit' | 'due'

export interface PassResult {
  instanceId: string
  status: InstanceStatus
  /** Nodes whose worker was called (or that were completed) in this pass, in the order they finished. */
  executed: string[]
  /** When the instance next needs attention; null when idle or terminal. */
  dueAtMs: number | null
  /** An external event arrived during the pass; the instance was left due at once. */
  eventArrived: boolean
  /** Why nothing ran: the instance is terminal, or (in a due pass) nothing is due. */
  skipped?: 'terminal' | 'not-due'
}

export interface PassDeps {
  store: InstanceStore
  clock: Clock
  random: Random
  logger: Logger
  limits: Limits
  worker(workflowType: string, nodeId: string): Worker | undefined
}

type StepOutcome = { nodeId: string; step: 'run' | 'check'; context: JsonObject; error?: unknown; failed: boolean }

/**
 * One pass over an instance held under `lease`: advance every node that can advance now, persisting each node's
 * outcome before its successors start, and release the lease with the instance's next due time.
 */
export const runPass = async (
  deps: PassDeps,
  definition: WorkflowDefinition,
  initial: InstanceRecord,
  lease: Lease,
  mode: PassMode,
  deadlineMs: number,
  /** Changes already made to `initial` under this lease that the pass must store with its first write. */
  pending?: { nodes: readonly string[]; status: boolean; input?: boolean },
): Promise<PassResult> => {
  const pass = new Pass(deps, definition, initial, lease, mode, deadlineMs)
  pass.markDirty(pending?.nodes ?? [], pending?.status ?? false, pending?.input ?? false)
  return pass.run()
}

class Pass {
  readonly #state: InstanceRecord
  readonly #executed = new Set<string>()
  readonly #finished: string[] = []
  readonly #inFlight = new Map<string, Promise<StepOutcome>>()
  readonly #dirtyNodes = new Set<string>()
  #dirtyStatus = false
  #dirtyInput = false

  constructor(
    readonly deps: PassDeps,
    readonly definition: WorkflowDefinition,
    initial: InstanceRecord,
    readonly lease: Lease,
    readonly mode: PassMode,
    readonly deadlineMs: number,
  ) {
    this.#state = structuredClone(initial)
  }

  markDirty(nodes: readonly string[], status: boolean, input: boolean): void {
    for (const id of nodes) this.#dirtyNodes.add(id)
    if (status) this.#dirtyStatus = true
    if (input) this.#dirtyInput = true
  }

  get #now(): number {
    return this.deps.clock.nowMs()
  }

  async run(): Promise<PassResult> {
    const state = this.#state
    if (state.status === 'init') this.#setStatus('running')
    try {
      for (;;) {
        this.#advance()
        if (this.#inFlight.size === 0) break
        const outcome = await Promise.race(this.#inFlight.values())
        this.#inFlight.delete(outcome.nodeId)
        const checkNext = this.#apply(outcome)
        if (checkNext) {
          // `run` succeeded: make `pending` durable before calling `check`, so `run` is never repeated.
          await this.#write(false)
          this.#launch(outcome.nodeId, 'check')
          continue
        }
        // Successors start only after this outcome is durable: a crash never repeats a completed node.
        if (this.#inFlight.size > 0 || this.#startable().length > 0) await this.#write(false)
      }
    } catch (error) {
      await Promise.allSettled(this.#inFlight.values())
      throw error
    }
    const dueAtMs = this.#computeDue()
    const { eventSeq } = await this.#write(true, dueAtMs)
    const eventArrived = eventSeq !== state.eventSeq && state.status !== 'completed' && state.status !== 'failed'
    if (eventArrived) await this.deps.store.markDue(state.id, this.#now)
    return {
      instanceId: state.id,
      status: state.status,
      executed: this.#finished,
      dueAtMs: eventArrived ? this.#now : dueAtMs,
      eventArrived,
    }
  }

  #setStatus(status: InstanceStatus): void {
    this.#state.status = status
    this.#dirtyStatus = true
  }

  #preds(node: NodeDefinition): boolean {
    return node.prev.every((prev) => prev === ROOT_NODE_ID || this.#state.nodes[prev]?.status === 'completed')
  }

  /** Nodes that can start an execution now. */
  #startable(): NodeDefinition[] {
    if (this.#state.status !== 'running' || this.#now >= this.deadlineMs) return []
    return this.definition.nodes.filter((node) => {
      if (node.synthetic || this.#executed.has(node.id) || this.#inFlight.has(node.id)) return false
      const record = this.#state.nodes[node.id]
      if (!record || record.status === 'restarting') return this.#preds(node)
      if (record.status === 'running' || record.status === 'pending') return this.#isDue(node, record)
      return false
    })
  }

  #isDue(node: NodeDefinition, record: NodeRecord): boolean {
    if (this.mode === 'explicit') return true
    const now = this.#now
    if (record.nextAttemptAtMs === undefined || record.nextAttemptAtMs <= now) return true
    const event = this.#state.events[node.id]
    if (event && event.eventTs !== record.seenEventTs) return true
    return node.maxWaitTimeSeconds > 0 && now > record.createdAtMs + node.maxWaitTimeSeconds * 1000
  }

  /** Completes what needs no worker (finishing nodes, `end`), then starts every startable node. */
  #advance(): void {
    const state = this.#state
    if (state.status !== 'running') return
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
      return
    }
    for (const node of this.#startable()) {
      const record = state.nodes[node.id]
      if (!record || record.status === 'restarting') this.#initialise(node, record)
      this.#executed.add(node.id)
      const current = state.nodes[node.id] as NodeRecord
      this.#launch(node.id, current.status === 'pending' ? 'check' : 'run')
    }
  }

  #markFinished(nodeId: string): void {
    if (!this.#finished.includes(nodeId)) this.#finished.push(nodeId)
  }

  /** Creates a node (all predecessors completed) or re-initialises a restarting one with a fresh context. */
  #initialise(node: NodeDefinition, previous: NodeRecord | undefined): void {
    const now = this.#now
    const reset = previous === undefined || previous.resetOnRestart === true
    this.#state.nodes[node.id] = {
      status: 'running',
      failCount: reset ? 0 : previous.failCount,
      createdAtMs: reset ? now : previous.createdAtMs,
      updatedAtMs: now,
      attempt: (previous?.attempt ?? 0) + 1,
      waits: 0,
      output: {},
    }
    this.#dirtyNodes.add(node.id)
  }

  #launch(nodeId: string, step: 'run' | 'check'): void {
    const state = this.#state
    const record = state.nodes[nodeId] as NodeRecord
    const context = assembleContext(this.definition, state, nodeId, record)
    const worker = this.deps.worker(state.workflowType, nodeId)
    const nodeContext = new NodeContext(context, {
      instanceId: state.id,
      workflowType: state.workflowType,
      nodeId,
      businessId: state.businessId,
      attempt: record.attempt,
      idempotencyKey: `${state.id}:${nodeId}:${record.attempt}`,
      step,
    })
    const call = async (): Promise<StepOutcome> => {
      try {
        if (!worker) throw new Error(`no worker is registered for '${state.workflowType}.${nodeId}'`)
        const fn = step === 'run' ? worker.run : worker.check
        if (fn) await fn(nodeContext)
        return { nodeId, step, context: nodeContext.toJSON(), failed: false }
      } catch (error) {
        return { nodeId, step, context: nodeContext.toJSON(), error, failed: true }
      }
    }
    this.#inFlight.set(nodeId, call())
  }

  /** Applies a worker's outcome to the node; returns true when `check` should be called next. */
  #apply(outcome: StepOutcome): boolean {
    const state = this.#state
    const node = this.definition.byId.get(outcome.nodeId) as NodeDefinition
    const record = state.nodes[outcome.nodeId] as NodeRecord
    const now = this.#now
    this.#dirtyNodes.add(node.id)
    this.#markFinished(node.id)
    let error: unknown = outcome.failed ? outcome.error : undefined
    let context = outcome.context
    const stored = this.#checkContext(node.id, context)
    if (stored instanceof Error) {
      // The worker's context cannot be stored: keep the context it started with and fail the node for good.
      context = assembleContext(this.definition, state, node.id, record)
      error = stored
    }
    const hadEvent = state.events[node.id]
    Object.assign(record, splitContext(this.definition, state, node.id, context))
    if (record.workflowContext === undefined) delete record.workflowContext
    if (record.preNodeContext === undefined) delete record.preNodeContext
    record.updatedAtMs = now
    if (hadEvent) record.seenEventTs = hadEvent.eventTs
    if (record.status === 'canceled') return false

    if (!outcome.failed && !(stored instanceof Error)) {
      record.waits = 0
      delete record.nextAttemptAtMs
      const worker = this.deps.worker(state.workflowType, node.id)
      if (outcome.step === 'run' && worker?.check) {
        record.status = 'pending'
        return true
      }
      record.status = 'completed'
      return false
    }

    const signal = stored instanceof Error ? ({ kind: 'failed-with-failed' } as const) : classifyWorkerError(error)
    const existing = record.output[CONTEXT_KEYS.system]
    const system: JsonObject = isJsonObject(existing) ? existing : {}
    record.output[CONTEXT_KEYS.system] = system
    system.last_error = errorMessage(error).slice(0, 2000)
    system.last_error_time = Math.floor(now / 1000)
    const fields = { instanceId: state.id, workflowType: state.workflowType, nodeId: node.id, step: outcome.step }
    if (signal.kind === 'not-ready') {
      this.deps.logger.log('debug', 'node not ready', fields)
      this.#wait(node, record, signal.retryAfterSeconds)
      return false
    }
    record.failCount += 1
    if (signal.kind === 'failed-with-continue') {
      this.deps.logger.log('warn', 'node failed with continue', { ...fields, error: system.last_error })
      record.status = 'completed'
      record.waits = 0
      delete record.nextAttemptAtMs
      return false
    }
    const level = signal.kind === 'error' && signal.severity === 'critical' ? 'error' : 'warn'
    this.deps.logger.log(level, 'node error', {
      ...fields,
      error: system.last_error,
      failCount: record.failCount,
      ...(signal.kind === 'error' ? { severity: signal.severity } : {}),
    })
    if (signal.kind === 'failed-with-failed' || (node.failMaxCount > 0 && record.failCount >= node.failMaxCount)) {
      this.#failInstance(node, record)
      return false
    }
    this.#wait(node, record, undefined)
    return false
  }

  /** Validates a worker's context: JSON only, no forbidden keys, within the size budgets. */
  #checkContext(nodeId: string, context: JsonObject): Error | undefined {
    const limits = this.deps.limits
    try {
      assertJsonValue(context, `nodes.${nodeId}.context`, limits)
    } catch (error) {
      return error as ValidationError
    }
    const size = jsonSizeBytes(context)
    if (size > limits.maxNodeContextBytes) {
      return new PayloadTooLargeError(
        `context of node '${nodeId}' is ${size} bytes, over the limit of ${limits.maxNodeContextBytes}`,
        `nodes.${nodeId}.context`,
        size,
        limits.maxNodeContextBytes,
      )
    }
    const projected = { ...this.#state, nodes: { ...this.#state.nodes, [nodeId]: { output: context } } }
    const instanceSize = jsonSizeBytes(projected)
    if (instanceSize > limits.maxInstanceBytes) {
      return new PayloadTooLargeError(
        `instance would be ${instanceSize} bytes after node '${nodeId}', over the budget of ${limits.maxInstanceBytes}`,
        `nodes.${nodeId}.context`,
        instanceSize,
        limits.maxInstanceBytes,
      )
    }
    return undefined
  }

  /** Leaves the node waiting with its next attempt time, or fails it when its max wait time is exceeded. */
  #wait(node: NodeDefinition, record: NodeRecord, retryAfterSeconds: number | undefined): void {
    const now = this.#now
    if (node.maxWaitTimeSeconds > 0 && now - record.createdAtMs > node.maxWaitTimeSeconds * 1000) {
      if (record.output[CONTEXT_KEYS.reason] === undefined) {
        record.output[CONTEXT_KEYS.reason] =
          `max_wait_time_ts exceeded: node waited more than ${node.maxWaitTimeSeconds} s since it was created`
      }
      this.#failInstance(node, record)
      return
    }
    record.waits += 1
    const policy = mergeRetryPolicy(this.definition.retry, node.retry)
    record.nextAttemptAtMs = now + nextDelayMs(policy, record.waits, this.deps.random.next(), retryAfterSeconds)
  }

  #failInstance(node: NodeDefinition, record: NodeRecord): void {
    record.status = 'failed'
    delete record.nextAttemptAtMs
    this.#setStatus('failed')
    for (const [id, other] of Object.entries(this.#state.nodes)) {
      if (id !== node.id && !isTerminalNodeStatus(other.status)) {
        other.status = 'canceled'
        other.updatedAtMs = this.#now
        delete other.nextAttemptAtMs
        this.#dirtyNodes.add(id)
      }
    }
    this.deps.logger.log('warn', 'workflow instance failed', {
      instanceId: this.#state.id,
      workflowType: this.#state.workflowType,
      nodeId: node.id,
    })
  }

  /** Earliest time the instance needs a pass; null when it is terminal or nothing waits. */
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
      const event = state.events[node.id]
      if (event && event.eventTs !== record.seenEventTs) due = Math.min(due, now)
      if (node.maxWaitTimeSeconds > 0) due = Math.min(due, record.createdAtMs + node.maxWaitTimeSeconds * 1000 + 1)
    }
    if (due === Number.POSITIVE_INFINITY) return null
    return Math.max(due, 0)
  }

  async #write(release: boolean, dueAtMs?: number | null): Promise<{ eventSeq: number }> {
    const state = this.#state
    const change: InstanceChange = { updatedAtMs: this.#now }
    if (this.#dirtyNodes.size) {
      change.nodes = {}
      for (const id of this.#dirtyNodes) change.nodes[id] = state.nodes[id] as NodeRecord
    }
    if (this.#dirtyStatus) change.status = state.status
    if (this.#dirtyInput) change.input = state.input
    if (release) {
      change.release = true
      change.dueAtMs = dueAtMs ?? null
    }
    if (!release && !change.nodes && !change.status && !change.input) return { eventSeq: state.eventSeq }
    const result = await this.deps.store.writeUnderLease(this.lease, change)
    this.#dirtyNodes.clear()
    this.#dirtyStatus = false
    this.#dirtyInput = false
    return result
  }
}
