import type { NodeDefinition, WorkflowDefinition } from './definition.js'
import type { InstanceRecord, NodeRecord } from './store.js'

/**
 * Deadlines (README, "Conditions, choices, join rules and deadlines"). Each is an absolute time the pass compares
 * with the engine's clock and makes the instance due at, so it fires with nobody polling: the tick, a delayed run
 * message or a one-time schedule wakes the instance then, like any other wake-up.
 * - the instance's `timeout_seconds`, from when it started running or was last restarted (`deadlineAtMs`): it ends
 *   `timed_out`;
 * - a node's `timeout_seconds`, from the node's creation (kept across restarts unless they reset counters, like
 *   `max_wait_time_ts`): the node fails;
 * - a node's `run_timeout_seconds`, from the start of each attempt: the attempt fails and is retried by the node's
 *   policy. An attempt is also bounded by its lease (the worker's signal fires before the lease ends): the shorter
 *   of the two applies, and an attempt the lease interrupts counts as failed in the same way.
 */

/** Which deadline ended an attempt. */
export type DeadlineKind = 'instance' | 'node' | 'run'

/** Raised into an attempt's signal (and recorded as its error) when a deadline ends it. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError'
  constructor(
    readonly kind: DeadlineKind,
    message: string,
  ) {
    super(message)
  }
}

/** When an instance that starts (or restarts) running at `startedAtMs` times out; undefined without a timeout. */
export const instanceDeadlineFrom = (definition: WorkflowDefinition, startedAtMs: number): number | undefined =>
  definition.timeoutSeconds === undefined ? undefined : startedAtMs + definition.timeoutSeconds * 1000

export const instanceTimedOut = (instance: Pick<InstanceRecord, 'deadlineAtMs'>, nowMs: number): boolean =>
  instance.deadlineAtMs !== undefined && nowMs >= instance.deadlineAtMs

/** When the node fails for its own `timeout_seconds`; undefined without one. */
export const nodeDeadlineAt = (node: NodeDefinition, record: Pick<NodeRecord, 'createdAtMs'>): number | undefined =>
  node.timeoutSeconds === undefined ? undefined : record.createdAtMs + node.timeoutSeconds * 1000

export const nodeTimedOut = (node: NodeDefinition, record: NodeRecord, nowMs: number): boolean => {
  const at = nodeDeadlineAt(node, record)
  return at !== undefined && nowMs >= at
}

/** The first deadline that ends an attempt started at `startedAtMs`, if any. */
export const attemptDeadline = (
  instance: Pick<InstanceRecord, 'deadlineAtMs'>,
  node: NodeDefinition,
  record: NodeRecord,
  startedAtMs: number,
): { atMs: number; kind: DeadlineKind } | undefined => {
  const candidates: { atMs: number; kind: DeadlineKind }[] = []
  if (node.runTimeoutSeconds !== undefined) {
    candidates.push({ atMs: startedAtMs + node.runTimeoutSeconds * 1000, kind: 'run' })
  }
  const nodeAt = nodeDeadlineAt(node, record)
  if (nodeAt !== undefined) candidates.push({ atMs: nodeAt, kind: 'node' })
  if (instance.deadlineAtMs !== undefined) candidates.push({ atMs: instance.deadlineAtMs, kind: 'instance' })
  // The instance's deadline wins a tie: it ends everything.
  const order: Record<DeadlineKind, number> = { instance: 0, node: 1, run: 2 }
  return candidates.sort((a, b) => a.atMs - b.atMs || order[a.kind] - order[b.kind])[0]
}

/** Why a deadline ended an attempt or a node, in words for `last_error`, `reason` and the failure summary. */
export const deadlineReason = (kind: DeadlineKind, definition: WorkflowDefinition, node?: NodeDefinition): string => {
  switch (kind) {
    case 'instance':
      return `timeout_seconds exceeded: the instance ran more than ${definition.timeoutSeconds} s`
    case 'node':
      return `timeout_seconds exceeded: node '${node?.id}' did not complete within ${node?.timeoutSeconds} s of its creation`
    case 'run':
      return `run_timeout_seconds exceeded: the attempt ran more than ${node?.runTimeoutSeconds} s and was aborted`
  }
}
