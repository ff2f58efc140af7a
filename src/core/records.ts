import type { HistoryKind, HistoryOrigin } from '../schemas/history-kinds.js'
import type { ParkCode } from '../schemas/park-codes.js'
import type { InstanceStatus, SkipReason, StoredNodeStatus } from '../schemas/statuses.js'
import type { JsonObject, JsonValue } from './json.js'

/**
 * The records of an instance as the engine knows them, whatever store keeps them: what the store port (`store.ts`)
 * hands out and takes, and what a change (`instance-change.ts`) changes.
 */

/** One started node of an instance, as stored. */
export interface NodeRecord {
  status: StoredNodeStatus
  failCount: number
  createdAtMs: number
  updatedAtMs: number
  /** 1 + number of restarts of this node; part of the idempotency key handed to workers. */
  attempt: number
  /** Consecutive waits (NotReady, errors) of the current step, for the retry backoff. */
  waits: number
  /** When a waiting node should next be executed by a due pass. */
  nextAttemptAtMs?: number
  /**
   * `event_ts` of the external event the last execution saw, and when that event was received (`seenEventAtMs`):
   * together they name it, so any other event — a newer one, or one sent again with the same `event_ts`, which
   * overwrites — makes the node due at once. A record stored without the time names the event by `event_ts` alone.
   */
  seenEventTs?: number
  seenEventAtMs?: number
  /** The node's context without the parts derived from elsewhere (pre_node_context, workflow_context, node_event). */
  output: JsonObject
  /** Stored only when a worker changed its copy of the instance input. */
  workflowContext?: JsonObject
  /**
   * The node ran with an earlier input, replaced by a restart with a new context: the key of that input in the
   * instance's `priorInputs` (stored once however many nodes ran with it).
   */
  inputRef?: string
  /** Stored only when a worker changed its copy of its predecessors' outputs, or they can no longer be derived. */
  preNodeContext?: JsonObject
  /** A restart asked to reset fail count and creation time when the node is re-initialised. */
  resetOnRestart?: boolean
  /** Worker calls started for this node (run and check), over its whole life. */
  calls?: number
  /**
   * The last error of the node (`system.last_error` in its context, cut to LAST_ERROR_CHARS) and when it happened
   * (`system.last_error_time`, epoch seconds). Kept in the record, not in the node's own output: an attempt that
   * changes only these does not rewrite what the worker stored.
   */
  lastError?: string
  lastErrorAtSeconds?: number
  /**
   * The attempt in flight: stored before its worker is called and cleared with its outcome. A pass that finds one
   * left by an earlier lease counts it as a failed attempt (the runner died, hung or lost its lease).
   */
  attemptStarted?: AttemptStarted
  /** Why a `skipped` node was skipped. */
  skipReason?: SkipReason
  /** For a node with a choice, once it completed: the successor the choice took (`null`: none). */
  chosen?: string | null
  /** The callback the node's worker asked for (see callbacks.ts): open while the node waits for it. */
  callback?: CallbackWait
}

export interface AttemptStarted {
  step: 'run' | 'check'
  atMs: number
  /** The fence of the lease the attempt ran under. */
  fence: number
}

/** Why an instance that is not terminal waits for nobody: it cannot run until someone fixes it and restarts it. */
export interface ParkedState {
  /** Why, from one vocabulary (see ParkCode). */
  code: ParkCode
  reason: string
  atMs: number
}

/** Why a failed instance failed: the node (when one did) and the reason, for the detail's summary. */
export interface FailureSummary {
  nodeId?: string
  reason: string
  atMs: number
}

/**
 * One entry of an instance's history: compact (no contexts or outputs; messages cut to HISTORY_MESSAGE_CHARS), so
 * that it travels in the writes the engine makes anyway.
 */
export interface HistoryEntry {
  /** Position in the instance's history, from 0; set on reads (gaps: entries dropped at the cap). */
  seq?: number
  atMs: number
  kind: HistoryKind
  nodeId?: string
  /** The node's new status (kind node), the instance's final status (finished). */
  status?: string
  attempt?: number
  /** For a node that settled: from the node's creation (or restart) to now. */
  durationMs?: number
  /** Of an event (seconds, as the caller gave it). */
  eventTs?: number
  /** An event replaced by a newer one before any pass saw it; set on reads. */
  superseded?: boolean
  /** Of an event: the eventTs of the stored event it replaced that no pass had seen. */
  replacesTs?: number
  errorClass?: string
  message?: string
  /** Parked: the code; a node skipped: its skip reason; a decision: what was decided. */
  code?: string
  origin?: HistoryOrigin
}

