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
