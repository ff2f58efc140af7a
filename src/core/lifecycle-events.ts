import { type InstanceStatus, isTerminalInstanceStatus, type StoredNodeStatus } from '../schemas/statuses.js'
import type { DeadLetterSink } from './dispatch-ports.js'
import type { InstanceChange } from './instance-change.js'
import type { Metrics } from './metrics.js'
import type { Clock, Logger } from './ports.js'
import type { InstanceRecord, LifecycleDetail, LifecycleEvent, LifecycleEventKind } from './records.js'

/**
 * Lifecycle events out (README, "Lifecycle events"): instance status changes — and, for the workflow types that
 * opt in, node status changes — published to an event bus through an outbox. The events a write emits travel in
 * that very write (the change record names them; the store keeps them with the instance, and marks the instance in
 * a sparse outbox index); they are published only once it has landed, and removed once published. A writer that
 * dies between the two leaves them for whoever reads the instance next (any lease acquisition sees them, and the
 * tick sends the instances of the outbox index to the run queue): nothing is lost, and an event published again is
 * marked `resent`, with the same event id.
 */

/** The `source` of every event. */
export const LIFECYCLE_EVENT_SOURCE = 'tickflow'

/** The `detail-type` of each kind of event. */
export const LifecycleDetailType = {
  instance: 'Workflow Instance Status Change',
  node: 'Workflow Node Status Change',
} as const satisfies Record<string, LifecycleEventKind>
export type LifecycleDetailType = LifecycleEventKind

/** The version of `detail`: fields may be added within a version, never renamed or removed. */
export const LIFECYCLE_DETAIL_VERSION = 1

export type { LifecycleDetail, LifecycleEvent } from './records.js'

/** Where events go: EventBridge deployed, an in-process bus locally, a list in tests. */
export interface EventPublisher {
  /**
   * Publishes the events (`resent`: they may have been published before); answers the ids of those that were not
   * accepted, to be published again later.
   */
  publish(events: readonly LifecycleEvent[], options: { resent: boolean }): Promise<{ failed: string[] }>
}

/** What the store keeps of the outbox: removal of published entries. */
export interface OutboxStore {
  /**
   * Removes the events from the instance's outbox; once none is left, the instance leaves the outbox index (with no
   * events: only that). No error when they are gone already.
   */
  clearOutbox(instanceId: string, events: readonly LifecycleEvent[]): Promise<void>
}

export interface LifecycleOptions {
  publisher: EventPublisher
  /** The workflow types whose node status changes are published too (`true`: every type). */
  nodeEventTypes?: readonly string[] | boolean
  /** Events still unpublished this long after their write are sent here with the reason, and removed. */
  deadLetters?: DeadLetterSink
  /** Default one day. */
  deadLetterAfterMs?: number
}

/** Entries found younger than this belong to a writer that is still publishing them: it is left to it. */
export const OUTBOX_GRACE_MS = 30_000
/** The most unpublished events an instance keeps: beyond, new ones are dropped and counted (README). */
export const MAX_PENDING_EVENTS = 100
const DEFAULT_DEAD_LETTER_AFTER_MS = 86_400_000

/** What a change's events are derived from: the statuses as stored before it. */
export interface StatusesBefore {
  status: InstanceStatus | undefined
  nodes: Readonly<Record<string, StoredNodeStatus>>
}

/** What a change says of one event: the rest of its detail is the instance's. */
type OwnDetail = Pick<
  LifecycleDetail,
  'status' | 'previousStatus' | 'reason' | 'nodeId' | 'attempt' | 'failCount' | 'optional'
>
type PushEvent = (detailType: LifecycleDetailType, detail: OwnDetail) => void

/** The events, and their publication, of one engine. */
export class Lifecycle {
  readonly #nodeTypes: ReadonlySet<string> | boolean

  constructor(
    readonly options: LifecycleOptions,
    readonly deps: { clock: Clock; logger: Logger; metrics?: Metrics | undefined },
  ) {
    const types = options.nodeEventTypes ?? false
    this.#nodeTypes = typeof types === 'boolean' ? types : new Set(types)
  }

