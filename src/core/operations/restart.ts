import {
  type RestartInstanceParams,
  type RestartNodeParams,
  restartInstanceParamsSchema,
  restartNodeParamsSchema,
} from '../../schemas/engine-params.js'
import { isFailedOrCanceled, isRestartable, isTerminalInstanceStatus } from '../../schemas/statuses.js'
import { type CallbackArrival, isWaiting } from '../callbacks.js'
import { blockingFailures, skippedDownstream } from '../control-flow.js'
import { instanceDeadlineFrom } from '../deadlines.js'
import { descendantsOf, END_NODE_ID, ROOT_NODE_ID, type WorkflowDefinition } from '../definition.js'
import { IllegalStateError, NodeNotFoundError, PayloadTooLargeError, ValidationError } from '../errors.js'
import { nodeErrorEntry, noteNodeError } from '../history.js'
import { everythingUnread } from '../instance-change.js'
import { type JsonObject, jsonSizeBytes } from '../json.js'
import { interruptedAttempt } from '../lease-rules.js'
import { type LeasedAct, type PendingChanges, passAct, writeAct } from '../leased-operation.js'
import { growthBudget, instanceStoredBytes } from '../limits.js'
import type { HistoryEntry, InstanceChange, InstanceRecord, NodeRecord } from '../store.js'
import type { OperationDeps, OperationResult } from './deps.js'
import { changedSinceRead, mustGet } from './deps.js'
import { checkedInput, parseParams } from './parse.js'

/**
 * A node becomes `restarting`: a pass decides it again (its join, its condition, then its choice) once its
 * predecessors are terminal.
 */
export const markRestarting = (node: NodeRecord, nowMs: number, resetCounters: boolean): void => {
  node.status = 'restarting'
  node.updatedAtMs = nowMs
  node.waits = 0
  delete node.nextAttemptAtMs
  delete node.attemptStarted
  delete node.skipReason
  delete node.chosen
  // Its callback wait ends: the tokens of the earlier attempt are gone, and a completion stored for them is dropped.
  delete node.callback
  if (resetCounters) node.resetOnRestart = true
  else delete node.resetOnRestart
}

/**
 * An attempt an earlier lease left in flight on a node about to restart: counted as the failed attempt it was, as
 * the next pass would have counted it (README, "Every attempt counts"). Answers its history entry, if there was one.
 * A callback completion stored for that attempt is not applied, unlike in a pass (README, "Callbacks"): restarting
 * discards the attempt, and the completion is dropped with its wait.
 */
const countInterrupted = (nodeId: string, node: NodeRecord, nowMs: number, fence: number): HistoryEntry | undefined => {
  const started = node.attemptStarted
  if (!started || started.fence >= fence || (node.status !== 'running' && node.status !== 'pending')) return undefined
  const error = interruptedAttempt(started)
  node.failCount += 1
  return nodeErrorEntry(nodeId, node, error, noteNodeError(node, error, nowMs), nowMs)
}

/**
 * The check of a node restart, from the stored record: the node exists and has started, a terminal instance needs
 * `force`, and no failed or canceled node outside the restarted ones would still block the way to the end.
 * Returns the nodes that become restarting: the node and its started descendants.
 */
export const restartNodeCheck = (
  definition: WorkflowDefinition,
  record: InstanceRecord,
  nodeId: string,
  force: boolean,
): string[] => {
  if (!definition.byId.has(nodeId)) throw new NodeNotFoundError(record.workflowType, nodeId)
  if (isTerminalInstanceStatus(record.status) && !force) {
    throw new IllegalStateError(`workflow instance '${record.id}' is ${record.status}: restarting a node needs force`, {
      instanceId: record.id,
      status: record.status,
    })
  }
  if (!record.nodes[nodeId]) {
    throw new IllegalStateError(`node '${nodeId}' has not started: there is nothing to restart`, {
      instanceId: record.id,
      nodeId,
    })
  }
  const changed = descendantsOf(definition, nodeId).filter((id) => record.nodes[id])
  // An optional node's failure counts as done: it blocks nothing.
  const blocking = blockingFailures(definition, record.nodes)
    .filter((id) => !changed.includes(id))
    .map((id) => `'${id}' (${record.nodes[id]?.status})`)
  if (blocking.length) {
    throw new IllegalStateError(
      `restarting node '${nodeId}' leaves ${blocking.join(', ')} blocking the way to the end: the instance ` +
        'could never complete; restart that node too, or restart the instance',
      { instanceId: record.id, nodeId, blocking },
    )
  }
  return changed
}

/**
 * The check of an instance restart, from the stored record: only a failed, canceled, timed-out or parked instance
 * restarts, and a new input must leave the instance within its budget.
 */
