import type { z } from 'zod'
import {
  type AddNodeEventParams,
  addNodeEventParamsSchema,
  type CountParams,
  type CreateParams,
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
import type { WorkflowModule } from './builder.js'
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
  LeaseLostError,
  NodeNotFoundError,
  NotConfiguredError,
  PayloadTooLargeError,
  ScheduleNotFoundError,
  ValidationError,
} from './errors.js'
import { eventRefusal } from './event-rules.js'
import { assertJsonValue, isJsonObject, type JsonObject, type JsonValue, jsonSizeBytes } from './json.js'
import { assembleContext } from './node-contexts.js'
import { DEFAULT_LIMITS, type Limits, type PassMode, type PassResult, runPass } from './pass.js'
import { type Clock, type IdGenerator, type Logger, type Random, silentLogger } from './ports.js'
import { Registry, type Worker } from './registry.js'
import { type InstanceStatus, isTerminalInstanceStatus, isTerminalNodeStatus, type NodeStatus } from './statuses.js'
import {
  InstanceExistsError,
  type InstanceRecord,
  type InstanceStore,
  type Lease,
  type ListPage,
  type NodeRecord,
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
  limits?: Partial<Limits>
  /** Lease length when the caller gives no remaining time (outside Lambda). */
  defaultLeaseMs?: number
  /** Added to the lease beyond the caller's remaining time, so a lease never ends while its holder still runs. */
  leaseGraceMs?: number
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
  attempt: number
  createdAtMs?: number
  updatedAtMs?: number
  nextAttemptAtMs?: number
  /** The node's context; absent for nodes that have not started. */
  context?: JsonObject
}

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

const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  )