  #nodeEvents(workflowType: string): boolean {
    return typeof this.#nodeTypes === 'boolean' ? this.#nodeTypes : this.#nodeTypes.has(workflowType)
  }

  /**
   * The events `change` makes of `record` (its node status changes, when the type opted in, then its own status
   * change), each with an id from `nextId`; none beyond MAX_PENDING_EVENTS unpublished ones (`pending`).
   */
  eventsOf(
    record: InstanceRecord,
    before: StatusesBefore,
    change: InstanceChange,
    pending: number,
    nextId: () => string,
    /** Whether a node is `optional` in the instance's definition (its failure is `failed_optional`). */
    isOptional: (nodeId: string) => boolean = () => false,
  ): LifecycleEvent[] {
    const nowMs = change.updatedAtMs
    const base = {
      version: LIFECYCLE_DETAIL_VERSION,
      instanceId: record.id,
      workflowType: record.workflowType,
      ...(record.businessId === undefined ? {} : { businessId: record.businessId }),
      definitionVersion: record.definitionVersion,
      createdAtMs: record.createdAtMs,
      timeMs: nowMs,
    } as const
    const events: LifecycleEvent[] = []
    const push: PushEvent = (detailType, detail) => {
      const id = nextId()
      events.push({ id, detailType, detail: { ...base, eventId: id, ...detail } })
    }
    // An instance that starts (or starts again) is announced before its nodes; one that ends, after them.
    const ends = change.status !== undefined && isTerminalInstanceStatus(change.status)
    if (!ends) this.#instanceEvent(record, before, change, push)
    if (this.#nodeEvents(record.workflowType)) {
      for (const [nodeId, node] of Object.entries(change.nodes ?? {})) {
        const previous = before.nodes[nodeId]
        if (previous === node.status) continue
        const failed = node.status === 'failed'
        const reason = failed ? node.lastError : node.status === 'skipped' ? node.skipReason : undefined
        push(LifecycleDetailType.node, {
          status: node.status,
          ...(previous === undefined ? {} : { previousStatus: previous }),
          nodeId,
          attempt: node.attempt,
          failCount: node.failCount,
          ...(reason === undefined ? {} : { reason: reason.slice(0, 1000) }),
          ...(failed && isOptional(nodeId) ? { optional: true as const } : {}),
        })
      }
    }
    if (ends) this.#instanceEvent(record, before, change, push)
    const room = Math.max(0, MAX_PENDING_EVENTS - pending)
    if (events.length > room) {
      this.deps.logger.log('error', 'lifecycle events dropped: the instance has too many unpublished events', {
        instanceId: record.id,
        workflowType: record.workflowType,
        dropped: events.length - room,
      })
    }
    return events.slice(0, room)
  }

  #instanceEvent(record: InstanceRecord, before: StatusesBefore, change: InstanceChange, push: PushEvent): void {
    if (change.status === undefined || change.status === before.status) return
    const failure = change.failure === undefined ? record.failure : (change.failure ?? undefined)
    const failed = change.status === 'failed' || change.status === 'timed_out'
    push(LifecycleDetailType.instance, {
      status: change.status,
      ...(before.status === undefined ? {} : { previousStatus: before.status }),
      ...(failed && failure ? { reason: failure.reason } : {}),
      ...(failed && failure?.nodeId ? { nodeId: failure.nodeId } : {}),
    })
  }

  /** Publishes events whose write landed; answers those published (the others stay in the outbox). */
  async publish(instanceId: string, events: readonly LifecycleEvent[], resent: boolean): Promise<LifecycleEvent[]> {
    if (!events.length) return []
    try {
      const { failed } = await this.options.publisher.publish(events, { resent })
      if (failed.length) {
        this.deps.logger.log('warn', 'lifecycle events not published; they stay in the outbox', {
          instanceId,
          failed: failed.length,
        })
      }
      const refused = new Set(failed)
      return events.filter((event) => !refused.has(event.id))
    } catch (error) {
      this.deps.logger.log('warn', 'lifecycle events not published; they stay in the outbox', {
        instanceId,
        error: error instanceof Error ? error.message : String(error),
      })
      return []
    }
  }

  /** Removes published events from the outbox (best effort: what stays is published again, marked resent). */
  async settle(store: OutboxStore, instanceId: string, events: readonly LifecycleEvent[]): Promise<void> {
    await store.clearOutbox(instanceId, events).catch((error: unknown) => {
      this.deps.logger.log('warn', 'published lifecycle events not cleared; they will be published again', {
        instanceId,
        error: error instanceof Error ? error.message : String(error),
      })
    })
  }

  /**
   * Events found unpublished in an instance as read (a writer died after its write, or the bus refused them):
   * those older than OUTBOX_GRACE_MS are published again, marked resent — or, older than the dead-letter age and
   * still refused, dead-lettered with the reason. Answers the events to clear.
   */
  async recover(instanceId: string, outbox: readonly LifecycleEvent[] | undefined): Promise<LifecycleEvent[]> {
    const now = this.deps.clock.nowMs()
    const due = (outbox ?? []).filter((event) => event.detail.timeMs <= now - OUTBOX_GRACE_MS)
    if (!due.length) return []
    const done = new Set(await this.publish(instanceId, due, true))
    const deadLetters = this.options.deadLetters
    const deadAfter = this.options.deadLetterAfterMs ?? DEFAULT_DEAD_LETTER_AFTER_MS
    for (const event of due) {
      if (done.has(event) || !deadLetters || event.detail.timeMs > now - deadAfter) continue
      const reason = `lifecycle event not published within ${Math.round(deadAfter / 60_000)} min`
      const sent = await deadLetters
        .send({ body: JSON.stringify(event), reason, source: 'lifecycle', messageId: event.id })
        .then(() => true)
        .catch(() => false)
      if (sent) done.add(event)
    }
    return [...done]
  }
}

/** A page of the outbox index: instances with unpublished events, and since when. */
export interface OutboxPage {
  items: { instanceId: string; sinceMs: number }[]
  cursor?: string
}

/** Where the outbox marks an instance (the sparse index the tick reads), as a store spreads it. */
export interface OutboxIndex {
  readonly outboxShards: number
  /** Instances of one shard with events unpublished since at or before `beforeMs`, oldest first. */
  queryOutbox(shard: number, beforeMs: number, limit: number, cursor?: string): Promise<OutboxPage>
}