export interface NodeEventRecord {
  /** Seconds, as the caller gave it; versions the event (older rejected, equal overwrites). */
  eventTs: number
  content: JsonValue
  /**
   * When it was stored; later than the event it replaces (by 1 ms when both arrive within the same millisecond), so
   * that with `eventTs` it names this event among those a node was sent (see NodeRecord.seenEventAtMs).
   */
  receivedAtMs: number
}

export interface InstanceRecord {
  id: string
  workflowType: string
  businessId?: string
  status: InstanceStatus
  input: JsonObject
  createdAtMs: number
  updatedAtMs: number
  definitionVersion: string
  nodes: Record<string, NodeRecord>
  events: Record<string, NodeEventRecord>
  /** Grows with every stored event: a pass compares it to learn that an event arrived while it ran. */
  eventSeq: number
  /** Fencing token: grows with every lease acquisition. */
  fence: number
  leaseOwner?: string
  leaseUntilMs?: number
  /** When the instance next needs attention; absent for idle and terminal instances. */
  dueAtMs?: number
  /** Fingerprint of the create request, for idempotent creates with a client-chosen id. */
  requestHash?: string
  /** A delayed start: the instance stays `init` until then, whatever arrives. */
  startAtMs?: number
  /** Present while the instance cannot run (see ParkedState); a parked instance is not due. */
  parked?: ParkedState
  /** When a one-time schedule (beyond the queue's delay limit) was asked to wake the instance. */
  farWakeAtMs?: number
  failure?: FailureSummary
  /** Inputs replaced by restarts that completed nodes still ran with, by key (see NodeRecord.inputRef). */
  priorInputs?: Record<string, JsonObject>
  /**
   * What the instance stores, as the engine counts it (see `instanceStoredBytes`), kept by the store: every write
   * adds the difference it makes, and writes that grow the instance are conditioned on it.
   */
  storedBytes?: number
  /** A finished instance expires then (epoch seconds: the table's TTL attribute); absent while it runs. */
  expiresAtSeconds?: number
  /**
   * When the instance times out (`timeout_seconds` after it started running or was restarted); absent when its
   * definition sets no timeout.
   */
  deadlineAtMs?: number
  /**
   * Parts a store handed out without reading them (kept in items of its own): their values in this record are
   * placeholders until a lease reads them by key (`LeaseWriter.read`). Absent when everything was read.
   */
  unread?: UnreadParts
  /** Callback completions and heartbeats stored without the lease, by node, until a pass consumes them. */
  callbacks?: Record<string, CallbackArrival>
  /** Lifecycle events written but not yet published (the outbox; see lifecycle-events.ts). */
  outbox?: LifecycleEvent[]
  /**
   * The attempt the instance's due time is for, as its last release named it (see lease-rules.ts, `armAttempt`): a
   * due pass's acquisition records it as started by its lease, so that the pass needs no write before the call.
   */
  armNext?: NextAttempt
}

/** One worker call to come: the node, and its step. */
export interface NextAttempt {
  nodeId: string
  step: 'run' | 'check'
}

/** Parts of an instance a store did not read (see InstanceRecord.unread), with the bytes they count for. */
export interface UnreadParts {
  /** Nodes whose payload (output and overrides) is unread: node id → its bytes (see `nodePayloadBytes`). */
  nodes: Record<string, number>
  /** Nodes whose event content is unread: node id → its content's bytes. */
  events: Record<string, number>
  /** The instance input is unread: the bytes it counts for. */
  input?: number
  /** Prior inputs that are unread: key → the bytes each counts for. */
  priorInputs: Record<string, number>
}

/** What a lease asks to read of the parts a store did not read. */
export interface PartsWanted {
  nodes: readonly string[]
  events: readonly string[]
  input: boolean
  priorInputs: readonly string[]
}

/** Parts read by key. */
export interface PartsRead {
  nodes: Record<string, Pick<NodeRecord, 'output' | 'workflowContext' | 'preNodeContext'>>
  events: Record<string, JsonValue>
  input?: JsonObject
  priorInputs: Record<string, JsonObject>
}