/** Parses operation parameters; the first problem becomes a ValidationError naming its field. */
const parse = <S extends z.ZodType>(schema: S, input: unknown): z.output<S> => {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  const field = issue ? formatPath(issue.path) || 'params' : 'params'
  const message =
    issue?.code === 'unrecognized_keys' ? `unknown parameter(s): ${issue.keys.join(', ')}` : issue?.message
  throw new ValidationError(`${field}: ${message ?? 'invalid'}`, field, {
    issues: result.error.issues.map((item) => ({ field: formatPath(item.path), message: item.message })),
  })
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
  readonly registry = new Registry()
  readonly limits: Limits
  readonly #store: InstanceStore
  readonly #clock: Clock
  readonly #ids: IdGenerator
  readonly #random: Random
  readonly #logger: Logger
  readonly #defaultLeaseMs: number
  readonly #leaseGraceMs: number
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
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits }
    this.#defaultLeaseMs = deps.defaultLeaseMs ?? 60_000
    this.#leaseGraceMs = deps.leaseGraceMs ?? 5_000
    this.#wakeups = new Wakeups(deps.queue, deps.scheduler, this.#logger)
    this.#recurring = deps.recurring
  }

  // ---- registration ------------------------------------------------------------------------------------------

  /** Registers a workflow from a JSON config (the simple-workflow shape); workers are registered separately. */
  registerWorkflow(config: unknown): WorkflowDefinition {
    return this.registry.registerDefinition(config)
  }

  registerWorker(workflowType: string, nodeId: string, worker: Worker): void {
    this.registry.registerWorker(workflowType, nodeId, worker)
  }

  /** Registers a workflow defined with `defineWorkflow`, with its workers. */
  register(module: WorkflowModule): WorkflowDefinition {
    const definition = this.registry.registerDefinition(module.config)
    for (const [nodeId, worker] of Object.entries<Worker>(module.workers)) {
      this.registry.registerWorker(definition.type, nodeId, worker)
    }
    this.registry.definition(definition.type)
    return definition
  }

  // ---- operations -------------------------------------------------------------------------------------------

  async create(params: CreateParams): Promise<CreateResult> {
    const p = parse(createParamsSchema, params)
    const definition = this.registry.definition(p.workflowType)
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
    const run = p.run ?? true
    let lease: Lease | undefined
    if (run) {
      lease = { instanceId: id, owner: this.#ids.newLeaseOwner(), fence: 1, untilMs: now + this.#defaultLeaseMs }
      record.fence = 1
      // Created running (root completed) in the same write: the status never changes again until the end.
      record.status = 'running'
      record.leaseOwner = lease.owner
      record.leaseUntilMs = lease.untilMs
      // Until the first pass stores its own due time, a crash must leave the instance where the tick finds it.
      record.dueAtMs = lease.untilMs
    } else {
      record.dueAtMs = p.startAtMs ?? now
    }
    try {
      await this.#store.createInstance(record, lease)
    } catch (error) {
      if (!(error instanceof InstanceExistsError)) throw error
      const existing = error.existing
      // This very create stored it (the SDK retried a put whose answer was lost): same creation time and, for a
      // client-chosen id, the same request; with run, our own lease (owners are unique per call).
      const ownRetry =
        existing.createdAtMs === record.createdAtMs &&
        (p.id === undefined || existing.requestHash === record.requestHash) &&
        (lease === undefined || (existing.leaseOwner === lease.owner && existing.fence === lease.fence))
      if (!ownRetry) {
        if (p.id === undefined || existing.requestHash !== record.requestHash) throw new IdempotencyConflictError(id)
        return { instanceId: id, status: existing.status, created: false }
      }
    }
    // Stored after the instance, so that a refused create stores nothing; the snapshot only matters once a later
    // deployment changes the definition, and any create of this version stores it again.
    await this.#storeDefinition(definition)
    this.#logger.log('info', 'workflow instance created', { instanceId: id, workflowType: definition.type })
    if (!lease) {
      await this.#wakeups.plan(id, record.dueAtMs ?? null, now)
      return { instanceId: id, status: 'init', created: true }
    }
    const pass = await this.#passUnderLease(
      definition,
      record,
      lease,
      'explicit',
      this.#passDeadline(now, this.#defaultLeaseMs),
    )
    await this.#wakeups.plan(id, pass.dueAtMs, this.#clock.nowMs())
    return { instanceId: id, status: pass.status, created: true, pass }
  }

  /**
   * One pass over the instance. `explicit` (default) executes every waiting node now; `due` only what is due
   * (the tick's and wake-ups' mode). A terminal instance is left unchanged and its status returned.
   */
  async runWorkflow(instanceId: string, options: Omit<RunParams, 'instanceId'> = {}): Promise<PassResult> {
    const p = parse(runParamsSchema, { ...options, instanceId })
    const now = this.#clock.nowMs()
    const spanMs = p.remainingTimeMs ?? this.#defaultLeaseMs
    const mode = p.mode ?? 'explicit'
    const acquired = await this.#store.acquireLease(
      p.instanceId,
      this.#ids.newLeaseOwner(),
      now,
      now + spanMs + this.#leaseGraceMs,
      mode === 'due' ? { dueBy: now } : {},
    )
    if (acquired.kind !== 'acquired') {
      return {
        instanceId: p.instanceId,
        status: acquired.record.status,
        executed: [],
        dueAtMs: acquired.kind === 'terminal' ? null : (acquired.record.dueAtMs ?? null),
        eventArrived: false,
        skipped: acquired.kind,
      }
    }
    const result = await this.#withLeaseHeld(acquired.lease, async () => {
      const definition = await this.#definitionFor(acquired.record, true)
      const deadlineMs = this.#passDeadline(now, spanMs)
      return runPass(this.#passDeps(), definition, acquired.record, acquired.lease, mode, deadlineMs)
    })
    await this.#wakeups.plan(p.instanceId, result.dueAtMs, this.#clock.nowMs(), acquired.record.dueAtMs)
    return result
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
    const record = await this.#mustGet(p.instanceId)
    const definition = await this.#definitionFor(record, false)
    const node = definition.byId.get(p.nodeId)
    if (!node || node.synthetic) throw new NodeNotFoundError(record.workflowType, p.nodeId)
    const refusal = eventRefusal(record, p.nodeId, p)
    if (refusal) throw refusal
    this.#checkInstanceBudget(record, content, 'content')
    const now = this.#clock.nowMs()
    await this.#store.putEvent(record.id, p.nodeId, { eventTs: p.eventTs, content, receivedAtMs: now }, now)
    await this.#wakeups.plan(record.id, now, now)
    return { instanceId: record.id, nodeId: p.nodeId, eventTs: p.eventTs, dueAtMs: now }
  }

  /**
   * Restarts a node and all its descendants (they become `restarting` and are re-initialised when their
   * predecessors are completed). On a terminal instance only with `force`, which puts the instance back to running.
   */
  async restartNode(params: RestartNodeParams): Promise<OperationResult> {
    const p = parse(restartNodeParamsSchema, params)
    if (p.nodeId === ROOT_NODE_ID || p.nodeId === END_NODE_ID) {
      throw new ValidationError(`node '${p.nodeId}' is synthetic and cannot be restarted`, 'nodeId')
    }
    // Checked on a read first, so that a refused restart writes nothing, and again under the lease.
    const check = async (record: InstanceRecord): Promise<WorkflowDefinition> => {
      const definition = await this.#definitionFor(record, true)
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
      return definition
    }
    return this.#operate(p.instanceId, check, async (record, lease) => {
      const definition = await check(record)
      const now = this.#clock.nowMs()
      const changed = descendantsOf(definition, p.nodeId).filter((id) => record.nodes[id])
      for (const id of changed) this.#markRestarting(record.nodes[id] as NodeRecord, now, p.resetCounters === true)
      const statusChanged = record.status !== 'running'
      record.status = 'running'
      return this.#finishOperation(definition, record, lease, { nodes: changed, status: statusChanged }, p.run)
    })
  }

  /**
   * Restarts a failed or canceled instance: its failed and canceled nodes become `restarting`. `context`
   * replaces the instance input (nodes already completed keep the input they ran with).
   */
  async restartInstance(params: RestartInstanceParams): Promise<OperationResult> {
    const p = parse(restartInstanceParamsSchema, params)
    const newInput = p.context === undefined ? undefined : this.#checkInput(p.context, 'context')
    const check = (record: InstanceRecord): void => {
      if (record.status !== 'failed' && record.status !== 'canceled') {
        throw new IllegalStateError(
          `workflow instance '${record.id}' is ${record.status}: only failed or canceled instances can be restarted`,
          { instanceId: record.id, status: record.status },
        )
      }
      if (newInput) this.#checkInstanceBudget(record, newInput, 'context')
    }
    return this.#operate(p.instanceId, check, async (record, lease) => {
      check(record)
      const definition = await this.#definitionFor(record, true)
      const now = this.#clock.nowMs()
      const changed: string[] = []
      for (const [id, node] of Object.entries(record.nodes)) {
        if (node.status === 'failed' || node.status === 'canceled') {
          this.#markRestarting(node, now, p.resetCounters === true)
          changed.push(id)
        } else if (newInput && node.workflowContext === undefined) {
          // Keep the input this node ran with: its context must not change under it.
          node.workflowContext = record.input
          changed.push(id)
        }
      }
      if (newInput) record.input = newInput
      record.status = 'running'
      return this.#finishOperation(
        definition,
        record,
        lease,
        { nodes: changed, status: true, input: newInput !== undefined },
        p.run,
      )
    })
  }

  /** Cancels a non-terminal instance and its non-terminal nodes. Idempotent on a canceled instance. */
  async cancel(instanceId: string): Promise<OperationResult> {
    const id = parse(instanceIdSchema, instanceId)
    const current = await this.#mustGet(id)
    const settled = this.#cancelOutcome(current)
    if (settled) return settled
    return this.#operate(id, undefined, async (record, lease) => {
      const outcome = this.#cancelOutcome(record)
      if (outcome) {
        await this.#store.releaseLease(lease)
        return outcome
      }
      const now = this.#clock.nowMs()
      const nodes: Record<string, NodeRecord> = {}
      for (const [nodeId, node] of Object.entries(record.nodes)) {
        if (isTerminalNodeStatus(node.status)) continue
        node.status = 'canceled'
        node.updatedAtMs = now
        delete node.nextAttemptAtMs
        nodes[nodeId] = node
      }
      await this.#store.writeUnderLease(lease, {
        updatedAtMs: now,
        nodes,
        status: 'canceled',
        dueAtMs: null,
        release: true,
      })
      await this.#wakeups.plan(id, null, now, record.dueAtMs)
      this.#logger.log('info', 'workflow instance canceled', { instanceId: id, workflowType: record.workflowType })
      return { instanceId: id, status: 'canceled', changed: true }
    })
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
      }
      if (node.id === ROOT_NODE_ID) {
        if (record.status === 'init') return detail
        return { ...detail, status: 'completed', createdAtMs: record.createdAtMs, context: this.#rootContext(record) }
      }
      if (node.id === END_NODE_ID) {
        if (record.status !== 'completed') return detail
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
    if (record.leaseOwner !== undefined && record.leaseUntilMs !== undefined) {
      detail.lease = { owner: record.leaseOwner, untilMs: record.leaseUntilMs }
    }
    return detail
  }

  /** Lists instances, newest first by default, filtered by type, status, business id and creation time. */
  async list(params: ListParams = {}): Promise<ListPage> {
    const p = parse(listParamsSchema, params)
    return this.#store.listInstances({
      workflowTypes: p.workflowType ? [p.workflowType] : this.registry.workflowTypes(),
      ...(p.status === undefined ? {} : { statuses: Array.isArray(p.status) ? p.status : [p.status] }),
      ...(p.businessId === undefined ? {} : { businessId: p.businessId }),
      ...(p.createdFromMs === undefined ? {} : { createdFromMs: p.createdFromMs }),
      ...(p.createdToMs === undefined ? {} : { createdToMs: p.createdToMs }),
      ...(p.cursor === undefined ? {} : { cursor: p.cursor }),
      limit: p.limit ?? 50,
      order: p.order ?? 'desc',
    })
  }

  async count(params: CountParams = {}): Promise<number> {
    const p = parse(countParamsSchema, params)
    return this.#store.countInstances({
      workflowTypes: p.workflowType ? [p.workflowType] : this.registry.workflowTypes(),
      ...(p.status === undefined ? {} : { statuses: Array.isArray(p.status) ? p.status : [p.status] }),
      ...(p.businessId === undefined ? {} : { businessId: p.businessId }),
      ...(p.createdFromMs === undefined ? {} : { createdFromMs: p.createdFromMs }),
      ...(p.createdToMs === undefined ? {} : { createdToMs: p.createdToMs }),
    })
  }

  // ---- recurring starts ------------------------------------------------------------------------------------

  /** Creates or replaces a recurring schedule that starts `workflowType` with `context` on a cron or rate. */
  async putSchedule(params: PutScheduleParams): Promise<RecurringSchedule> {
    const p = parse(putScheduleParamsSchema, params)
    const recurring = this.#recurringScheduler()
    this.registry.definition(p.workflowType)
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
      store: this.#store,
      clock: this.#clock,
      random: this.#random,
      logger: this.#logger,
      limits: this.limits,
      worker: (workflowType: string, nodeId: string) => this.registry.worker(workflowType, nodeId),
    }
  }

  async #passUnderLease(
    definition: WorkflowDefinition,
    record: InstanceRecord,
    lease: Lease,
    mode: PassMode,
    deadlineMs: number,
    pending?: { nodes: readonly string[]; status: boolean; input?: boolean },
  ): Promise<PassResult> {
    return this.#withLeaseHeld(lease, () =>
      runPass(this.#passDeps(), definition, record, lease, mode, deadlineMs, pending),
    )
  }

  /** Runs `fn` under a held lease; on failure the lease is released (unless it was lost) before rethrowing. */
  async #withLeaseHeld<T>(lease: Lease, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (!(error instanceof LeaseLostError)) {
        await this.#store.releaseLease(lease).catch((releaseError: unknown) => {
          this.#logger.log('warn', 'could not release lease after an error', {
            instanceId: lease.instanceId,
            error: String(releaseError),
          })
        })
      }
      throw error
    }
  }

  /**
   * Takes the lease for an operation; `fn` must end with a write that releases it (or a pass that does). `check`,
   * when given, runs on a consistent read first, so an operation it refuses writes nothing (not even the lease).
   */
  async #operate(
    instanceId: string,
    check: ((record: InstanceRecord) => unknown) | undefined,
    fn: (record: InstanceRecord, lease: Lease) => Promise<OperationResult>,
  ): Promise<OperationResult> {
    if (check) await check(await this.#mustGet(instanceId))
    const now = this.#clock.nowMs()
    const acquired = await this.#store.acquireLease(
      instanceId,
      this.#ids.newLeaseOwner(),
      now,
      now + this.#defaultLeaseMs + this.#leaseGraceMs,
      { allowTerminal: true },
    )
    if (acquired.kind !== 'acquired') {
      throw new IllegalStateError(`workflow instance '${instanceId}' is ${acquired.record.status}`, {
        instanceId,
        status: acquired.record.status,
      })
    }
    return this.#withLeaseHeld(acquired.lease, () => fn(acquired.record, acquired.lease))
  }

  /** Stores a restart: with `run`, as part of an explicit pass; otherwise as one write that leaves it due now. */
  async #finishOperation(
    definition: WorkflowDefinition,
    record: InstanceRecord,
    lease: Lease,
    pending: { nodes: readonly string[]; status: boolean; input?: boolean },
    run: boolean | undefined,
  ): Promise<OperationResult> {
    const now = this.#clock.nowMs()
    if (run) {
      const previousDueAtMs = record.dueAtMs
      const pass = await runPass(
        this.#passDeps(),
        definition,
        record,
        lease,
        'explicit',
        this.#passDeadline(now, this.#defaultLeaseMs),
        pending,
      )
      await this.#wakeups.plan(record.id, pass.dueAtMs, this.#clock.nowMs(), previousDueAtMs)
      return { instanceId: record.id, status: pass.status, changed: true, pass }
    }
    const nodes: Record<string, NodeRecord> = {}
    for (const id of pending.nodes) nodes[id] = record.nodes[id] as NodeRecord
    await this.#store.writeUnderLease(lease, {
      updatedAtMs: now,
      nodes,
      status: record.status,
      ...(pending.input ? { input: record.input } : {}),
      dueAtMs: now,
      release: true,
    })
    await this.#wakeups.plan(record.id, now, now)
    return { instanceId: record.id, status: record.status, changed: true }
  }

  #markRestarting(node: NodeRecord, now: number, resetCounters: boolean): void {
    node.status = 'restarting'
    node.updatedAtMs = now
    node.waits = 0
    delete node.nextAttemptAtMs
    if (resetCounters) node.resetOnRestart = true
    else delete node.resetOnRestart
  }

  #cancelOutcome(record: InstanceRecord): OperationResult | undefined {
    if (record.status === 'canceled') return { instanceId: record.id, status: 'canceled', changed: false }
    if (record.status === 'completed' || record.status === 'failed') {
      throw new IllegalStateError(`workflow instance '${record.id}' is ${record.status} and cannot be canceled`, {
        instanceId: record.id,
        status: record.status,
      })
    }
    return undefined
  }

  #rootContext(record: InstanceRecord): JsonObject {
    return { pre_node_context: {}, workflow_context: record.input }
  }

  async #mustGet(instanceId: string): Promise<InstanceRecord> {
    const record = await this.#store.getInstance(instanceId)
    if (!record) throw new InstanceNotFoundError(instanceId)
    return record
  }

  /** Stop starting nodes a little before the caller's time runs out, so the last write still lands. */
  #passDeadline(nowMs: number, spanMs: number): number {
    return nowMs + spanMs - Math.min(5_000, Math.floor(spanMs / 5))
  }

  /** The graph an instance started with: the registered one, or a stored snapshot of an older version. */
  async #definitionFor(record: InstanceRecord, needWorkers: boolean): Promise<WorkflowDefinition> {
    if (this.registry.hasDefinition(record.workflowType)) {
      const current = needWorkers
        ? this.registry.definition(record.workflowType)
        : this.registry.graph(record.workflowType)
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
      snapshot = this.registry.definitionFromSnapshot(config)
      this.#snapshots.set(key, snapshot)
    }
    if (needWorkers) this.registry.assertWorkers(snapshot)
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
    const size = jsonSizeBytes(record) + jsonSizeBytes(addition)
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
