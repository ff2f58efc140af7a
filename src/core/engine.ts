import type { z } from 'zod'
import {
  type AddNodeEventParams,
  addNodeEventParamsSchema,
  type CancelParams,
  type CountParams,
  type CreateParams,
  cancelParamsSchema,
  countParamsSchema,
  createParamsSchema,
  instanceIdSchema,
  type ListParams,
  listParamsSchema,
  type PutScheduleParams,
  putScheduleParamsSchema,
  type RestartInstanceParams,
  type RestartNodeParams,
  type RunParams,
  restartInstanceParamsSchema,
  restartNodeParamsSchema,
  runParamsSchema,
  scheduleNameSchema,
} from '../schemas/engine-params.js'
import {
  type InstanceStatus,
  isTerminalInstanceStatus,
  isTerminalNodeStatus,
  type NodeStatus,
} from '../schemas/statuses.js'
import { summarizeIssues } from '../schemas/zod-issues.js'
import type { WorkflowModule } from './builder.js'
import { assembleContext } from './context-assembly.js'
import { descendantsOf, END_NODE_ID, hash53, ROOT_NODE_ID, type WorkflowDefinition } from './definition.js'
import type {
  RecurringSchedule,
  RecurringScheduler,
  RunQueue,
  ScheduleView,
  WakeupScheduler,
} from './dispatch-ports.js'
import {
  DefinitionError,
  IdempotencyConflictError,
  IllegalStateError,
  InstanceNotFoundError,
  ItemTooLargeError,
  LeaseLostError,
  LockConflictError,
  NodeNotFoundError,
  NotConfiguredError,
  PayloadTooLargeError,
  RegistrationError,
  ScheduleNotFoundError,
  ValidationError,
} from './errors.js'
import { eventRefusal } from './event-rules.js'
import { assertJsonValue, isJsonObject, type JsonObject, type JsonValue, jsonSizeBytes } from './json.js'
import { LeasedOperations, type LeaseSession, type Released } from './leased-operation.js'
import { eventStoredBytes, instanceStoredBytes, validateLimits } from './limits.js'
import { MetricName, type Metrics, noMetrics } from './metrics.js'
import { DEFAULT_LIMITS, type Limits, type PassMode, type PassOutcome, type PassResult, runPass } from './pass.js'
import { type Clock, type IdGenerator, type Logger, type Random, silentLogger } from './ports.js'
import { Registry, type Worker } from './registry.js'
import {
  type CountQuery,
  type CountResult,
  EventReplacedError,
  type FailureSummary,
  type HistoryEntry,
  type HistoryPage,
  type InstanceChange,
  InstanceExistsError,
  type InstanceRecord,
  type InstanceState,
  type InstanceStatusView,
  type InstanceStore,
  type Lease,
  type ListPage,
  type NodeEventRecord,
  type NodeRecord,
  type ParkedState,
} from './store.js'
import { Wakeups } from './wakeups.js'

export interface EngineDeps {
  store: InstanceStore
  /** Where wake-ups within 15 minutes go (delayed run messages); without it, only the tick finds due work. */
  queue?: RunQueue
  /** Where later wake-ups go (one-time schedules). */
  scheduler?: WakeupScheduler
  /** Recurring starts (cron/rate schedules). */
  recurring?: RecurringScheduler
  clock: Clock
  ids: IdGenerator
  random: Random
  logger?: Logger
  /** What the engine counts (passes, nodes, worker errors, lease conflicts); nothing by default. */
  metrics?: Metrics
  limits?: Partial<Limits>
  /** Time a pass gives its workers when the caller gives no remaining time (outside Lambda). */
  defaultLeaseMs?: number
  /**
   * Added to the lease beyond the workers' time: after aborting them, the pass has this long to store what happened,
   * so a lease never ends while its holder can still write.
   */
  leaseGraceMs?: number
  /**
   * Days a finished (completed, failed, canceled) instance is kept before the table's TTL deletes it (default 30);
   * 0 keeps finished instances for ever.
   */
  retentionDays?: number
  /**
   * Keep each instance's history (default true). Entries travel in writes the engine makes anyway, but they make the
   * instance item larger: about 0.4 WCU per node step for a small 5-node workflow (README, "History"). `false`
   * records nothing and `history()` answers only what was recorded before.
   */
  history?: boolean
}

export const DEFAULT_RETENTION_DAYS = 30

const validRetentionDays = (days: number): number => {
  if (!Number.isSafeInteger(days) || days < 0 || days > 36_500) {
    throw new ValidationError(
      `retentionDays is ${String(days)}: it must be a whole number of days from 0 (keep for ever) to 36500`,
      'retentionDays',
    )
  }
  return days
}

/** Why a pass cannot run here, as a parked code; undefined for errors a retry may cure. */
const parkCode = (error: unknown): string | undefined => {
  if (error instanceof RegistrationError) return 'WORKER_MISSING'
  if (error instanceof DefinitionError) return 'DEFINITION_MISSING'
  return undefined
}

export interface CreateResult {
  instanceId: string
  status: InstanceStatus
  /** False when an idempotent create found the same request already stored. */
  created: boolean
  pass?: PassResult
}

export interface NodeDetail {
  id: string
  name: string
  status: NodeStatus
  predecessors: readonly string[]
  successors: readonly string[]
  failCount: number
  /** 1 + restarts of the node: part of the idempotency key. */
  attempt: number
  /** Worker calls started (run and check) over the node's life. */
  calls: number
  /** The attempt in flight (stored before its worker was called), if any. */
  attemptStartedAtMs?: number
  attemptStep?: 'run' | 'check'
  /** When `max_wait_time_ts` fails the node, for a node still waiting. */
  deadlineAtMs?: number
  createdAtMs?: number
  updatedAtMs?: number
  nextAttemptAtMs?: number
  /** The node's context; absent for nodes that have not started. */
  context?: JsonObject
}