// ---- callbacks (see callbacks.ts) ------------------------------------------------------------------------------

/** How a wait ended: completed, failed by the caller, or timed out (no completion, or no heartbeat). */
export type CallbackOutcome = 'success' | 'failure' | 'timeout' | 'heartbeat-timeout'

/** A callback wait, stored with the node that asked for it (and kept, once ended, to answer duplicates alike). */
export interface CallbackWait {
  /** The worker call that asked for it, and the fence of its lease: what its token names. */
  call: number
  fence: number
  requestedAtMs: number
  timeoutAtMs: number
  /**
   * The earliest deadline of its node (max wait, `timeout_seconds`) and instance (timeout) as the pass knew them
   * when it last stored the wait, when earlier than `timeoutAtMs`: no completion is accepted from then either.
   */
  closesAtMs?: number
  heartbeatSeconds?: number
  /** The latest heartbeat the pass has seen. */
  heartbeatAtMs?: number
  /** Set when the wait ended. */
  outcome?: CallbackOutcome
  /** The completion it ended with, as a fingerprint. */
  fingerprint?: string
  /**
   * The worker asked for it and then failed (threw, said its node is not ready, or ran past its run timeout or its
   * lease): the wait closes when the failure is stored, and a completion stored before that is the attempt's outcome;
   * without one, this failure is (see `keptFailure`).
   */
  workerFailure?: WorkerFailure
}

/**
 * A worker's failure as a closed wait keeps it: its error's name and message, what it signals, and for a node not
 * ready, when to look again (`NotReadyError`'s seconds, counted from the failure).
 */
export interface WorkerFailure {
  name: string
  message: string
  signal: 'error' | 'failed-with-failed' | 'failed-with-continue' | 'not-ready'
  retryAfterSeconds?: number
}

/** A completion or heartbeat as a caller sends it. */
export type CallbackCompletion =
  | { status: 'success'; output?: JsonValue }
  | { status: 'failure'; error?: string; cause?: string }
  | { status: 'heartbeat' }

export type CallbackResult = Exclude<CallbackCompletion, { status: 'heartbeat' }>

/**
 * What arrived for a node's callback without the lease (completions may come before the worker's own write, so
 * they are stored beside the node, and the pass consumes them).
 */
export interface CallbackArrival {
  call: number
  fence: number
  heartbeatAtMs?: number
  completion?: CallbackResult & { atMs: number; fingerprint: string }
  /**
   * What the arrival counts for in the instance's stored bytes (see `callbackArrivalBytes`), added by the write that
   * stored it and taken off by the write that consumes it; absent for a heartbeat (and for an arrival stored before
   * arrivals were counted, which counts for nothing).
   */
  storedBytes?: number
}

// ---- lifecycle events (see lifecycle-events.ts) -----------------------------------------------------------------

/** The `detail-type` of a lifecycle event (see lifecycle-events.ts, which names them). */
export type LifecycleEventKind = 'Workflow Instance Status Change' | 'Workflow Node Status Change'

/** `detail` of a lifecycle event as the engine keeps it (the publisher adds ISO times and `resent`). */
export interface LifecycleDetail {
  /** The version of `detail`: fields may be added within a version, never renamed or removed. */
  version: 1
  /** Stable across every publication of this event: consumers deduplicate on it. */
  eventId: string
  instanceId: string
  workflowType: string
  businessId?: string
  definitionVersion: string
  /** The instance's new status, or the node's for a node event. */
  status: InstanceStatus | StoredNodeStatus
  previousStatus?: InstanceStatus | StoredNodeStatus
  /** Why it failed or timed out: the failure's reason, or the node's last error; a skipped node's skip reason. */
  reason?: string
  nodeId?: string
  attempt?: number
  failCount?: number
  /** A failed node that is optional: its successors count it as done (shown as `failed_optional`). */
  optional?: true
  createdAtMs: number
  /** When the change was made. */
  timeMs: number
}

/** A lifecycle event, kept in its instance's outbox until it is published (see lifecycle-events.ts). */
export interface LifecycleEvent {
  id: string
  detailType: LifecycleEventKind
  detail: LifecycleDetail
}
