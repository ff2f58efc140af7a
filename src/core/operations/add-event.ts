import { type AddNodeEventParams, addNodeEventParamsSchema } from '../../schemas/engine-params.js'
import type { HistoryOrigin } from '../../schemas/history-kinds.js'
import type { WorkflowDefinition } from '../definition.js'
import { LockConflictError, NodeNotFoundError, PayloadTooLargeError, type TickflowError } from '../errors.js'
import { arrivalAfter, eventRefusal, sawEvent } from '../event-rules.js'
import { eventBytesAround, eventStoredBytes, growthBudget, instanceStoredBytes } from '../limits.js'
import {
  type EventGuard,
  EventReplacedError,
  type HistoryEntry,
  type InstanceRecord,
  type NodeEventRecord,
} from '../store.js'
import type { OperationDeps } from './deps.js'
import { mustGet } from './deps.js'
import { checkedJson, parseParams } from './parse.js'

export interface AddNodeEventResult {
  instanceId: string
  nodeId: string
  eventTs: number
  /** When the instance is due for the event: now; null when it is parked (the event waits for a restart). */
  dueAtMs: number | null
}

/** Tries of a guarded event write whose replaced event changed under it before it answers with a conflict. */
const MAX_TRIES = 5

/** The check of an event, from the stored record: the node exists, and the event may be stored (event-rules). */
export const eventCheck = (
  definition: WorkflowDefinition,
  record: InstanceRecord,
  nodeId: string,
  eventTs: number,
): TickflowError | undefined => {
  const node = definition.byId.get(nodeId)
  if (!node || node.synthetic) return new NodeNotFoundError(record.workflowType, nodeId)
  return eventRefusal(record, nodeId, { eventTs })
}

/**
 * How the event write keeps the instance within its budget: the size it adds over the event it replaces, guarded
 * in the write itself, so that concurrent events cannot together pass the budget.
 */
export const eventGuard = (
  record: InstanceRecord,
  nodeId: string,
  event: NodeEventRecord,
  maxBytes: number,
): EventGuard => {
  const replaces = record.events[nodeId] ?? null
  // The content of the event it replaces may be unread: the store said what it counts for.
  const unread = record.unread?.events[nodeId]
  const replacedBytes =
    unread === undefined ? eventStoredBytes(nodeId, replaces ?? undefined) : eventBytesAround(nodeId, unread)
  const guard = {
    replaces,
    addBytes: eventStoredBytes(nodeId, event) - replacedBytes,
    baseBytes: record.storedBytes ?? instanceStoredBytes(record),
    maxBytes,
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
  return guard
}

/** The history entry of an event; replacing one no pass has seen yet marks the replaced one superseded. */
const eventEntry = (
  record: InstanceRecord,
  nodeId: string,
  event: NodeEventRecord,
  origin: HistoryOrigin,
): HistoryEntry => {
  const replaces = record.events[nodeId]
  const entry: HistoryEntry = { atMs: event.receivedAtMs, kind: 'event', nodeId, eventTs: event.eventTs }
  if (replaces && !sawEvent(record.nodes[nodeId], replaces)) entry.replacesTs = replaces.eventTs
  entry.origin = origin
  return entry
}

/**
 * Stores an external event for a node (`node_event {event_content, event_ts}`) without waiting for the lease.
 * An older `eventTs` than the stored one is rejected; an equal one overwrites. The instance becomes due at once,
 * unless it is parked: it is not due until someone restarts it, and that pass sees the event.
 */
export const addNodeEvent = async (deps: OperationDeps, params: AddNodeEventParams): Promise<AddNodeEventResult> => {
  const p = parseParams(addNodeEventParamsSchema, params)
  const content = checkedJson(p.content ?? null, 'content', deps.limits)
  // The size is guarded in the write itself (see EventGuard): a concurrent replacement of the same node's event
  // makes it read again, at most a few times.
  for (let attempt = 1; ; attempt++) {
    // Statuses, events and sizes decide: what lives in items of its own need not be read.
    const record = await mustGet(deps, p.instanceId, { lazy: true })
    const refusal = eventCheck(await deps.definitions.of(record, false), record, p.nodeId, p.eventTs)
    if (refusal) throw refusal
    const now = deps.clock.nowMs()
    // Its own arrival, after the one it replaces: a node that saw that one sees this one as new (see sawEvent). The
    // guard makes it exact: the write lands only over the event read here.
    const event: NodeEventRecord = {
      eventTs: p.eventTs,
      content,
      receivedAtMs: arrivalAfter(now, record.events[p.nodeId]),
    }
    const guard = eventGuard(record, p.nodeId, event, growthBudget(deps.limits))
    const entry = deps.history ? eventEntry(record, p.nodeId, event, p.origin ?? 'engine') : undefined
    let stored: 'due' | 'parked'
    try {
      stored = await deps.leases.storeEvent(record.id, p.nodeId, event, now, guard, entry)
    } catch (error) {
      if (error instanceof EventReplacedError && attempt < MAX_TRIES) continue
      if (error instanceof EventReplacedError) throw new LockConflictError(record.id, undefined)
      throw error
    }
    return { instanceId: record.id, nodeId: p.nodeId, eventTs: p.eventTs, dueAtMs: stored === 'due' ? now : null }
  }
}
