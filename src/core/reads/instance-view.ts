import type { NodeWaiting } from '../../schemas/callbacks.js'
import { instanceIdSchema } from '../../schemas/engine-params.js'
import { type InstanceStatus, isTerminalNodeStatus, type NodeStatus, type SkipReason } from '../../schemas/statuses.js'
import { isWaiting } from '../callbacks.js'
import { assembleContext } from '../context-assembly.js'
import { nodeDeadlineAt } from '../deadlines.js'
import { END_NODE_ID, type NodeDefinition, ROOT_NODE_ID, type WorkflowDefinition } from '../definition.js'
import type { JsonObject } from '../json.js'
import type { OperationDeps } from '../operations/deps.js'
import { mustGet } from '../operations/deps.js'
import { parseParams } from '../operations/parse.js'
import type { FailureSummary, InstanceRecord, ParkedState } from '../store.js'

export interface NodeDetail {
  id: string
  name: string
  status: NodeStatus
  predecessors: readonly string[]
  successors: readonly string[]
  failCount: number
  /** 1 + restarts of the node: part of the idempotency key. */
  attempt: number
  /** Worker calls started (run and check) over the node's life. */
  calls: number
  /** The attempt in flight (stored before its worker was called), if any. */
  attemptStartedAtMs?: number
  attemptStep?: 'run' | 'check'
  /** When `max_wait_time_ts` or the node's `timeout_seconds` fails the node (the earlier), for a node not settled. */
  deadlineAtMs?: number
  /** Why a `skipped` node was skipped. */
  skipReason?: SkipReason
  /** For a node with a choice that was made: the successor it took (`null`: none). */
  chosen?: string | null
  /**
   * The node is `optional`: its failure counts as done for its successors (a `failed` optional node is shown as
   * failed-optional; the status stays `failed`).
   */
  optional?: true
  createdAtMs?: number
  updatedAtMs?: number
  nextAttemptAtMs?: number
  /** Why a node waits for nobody to poll it: a callback (README, "Callbacks"). */
  waiting?: NodeWaiting
  /** The node's context; absent for nodes that have not started. */
  context?: JsonObject
}

export interface InstanceDetail {
  id: string
  workflowType: string
  businessId?: string
  status: InstanceStatus
  context: JsonObject
  createdAtMs: number
  updatedAtMs: number
  definitionVersion: string
  dueAtMs?: number
  /** A delayed start: the instance stays init until then. */
  startAtMs?: number
  /** Present when the instance cannot run until it is fixed and restarted. */
  parked?: ParkedState
  /** Why a failed (or timed-out) instance failed. */
  failure?: FailureSummary
  /** When the instance times out (its `timeout_seconds`), for an instance that has one. */
  deadlineAtMs?: number
  lease?: { owner: string; untilMs: number }
  /** Every node of the definition in definition order: `root`, the config's nodes, `end`. */
  nodes: NodeDetail[]
}

const nodeDetail = (definition: WorkflowDefinition, record: InstanceRecord, node: NodeDefinition): NodeDetail => {
  const stored = record.nodes[node.id]
  const detail: NodeDetail = {
    id: node.id,
    name: node.name,
    status: 'uncreated',
    predecessors: node.prev,
    successors: node.next,
    failCount: stored?.failCount ?? 0,
    attempt: stored?.attempt ?? 0,
    calls: stored?.calls ?? 0,
  }
  if (node.optional) detail.optional = true
  if (node.id === ROOT_NODE_ID) {
    if (record.status === 'init') return detail
    const context = { pre_node_context: {}, workflow_context: record.input }
    return { ...detail, status: 'completed', createdAtMs: record.createdAtMs, context }
  }
  if (node.id === END_NODE_ID) {
    if (record.status !== 'completed') {
      // `end` follows its predecessors: it is restarting while any of them is.
      if (node.prev.some((prev) => record.nodes[prev]?.status === 'restarting')) detail.status = 'restarting'
      return detail
    }
    const context = assembleContext(definition, record, END_NODE_ID, undefined)
    return { ...detail, status: 'completed', updatedAtMs: record.updatedAtMs, context }
  }
  if (!stored) return detail
  detail.status = stored.status
  detail.createdAtMs = stored.createdAtMs
  detail.updatedAtMs = stored.updatedAtMs
  if (stored.nextAttemptAtMs !== undefined) detail.nextAttemptAtMs = stored.nextAttemptAtMs
  if (stored.attemptStarted !== undefined) {
    detail.attemptStartedAtMs = stored.attemptStarted.atMs
    detail.attemptStep = stored.attemptStarted.step
  }
  if (stored.skipReason !== undefined) detail.skipReason = stored.skipReason
  if (stored.chosen !== undefined) detail.chosen = stored.chosen
  if (!isTerminalNodeStatus(stored.status)) {
    const deadlines = [
      node.maxWaitTimeSeconds > 0 ? stored.createdAtMs + node.maxWaitTimeSeconds * 1000 : undefined,
      nodeDeadlineAt(node, stored),
    ].filter((at): at is number => at !== undefined)
    if (deadlines.length) detail.deadlineAtMs = Math.min(...deadlines)
  }
  const wait = stored.callback
  if (wait && isWaiting(stored)) {
    detail.waiting = { reason: 'waiting for a callback', sinceMs: wait.requestedAtMs, timeoutAtMs: wait.timeoutAtMs }
    // What a completion is held to: the earlier deadline of its node or instance, as the last pass stored it.
    if (wait.closesAtMs !== undefined && wait.closesAtMs < wait.timeoutAtMs) detail.waiting.closesAtMs = wait.closesAtMs
    if (wait.heartbeatSeconds !== undefined) {
      const last = Math.max(
        wait.requestedAtMs,
        wait.heartbeatAtMs ?? 0,
        record.callbacks?.[node.id]?.heartbeatAtMs ?? 0,
      )
      detail.waiting.heartbeatSeconds = wait.heartbeatSeconds
      detail.waiting.heartbeatDeadlineMs = last + wait.heartbeatSeconds * 1000
    }
  }
  detail.context = assembleContext(definition, record, node.id, stored)
  return detail
}

/** The detail of an instance: every definition node in definition order (`uncreated` where one has not started). */
export const instanceDetail = (definition: WorkflowDefinition, record: InstanceRecord): InstanceDetail => {
  const detail: InstanceDetail = {
    id: record.id,
    workflowType: record.workflowType,
    status: record.status,
    context: record.input,
    createdAtMs: record.createdAtMs,
    updatedAtMs: record.updatedAtMs,
    definitionVersion: record.definitionVersion,
    nodes: definition.nodes.map((node) => nodeDetail(definition, record, node)),
  }
  if (record.businessId !== undefined) detail.businessId = record.businessId
  if (record.dueAtMs !== undefined) detail.dueAtMs = record.dueAtMs
  if (record.startAtMs !== undefined) detail.startAtMs = record.startAtMs
  if (record.parked !== undefined) detail.parked = record.parked
  if (record.failure !== undefined) detail.failure = record.failure
  if (record.deadlineAtMs !== undefined) detail.deadlineAtMs = record.deadlineAtMs
  if (record.leaseOwner !== undefined && record.leaseUntilMs !== undefined) {
    detail.lease = { owner: record.leaseOwner, untilMs: record.leaseUntilMs }
  }
  return detail
}

/** The instance with every definition node in definition order (`uncreated` where a node has not started). */
export const getInstance = async (deps: OperationDeps, instanceId: string): Promise<InstanceDetail> => {
  const record = await mustGet(deps, parseParams(instanceIdSchema, instanceId))
  return instanceDetail(await deps.definitions.of(record, false), record)
}
