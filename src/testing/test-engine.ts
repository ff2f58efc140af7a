import { MemoryStore } from '../adapters/memory/memory-store.js'
import type { WorkflowModule } from '../core/builder.js'
import { type CallbackClaims, type CallbackTokens, callbackTokens } from '../core/callback-token.js'
import type { CallbackCompletion } from '../core/callbacks.js'
import { Engine, type EngineDeps, type InstanceDetail } from '../core/engine.js'
import type { JsonValue } from '../core/json.js'
import type { EventPublisher, LifecycleEvent } from '../core/lifecycle-events.js'
import type { HistoryEntry } from '../core/store.js'
import type { CallbackAnswer } from '../schemas/callbacks.js'
import { type PublishedDetail, publishedDetail } from '../schemas/lifecycle-events.js'
import { createIdGenerator } from '../system/defaults.js'
import { durationMs, VirtualClock } from './virtual-clock.js'

export interface TestEngineOptions {
  /** The workflows to register (more with `register`). */
  workflows?: readonly WorkflowModule[]
  /** Where the virtual clock starts (ms since epoch); default 2026-01-01T00:00:00Z. */
  startAtMs?: number
  /** The jitter of retries: a number in [0, 1) every time (default 0, no jitter). */
  random?: number
  /** Passes one `advance` may run before it stops with an error (a workflow that never waits); default 100,000. */
  maxPasses?: number
  /** Publish node status changes too, for these types (`true`: all). */
  nodeEventTypes?: readonly string[] | boolean
  /** Anything else of the engine (limits, retention, …). */
  engine?: Partial<Omit<EngineDeps, 'store' | 'clock' | 'ids' | 'random'>>
}

/** A lifecycle event as it was published. */
export interface PublishedEvent {
  detailType: string
  detail: PublishedDetail
}

/** The engine on the memory store, with a virtual clock that `advance` moves: see the README, "Testing". */
export interface TestEngine {
  /** The engine itself: every operation and read. */
  readonly engine: Engine
  readonly store: MemoryStore
  readonly clock: VirtualClock
  /** The virtual time (ms since epoch). */
  now(): number
  register(workflow: WorkflowModule): void
  /** Creates an instance and runs its first pass; the instance as it then is. */
  start(workflowType: string, input?: Record<string, JsonValue>, options?: StartOptions): Promise<InstanceDetail>
  /**
   * Moves the clock forward by `duration` (`'2h'`, `'90s'`, ms), running every wake-up, retry, deadline and
   * callback timeout due in that span, in time order, each at its own time.
   */
  advance(duration: string | number): Promise<void>
  /** Sends an external event to a node (`eventTs` default: now, in seconds) and runs what becomes due. */
  sendEvent(instanceId: string, nodeId: string, content: JsonValue, eventTs?: number): Promise<void>
  /** Completes a callback, by its token or by the node that asked for it, and runs what becomes due. */
  completeCallback(token: string, completion: CallbackCompletion): Promise<CallbackAnswer>
  completeCallback(instanceId: string, nodeId: string, completion: CallbackCompletion): Promise<CallbackAnswer>
  /** The last callback token a node's worker was given. */
  callbackToken(instanceId: string, nodeId: string): string
  instance(instanceId: string): Promise<InstanceDetail>
  /** The whole history of the instance, oldest first. */
  history(instanceId: string): Promise<HistoryEntry[]>
  /** Every lifecycle event published so far, in order. */
  events(): PublishedEvent[]
}

export interface StartOptions {
  businessId?: string
  id?: string
}

/** A fixed secret: tokens of a test engine are real tokens, of a deployment nobody runs. */
const TEST_SECRET = 'tickflow-test-engine-callback-secret-not-for-deployments'

/**
 * The engine exactly as deployed (the same core, operations and pass), on the in-memory store and a virtual clock:
 * time moves only in `advance`, so a workflow that waits a day is tested in milliseconds. No DynamoDB, no timers.
 */