/** The most index entries a count reads. */
export const COUNT_READ_LIMIT = 10_000

export interface InstanceDetail {
  id: string
  workflowType: string
  businessId?: string
  status: InstanceStatus
  context: JsonObject
  createdAtMs: number
  updatedAtMs: number
  definitionVersion: string
  dueAtMs?: number
  /** A delayed start: the instance stays init until then. */
  startAtMs?: number
  /** Present when the instance cannot run until it is fixed and restarted. */
  parked?: ParkedState
  /** Why a failed instance failed. */
  failure?: FailureSummary
  lease?: { owner: string; untilMs: number }
  /** Every node of the definition in definition order: `root`, the config's nodes, `end`. */
  nodes: NodeDetail[]
}

export interface OperationResult {
  instanceId: string
  status: InstanceStatus
  /** False when the operation found nothing to change (a second cancel). */
  changed: boolean
  pass?: PassResult
}

type PendingChanges = {
  nodes: readonly string[]
  status: boolean
  input?: boolean
  failure?: boolean
  priorInputs?: boolean
  /** Entries of the operation (a restart) that the first write stores. */
  history?: HistoryEntry[]
}

/** Parses operation parameters; the first problem becomes a ValidationError naming its field. */
const parse = <S extends z.ZodType>(schema: S, input: unknown): z.output<S> => {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const { field, message, issues } = summarizeIssues(result.error, { root: 'params', unknownKey: 'parameter' })
  throw new ValidationError(`${field}: ${message}`, field, { issues })
}

