import type { CallbackAnswer } from '../schemas/callbacks.js'
import type {
  AddNodeEventParams,
  CancelParams,
  CountParams,
  CreateParams,
  ListParams,
  PutScheduleParams,
  RestartInstanceParams,
  RestartNodeParams,
  RunParams,
} from '../schemas/engine-params.js'
import type { WorkflowModule } from './builder.js'
import type { CallbackTokens } from './callback-token.js'
import type { WorkflowDefinition } from './definition.js'
import { Definitions } from './definitions.js'
import type {
  RecurringSchedule,
  RecurringScheduler,
  RunQueue,
  ScheduleView,
  WakeupScheduler,
} from './dispatch-ports.js'
import { ValidationError } from './errors.js'
import { LeasedOperations } from './leased-operation.js'
import { Lifecycle, type LifecycleOptions } from './lifecycle-events.js'
import { validateLimits } from './limits.js'
import { type Metrics, noMetrics } from './metrics.js'
import { type AddNodeEventResult, addNodeEvent } from './operations/add-event.js'
import { cancel } from './operations/cancel.js'
import { completeCallback } from './operations/complete-callback.js'
import { type CreateResult, create } from './operations/create.js'
import type { OperationDeps, OperationResult } from './operations/deps.js'
import { restartInstance, restartNode } from './operations/restart.js'
import { runWorkflow } from './operations/run.js'
import { Schedules } from './operations/schedules.js'
import { DEFAULT_LIMITS, type Limits, type PassResult } from './pass.js'
import { type Clock, type IdGenerator, type Logger, type Random, silentLogger } from './ports.js'
import { getInstance, type InstanceDetail } from './reads/instance-view.js'
import {
  countInstances,
  findByBusinessId,
  instanceHistory,
  instanceStatus,
  listInstances,
  storedEvent,
} from './reads/queries.js'
import { Registry, type Worker } from './registry.js'
import type { CountResult, HistoryPage, InstanceStatusView, InstanceStore, ListPage, NodeEventRecord } from './store.js'
import { Wakeups } from './wakeups.js'

export type { CreateResult } from './operations/create.js'
export type { OperationResult } from './operations/deps.js'
export type { InstanceDetail, NodeDetail } from './reads/instance-view.js'
export { COUNT_READ_LIMIT } from './reads/queries.js'

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
  /** Callback tokens (README, "Callbacks"), and the API's URL the `ctx.callback` URLs start with. */
  callbacks?: { tokens: CallbackTokens; baseUrl?: string }
  /** Where lifecycle events go (README, "Lifecycle events"); without it no event is written. */
  lifecycle?: LifecycleOptions
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

/**
 * The workflow engine: registration, and one entry per operation (`operations/`) and read (`reads/`), each run
 * over the lease lifecycle (`leased-operation.ts`) and an InstanceStore. Create one per process (per Lambda cold
 * start) and register every workflow before use.
 */
export class Engine {
  readonly limits: Limits
  readonly #registry = new Registry()
  readonly #ops: OperationDeps
  readonly #schedules: Schedules

