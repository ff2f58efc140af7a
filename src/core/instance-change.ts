import type { InstanceStatus } from '../schemas/statuses.js'
import type { JsonObject } from './json.js'
import type {
  CallbackArrival,
  FailureSummary,
  HistoryEntry,
  InstanceRecord,
  LifecycleEvent,
  NextAttempt,
  NodeRecord,
  ParkedState,
  PartsRead,
  PartsWanted,
} from './records.js'

/**
 * A change made under the lease, in the engine's terms: what changed, never how a store lays it out (the store's
 * writer decides that). Every field is optional except the time.
 */
export interface InstanceChange {
  updatedAtMs: number
  /** Node records to store whole (replacing what is there). */
  nodes?: Record<string, NodeRecord>
  status?: InstanceStatus
  input?: JsonObject
  /** undefined: leave as is; null: not due; a number: due at that time. */
  dueAtMs?: number | null
  /** Clear the lease in the same write. */
  release?: boolean
  /**
   * With `release`: the attempt the due time is for, if one is (see InstanceRecord.armNext); else none is kept. A
   * write that sets the due time without releasing keeps none either.
   */
  armNext?: NextAttempt
  /**
   * With `release`: the attempt the lease's acquisition recorded was made (its worker called), though this change
   * does not store its node (a refusal parked the instance): it stays recorded, for the next lease to count.
   */
  recordedAttemptMade?: boolean
  /** undefined: leave as is; null: remove; a value: park the instance. */
  parked?: ParkedState | null
  /** undefined: leave as is; null: remove. */
  farWakeAtMs?: number | null
  failure?: FailureSummary | null
  /** Replaces the whole map of prior inputs; null removes it. */
  priorInputs?: Record<string, JsonObject> | null
  /** undefined: leave as is; null: remove (a restarted instance); a value: expire the instance then (epoch seconds). */
  expiresAtSeconds?: number | null
  /** undefined: leave as is; null: remove; a number: the instance times out then. */
  deadlineAtMs?: number | null
  /** History entries to append to the instance's history in the same write (see `HistoryEntry`). */
  history?: HistoryEntry[]
  /** Added to the stored bytes (computed by the lease holder, the only writer of what it changes). */
  bytesDelta?: number
  /** The total before this change, as the holder counts it: where an instance stored without a total starts from. */
  bytesBase?: number
  /** With a positive `bytesDelta`: refused (ItemTooLargeError) if the stored bytes would exceed this. */
  maxBytes?: number
  /**
   * Callback arrivals the writer consumed (or found stale), by node, as it read them: each is removed — and its
   * bytes taken off the stored total — only while it is still the one stored (see sameArrival), never a later one.
   * Not part of the write's own condition: a store may remove them after the write has landed.
   */
  clearCallbacks?: Record<string, CallbackArrival>
  /** Lifecycle events this write emits: kept with the instance (its outbox) until published. */
  emits?: LifecycleEvent[]
}

/**
 * A node record's own copy: its fields and its attempt marker copied, its payload (output and overrides) shared.
 * The engine never changes a payload in place — it replaces it —, so copies of a record may share one.
 */
export const copyNodeRecord = (node: NodeRecord): NodeRecord =>
  node.attemptStarted === undefined ? { ...node } : { ...node, attemptStarted: { ...node.attemptStarted } }

/**
 * An instance record's own copy, for a holder that changes it field by field (a pass): every node record, event,
 * map and summary copied; JSON payloads (input, outputs, event contents, prior inputs) shared, never changed in
 * place. What a deep copy of every write would cost, without serialising what does not change.
 */
export const copyInstanceRecord = (record: InstanceRecord): InstanceRecord => {
  const copy: InstanceRecord = { ...record, nodes: {}, events: {} }
  for (const [id, node] of Object.entries(record.nodes)) copy.nodes[id] = copyNodeRecord(node)
  for (const [id, event] of Object.entries(record.events)) copy.events[id] = { ...event }
  if (record.priorInputs !== undefined) copy.priorInputs = { ...record.priorInputs }
  if (record.callbacks !== undefined) copy.callbacks = { ...record.callbacks }
  if (record.failure !== undefined) copy.failure = { ...record.failure }
  if (record.parked !== undefined) copy.parked = { ...record.parked }
  if (record.unread !== undefined) {
    const { nodes, events, priorInputs } = record.unread
    copy.unread = { ...record.unread, nodes: { ...nodes }, events: { ...events }, priorInputs: { ...priorInputs } }
  }
  return copy
}

/**
 * The record with `change` applied, as every store must apply it: the meaning of a change, whatever the layout.
 * History entries are not part of the record (a store keeps them for `readHistory`).
 */
