import type { SkipReason } from '../schemas/statuses.js'
import { END_NODE_ID, type NodeDefinition, ROOT_NODE_ID, type WorkflowDefinition } from './definition.js'
import type { NodeRecord } from './store.js'

/**
 * The control-flow rules (README, "Conditions, choices, join rules and deadlines"), as pure functions of the
 * definition and the node records: when a node's join is decided and how, what a failure does to the rest of the
 * instance, how the instance ends, and what a restart reopens. The pass applies them; nothing here reads a clock or
 * evaluates an expression.
 */

type Records = Readonly<Record<string, Pick<NodeRecord, 'status' | 'skipReason' | 'chosen'> | undefined>>

/**
 * How an edge into a node ended, as a join rule counts it: `pending` while its source is not terminal (or is
 * completed with a choice still to make); `success` for a completed source, or a failed one that is `optional`;
 * `failed` for a failed or canceled source; `skipped` for a skipped one; `untaken` when the source's choice took
 * another edge.
 */
type EdgeOutcome = 'pending' | 'success' | 'failed' | 'skipped' | 'untaken'

export const edgeOutcome = (
  definition: WorkflowDefinition,
  records: Records,
  from: string,
  to: string,
): EdgeOutcome => {
  if (from === ROOT_NODE_ID) return 'success'
  const record = records[from]
  const source = definition.byId.get(from)
  switch (record?.status) {
    case 'completed':
      if (source?.choice === undefined) return 'success'
      if (record.chosen === undefined) return 'pending'
      return record.chosen === to ? 'success' : 'untaken'
    case 'failed':
      return source?.optional ? 'success' : 'failed'
    case 'canceled':
      return 'failed'
    case 'skipped':
      return 'skipped'
    default:
      return 'pending'
  }
}

export type JoinDecision = { kind: 'wait' } | { kind: 'run' } | { kind: 'skip'; reason: SkipReason }

const WAIT: JoinDecision = { kind: 'wait' }
const RUN: JoinDecision = { kind: 'run' }
const skip = (reason: SkipReason): JoinDecision => ({ kind: 'skip', reason })

/**
 * Whether a node (not yet started, or restarting) runs, is skipped, or must wait. Never decided before every
 * predecessor is terminal. A node that only untaken edges, skipped and failed predecessors lead to is skipped as
 * `not_chosen` whatever its trigger; otherwise its trigger decides, an untaken edge counting as a skipped
 * predecessor:
 * - `none_failed_min_one_success`: skipped (`upstream_failed`) if a predecessor failed, run if one succeeded,
 *   skipped (`upstream_skipped`) if all were skipped;
 * - `all_success`: run only if every predecessor succeeded, else skipped (`upstream_failed` before
 *   `upstream_skipped`);
 * - `all_done`: run.
 * An optional predecessor that failed counts as one that succeeded. `end` is never skipped (see `endOutcome`).
 */
export const joinDecision = (definition: WorkflowDefinition, records: Records, node: NodeDefinition): JoinDecision => {
  const edges = node.prev.map((prev) => edgeOutcome(definition, records, prev, node.id))
  if (edges.includes('pending')) return WAIT
  if (edges.includes('untaken') && edges.every((edge) => edge !== 'success')) return skip('not_chosen')
  const failed = edges.includes('failed')
  switch (node.trigger) {
    case 'all_done':
      return RUN
    case 'all_success':
      if (failed) return skip('upstream_failed')
      return edges.every((edge) => edge === 'success') ? RUN : skip('upstream_skipped')
    default:
      if (failed) return skip('upstream_failed')
      return edges.includes('success') ? RUN : skip('upstream_skipped')
  }
}

/** Every predecessor of the node is terminal (and has made its choice): its join can be decided. */
export const joinSettled = (definition: WorkflowDefinition, records: Records, node: NodeDefinition): boolean =>
  node.prev.every((prev) => edgeOutcome(definition, records, prev, node.id) !== 'pending')

/** A node whose failure fails the instance: not optional, failed or canceled. */
const isBlockingFailure = (definition: WorkflowDefinition, id: string, record: Records[string]): boolean =>
  (record?.status === 'failed' && definition.byId.get(id)?.optional !== true) || record?.status === 'canceled'

/** The failed nodes (not optional) of the instance, in definition order. */
export const blockingFailures = (definition: WorkflowDefinition, records: Records): string[] =>
  definition.nodes.filter((node) => isBlockingFailure(definition, node.id, records[node.id])).map((node) => node.id)

/**
 * How the instance ends once every predecessor of `end` is terminal (and so every node is): `completed` when no
 * node failed (an optional node's failure counts as done), else `failed` — the end of an `isolate` instance whose
 * independent branches have finished. `wait` before.
 */
export const endOutcome = (definition: WorkflowDefinition, records: Records): 'wait' | 'completed' | 'failed' => {
  const end = definition.byId.get(END_NODE_ID) as NodeDefinition
  if (!joinSettled(definition, records, end)) return 'wait'
  return blockingFailures(definition, records).length ? 'failed' : 'completed'
}

/**
 * What a node's terminal failure does to the rest of the instance: nothing for an `optional` node (its successors
 * count it as done), the instance fails at once under `fail_fast`, and under `isolate` the failure only skips what
 * depends on it, the instance failing once everything else has finished.
 */
export const failureEffect = (
  definition: WorkflowDefinition,
  node: NodeDefinition,
): 'continue' | 'fail_instance' | 'isolate' => {
  if (node.optional) return 'continue'
  return definition.onFailure === 'isolate' ? 'isolate' : 'fail_instance'
}

/**
 * The nodes a restart of `seeds` reopens besides them: every skipped node downstream of one of them (its skip was
 * decided from what the restart undoes), in definition order.
 */
export const skippedDownstream = (
  definition: WorkflowDefinition,
  records: Records,
  seeds: readonly string[],
): string[] => {
  const reached = new Set<string>()
  const stack = [...seeds]
  while (stack.length) {
    const id = stack.pop() as string
    for (const next of definition.byId.get(id)?.next ?? []) {
      if (reached.has(next)) continue
      reached.add(next)
      stack.push(next)
    }
  }
  return definition.nodes
    .filter((node) => reached.has(node.id) && !seeds.includes(node.id) && records[node.id]?.status === 'skipped')
    .map((node) => node.id)
}