  constructor(deps: EngineDeps) {
    const logger = deps.logger ?? silentLogger
    const metrics = deps.metrics ?? noMetrics
    const history = deps.history !== false
    this.limits = validateLimits({ ...DEFAULT_LIMITS, ...deps.limits }, deps.store.capacity)
    const definitions = new Definitions(this.#registry, deps.store)
    const baseUrl = (deps.callbacks?.baseUrl ?? '').replace(/\/+$/, '')
    const callbacks = deps.callbacks && {
      tokens: deps.callbacks.tokens,
      urlOf: (t: string) => `${baseUrl}/callbacks/${t}`,
    }
    const lifecycle = deps.lifecycle && new Lifecycle(deps.lifecycle, { clock: deps.clock, logger, metrics })
    const leases = new LeasedOperations({
      store: deps.store,
      clock: deps.clock,
      ids: deps.ids,
      logger,
      metrics,
      wakeups: new Wakeups(deps.queue, deps.scheduler, logger),
      sizing: { defaultSpanMs: deps.defaultLeaseMs ?? 60_000, graceMs: deps.leaseGraceMs ?? 5_000 },
      maxInstanceBytes: this.limits.maxInstanceBytes,
      retentionDays: validRetentionDays(deps.retentionDays ?? DEFAULT_RETENTION_DAYS),
      history,
      definitions,
      pass: {
        clock: deps.clock,
        random: deps.random,
        logger,
        metrics,
        limits: this.limits,
        worker: (workflowType, nodeId) => this.#registry.worker(workflowType, nodeId),
        ...(callbacks ? { callbacks } : {}),
      },
      ...(lifecycle ? { lifecycle } : {}),
    })
    this.#ops = { ...deps, logger, limits: this.limits, leases, definitions, registry: this.#registry, history }
    this.#schedules = new Schedules(this.#registry, this.limits, deps.recurring)
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

  /** The definition an instance runs on (its own version, which a later deployment may have changed). */
  definitionOf(instance: Pick<InstanceDetail, 'workflowType' | 'definitionVersion'>): Promise<WorkflowDefinition> {
    return this.#ops.definitions.of(instance, false)
  }

  /** Whether a node of a registered type has an asynchronous `check`. */
  hasCheck(workflowType: string, nodeId: string): boolean {
    return this.#registry.worker(workflowType, nodeId)?.check !== undefined
  }

  // ---- operations (operations/) ----------------------------------------------------------------------------

  create(params: CreateParams): Promise<CreateResult> {
    return create(this.#ops, params)
  }

  /**
   * One pass over the instance. `explicit` (default) executes every waiting node now; `due` only what is due
   * (the tick's and wake-ups' mode). A terminal instance is left unchanged and its status returned.
   */
  runWorkflow(instanceId: string, options: Omit<RunParams, 'instanceId'> = {}): Promise<PassResult> {
    return runWorkflow(this.#ops, { ...options, instanceId })
  }

  /**
   * Stores an external event for a node without waiting for the lease; the instance becomes due at once, unless it is
   * parked.
   */
  addNodeEvent(params: AddNodeEventParams): Promise<AddNodeEventResult> {
    return addNodeEvent(this.#ops, params)
  }

  /** Completes, fails or keeps alive the callback a token names (README, "Callbacks"). */
  completeCallback(token: string, completion: unknown): Promise<CallbackAnswer> {
    return completeCallback(this.#ops, { token, completion })
  }

  /** Restarts a node and its descendants; on a terminal instance only with `force`. */
  restartNode(params: RestartNodeParams): Promise<OperationResult> {
    return restartNode(this.#ops, params)
  }

  /** Restarts a failed, canceled or parked instance, optionally with a new input. */
  restartInstance(params: RestartInstanceParams): Promise<OperationResult> {
    return restartInstance(this.#ops, params)
  }

  /** Cancels a non-terminal instance and its non-terminal nodes. Idempotent on a canceled instance. */
  cancel(instanceId: string, options: Omit<CancelParams, 'instanceId'> = {}): Promise<OperationResult> {
    return cancel(this.#ops, { ...options, instanceId })
  }

  // ---- reads (reads/) --------------------------------------------------------------------------------------

  /** The instance with every definition node in definition order (`uncreated` where a node has not started). */
  get(instanceId: string): Promise<InstanceDetail> {
    return getInstance(this.#ops, instanceId)
  }

  /** The status alone, from a small read; pass the previous view back to let the store read a smaller copy. */
  getStatus(instanceId: string, previous?: InstanceStatusView): Promise<InstanceStatusView> {
    return instanceStatus(this.#ops, instanceId, previous)
  }

  list(params: ListParams = {}): Promise<ListPage> {
    return listInstances(this.#ops, params)
  }

  count(params: CountParams = {}): Promise<CountResult> {
    return countInstances(this.#ops, params)
  }

  /** A page of the instance's history, oldest first (`limit` 1-500, default 100). */
  history(instanceId: string, options: { limit?: number; afterSeq?: number } = {}): Promise<HistoryPage> {
    return instanceHistory(this.#ops, instanceId, options)
  }

  /** The newest instance of a type and business id still running, else the newest one; undefined when none. */
  findByBusinessId(workflowType: string, businessId: string): Promise<string | undefined> {
    return findByBusinessId(this.#ops, workflowType, businessId)
  }

  /** The stored event of a node, for telling a re-delivered event from a different one. */
  storedEvent(instanceId: string, nodeId: string): Promise<NodeEventRecord | undefined> {
    return storedEvent(this.#ops, instanceId, nodeId)
  }

  // ---- recurring starts (operations/schedules.ts) ----------------------------------------------------------

  putSchedule(params: PutScheduleParams): Promise<RecurringSchedule> {
    return this.#schedules.put(params)
  }

  getSchedule(name: string): Promise<ScheduleView> {
    return this.#schedules.get(name)
  }

  listSchedules(): Promise<ScheduleView[]> {
    return this.#schedules.list()
  }

  deleteSchedule(name: string): Promise<void> {
    return this.#schedules.delete(name)
  }
}