const stableStringify = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stableStringify((value as Record<string, unknown>)[key])}`)
      .join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/**
 * The workflow engine: registries, operations and passes over instances kept in an InstanceStore.
 * Create one per process (per Lambda cold start) and register every workflow before use.
 */
export class Engine {
  readonly #registry = new Registry()
  readonly limits: Limits
  readonly #store: InstanceStore
  readonly #clock: Clock
  readonly #ids: IdGenerator
  readonly #random: Random
  readonly #logger: Logger
  readonly #metrics: Metrics
  readonly #leases: LeasedOperations
  readonly #recordsHistory: boolean
  readonly #storedDefinitions = new Map<string, Promise<void>>()
  readonly #snapshots = new Map<string, WorkflowDefinition>()
  readonly #wakeups: Wakeups
  readonly #recurring: RecurringScheduler | undefined

  constructor(deps: EngineDeps) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#ids = deps.ids
    this.#random = deps.random
    this.#logger = deps.logger ?? silentLogger
    this.#metrics = deps.metrics ?? noMetrics
    this.limits = validateLimits({ ...DEFAULT_LIMITS, ...deps.limits })
    this.#wakeups = new Wakeups(deps.queue, deps.scheduler, this.#logger)
    this.#leases = new LeasedOperations({
      store: this.#store,
      clock: this.#clock,
      ids: this.#ids,
      logger: this.#logger,
      metrics: this.#metrics,
      wakeups: this.#wakeups,
      sizing: { defaultSpanMs: deps.defaultLeaseMs ?? 60_000, graceMs: deps.leaseGraceMs ?? 5_000 },
      maxInstanceBytes: this.limits.maxInstanceBytes,
      retentionDays: validRetentionDays(deps.retentionDays ?? DEFAULT_RETENTION_DAYS),
      history: deps.history !== false,
    })
    this.#recordsHistory = deps.history !== false
    this.#recurring = deps.recurring
  }

  // ---- registration ------------------------------------------------------------------------------------------

  /** Registers a workflow from a JSON config (the simple-workflow shape); workers are registered separately. */
  registerWorkflow(config: unknown): WorkflowDefinition {
    return this.#registry.registerDefinition(config)
  }

  registerWorker(workflowType: string, nodeId: string, worker: Worker): void {
    this.#registry.registerWorker(workflowType, nodeId, worker)
  }

  /** Registers a workflow defined with `defineWorkflow`, with its workers. */
  register(module: WorkflowModule): WorkflowDefinition {
    const definition = this.#registry.registerDefinition(module.config)
    for (const [nodeId, worker] of Object.entries<Worker>(module.workers)) {
      this.#registry.registerWorker(definition.type, nodeId, worker)
    }
    this.#registry.definition(definition.type)
    return definition
  }

  /** Every registered workflow type's current definition. */
  workflowTypes(): WorkflowDefinition[] {
    return this.#registry.definitions()
  }

  /** A registered type's current definition; WorkflowTypeNotFoundError when it is not registered. */
  workflowType(workflowType: string): WorkflowDefinition {
    return this.#registry.definition(workflowType)
  }

  /** Whether a node of a registered type has an asynchronous `check`. */
  hasCheck(workflowType: string, nodeId: string): boolean {
    return this.#registry.worker(workflowType, nodeId)?.check !== undefined
  }

  // ---- operations -------------------------------------------------------------------------------------------

  async create(params: CreateParams): Promise<CreateResult> {
    const p = parse(createParamsSchema, params)
    const definition = this.#registry.definition(p.workflowType)
    const input = this.#checkInput(p.context ?? {}, 'context')
    const now = this.#clock.nowMs()
    const id = p.id ?? this.#ids.newInstanceId()
    const record: InstanceRecord = {
      id,
      workflowType: definition.type,
      status: 'init',
      input,
      createdAtMs: now,
      updatedAtMs: now,
      definitionVersion: definition.version,
      nodes: {},
      events: {},
      eventSeq: 0,
      fence: 0,
      ...(this.#recordsHistory ? { history: [{ atMs: now, kind: 'created', origin: p.origin ?? 'engine' }] } : {}),
    }
    if (p.businessId !== undefined) record.businessId = p.businessId
    if (p.id !== undefined) {
      record.requestHash = hash53(
        stableStringify({
          type: definition.type,
          businessId: p.businessId ?? null,
          input,
          startAtMs: p.startAtMs ?? null,
        }),
      )
    }
    const put = async (stored: InstanceRecord, lease?: Lease): Promise<void> => {
      try {
        await this.#store.createInstance(stored, lease)
      } catch (error) {
        if (!(error instanceof InstanceExistsError)) throw error
        const existing = error.existing
        // This very create stored it (the SDK retried a put whose answer was lost): same creation time and, for a
        // client-chosen id, the same request; with run, our own lease (owners are unique per call).
        const ownRetry =
          existing.createdAtMs === stored.createdAtMs &&
          (p.id === undefined || existing.requestHash === stored.requestHash) &&
          (lease === undefined || (existing.leaseOwner === lease.owner && existing.fence === lease.fence))
        if (!ownRetry) throw error
      }
    }
    const replay = (error: unknown): CreateResult => {
      if (!(error instanceof InstanceExistsError)) throw error
      if (p.id === undefined || error.existing.requestHash !== record.requestHash)
        throw new IdempotencyConflictError(id)
      return { instanceId: id, status: error.existing.status, created: false }
    }
    const created = () =>
      this.#logger.log('info', 'workflow instance created', { instanceId: id, workflowType: definition.type })

    if (p.run === false) {
      record.dueAtMs = p.startAtMs ?? now
      if (p.startAtMs !== undefined && p.startAtMs > now) record.startAtMs = p.startAtMs
      try {
        await put(record)
      } catch (error) {
        return replay(error)
      }
      // Stored after the instance, so that a refused create stores nothing; the snapshot only matters once a later
      // deployment changes the definition, and any create of this version stores it again.
      await this.#storeDefinition(definition)
      created()
      await this.#wakeups.plan(id, record.dueAtMs, now)
      return { instanceId: id, status: 'init', created: true }
    }

    // Created running, and stored by the pass's first write together with the first attempts it starts.
    record.status = 'running'
    const session = this.#leases.unborn(record, this.#leases.times(p.remainingTimeMs), {
      put,
      onStored: async () => {
        await this.#storeDefinition(definition)
        created()
      },
    })
    try {
      const pass = await session.hold(() => this.#pass(session, 'explicit'))
      return { instanceId: id, status: pass.status, created: true, pass }
    } catch (error) {
      if (!session.stored) return replay(error)
      // The instance is stored and another runner took it over: the caller must learn its id, not a conflict.
      if (error instanceof LeaseLostError) {
        const current = await this.#store.getInstance(id)
        return { instanceId: id, status: current?.status ?? 'running', created: true }
      }
      throw error
    }
  }

  /**
   * One pass over the instance. `explicit` (default) executes every waiting node now; `due` only what is due
   * (the tick's and wake-ups' mode). A terminal instance is left unchanged and its status returned.
   */
  async runWorkflow(instanceId: string, options: Omit<RunParams, 'instanceId'> = {}): Promise<PassResult> {
    const p = parse(runParamsSchema, { ...options, instanceId })
    const mode = p.mode ?? 'explicit'
    const acquired = await this.#leases.acquire({
      instanceId: p.instanceId,
      remainingTimeMs: p.remainingTimeMs,
      dueOnly: mode === 'due',
    })
    if (acquired.kind !== 'held') {
      const { record } = acquired
      const skipped = acquired.kind === 'terminal' ? 'terminal' : record.parked ? 'parked' : 'not-due'
      return {
        instanceId: p.instanceId,
        workflowType: record.workflowType,
        status: record.status,
        executed: [],
        dueAtMs: acquired.kind === 'terminal' ? null : (record.dueAtMs ?? null),
        eventArrived: false,
        skipped,
        ...(record.parked ? { parked: { code: record.parked.code, reason: record.parked.reason } } : {}),
      }
    }
    const { session } = acquired
    return session.hold(() => this.#pass(session, mode))
  }

  /**
   * Stores an external event for a node (`node_event {event_content, event_ts}`) without waiting for the lease.
   * An older `eventTs` than the stored one is rejected; an equal one overwrites. The instance becomes due at once.
   */
  async addNodeEvent(
    params: AddNodeEventParams,
  ): Promise<{ instanceId: string; nodeId: string; eventTs: number; dueAtMs: number }> {
    const p = parse(addNodeEventParamsSchema, params)
    const content = this.#checkJson(p.content ?? null, 'content')
    // The size is guarded in the write itself (see EventGuard): a concurrent replacement of the same node's event
    // makes it read again, at most a few times.
    for (let attempt = 1; ; attempt++) {
      const record = await this.#mustGet(p.instanceId)
      const definition = await this.#definitionFor(record, false)
      const node = definition.byId.get(p.nodeId)
      if (!node || node.synthetic) throw new NodeNotFoundError(record.workflowType, p.nodeId)
      const refusal = eventRefusal(record, p.nodeId, p)
      if (refusal) throw refusal
      const now = this.#clock.nowMs()
      const event: NodeEventRecord = { eventTs: p.eventTs, content, receivedAtMs: now }
      const replaces = record.events[p.nodeId] ?? null
      const guard = {
        replaces,
        addBytes: eventStoredBytes(p.nodeId, event) - eventStoredBytes(p.nodeId, replaces ?? undefined),
        baseBytes: record.storedBytes ?? instanceStoredBytes(record),
        maxBytes: this.limits.maxInstanceBytes,
      }
      // An item stored without a total has none to condition on: its first write is checked against this read.
      if (record.storedBytes === undefined && guard.addBytes > 0 && guard.baseBytes + guard.addBytes > guard.maxBytes) {
        throw new PayloadTooLargeError(
          `content would make the instance store ${guard.baseBytes + guard.addBytes} bytes, over its budget of ${guard.maxBytes}`,
          'content',
          guard.baseBytes + guard.addBytes,
          guard.maxBytes,
        )
      }
      // Replacing an event no pass has seen yet: the history marks the replaced one superseded.
      const seen = record.nodes[p.nodeId]?.seenEventTs
      const entry: HistoryEntry = { atMs: now, kind: 'event', nodeId: p.nodeId, eventTs: p.eventTs }
      if (replaces && (seen === undefined || seen < replaces.eventTs)) entry.replacesTs = replaces.eventTs
      entry.origin = p.origin ?? 'engine'
      try {
        await this.#store.putEvent(record.id, p.nodeId, event, now, guard, this.#recordsHistory ? entry : undefined)
      } catch (error) {
        if (error instanceof EventReplacedError && attempt < 5) continue
        if (error instanceof EventReplacedError) throw new LockConflictError(record.id, undefined)
        throw error
      }
      await this.#wakeups.plan(record.id, now, now)
      return { instanceId: record.id, nodeId: p.nodeId, eventTs: p.eventTs, dueAtMs: now }
    }
  }

  /**
   * Restarts a node and all its descendants (they become `restarting` and are re-initialised when their
   * predecessors are completed). On a terminal instance only with `force`, which puts the instance back to running.
   * Refused when a failed or canceled node would still block the way to `end`.
   */
  async restartNode(params: RestartNodeParams): Promise<OperationResult> {
    const p = parse(restartNodeParamsSchema, params)
    if (p.nodeId === ROOT_NODE_ID || p.nodeId === END_NODE_ID) {
      throw new ValidationError(`node '${p.nodeId}' is synthetic and cannot be restarted`, 'nodeId')
    }
    const check = async (record: InstanceRecord): Promise<{ definition: WorkflowDefinition; changed: string[] }> => {
      const definition = await this.#restartableDefinition(record)
      if (!definition.byId.has(p.nodeId)) throw new NodeNotFoundError(record.workflowType, p.nodeId)
      if (isTerminalInstanceStatus(record.status) && !p.force) {
        throw new IllegalStateError(
          `workflow instance '${record.id}' is ${record.status}: restarting a node needs force`,
          { instanceId: record.id, status: record.status },
        )
      }
      if (!record.nodes[p.nodeId]) {
        throw new IllegalStateError(`node '${p.nodeId}' has not started: there is nothing to restart`, {
          instanceId: record.id,
          nodeId: p.nodeId,
        })
      }
      const changed = descendantsOf(definition, p.nodeId).filter((id) => record.nodes[id])
      const blocking = Object.entries(record.nodes)
        .filter(([id, node]) => !changed.includes(id) && (node.status === 'failed' || node.status === 'canceled'))
        .map(([id, node]) => `'${id}' (${node.status})`)
      if (blocking.length) {
        throw new IllegalStateError(
          `restarting node '${p.nodeId}' leaves ${blocking.join(', ')} blocking the way to the end: the instance ` +
            'could never complete; restart that node too, or restart the instance',
          { instanceId: record.id, nodeId: p.nodeId, blocking },
        )
      }
      return { definition, changed }
    }
    const read = await this.#mustGet(p.instanceId)
    await check(read)
    return this.#operate(read, p.remainingTimeMs, async (session) => {
      const record = structuredClone(session.record)
      const { definition, changed } = await check(record)
      const now = this.#clock.nowMs()
      for (const id of changed) this.#markRestarting(record.nodes[id] as NodeRecord, now, p.resetCounters === true)
      const statusChanged = record.status !== 'running'
      record.status = 'running'
      delete record.failure
      const entry: HistoryEntry = { atMs: now, kind: 'restart', nodeId: p.nodeId, origin: p.origin ?? 'engine' }
      return this.#finishRestart(
        session,
        definition,
        record,
        { nodes: changed, status: statusChanged, failure: true, history: [entry] },
        p.run,
      )
    })
  }

  /**
   * Restarts a failed or canceled instance (or one parked with a reason): its failed and canceled nodes become
   * `restarting`. `context` replaces the instance input (nodes already completed keep the input they ran with).
   */
  async restartInstance(params: RestartInstanceParams): Promise<OperationResult> {
    const p = parse(restartInstanceParamsSchema, params)
    const newInput = p.context === undefined ? undefined : this.#checkInput(p.context, 'context')
    const check = async (record: InstanceRecord): Promise<WorkflowDefinition> => {
      if (record.status !== 'failed' && record.status !== 'canceled' && !record.parked) {
        throw new IllegalStateError(
          `workflow instance '${record.id}' is ${record.status}: only failed, canceled or parked instances can be restarted`,
          { instanceId: record.id, status: record.status },
        )
      }
      if (newInput) this.#checkInstanceBudget(record, newInput, 'context')
      return this.#restartableDefinition(record)
    }
    const read = await this.#mustGet(p.instanceId)
    await check(read)
    return this.#operate(read, p.remainingTimeMs, async (session) => {
      const record = structuredClone(session.record)
      // Acquiring the lease unparks the instance: judge it as it was before.
      if (session.previous.parked) record.parked = session.previous.parked
      const definition = await check(record)
      const now = this.#clock.nowMs()
      const changed: string[] = []
      // Keep the input completed nodes ran with (their contexts must not change under them): stored once, under a
      // key the nodes refer to, rather than copied into each of them.
      const priorKey = `f${session.lease.fence}`
      let referenced = false
      for (const [id, node] of Object.entries(record.nodes)) {
        if (node.status === 'failed' || node.status === 'canceled') {
          this.#markRestarting(node, now, p.resetCounters === true)
          delete node.inputRef
          changed.push(id)
        } else if (newInput && node.workflowContext === undefined && node.inputRef === undefined) {
          node.inputRef = priorKey
          referenced = true
          changed.push(id)
        }
      }
      const before = JSON.stringify(record.priorInputs ?? null)
      const priorInputs: Record<string, JsonObject> = { ...(record.priorInputs ?? {}) }
      if (referenced) priorInputs[priorKey] = record.input
      const used = new Set(Object.values(record.nodes).map((node) => node.inputRef))
      for (const key of Object.keys(priorInputs)) if (!used.has(key)) delete priorInputs[key]
      if (Object.keys(priorInputs).length) record.priorInputs = priorInputs
      else delete record.priorInputs
      const priorChanged = JSON.stringify(record.priorInputs ?? null) !== before
      if (newInput) record.input = newInput
      record.status = 'running'
      delete record.failure
      delete record.parked
      return this.#finishRestart(
        session,
        definition,
        record,
        {
          nodes: changed,
          status: true,
          input: newInput !== undefined,
          failure: true,
          priorInputs: priorChanged,
          history: [{ atMs: now, kind: 'restart', origin: p.origin ?? 'engine' }],
        },
        p.run,
      )
    })
  }

  /** Cancels a non-terminal instance and its non-terminal nodes. Idempotent on a canceled instance. */
  async cancel(instanceId: string, options: Omit<CancelParams, 'instanceId'> = {}): Promise<OperationResult> {
    const p = parse(cancelParamsSchema, { ...options, instanceId })
    const id = p.instanceId
    const read = await this.#mustGet(id)
    const settled = this.#cancelOutcome(read)
    if (settled) return settled
    return this.#operate(
      read,
      p.remainingTimeMs,
      async (session) => {
        const record = session.record
        const now = this.#clock.nowMs()
        const nodes: Record<string, NodeRecord> = {}
        for (const [nodeId, node] of Object.entries(record.nodes)) {
          if (isTerminalNodeStatus(node.status)) continue
          node.status = 'canceled'
          node.updatedAtMs = now
          delete node.nextAttemptAtMs
          delete node.attemptStarted
          nodes[nodeId] = node
        }
        const history: HistoryEntry[] = [{ atMs: now, kind: 'cancel', origin: p.origin ?? 'engine' }]
        await session.release(
          { updatedAtMs: now, nodes, status: 'canceled', history },
          { status: 'canceled', dueAtMs: null },
        )
        this.#logger.log('info', 'workflow instance canceled', { instanceId: id, workflowType: record.workflowType })
        return { instanceId: id, status: 'canceled', changed: true }
      },
      (record) => this.#cancelOutcome(record),
    )
  }

  /** The instance with every definition node in definition order (`uncreated` where a node has not started). */
  async get(instanceId: string): Promise<InstanceDetail> {
    const id = parse(instanceIdSchema, instanceId)
    const record = await this.#mustGet(id)
    const definition = await this.#definitionFor(record, false)
    const nodes = definition.nodes.map((node): NodeDetail => {
      const stored = record.nodes[node.id]
      const detail: NodeDetail = {
        id: node.id,
        name: node.name,
        status: 'uncreated',
        predecessors: node.prev,
        successors: node.next,
        failCount: stored?.failCount ?? 0,
        attempt: stored?.attempt ?? 0,
        calls: stored?.calls ?? 0,
      }
      if (node.id === ROOT_NODE_ID) {
        if (record.status === 'init') return detail
        return { ...detail, status: 'completed', createdAtMs: record.createdAtMs, context: this.#rootContext(record) }
      }
      if (node.id === END_NODE_ID) {
        if (record.status !== 'completed') {
          // `end` follows its predecessors: it is restarting while any of them is.
          if (node.prev.some((prev) => record.nodes[prev]?.status === 'restarting')) detail.status = 'restarting'
          return detail
        }
        return {
          ...detail,
          status: 'completed',
          updatedAtMs: record.updatedAtMs,
          context: assembleContext(definition, record, END_NODE_ID, undefined),
        }
      }
      if (!stored) return detail
      detail.status = stored.status
      detail.createdAtMs = stored.createdAtMs
      detail.updatedAtMs = stored.updatedAtMs
      if (stored.nextAttemptAtMs !== undefined) detail.nextAttemptAtMs = stored.nextAttemptAtMs
      if (stored.attemptStarted !== undefined) {
        detail.attemptStartedAtMs = stored.attemptStarted.atMs
        detail.attemptStep = stored.attemptStarted.step
      }
      if (node.maxWaitTimeSeconds > 0 && !isTerminalNodeStatus(stored.status)) {
        detail.deadlineAtMs = stored.createdAtMs + node.maxWaitTimeSeconds * 1000
      }
      detail.context = assembleContext(definition, record, node.id, stored)
      return detail
    })
    const detail: InstanceDetail = {
      id: record.id,
      workflowType: record.workflowType,
      status: record.status,
      context: record.input,
      createdAtMs: record.createdAtMs,
      updatedAtMs: record.updatedAtMs,
      definitionVersion: record.definitionVersion,
      nodes,
    }
    if (record.businessId !== undefined) detail.businessId = record.businessId
    if (record.dueAtMs !== undefined) detail.dueAtMs = record.dueAtMs
    if (record.startAtMs !== undefined) detail.startAtMs = record.startAtMs
    if (record.parked !== undefined) detail.parked = record.parked
    if (record.failure !== undefined) detail.failure = record.failure
    if (record.leaseOwner !== undefined && record.leaseUntilMs !== undefined) {
      detail.lease = { owner: record.leaseOwner, untilMs: record.leaseUntilMs }
    }
    return detail
  }

  /**
   * The status alone, from a small read: what a long-poll watches before reading the whole instance. Pass the
   * previous view back to let the store read a smaller copy.
   */
  async getStatus(instanceId: string, previous?: InstanceStatusView): Promise<InstanceStatusView> {
    const id = parse(instanceIdSchema, instanceId)
    const view = await this.#store.getInstanceStatus(id, previous)
    if (!view) throw new InstanceNotFoundError(id)
    return view
  }

  /** Lists instances, newest first by default, filtered by type, status, business id and creation time. */
  async list(params: ListParams = {}): Promise<ListPage> {
    const p = parse(listParamsSchema, params)
    return this.#store.listInstances({
      ...this.#filters(p),
      ...(p.cursor === undefined ? {} : { cursor: p.cursor }),
      limit: p.limit ?? 50,
      order: p.order ?? 'desc',
    })
  }

  /**
   * Counts instances, reading at most COUNT_READ_LIMIT index entries: a count costs the same however many instances
   * there are; beyond the bound it answers `complete: false` (shown as "10,000+").
   */
  async count(params: CountParams = {}): Promise<CountResult> {
    return this.#store.countInstances(this.#filters(parse(countParamsSchema, params)), COUNT_READ_LIMIT)
  }

  /** The newest instance of a type and business id still running, else the newest one; undefined when none. */
  async findByBusinessId(workflowType: string, businessId: string): Promise<string | undefined> {
    const filters = { workflowType, businessId }
    let cursor: string | undefined
    do {
      const page = await this.list({
        ...filters,
        status: ['init', 'running'],
        limit: 50,
        ...(cursor ? { cursor } : {}),
      })
      if (page.items[0]) return page.items[0].id
      cursor = page.cursor
    } while (cursor !== undefined)
    let newest: string | undefined
    cursor = undefined
    do {
      const page = await this.list({ ...filters, limit: 1, ...(cursor ? { cursor } : {}) })
      newest = page.items[0]?.id
      cursor = newest === undefined ? page.cursor : undefined
    } while (cursor !== undefined)
    return newest
  }

  /** The stored event of a node, for telling a re-delivered event from a different one. */
  async storedEvent(instanceId: string, nodeId: string): Promise<NodeEventRecord | undefined> {
    return (await this.#store.getInstance(instanceId))?.events[nodeId]
  }

  /**
   * A page of the instance's history, oldest first: the entries after `afterSeq` (a seq of an earlier page), at
   * most `limit` (1-500, default 100). Throws InstanceNotFoundError for an unknown instance.
   */
  async history(instanceId: string, options: { limit?: number; afterSeq?: number } = {}): Promise<HistoryPage> {
    const id = parse(instanceIdSchema, instanceId)
    const limit = options.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new ValidationError('limit: must be an integer from 1 to 500', 'limit')
    }
    const page = await this.#store.readHistory(id, {
      limit,
      ...(options.afterSeq === undefined ? {} : { afterSeq: options.afterSeq }),
    })
    if (!page) throw new InstanceNotFoundError(id)
    return page
  }

  // ---- recurring starts ------------------------------------------------------------------------------------

  /** Creates or replaces a recurring schedule that starts `workflowType` with `context` on a cron or rate. */
  async putSchedule(params: PutScheduleParams): Promise<RecurringSchedule> {
    const p = parse(putScheduleParamsSchema, params)
    const recurring = this.#recurringScheduler()
    this.#registry.definition(p.workflowType)
    const schedule: RecurringSchedule = {
      name: p.name,
      expression: p.expression,
      workflowType: p.workflowType,
      context: this.#checkInput(p.context ?? {}, 'context'),
      enabled: p.enabled ?? true,
    }
    if (p.timezone !== undefined) schedule.timezone = p.timezone
    if (p.businessId !== undefined) schedule.businessId = p.businessId
    if (p.description !== undefined) schedule.description = p.description
    await recurring.put(schedule)
    return schedule
  }

  async getSchedule(name: string): Promise<ScheduleView> {
    const schedule = await this.#recurringScheduler().get(parse(scheduleNameSchema, name))
    if (!schedule) throw new ScheduleNotFoundError(name)
    return schedule
  }

  async listSchedules(): Promise<ScheduleView[]> {
    return this.#recurringScheduler().list()
  }

  async deleteSchedule(name: string): Promise<void> {
    if (!(await this.#recurringScheduler().delete(parse(scheduleNameSchema, name)))) {
      throw new ScheduleNotFoundError(name)
    }
  }

  #recurringScheduler(): RecurringScheduler {
    if (!this.#recurring) throw new NotConfiguredError('recurring schedules are not configured for this deployment')
    return this.#recurring
  }

  // ---- internals --------------------------------------------------------------------------------------------

  #passDeps() {
    return {
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
      metrics: this.#metrics,
      limits: this.limits,
      worker: (workflowType: string, nodeId: string) => this.#registry.worker(workflowType, nodeId),
    }
  }

  /**
   * A pass under a held lease, ended by the releasing write. An instance whose definition or workers this
   * deployment lacks is parked with the reason instead: retrying cannot help until someone fixes and restarts it.
   */
  async #pass(
    session: LeaseSession,
    mode: PassMode,
    record: InstanceRecord = session.record,
    pending?: PendingChanges,
    definition?: WorkflowDefinition,
  ): Promise<PassResult> {
    let resolved = definition
    if (!resolved) {
      try {
        resolved = await this.#definitionFor(record, true)
      } catch (error) {
        const code = parkCode(error)
        if (!code) throw error
        return this.#park(session, code, (error as Error).message)
      }
    }
    let outcome: PassOutcome
    let released: Released
    try {
      outcome = await runPass(this.#passDeps(), resolved, record, session, mode, pending)
      try {
        released = await session.release(outcome.change, { status: outcome.state.status, dueAtMs: outcome.dueAtMs })
      } catch (error) {
        const rebuilt = error instanceof ItemTooLargeError ? outcome.afterRefusal(error) : undefined
        if (!rebuilt) throw error
        outcome = rebuilt
        released = await session.release(outcome.change, { status: outcome.state.status, dueAtMs: outcome.dueAtMs })
      }
    } catch (error) {
      // Refused for its size with no node outcome to blame: retrying is no cure. A restart whose own change was
      // refused is refused as a whole (its operation leaves the instance as it was); anything else parks it.
      if (!(error instanceof ItemTooLargeError) || !session.stored) throw error
      if (pending !== undefined && session.writes === 0) throw error
      return this.#park(session, 'ITEM_TOO_LARGE', error.message)
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
    const dimensions = { workflowType }
    const statuses = executed.map((id) => nodes[id]?.status)
    this.#metrics.add(MetricName.passes, 1, 'Count', dimensions)
    const completed = statuses.filter((status) => status === 'completed').length
    const failed = statuses.filter((status) => status === 'failed').length
    if (completed) this.#metrics.add(MetricName.nodesCompleted, completed, 'Count', dimensions)
    if (failed) this.#metrics.add(MetricName.nodesFailed, failed, 'Count', dimensions)
  }

  async #park(session: LeaseSession, code: string, reason: string): Promise<PassResult> {
    const record = session.record
    const now = this.#clock.nowMs()
    const parked = { code, reason: reason.slice(0, 1000), atMs: now }
    this.#logger.log('error', 'workflow instance parked: it cannot run until it is fixed and restarted', {
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

  /**
   * Takes the lease for an operation (on a terminal instance too) and runs `fn` under it; `fn` ends with the
   * releasing write, or a pass that makes it.
   */
  async #operate(
    read: InstanceRecord,
    remainingTimeMs: number | undefined,
    fn: (session: LeaseSession) => Promise<OperationResult>,
    /** The answer when the instance turned terminal since it was read (cancel's idempotent one), if not a refusal. */
    settled?: (record: InstanceState) => OperationResult | undefined,
  ): Promise<OperationResult> {
    const instanceId = read.id
    // A terminal instance is leased without becoming due, a live one only while it is live: no operation can put a
    // terminal instance in the due index, and one that dies before its write leaves the instance as it was.
    const acquired = await this.#leases.acquire({
      instanceId,
      remainingTimeMs,
      ...(isTerminalInstanceStatus(read.status) ? { terminalOnly: true } : {}),
    })
    if (acquired.kind !== 'held') {
      const answer = settled?.(acquired.record)
      if (answer) return answer
      throw new IllegalStateError(
        `workflow instance '${instanceId}' is ${acquired.record.status} (it changed since it was read; try again)`,
        { instanceId, status: acquired.record.status },
      )
    }
    const { session } = acquired
    return session.hold(async () => {
      try {
        return await fn(session)
      } catch (error) {
        // Refused under the lease (the instance changed since it was read): leave it as it was.
        if (
          error instanceof IllegalStateError ||
          error instanceof NodeNotFoundError ||
          error instanceof ItemTooLargeError
        ) {
          await this.#releaseUnchanged(session)
        }
        throw error
      }
    })
  }

  /** The releasing write of an operation that changed nothing: due and parked as they were before the lease. */
  async #releaseUnchanged(session: LeaseSession): Promise<void> {
    const now = this.#clock.nowMs()
    const { previous } = session
    const { status } = session.record
    await session.release(
      { updatedAtMs: session.record.updatedAtMs },
      previous.parked
        ? { status, dueAtMs: null, parked: previous.parked }
        : { status, dueAtMs: previous.dueAtMs ?? now },
    )
  }

  /** Stores a restart: with `run`, as part of an explicit pass; otherwise as one write that leaves it due now. */
  async #finishRestart(
    session: LeaseSession,
    definition: WorkflowDefinition,
    record: InstanceRecord,
    pending: PendingChanges,
    run: boolean | undefined,
  ): Promise<OperationResult> {
    if (!run) {
      const now = this.#clock.nowMs()
      const change: InstanceChange = { updatedAtMs: now, nodes: {}, status: record.status, failure: null }
      if (pending.history) change.history = pending.history
      if (!pending.status) delete change.status
      for (const id of pending.nodes) (change.nodes as Record<string, NodeRecord>)[id] = record.nodes[id] as NodeRecord
      if (pending.input) change.input = record.input
      if (pending.priorInputs) change.priorInputs = record.priorInputs ?? null
      await session.release(change, { status: record.status, dueAtMs: now })
      return { instanceId: record.id, status: record.status, changed: true }
    }
    // The pass stores the restart with its first write, before any worker runs.
    try {
      const pass = await this.#pass(session, 'explicit', record, pending, definition)
      return { instanceId: record.id, status: pass.status, changed: true, pass }
    } catch (error) {
      if (!(error instanceof LeaseLostError) || session.writes === 0) throw error
      const current = await this.#store.getInstance(record.id)
      return { instanceId: record.id, status: current?.status ?? record.status, changed: true }
    }
  }

  #markRestarting(node: NodeRecord, now: number, resetCounters: boolean): void {
    node.status = 'restarting'
    node.updatedAtMs = now
    node.waits = 0
    delete node.nextAttemptAtMs
    delete node.attemptStarted
    if (resetCounters) node.resetOnRestart = true
    else delete node.resetOnRestart
  }

  /** The definition a restart needs, with its workers; a deployment without them refuses the restart (409). */
  async #restartableDefinition(record: InstanceRecord): Promise<WorkflowDefinition> {
    try {
      return await this.#definitionFor(record, true)
    } catch (error) {
      const code = parkCode(error)
      if (!code) throw error
      throw new IllegalStateError(`workflow instance '${record.id}' cannot run here: ${(error as Error).message}`, {
        instanceId: record.id,
        code,
      })
    }
  }

  #cancelOutcome(record: InstanceState): OperationResult | undefined {
    if (record.status === 'canceled') return { instanceId: record.id, status: 'canceled', changed: false }
    if (record.status === 'completed' || record.status === 'failed') {
      throw new IllegalStateError(`workflow instance '${record.id}' is ${record.status} and cannot be canceled`, {
        instanceId: record.id,
        status: record.status,
      })
    }
    return undefined
  }

  #filters(p: z.output<typeof countParamsSchema>): CountQuery {
    return {
      workflowTypes: p.workflowType ? [p.workflowType] : this.#registry.workflowTypes(),
      ...(p.status === undefined ? {} : { statuses: Array.isArray(p.status) ? p.status : [p.status] }),
      ...(p.businessId === undefined ? {} : { businessId: p.businessId }),
      ...(p.createdFromMs === undefined ? {} : { createdFromMs: p.createdFromMs }),
      ...(p.createdToMs === undefined ? {} : { createdToMs: p.createdToMs }),
      ...(p.parked === undefined ? {} : { parked: p.parked }),
    }
  }

  #rootContext(record: InstanceRecord): JsonObject {
    return { pre_node_context: {}, workflow_context: record.input }
  }

  async #mustGet(instanceId: string): Promise<InstanceRecord> {
    const record = await this.#store.getInstance(instanceId)
    if (!record) throw new InstanceNotFoundError(instanceId)
    return record
  }

  /** The graph an instance started with: the registered one, or a stored snapshot of an older version. */
  async #definitionFor(record: InstanceRecord, needWorkers: boolean): Promise<WorkflowDefinition> {
    if (this.#registry.hasDefinition(record.workflowType)) {
      const current = needWorkers
        ? this.#registry.definition(record.workflowType)
        : this.#registry.graph(record.workflowType)
      if (current?.version === record.definitionVersion) return current
    }
    const key = `${record.workflowType}@${record.definitionVersion}`
    let snapshot = this.#snapshots.get(key)
    if (!snapshot) {
      const config = await this.#store.getDefinition(record.workflowType, record.definitionVersion)
      if (!config) {
        throw new DefinitionError(
          `definition version '${record.definitionVersion}' of workflow type '${record.workflowType}' is not stored`,
          { workflowType: record.workflowType, version: record.definitionVersion },
        )
      }
      snapshot = this.#registry.definitionFromSnapshot(config)
      this.#snapshots.set(key, snapshot)
    }
    if (needWorkers) this.#registry.assertWorkers(snapshot)
    return snapshot
  }

  #storeDefinition(definition: WorkflowDefinition): Promise<void> {
    const key = `${definition.type}@${definition.version}`
    let stored = this.#storedDefinitions.get(key)
    if (!stored) {
      stored = this.#store.putDefinition(definition.type, definition.version, definition.config)
      stored.catch(() => this.#storedDefinitions.delete(key))
      this.#storedDefinitions.set(key, stored)
    }
    return stored
  }

  #checkJson(value: unknown, field: string): JsonValue {
    const json = assertJsonValue(value, field, this.limits)
    const size = jsonSizeBytes(json)
    if (size > this.limits.maxInputBytes) {
      throw new PayloadTooLargeError(
        `${field} is ${size} bytes, over the limit of ${this.limits.maxInputBytes}`,
        field,
        size,
        this.limits.maxInputBytes,
      )
    }
    return json
  }

  /** An addition must leave the whole instance within its budget, below DynamoDB's item limit. */
  #checkInstanceBudget(record: InstanceRecord, addition: JsonValue, field: string): void {
    const size = instanceStoredBytes(record) + jsonSizeBytes(addition)
    if (size > this.limits.maxInstanceBytes) {
      throw new PayloadTooLargeError(
        `${field} would make the instance ${size} bytes, over the budget of ${this.limits.maxInstanceBytes}`,
        field,
        size,
        this.limits.maxInstanceBytes,
      )
    }
  }

  #checkInput(value: unknown, field: string): JsonObject {
    if (!isJsonObject(value)) throw new ValidationError(`${field} must be a JSON object`, field)
    return this.#checkJson(value, field) as JsonObject
  }
}
