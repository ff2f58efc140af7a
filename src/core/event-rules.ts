import { IllegalStateError, PayloadTooLargeError, StaleEventError, type TickflowError } from './errors.js'
import { jsonEquals } from './json.js'
import { isTerminalInstanceStatus, isTerminalNodeStatus } from './statuses.js'
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