export const restartInstanceCheck = (record: InstanceRecord, newInput: JsonObject | undefined, maxBytes: number) => {
  if (!isRestartable(record)) {
    throw new IllegalStateError(
      `workflow instance '${record.id}' is ${record.status}: only failed, canceled, timed-out or parked instances can be restarted`,
      { instanceId: record.id, status: record.status },
    )
  }
  if (newInput) {
    const size = (record.storedBytes ?? instanceStoredBytes(record)) + jsonSizeBytes(newInput)
    if (size > maxBytes) {
      throw new PayloadTooLargeError(
        `context would make the instance ${size} bytes, over the budget of ${maxBytes}`,
        'context',
        size,
        maxBytes,
      )
    }
  }
}

/**
 * Restarts a node and all its descendants (they become `restarting` and are re-initialised when their
 * predecessors are completed). On a terminal instance only with `force`, which puts the instance back to running.
 * Refused when a failed or canceled node would still block the way to `end`.
 */
export const restartNode = async (deps: OperationDeps, params: RestartNodeParams): Promise<OperationResult> => {
  const p = parseParams(restartNodeParamsSchema, params)
  if (p.nodeId === ROOT_NODE_ID || p.nodeId === END_NODE_ID) {
    throw new ValidationError(`node '${p.nodeId}' is synthetic and cannot be restarted`, 'nodeId')
  }
  const read = await mustGet(deps, p.instanceId)
  restartNodeCheck(await deps.definitions.restartable(read), read, p.nodeId, p.force === true)
  return deps.leases.perform({
    instanceId: read.id,
    remainingTimeMs: p.remainingTimeMs,
    terminalOnly: isTerminalInstanceStatus(read.status),
    refused: (refusal) => changedSinceRead(refusal.record),
    act: async (session) => {
      const record = structuredClone(session.record)
      const definition = await deps.definitions.restartable(record)
      const changed = restartNodeCheck(definition, record, p.nodeId, p.force === true)
      const now = deps.clock.nowMs()
      const interrupted: HistoryEntry[] = []
      for (const id of changed) {
        const node = record.nodes[id] as NodeRecord
        const counted = countInterrupted(id, node, now, session.lease.fence)
        if (counted) interrupted.push(counted)
        markRestarting(node, now, p.resetCounters === true)
      }
      const statusChanged = record.status !== 'running'
      record.status = 'running'
      delete record.failure
      // A finished instance runs again: its timeout counts from now (a running one keeps its deadline).
      if (statusChanged) restartDeadline(record, definition, now)
      const entry: HistoryEntry = { atMs: now, kind: 'restart', nodeId: p.nodeId, origin: p.origin ?? 'engine' }
      const pending = {
        nodes: changed,
        status: statusChanged,
        failure: true,
        deadline: statusChanged,
        history: [...interrupted, entry],
      }
      return restarted(deps, definition, record, pending, p.run)
    },
    afterLeaseLost: (current) => ({ instanceId: read.id, status: current?.status ?? 'running', changed: true }),
  })
}

/**
 * Restarts a failed or canceled instance (or one parked with a reason): its failed and canceled nodes become
 * `restarting`. `context` replaces the instance input (nodes already completed keep the input they ran with).
 */
export const restartInstance = async (deps: OperationDeps, params: RestartInstanceParams): Promise<OperationResult> => {
  const p = parseParams(restartInstanceParamsSchema, params)
  const newInput = p.context === undefined ? undefined : checkedInput(p.context, 'context', deps.limits)
  const maxBytes = growthBudget(deps.limits)
  const read = await mustGet(deps, p.instanceId)
  restartInstanceCheck(read, newInput, maxBytes)
  await deps.definitions.restartable(read)
  return deps.leases.perform({
    instanceId: read.id,
    remainingTimeMs: p.remainingTimeMs,
    terminalOnly: isTerminalInstanceStatus(read.status),
    refused: (refusal) => changedSinceRead(refusal.record),
    act: async (session) => {
      // Which nodes keep the input they ran with depends on their payloads: read what the store left unread.
      await session.read(everythingUnread(session.record))
      const record = structuredClone(session.record)
      // Acquiring the lease unparks the instance: judge it as it was before.
      if (session.previous.parked) record.parked = session.previous.parked
      restartInstanceCheck(record, newInput, maxBytes)
      const definition = await deps.definitions.restartable(record)
      const now = deps.clock.nowMs()
      const pending = restartedInstance(record, newInput, `f${session.lease.fence}`, now, p.resetCounters === true)
      reopenSkipped(definition, record, pending, now, p.resetCounters === true)
      pending.deadline = restartDeadline(record, definition, now)
      pending.history = [{ atMs: now, kind: 'restart', origin: p.origin ?? 'engine' }]
      return restarted(deps, definition, record, pending, p.run)
    },
    afterLeaseLost: (current) => ({ instanceId: read.id, status: current?.status ?? 'running', changed: true }),
  })
}

