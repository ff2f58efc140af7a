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
} as const
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus]
/** Statuses a node record can have in storage (`uncreated` means: no record). */
export type StoredNodeStatus = Exclude<NodeStatus, 'uncreated'>

export const TERMINAL_INSTANCE_STATUSES: readonly InstanceStatus[] = ['completed', 'failed', 'canceled']
export const TERMINAL_NODE_STATUSES: readonly NodeStatus[] = ['completed', 'failed', 'canceled']

export const isTerminalInstanceStatus = (status: InstanceStatus): boolean => TERMINAL_INSTANCE_STATUSES.includes(status)
export const isTerminalNodeStatus = (status: NodeStatus): boolean => TERMINAL_NODE_STATUSES.includes(status)

/**
 * Ended without completing: what a restart exists for. A completed instance is never restarted, and a completed node
 * only by force.
 */
export const isFailedOrCanceled = (status: InstanceStatus | NodeStatus): boolean =>
  status === InstanceStatus.failed || status === InstanceStatus.canceled

/**
 * An instance a restart accepts: failed, canceled, or parked (it cannot run until it is fixed and restarted). The API
 * refuses the others with 409; the dashboard offers the restart only for these.
 */
export const isRestartable = (instance: { status: InstanceStatus; parked?: unknown }): boolean =>
  isFailedOrCanceled(instance.status) || Boolean(instance.parked)

export const INSTANCE_STATUSES = Object.values(InstanceStatus) as [InstanceStatus, ...InstanceStatus[]]
export const NODE_STATUSES = Object.values(NodeStatus) as [NodeStatus, ...NodeStatus[]]
export const STORED_NODE_STATUSES = NODE_STATUSES.filter((status) => status !== 'uncreated') as [
  StoredNodeStatus,
  ...StoredNodeStatus[],
]