export const createTestEngine = (options: TestEngineOptions = {}): TestEngine => {
  const clock = new VirtualClock(options.startAtMs ?? Date.UTC(2026, 0, 1))
  const store = new MemoryStore()
  const published: PublishedEvent[] = []
  const publisher: EventPublisher = {
    publish: async (events: readonly LifecycleEvent[], { resent }) => {
      for (const event of events)
        published.push({ detailType: event.detailType, detail: publishedDetail(event, resent) })
      return { failed: [] }
    },
  }
  const issued = new Map<string, string>()
  const inner = callbackTokens([TEST_SECRET])
  const tokens: CallbackTokens = {
    issue: async (claims: CallbackClaims) => {
      const token = await inner.issue(claims)
      issued.set(`${claims.instanceId}\u0000${claims.nodeId}`, token)
      return token
    },
    open: (token) => inner.open(token),
  }
  const random = options.random ?? 0
  const engine = new Engine({
    callbacks: { tokens, baseUrl: 'http://tickflow.test' },
    lifecycle: { publisher, nodeEventTypes: options.nodeEventTypes ?? false },
    ...options.engine,
    store,
    clock,
    ids: createIdGenerator(clock),
    random: { next: () => random },
  })
  for (const workflow of options.workflows ?? []) engine.register(workflow)
  const maxPasses = options.maxPasses ?? 100_000

  /** Runs every instance due at or before now, until none is; then `passes` counts what ran. */
  const drain = async (budget: { passes: number }): Promise<void> => {
    for (;;) {
      const { items } = await store.queryDue(0, clock.nowMs(), 100)
      if (!items.length) return
      for (const item of items) {
        if (++budget.passes > maxPasses) {
          throw new Error(`more than ${maxPasses} passes in one advance: is a node due again at once, forever?`)
        }
        await engine.runWorkflow(item.instanceId, { mode: 'due' })
      }
    }
  }

  const nextDue = async (): Promise<number | undefined> => {
    const { items } = await store.queryDue(0, Number.MAX_SAFE_INTEGER, 1)
    return items[0]?.dueAtMs
  }

  const advance = async (duration: string | number): Promise<void> => {
    const target = clock.nowMs() + durationMs(duration)
    const budget = { passes: 0 }
    await drain(budget)
    for (let due = await nextDue(); due !== undefined && due <= target; due = await nextDue()) {
      clock.moveTo(due)
      await drain(budget)
    }
    clock.moveTo(target)
    await drain(budget)
  }

  const settled = async <T>(result: T): Promise<T> => {
    await drain({ passes: 0 })
    return result
  }

  const history = async (instanceId: string): Promise<HistoryEntry[]> => {
    const entries: HistoryEntry[] = []
    for (let afterSeq: number | undefined; ; ) {
      const page = await engine.history(instanceId, { limit: 500, ...(afterSeq === undefined ? {} : { afterSeq }) })
      entries.push(...page.entries)
      if (page.nextAfterSeq === undefined) return entries
      afterSeq = page.nextAfterSeq
    }
  }

  const tokenOf = (instanceId: string, nodeId: string): string => {
    const token = issued.get(`${instanceId}\u0000${nodeId}`)
    if (token === undefined) throw new Error(`node '${nodeId}' of ${instanceId} has asked for no callback`)
    return token
  }

  return {
    engine,
    store,
    clock,
    now: () => clock.nowMs(),
    register: (workflow) => void engine.register(workflow),
    start: async (workflowType, input = {}, startOptions = {}) => {
      const { instanceId } = await engine.create({ workflowType, context: input, ...startOptions })
      await drain({ passes: 0 })
      return engine.get(instanceId)
    },
    advance,
    sendEvent: async (instanceId, nodeId, content, eventTs = Math.floor(clock.nowMs() / 1000)) =>
      settled(void (await engine.addNodeEvent({ instanceId, nodeId, eventTs, content }))),
    completeCallback: async (first: string, second: string | CallbackCompletion, third?: CallbackCompletion) => {
      const [token, completion] =
        typeof second === 'string' ? [tokenOf(first, second), third as CallbackCompletion] : [first, second]
      return settled(await engine.completeCallback(token, completion))
    },
    callbackToken: tokenOf,
    instance: (instanceId) => engine.get(instanceId),
    history,
    events: () => [...published],
  }
}
