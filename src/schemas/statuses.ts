/**
 * The one vocabulary of statuses, in the lowest layer: the engine's types, every zod enum (operations, HTTP, stored
 * items), the codecs and the dashboard derive from these objects.
 */
export const InstanceStatus = {
  init: 'init',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  canceled: 'canceled',
  /** The instance's `timeout_seconds` passed before it finished. */
  timed_out: 'timed_out',
} as const
export type InstanceStatus = (typeof InstanceStatus)[keyof typeof InstanceStatus]

export const NodeStatus = {
  uncreated: 'uncreated',
  running: 'running',
  pending: 'pending',
  finishing: 'finishing',
  completed: 'completed',
  failed: 'failed',
  canceled: 'canceled',
  restarting: 'restarting',
  /** Decided not to run (see `SkipReason`): no worker call, no output. Terminal, and it satisfies joins. */
  skipped: 'skipped',
} as const
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus]
/** Statuses a node record can have in storage (`uncreated` means: no record). */
export type StoredNodeStatus = Exclude<NodeStatus, 'uncreated'>

/** Why a node was `skipped`. */
export const SkipReason = {
  /** Its `when` returned false. */
  condition_false: 'condition_false',
  /** A predecessor's `choice` took another edge, and no other path reaches the node. */
  not_chosen: 'not_chosen',
  /** Its join rule saw skipped predecessors (every one of them, or any under `all_success`). */
  upstream_skipped: 'upstream_skipped',
  /** A predecessor failed (or, under `all_success`, a predecessor it needed did not succeed). */
  upstream_failed: 'upstream_failed',
  /** The instance ended (`fail_fast`, a deadline) before the node started. */
  not_started: 'not_started',
} as const
export type SkipReason = (typeof SkipReason)[keyof typeof SkipReason]

export const TERMINAL_INSTANCE_STATUSES: readonly InstanceStatus[] = ['completed', 'failed', 'canceled', 'timed_out']
export const TERMINAL_NODE_STATUSES: readonly NodeStatus[] = ['completed', 'failed', 'canceled', 'skipped']

export const isTerminalInstanceStatus = (status: InstanceStatus): boolean => TERMINAL_INSTANCE_STATUSES.includes(status)
export const isTerminalNodeStatus = (status: NodeStatus): boolean => TERMINAL_NODE_STATUSES.includes(status)

/**
 * Ended without completing: what a restart exists for. A completed instance is never restarted, and a completed node
 * only by force.
 */
export const isFailedOrCanceled = (status: InstanceStatus | NodeStatus): boolean =>
  status === InstanceStatus.failed || status === InstanceStatus.canceled

/**
 * An instance a restart accepts: failed, canceled, timed out, or parked (it cannot run until it is fixed and
 * restarted). The API refuses the others with 409; the dashboard offers the restart only for these.
 */
export const isRestartable = (instance: { status: InstanceStatus; parked?: unknown }): boolean =>
  isFailedOrCanceled(instance.status) || instance.status === InstanceStatus.timed_out || Boolean(instance.parked)

export const INSTANCE_STATUSES = Object.values(InstanceStatus) as [InstanceStatus, ...InstanceStatus[]]
export const NODE_STATUSES = Object.values(NodeStatus) as [NodeStatus, ...NodeStatus[]]
export const STORED_NODE_STATUSES = NODE_STATUSES.filter((status) => status !== 'uncreated') as [
  StoredNodeStatus,
  ...StoredNodeStatus[],
]
export const SKIP_REASONS = Object.values(SkipReason) as [SkipReason, ...SkipReason[]]