/** The instance's timeout counted from `nowMs`; true when that changed what is stored. */
const restartDeadline = (record: InstanceRecord, definition: WorkflowDefinition, nowMs: number): boolean => {
  const deadline = instanceDeadlineFrom(definition, nowMs)
  if (deadline === record.deadlineAtMs) return false
  if (deadline === undefined) delete record.deadlineAtMs
  else record.deadlineAtMs = deadline
  return true
}

/**
 * The skipped nodes downstream of the nodes an instance restart reopens become `restarting` too: their joins and
 * conditions are decided again once what they depend on has run again.
 */
const reopenSkipped = (
  definition: WorkflowDefinition,
  record: InstanceRecord,
  pending: PendingChanges,
  nowMs: number,
  resetCounters: boolean,
): void => {
  const restarted = Object.keys(record.nodes).filter((id) => record.nodes[id]?.status === 'restarting')
  const reopened = skippedDownstream(definition, record.nodes, restarted)
  for (const id of reopened) markRestarting(record.nodes[id] as NodeRecord, nowMs, resetCounters)
  pending.nodes = [...new Set([...pending.nodes, ...reopened])]
}

/**
 * Marks a failed, canceled or parked instance running again: its failed and canceled nodes restart; with a new
 * input, the nodes that keep their outputs keep the input they ran with, stored once under `priorKey` rather than
 * copied into each of them. Returns what changed.
 */
export const restartedInstance = (
  record: InstanceRecord,
  newInput: JsonObject | undefined,
  priorKey: string,
  nowMs: number,
  resetCounters: boolean,
): PendingChanges => {
  const changed: string[] = []
  let referenced = false
  for (const [id, node] of Object.entries(record.nodes)) {
    // A node skipped because the instance ended before it started never ran: it restarts like a canceled one.
    const notStarted = node.status === 'skipped' && node.skipReason === 'not_started'
    if (isFailedOrCanceled(node.status) || notStarted) {
      markRestarting(node, nowMs, resetCounters)
      delete node.inputRef
      changed.push(id)
    } else if (
      newInput &&
      node.status !== 'skipped' &&
      node.workflowContext === undefined &&
      node.inputRef === undefined
    ) {
      node.inputRef = priorKey
      referenced = true
      changed.push(id)
    }
  }
  const before = JSON.stringify(record.priorInputs ?? null)
  const priorInputs: Record<string, JsonObject> = { ...(record.priorInputs ?? {}) }
  if (referenced) priorInputs[priorKey] = record.input
  const used = new Set(Object.values(record.nodes).map((node) => node.inputRef))
  for (const key of Object.keys(priorInputs)) if (!used.has(key)) delete priorInputs[key]
  if (Object.keys(priorInputs).length) record.priorInputs = priorInputs
  else delete record.priorInputs
  const priorChanged = JSON.stringify(record.priorInputs ?? null) !== before
  if (newInput) record.input = newInput
  record.status = 'running'
  delete record.failure
  delete record.parked
  return { nodes: changed, status: true, input: newInput !== undefined, failure: true, priorInputs: priorChanged }
}

/** Stores a restart: with `run`, as part of an explicit pass; otherwise as one write that leaves it due now. */
const restarted = (
  deps: OperationDeps,
  definition: WorkflowDefinition,
  record: InstanceRecord,
  pending: PendingChanges,
  run: boolean | undefined,
): LeasedAct<OperationResult> => {
  if (run) {
    // The pass stores the restart with its first write, before any worker runs.
    return passAct({ mode: 'explicit', record, pending, definition }, (pass) => ({
      instanceId: record.id,
      status: pass.status,
      changed: true,
      pass,
    }))
  }
  const now = deps.clock.nowMs()
  const change: InstanceChange = { updatedAtMs: now, nodes: {}, failure: null }
  if (pending.status) change.status = record.status
  if (pending.history) change.history = [...pending.history]
  for (const id of pending.nodes) (change.nodes as Record<string, NodeRecord>)[id] = record.nodes[id] as NodeRecord
  if (pending.input) change.input = record.input
  if (pending.priorInputs) change.priorInputs = record.priorInputs ?? null
  if (pending.deadline) change.deadlineAtMs = record.deadlineAtMs ?? null
  // A completion stored for a wait the restart ended goes (a pass drops it the same way).
  const stale: Record<string, CallbackArrival> = {}
  for (const id of pending.nodes) {
    const arrival = record.callbacks?.[id]
    if (arrival && !isWaiting(record.nodes[id])) stale[id] = arrival
  }
  if (Object.keys(stale).length) change.clearCallbacks = stale
  return writeAct(change, { status: record.status, dueAtMs: now }, () => ({
    instanceId: record.id,
    status: record.status,
    changed: true,
  }))
}
