import { isTerminalInstanceStatus } from '../schemas/statuses.js'
import { isWaiting } from './callbacks.js'
import { AttemptInterruptedError, ItemTooLargeError, LeaseLostError, LockConflictError } from './errors.js'
import { sameArrival } from './instance-change.js'
import type {
  AcquireOptions,
  AcquireResult,
  InstanceChange,
  InstanceRecord,
  InstanceState,
  Lease,
  NextAttempt,
  NodeRecord,
} from './store.js'

/**
 * The lease conditions and the refusals they answer, written once for every store (like `event-rules.ts` for
 * events): a store evaluates the condition in its own write (DynamoDB's ConditionExpression, MemoryStore in
 * process) and, when it fails, answers with the refusal these rules compute from the item as it was.
 */

/** No live lease of another owner: free, expired, or the caller's own. */
export const leaseIsFree = (record: InstanceRecord, owner: string, nowMs: number): boolean =>
  record.leaseOwner === undefined ||
  (record.leaseUntilMs !== undefined && record.leaseUntilMs < nowMs) ||
  record.leaseOwner === owner

export type AcquireRefusal = Exclude<AcquireResult, { kind: 'acquired' }>

/** The instance's state without its contents: what a refusal reports (see InstanceState). */
export const stateOf = (record: InstanceRecord): InstanceState => {
  const { nodes: _nodes, events: _events, input: _input, priorInputs: _prior, ...state } = record
  return state
}

/**
 * Why an acquisition is refused on `record`, or undefined when its condition holds. The instance's state is
 * reported before the lease: a terminal or live instance answers so whoever holds it, and a pass that is not due
 * learns that without a conflict.
 */
export const acquireRefusal = (
  record: InstanceRecord,
  owner: string,
  nowMs: number,
  options: AcquireOptions = {},
): AcquireRefusal | LockConflictError | undefined => {
  const terminal = isTerminalInstanceStatus(record.status)
  const allowTerminal = options.allowTerminal === true || options.terminalOnly === true
  if (terminal && !allowTerminal) return { kind: 'terminal', record: stateOf(record) }
  if (options.terminalOnly && !terminal) return { kind: 'live', record: stateOf(record) }
  if (options.dueBy !== undefined && (record.dueAtMs === undefined || record.dueAtMs > options.dueBy)) {
    return { kind: 'not-due', record: stateOf(record) }
  }
  if (!leaseIsFree(record, owner, nowMs)) return new LockConflictError(record.id, record.leaseUntilMs, nowMs)
  return undefined
}

/**
 * Records `attempt` as started on its node, at `atMs` by the lease of `fence`, when the node can make it: it waits
 * for that step (running for a run, pending for a check), has no attempt in flight and waits for no callback. The
 * record counts the call; false when the node cannot make it (nothing changed).
 *
 * A release names the attempt its due time is for (InstanceRecord.armNext); a due pass's acquisition records it in
 * the write that takes the lease, so that a poll needs no write of its own before the check is called. Every store
 * applies it by this rule, and a reader of a stored armed attempt sees the attempt started by the same rule. The
 * pass that holds the lease makes the attempt, or takes it back in its next write (see pass.ts).
 */
export const armAttempt = (
  nodes: Record<string, NodeRecord>,
  attempt: NextAttempt,
  atMs: number,
  fence: number,
): boolean => {
  const node = nodes[attempt.nodeId]
  if (!node || node.attemptStarted !== undefined || isWaiting(node)) return false
  if (node.status !== (attempt.step === 'check' ? 'pending' : 'running')) return false
  nodes[attempt.nodeId] = {
    ...node,
    attemptStarted: { step: attempt.step, atMs, fence },
    calls: (node.calls ?? 0) + 1,
  }
  return true
}

/**
 * What an attempt an earlier lease stored as started, and never stored an outcome for, was: a failed attempt (README,
 * "Every attempt counts"), whoever finds it — the next pass, or a restart of its node.
 */
export const interruptedAttempt = (started: { step: 'run' | 'check'; atMs: number; fence: number }): Error =>
  new AttemptInterruptedError(
    `the attempt of ${started.step} started at epoch ms ${started.atMs} (lease fence ${started.fence}) ended ` +
      'without an outcome: its runner stopped, its worker hung past the lease, or the lease was lost',
  )

/** The node without the attempt `armAttempt` recorded on it: not started, not counted. */
export const unarmAttempt = (node: NodeRecord): NodeRecord => {
  const { attemptStarted: _started, calls: _calls, ...rest } = node
  const calls = (node.calls ?? 1) - 1
  return calls > 0 ? { ...rest, calls } : rest
}

