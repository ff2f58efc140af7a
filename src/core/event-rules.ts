import { isTerminalInstanceStatus, isTerminalNodeStatus } from '../schemas/statuses.js'
import { IllegalStateError, PayloadTooLargeError, StaleEventError, type TickflowError } from './errors.js'
import { jsonEquals } from './json.js'
import type { NodeRecord } from './records.js'
import { type EventGuard, EventReplacedError, type InstanceRecord, type NodeEventRecord } from './store.js'

/**
 * Why an event cannot be stored, or undefined when it can. An older event is reported as stale before anything
 * else: it lost to a newer one whatever happened since, so its sender is told so (and a queue acknowledges it).
 */
export const eventRefusal = (
  record: InstanceRecord,
  nodeId: string,
  event: Pick<NodeEventRecord, 'eventTs'>,
): TickflowError | undefined => {
  const stored = record.events[nodeId]
  if (stored && stored.eventTs > event.eventTs) {
    return new StaleEventError(record.id, nodeId, event.eventTs, stored.eventTs)
  }
  if (isTerminalInstanceStatus(record.status)) {
    return new IllegalStateError(`workflow instance '${record.id}' is ${record.status}: it takes no more events`, {
      instanceId: record.id,
      status: record.status,
    })
  }
  const status = record.nodes[nodeId]?.status
  if (status && isTerminalNodeStatus(status)) {
    return new IllegalStateError(`node '${nodeId}' is ${status}: it takes no more events`, {
      instanceId: record.id,
      nodeId,
      status,
    })
  }
  return undefined
}

/**
 * The node's last execution saw this event: the same `eventTs` and, where the node recorded it, the same arrival
 * (an event sent again with the same `eventTs` overwrites, and is new to the node).
 */
export const sawEvent = (
  node: Pick<NodeRecord, 'seenEventTs' | 'seenEventAtMs'> | undefined,
  event: Pick<NodeEventRecord, 'eventTs' | 'receivedAtMs'>,
): boolean =>
  node?.seenEventTs === event.eventTs && (node.seenEventAtMs === undefined || node.seenEventAtMs === event.receivedAtMs)

/**
 * When an event is stored: now, or just after the event it replaces (`replaced`) when that one was stored at the
 * same millisecond or later, so that every event a node is sent has an arrival of its own (see `sawEvent`).
 */
export const arrivalAfter = (nowMs: number, replaced: Pick<NodeEventRecord, 'receivedAtMs'> | undefined): number =>
  replaced === undefined ? nowMs : Math.max(nowMs, replaced.receivedAtMs + 1)

/** The stored event is this very one (same version, content and arrival): a retried write that had landed. */
export const isSameEvent = (stored: NodeEventRecord | undefined, event: NodeEventRecord): boolean =>
  stored !== undefined &&
  stored.eventTs === event.eventTs &&
  stored.receivedAtMs === event.receivedAtMs &&
  jsonEquals(stored.content, event.content)

/** Why a guarded event write was refused when the event is neither stale nor for a terminal node. */
export const guardRefusal = (record: InstanceRecord, nodeId: string, guard: EventGuard): Error => {
  const stored = record.events[nodeId]
  const replaced = guard.replaces
  if (
    (stored === undefined) !== (replaced === null) ||
    (stored && replaced && (stored.eventTs !== replaced.eventTs || stored.receivedAtMs !== replaced.receivedAtMs))
  ) {
    return new EventReplacedError(`the event of node '${nodeId}' changed since it was read`)
  }
  const bytes = (record.storedBytes ?? 0) + guard.addBytes
  return new PayloadTooLargeError(
    `content would make the instance store ${bytes} bytes, over its budget of ${guard.maxBytes}`,
    'content',
    bytes,
    guard.maxBytes,
  )
}

/**
 * The guard's condition, as a store evaluates it in the write: the event it replaces is still the stored one, and
 * an event that grows the instance has room (an item stored without a total is not held to it).
 */
export const guardHolds = (record: InstanceRecord, nodeId: string, guard: EventGuard): boolean => {
  const stored = record.events[nodeId]
  const replaced = guard.replaces
  const same =
    stored === undefined
      ? replaced === null
      : replaced !== null && stored.eventTs === replaced.eventTs && stored.receivedAtMs === replaced.receivedAtMs
  const room =
    guard.addBytes <= 0 || record.storedBytes === undefined || record.storedBytes + guard.addBytes <= guard.maxBytes
  return same && room
}

/**
 * What an event write whose condition failed means, from the item as it was: `landed` when the stored event is
 * this very one (a write retried after its answer was lost, and since acted on by a pass), else the refusal.
 */
export const eventWriteRefusal = (
  record: InstanceRecord,
  nodeId: string,
  event: NodeEventRecord,
  guard?: EventGuard,
): 'landed' | Error => {
  if (isSameEvent(record.events[nodeId], event)) return 'landed'
  const refusal = eventRefusal(record, nodeId, event)
  if (refusal) return refusal
  if (guard) return guardRefusal(record, nodeId, guard)
  return new StaleEventError(record.id, nodeId, event.eventTs, event.eventTs)
}