export const applyChange = (record: InstanceRecord, change: InstanceChange): InstanceRecord => {
  const next: InstanceRecord = { ...record, nodes: { ...record.nodes }, updatedAtMs: change.updatedAtMs }
  for (const [id, node] of Object.entries(change.nodes ?? {})) next.nodes[id] = structuredClone(node)
  if (change.status !== undefined) next.status = change.status
  if (change.input !== undefined) next.input = structuredClone(change.input)
  if (change.dueAtMs === null) delete next.dueAtMs
  else if (change.dueAtMs !== undefined) next.dueAtMs = change.dueAtMs
  if (change.parked === null) delete next.parked
  else if (change.parked !== undefined) next.parked = { ...change.parked }
  if (change.farWakeAtMs === null) delete next.farWakeAtMs
  else if (change.farWakeAtMs !== undefined) next.farWakeAtMs = change.farWakeAtMs
  if (change.failure === null) delete next.failure
  else if (change.failure !== undefined) next.failure = { ...change.failure }
  if (change.priorInputs === null) delete next.priorInputs
  else if (change.priorInputs !== undefined) next.priorInputs = structuredClone(change.priorInputs)
  if (change.deadlineAtMs === null) delete next.deadlineAtMs
  else if (change.deadlineAtMs !== undefined) next.deadlineAtMs = change.deadlineAtMs
  if (change.bytesDelta !== undefined) {
    next.storedBytes = (next.storedBytes ?? change.bytesBase ?? 0) + change.bytesDelta
  }
  if (change.expiresAtSeconds === null) delete next.expiresAtSeconds
  else if (change.expiresAtSeconds !== undefined) next.expiresAtSeconds = change.expiresAtSeconds
  if (change.release) {
    delete next.leaseOwner
    delete next.leaseUntilMs
    if (change.armNext) next.armNext = { ...change.armNext }
    else delete next.armNext
  } else if (change.dueAtMs !== undefined) delete next.armNext
  applyCallbacksAndOutbox(next, change)
  return next
}

/** The record with parts it had not read filled in (see InstanceRecord.unread); what is still unread stays marked. */
export const withPartsRead = (record: InstanceRecord, read: PartsRead): void => {
  const unread = record.unread
  for (const [id, parts] of Object.entries(read.nodes)) {
    const node = record.nodes[id]
    if (node) {
      node.output = parts.output
      if (parts.workflowContext === undefined) delete node.workflowContext
      else node.workflowContext = parts.workflowContext
      if (parts.preNodeContext === undefined) delete node.preNodeContext
      else node.preNodeContext = parts.preNodeContext
    }
    if (unread) delete unread.nodes[id]
  }
  for (const [id, content] of Object.entries(read.events)) {
    const event = record.events[id]
    if (event) event.content = content
    if (unread) delete unread.events[id]
  }
  if (read.input !== undefined) {
    record.input = read.input
    if (unread) delete unread.input
  }
  for (const [key, input] of Object.entries(read.priorInputs)) {
    record.priorInputs = { ...record.priorInputs, [key]: input }
    if (unread) delete unread.priorInputs[key]
  }
  if (
    unread &&
    !Object.keys(unread.nodes).length &&
    !Object.keys(unread.events).length &&
    unread.input === undefined &&
    !Object.keys(unread.priorInputs).length
  ) {
    delete record.unread
  }
}

/** The parts of `record` a pass needs to run `nodeId`: its own and its predecessors' payloads and events, inputs. */
export const partsFor = (
  record: InstanceRecord,
  nodeIds: Iterable<string>,
  predecessors: (nodeId: string) => readonly string[],
): PartsWanted => {
  const nodes = new Set<string>()
  const priorInputs = new Set<string>()
  for (const id of nodeIds) {
    nodes.add(id)
    for (const prev of predecessors(id)) nodes.add(prev)
    const inputRef = record.nodes[id]?.inputRef
    if (inputRef !== undefined) priorInputs.add(inputRef)
  }
  return { nodes: [...nodes], events: [...nodes], input: true, priorInputs: [...priorInputs] }
}

/** Everything a record left unread. */
export const everythingUnread = (record: InstanceRecord): PartsWanted => ({
  nodes: Object.keys(record.unread?.nodes ?? {}),
  events: Object.keys(record.unread?.events ?? {}),
  input: record.unread?.input !== undefined,
  priorInputs: Object.keys(record.unread?.priorInputs ?? {}),
})
/**
 * The arrival stored is the one a writer read: of the same call and fence, and the same completion or none. (Only a
 * heartbeat of the same call can have replaced a heartbeat, which changes nothing a clearing would lose.)
 */
export const sameArrival = (stored: CallbackArrival | undefined, seen: CallbackArrival): boolean =>
  stored !== undefined &&
  stored.call === seen.call &&
  stored.fence === seen.fence &&
  stored.completion?.fingerprint === seen.completion?.fingerprint

/**
 * The callback arrivals a change consumed leave the record, with the bytes they counted for — each only if it is
 * still the one its writer read; the events it emits join its outbox.
 */
const applyCallbacksAndOutbox = (next: InstanceRecord, change: InstanceChange): void => {
  const cleared = Object.entries(change.clearCallbacks ?? {})
  if (cleared.length && next.callbacks) {
    const callbacks = { ...next.callbacks }
    for (const [nodeId, seen] of cleared) {
      if (!sameArrival(callbacks[nodeId], seen)) continue
      delete callbacks[nodeId]
      if (next.storedBytes !== undefined) next.storedBytes -= seen.storedBytes ?? 0
    }
    if (Object.keys(callbacks).length) next.callbacks = callbacks
    else delete next.callbacks
  }
  if (change.emits?.length) next.outbox = [...(next.outbox ?? []), ...structuredClone(change.emits)]
}