/** An acquisition that keeps the instance's due time (a due pass's, a terminal-only one); any other makes it due by the lease end. */
export const keepsDueTime = (options: AcquireOptions): boolean =>
  options.terminalOnly === true || options.dueBy !== undefined

/**
 * The record as an acquisition leaves it: leased, the fence grown, no longer parked (but by a terminal-only lease),
 * and — unless it is a due pass (due already, no later than the lease end) or a terminal-only lease (it needs
 * nothing) — due at the lease end. A due pass's acquisition records the attempt the instance is due for (see
 * `armAttempt`). `previous` is its due time and parked state before.
 */
export const acquired = (
  before: InstanceRecord,
  owner: string,
  nowMs: number,
  untilMs: number,
  options: AcquireOptions = {},
): Omit<Extract<AcquireResult, { kind: 'acquired' }>, 'writer'> => {
  const { parked, ...rest } = before
  const keepsDue = keepsDueTime(options)
  const record: InstanceRecord = keepsDue
    ? { ...(options.terminalOnly ? before : rest), leaseOwner: owner, leaseUntilMs: untilMs }
    : { ...rest, leaseOwner: owner, leaseUntilMs: untilMs, dueAtMs: untilMs }
  record.fence = before.fence + 1
  // Due by the lease end now: the attempt named for the earlier due time is not what it is due for.
  if (!keepsDue) delete record.armNext
  if (options.dueBy !== undefined && before.armNext !== undefined) {
    record.nodes = { ...before.nodes }
    armAttempt(record.nodes, before.armNext, nowMs, record.fence)
  }
  const previous = {
    ...(before.dueAtMs === undefined ? {} : { dueAtMs: before.dueAtMs }),
    ...(parked === undefined ? {} : { parked }),
  }
  return { kind: 'acquired', lease: { instanceId: before.id, owner, fence: record.fence, untilMs }, record, previous }
}

/** The lease still holds: same owner, same fence. */
export const holdsLease = (record: InstanceRecord, lease: Lease): boolean =>
  record.leaseOwner === lease.owner && record.fence === lease.fence

/** The stored bytes a fenced write leaves (an item stored without a total starts from the holder's count). */
export const bytesAfter = (record: InstanceRecord, change: InstanceChange): number =>
  (record.storedBytes ?? change.bytesBase ?? 0) + (change.bytesDelta ?? 0)

/**
 * A write that grows the instance past its budget is refused in its own condition; an item stored before the total
 * existed is not held to it (it starts from the holder's count, `bytesBase`). The callback arrivals it clears that
 * are still stored as read count as gone (they leave with it, or right after it: see clearCallbacks).
 */
export const exceedsBudget = (record: InstanceRecord, change: InstanceChange): boolean =>
  (change.bytesDelta ?? 0) > 0 &&
  change.maxBytes !== undefined &&
  record.storedBytes !== undefined &&
  record.storedBytes + (change.bytesDelta ?? 0) - clearedBytes(record, change) > change.maxBytes

/** The bytes of the arrivals a change clears that are still stored as its writer read them. */
const clearedBytes = (record: InstanceRecord, change: InstanceChange): number =>
  Object.entries(change.clearCallbacks ?? {}).reduce(
    (sum, [id, seen]) => sum + (sameArrival(record.callbacks?.[id], seen) ? (seen.storedBytes ?? 0) : 0),
    0,
  )

export const budgetRefusal = (bytes: number, maxBytes: number): ItemTooLargeError =>
  new ItemTooLargeError(
    `the instance would store ${bytes} bytes, over its budget of ${maxBytes}`,
    `instance budget of ${maxBytes} bytes exceeded`,
  )

/**
 * What a fenced write whose condition failed means, from the instance as it was: `landed` when it is a releasing
 * write that had already been applied (released under our own fence: only this write does that, so an earlier
 * attempt of it, retried after its answer was lost, landed); the budget refusal while the lease is still ours;
 * LeaseLostError otherwise. A store that recognises more of its own retried writes checks them first.
 */
export const leaseWriteRefusal = (
  current: InstanceRecord | undefined,
  lease: Lease,
  change: InstanceChange,
): { landed: { eventSeq: number } } | ItemTooLargeError | LeaseLostError => {
  if (change.release && current && current.fence === lease.fence && current.leaseOwner === undefined) {
    return { landed: { eventSeq: current.eventSeq } }
  }
  if (current && holdsLease(current, lease)) return budgetRefusal(bytesAfter(current, change), change.maxBytes ?? 0)
  return new LeaseLostError(lease.instanceId, lease.fence)
}
