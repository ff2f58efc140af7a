import { isTerminalInstanceStatus, isTerminalNodeStatus } from '../schemas/statuses.js'
import type { CallbackClaims } from './callback-token.js'
import { hash53 } from './definition.js'
import { PayloadTooLargeError, TickflowError, ValidationError } from './errors.js'
import { canonicalJson, type JsonObject, type JsonValue, jsonSizeBytes } from './json.js'
import { LAST_ERROR_CHARS, nodePayloadBytes } from './limits.js'
import type {
  AttemptStarted,
  CallbackArrival,
  CallbackResult,
  CallbackWait,
  InstanceRecord,
  NodeRecord,
  WorkerFailure,
} from './records.js'
import { classifyWorkerError, FailedWithContinueError, FailedWithFailedError, NotReadyError } from './worker-signals.js'

/**
 * Callbacks (README, "Callbacks"): a worker asks for one with `ctx.callback(…)` and returns; the node then waits —
 * neither retried nor polled — until a third party completes it with the token, sends a heartbeat, or the wait
 * times out. The rules here are shared by both stores (which completion may be stored, and what a refused one
 * means) and by the pass (what a wait comes to).
 */

export type { CallbackArrival, CallbackCompletion, CallbackOutcome, CallbackResult, CallbackWait } from './records.js'

/** What a worker asks for. */
export interface CallbackOptions {
  /** How long the node waits for the completion, from the request (like Step Functions' TimeoutSeconds). */
  timeoutSeconds: number
  /** When set, the longest silence: a heartbeat or the completion must arrive this often. */
  heartbeatSeconds?: number
}

/** What the worker gets back: the token to hand out, and where to post the completion. */
export interface CallbackHandle {
  token: string
  url: string
  /** When the wait times out unless completed (ms since epoch). */
  timeoutAtMs: number
}

/**
 * How far apart two clocks of the deployment may be (the pass's and a completion's writer's, each a Lambda's). A
 * completion is accepted only while its wait's deadlines have not passed by its writer's clock; a pass times a wait
 * out only when the deadline lies this much before the time it read the instance (its lease acquisition). A
 * completion stored after that read — one the pass cannot have seen — was then necessarily refused, so a wait never
 * times out over a completion a caller was told is stored. The instance is due this long after the deadline.
 */
export const CALLBACK_CLOCK_SKEW_MS = 1_000

/**
 * When the instance is due for a wait's next deadline: the clock skew after it, when a pass that reads the instance
 * then can time it out (see CALLBACK_CLOCK_SKEW_MS).
 */
export const waitLookAtMs = (deadlineMs: number): number => deadlineMs + CALLBACK_CLOCK_SKEW_MS

/** The longest wait a worker may ask for: as for every timeout of a definition, 366 days. */
export const MAX_CALLBACK_SECONDS = 366 * 86_400

/** The same completion always has the same fingerprint (what makes a repeated completion answer the same). */
export const completionFingerprint = (completion: CallbackResult): string => hash53(canonicalJson(completion))

/** A forged, tampered, unknown or other deployment's token: one answer, whichever it is. */
export class CallbackNotFoundError extends TickflowError {
  override readonly name = 'CallbackNotFoundError'
  readonly code = 'CALLBACK_NOT_FOUND'
  readonly httpStatus = 404
  constructor() {
    super('no such callback')
  }
}

/** A genuine token whose callback can no longer be completed: an older attempt, a finished node or instance. */
export class CallbackGoneError extends TickflowError {
  override readonly name = 'CallbackGoneError'
  readonly code = 'CALLBACK_GONE'
  readonly httpStatus = 410
}

/** The callback was already completed differently. */
export class CallbackConflictError extends TickflowError {
  override readonly name = 'CallbackConflictError'
  readonly code = 'CALLBACK_CONFLICT'
  readonly httpStatus = 409
}

/** A wait that passed its timeout (or heartbeat timeout) without a completion: a failed attempt of the node. */
export class CallbackTimeoutError extends Error {
  override readonly name = 'CallbackTimeoutError'
}

/** A caller's failure completion: a failed attempt; its `error` may name a worker signal that decides the node. */
export class CallbackFailedError extends Error {
  override readonly name = 'CallbackFailedError'
}

/** Checks a worker's request; the error names the option. */
export const callbackWait = (
  options: CallbackOptions,
  at: { call: number; fence: number; nowMs: number },
): CallbackWait => {
  const seconds = (name: 'timeoutSeconds' | 'heartbeatSeconds', value: unknown, max: number): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw new ValidationError(`callback ${name} must be a whole number of seconds from 1 to ${max}`, name)
    }
    return value
  }
  const timeout = seconds('timeoutSeconds', options?.timeoutSeconds, MAX_CALLBACK_SECONDS)
  const wait: CallbackWait = {
    call: at.call,
    fence: at.fence,
    requestedAtMs: at.nowMs,
    timeoutAtMs: at.nowMs + timeout * 1000,
  }
  if (options.heartbeatSeconds !== undefined) {
    wait.heartbeatSeconds = seconds('heartbeatSeconds', options.heartbeatSeconds, timeout)
  }
  return wait
}

/** The bytes `"callback_output":` and a comma add around an output merged into its node's (an upper bound). */
const CALLBACK_OUTPUT_KEY_BYTES = 19

/**
 * What the node stores (its output and overrides, as the node limit counts them) once `output` is merged into its
 * output as `callback_output`. `unreadPayloadBytes`: the node's payload as the store counted it, when it was not read
 * (then an upper bound).
 */
const payloadBytesWithCallbackOutput = (node: NodeRecord, output: JsonValue, unreadPayloadBytes?: number): number => {
  if (unreadPayloadBytes !== undefined) return unreadPayloadBytes + CALLBACK_OUTPUT_KEY_BYTES + jsonSizeBytes(output)
  return nodePayloadBytes({ ...node, output: withCallbackOutput(node, output) })
}

/** The node's output with `output` as its `callback_output`: a new object, never the stored one changed in place. */
export const withCallbackOutput = (node: NodeRecord, output: JsonValue): JsonObject => ({
  ...node.output,
  callback_output: output,
})

/** The refusal of a callback output that would take its node past the node limit (undefined: it fits). */
export const callbackOutputRefusal = (
  nodeId: string,
  node: NodeRecord,
  output: JsonValue,
  maxNodeContextBytes: number,
  unreadPayloadBytes?: number,
): PayloadTooLargeError | undefined => {
  const size = payloadBytesWithCallbackOutput(node, output, unreadPayloadBytes)
  if (size <= maxNodeContextBytes) return undefined
  return new PayloadTooLargeError(
    `node '${nodeId}' would store ${size} bytes with this callback output, over the node limit of ${maxNodeContextBytes}`,
    'output',
    size,
    maxNodeContextBytes,
  )
}

/**
 * How a completion's write keeps the instance within its budget, exactly under concurrency: it adds what the
 * arrival counts for (less an earlier arrival of the node it replaces), conditioned on room for that in the write.
 */
export interface CallbackGuard {
  /** Refused (PayloadTooLargeError) if the stored bytes would exceed this. */
  maxBytes: number
  /** The total as the writer read it: where an item stored without a total starts from. */
  baseBytes: number
  /**
   * The heartbeat interval of the open wait the token names, as the writer read it (undefined: the wait has none, or
   * the read found no such wait — the worker had not returned yet): what the write's condition needs to hold a
   * completion to the wait's heartbeat deadline.
   */
  heartbeatSeconds?: number | undefined
}

/** The refusal of a completion the instance has no room for, from the record as it is (undefined: it has room). */
export const callbackBudgetRefusal = (
  record: InstanceRecord,
  claims: CallbackClaims,
  arrival: CallbackArrival,
  guard: CallbackGuard,
): PayloadTooLargeError | undefined => {
  const added = (arrival.storedBytes ?? 0) - (record.callbacks?.[claims.nodeId]?.storedBytes ?? 0)
  if (added <= 0 || record.storedBytes === undefined) return undefined
  const bytes = record.storedBytes + added
  if (bytes <= guard.maxBytes) return undefined
  return new PayloadTooLargeError(
    `the completion would make the instance store ${bytes} bytes, over its budget of ${guard.maxBytes}`,
    arrival.completion?.status === 'success' ? 'output' : 'cause',
    bytes,
    guard.maxBytes,
  )
}

/** A wait still open: asked for and not yet ended. */
export const isWaiting = (node: NodeRecord | undefined): boolean =>
  node?.callback !== undefined && node.callback.outcome === undefined && !isTerminalNodeStatus(node.status)

/** The arrival that belongs to the node's open wait, if any. */
export const arrivalFor = (node: NodeRecord, arrival: CallbackArrival | undefined): CallbackArrival | undefined =>
  arrival && node.callback && arrival.call === node.callback.call && arrival.fence === node.callback.fence
    ? arrival
    : undefined

/**
 * The wait an attempt an earlier lease left in flight had asked for, when a completion of it is stored: one that
 * arrived before its worker returned (see `namesNode`), whose runner then stopped before storing the outcome. It is
 * the arrival of that attempt's call (the node's call count, which no later call shares) under the fence of the lease
 * that started it; its completion is the attempt's outcome. A heartbeat alone is none (undefined). The wait the worker
 * asked for was never stored: it is known from the attempt's start to the completion's arrival.
 */
export const interruptedWaitFor = (
  node: NodeRecord,
  started: AttemptStarted,
  arrival: CallbackArrival | undefined,
): CallbackWait | undefined => {
  const completion = arrival?.completion
  if (!completion || arrival.call !== node.calls || arrival.fence !== started.fence) return undefined
  return { call: arrival.call, fence: arrival.fence, requestedAtMs: started.atMs, timeoutAtMs: completion.atMs }
}

/** The node's open wait is the one the token names: its attempt, call and fence. */
export const waitsFor = (node: NodeRecord, claims: CallbackClaims): boolean =>
  node.attempt === claims.attempt &&
  isWaiting(node) &&
  node.callback?.call === claims.call &&
  node.callback.fence === claims.fence

/** When a callback write is made, and whether it is a heartbeat: what the wait's deadlines are checked against. */
export interface CallbackWriteTime {
  nowMs: number
  heartbeat: boolean
}

/** A deadline of the wait's node or instance (see CallbackWait.closesAtMs) has passed at `at`. */
const closedAt = (wait: CallbackWait, at: CallbackWriteTime): boolean =>
  wait.closesAtMs !== undefined && at.nowMs >= wait.closesAtMs

/**
 * A deadline of the open wait has passed by the writer's clock: its timeout, a deadline of its node or instance
 * (see CallbackWait.closesAtMs), and for a completion its heartbeat
 * deadline when it has one (heartbeats that arrived for it, stored or seen, count). A heartbeat is held to the timeout
 * alone: its write reads nothing, and so cannot know the wait's heartbeat interval.
 */
export const callbackDeadlinePassed = (
  wait: CallbackWait,
  arrival: CallbackArrival | undefined,
  at: CallbackWriteTime,
): boolean => {
  if (at.nowMs >= wait.timeoutAtMs || closedAt(wait, at)) return true
  if (at.heartbeat || wait.heartbeatSeconds === undefined) return false
  const beats =
    arrival && arrival.call === wait.call && arrival.fence === wait.fence ? arrival.heartbeatAtMs : undefined
  const last = Math.max(wait.requestedAtMs, wait.heartbeatAtMs ?? 0, beats ?? 0)
  return at.nowMs >= last + wait.heartbeatSeconds * 1000
}

/** The node's open wait is the one the token names and its deadlines have not passed by the writer's clock. */
const waitsStillFor = (
  record: InstanceRecord,
  node: NodeRecord,
  claims: CallbackClaims,
  at: CallbackWriteTime | undefined,
): boolean =>
  waitsFor(node, claims) &&
  !(at && callbackDeadlinePassed(node.callback as CallbackWait, record.callbacks?.[claims.nodeId], at))

const namesNode = (
  record: InstanceRecord,
  node: NodeRecord,
  claims: CallbackClaims,
  at: CallbackWriteTime | undefined,
): boolean =>
  waitsStillFor(record, node, claims, at) ||
  // Early: the worker that asked for it has not returned yet. Its attempt is in flight at the token's call (the
  // call count grows with every attempt stored as started), and the token's lease is still the last one taken.
  (node.attempt === claims.attempt &&
    node.calls === claims.call &&
    node.attemptStarted !== undefined &&
    record.fence === claims.fence)

/**
 * The condition of a callback write, as each store evaluates it in the write itself: the instance and node are
 * live, the token names the node's open wait whose deadlines have not passed at `at` (see callbackDeadlinePassed),
 * or its attempt in flight, and no completion is stored for it yet. Without `at`, the deadlines are not looked at.
 */
export const callbackAccepts = (record: InstanceRecord, claims: CallbackClaims, at?: CallbackWriteTime): boolean => {
  const node = record.nodes[claims.nodeId]
  if (!node || isTerminalInstanceStatus(record.status) || isTerminalNodeStatus(node.status)) return false
  if (!namesNode(record, node, claims, at)) return false
  const arrival = record.callbacks?.[claims.nodeId]
  return !(arrival?.call === claims.call && arrival.completion !== undefined)
}

/**
 * What a callback write that cannot be stored means, from the record as it was: `duplicate` when the same
 * completion is stored or was applied (it is answered as the first one was), a conflict for a different
 * completion, else gone.
 */
export const callbackRefusal = (
  record: InstanceRecord | undefined,
  claims: CallbackClaims,
  /** The completion's fingerprint (see completionFingerprint); undefined for a heartbeat. */
  fingerprint: string | undefined,
  /** When the refused write was made: a wait whose deadline had passed by then timed out. */
  at?: CallbackWriteTime,
): 'duplicate' | CallbackGoneError | CallbackConflictError => {
  const gone = (why: string) => new CallbackGoneError(`this callback can no longer be completed: ${why}`)
  const node = record?.nodes[claims.nodeId]
  if (!record || !node) return gone('its instance is gone')
  const arrival = record.callbacks?.[claims.nodeId]
  const stored =
    arrival?.call === claims.call && arrival.fence === claims.fence ? arrival.completion?.fingerprint : undefined
  const wait = node.callback
  const ended = wait?.call === claims.call && wait.fence === claims.fence ? wait : undefined
  const known = stored ?? ended?.fingerprint
  if (fingerprint !== undefined && fingerprint === known) return 'duplicate'
  if (stored !== undefined) {
    return fingerprint === undefined
      ? gone('it was completed')
      : new CallbackConflictError('it was completed differently')
  }
  // Closed by the failure of the worker that asked for it: said so, without the failure's text (the callbacks route
  // answers anyone who holds the token).
  const failedText = (failure: WorkerFailure) =>
    failure.signal === 'not-ready'
      ? 'the worker that asked for it said its node is not ready'
      : 'the worker that asked for it failed'
  if (ended?.outcome !== undefined)
    return gone(ended.workerFailure ? failedText(ended.workerFailure) : `it ended (${ended.outcome})`)
  if (isTerminalInstanceStatus(record.status)) return gone(`the instance is ${record.status}`)
  if (isTerminalNodeStatus(node.status)) return gone(`the node is ${node.status}`)
  if (at && waitsFor(node, claims) && callbackDeadlinePassed(node.callback as CallbackWait, arrival, at)) {
    const wait = node.callback as CallbackWait
    return gone(
      closedAt(wait, at) && at.nowMs < wait.timeoutAtMs
        ? "the node's or instance's deadline passed"
        : wait.workerFailure
          ? failedText(wait.workerFailure)
          : 'the wait timed out',
    )
  }
  return gone('it belongs to an earlier attempt')
}

/** What an open wait comes to now. */
export type CallbackResolution =
  | { kind: 'wait'; untilMs: number; heartbeatAtMs: number | undefined }
  | { kind: 'success'; output: JsonValue | undefined; fingerprint: string }
  | { kind: 'failure'; error: Error; fingerprint: string }
  | { kind: 'timeout'; error: CallbackTimeoutError; outcome: 'timeout' | 'heartbeat-timeout' }

/** The error a failure completion stands for: a worker signal it names decides the node like a thrown one. */
export const failureOf = (completion: { error?: string; cause?: string }): Error => {
  const name = completion.error ?? 'CallbackFailed'
  const message = `${name}${completion.cause === undefined ? '' : `: ${completion.cause}`}`.slice(0, 2000)
  const signal = name.replace(/Error$/, '')
  const cause =
    signal === 'FailedWithFailed'
      ? new FailedWithFailedError(message)
      : signal === 'FailedWithContinue'
        ? new FailedWithContinueError(message)
        : undefined
  return new CallbackFailedError(message, cause ? { cause } : undefined)
}

/** Resolves an open wait against what arrived: completed, timed out, or still waiting (until when). */
export const resolveCallback = (
  wait: CallbackWait,
  arrival: CallbackArrival | undefined,
  nowMs: number,
): CallbackResolution => {
  const completion = arrival?.completion
  if (completion?.status === 'success') {
    return { kind: 'success', output: completion.output, fingerprint: completion.fingerprint }
  }
  if (completion?.status === 'failure') {
    return { kind: 'failure', error: failureOf(completion), fingerprint: completion.fingerprint }
  }
  if (nowMs >= wait.timeoutAtMs) {
    const seconds = Math.round((wait.timeoutAtMs - wait.requestedAtMs) / 1000)
    const error = new CallbackTimeoutError(`the callback was not completed within ${seconds} s`)
    return { kind: 'timeout', error, outcome: 'timeout' }
  }
  const heartbeatAtMs = Math.max(wait.heartbeatAtMs ?? 0, arrival?.heartbeatAtMs ?? 0) || undefined
  if (wait.heartbeatSeconds === undefined) return { kind: 'wait', untilMs: wait.timeoutAtMs, heartbeatAtMs }
  const silentUntil = Math.max(wait.requestedAtMs, heartbeatAtMs ?? 0) + wait.heartbeatSeconds * 1000
  if (nowMs >= silentUntil) {
    const error = new CallbackTimeoutError(`no heartbeat or completion of the callback for ${wait.heartbeatSeconds} s`)
    return { kind: 'timeout', error, outcome: 'heartbeat-timeout' }
  }
  return { kind: 'wait', untilMs: Math.min(wait.timeoutAtMs, silentUntil), heartbeatAtMs }
}

/**
 * A worker that asked for a callback and then failed, or said its node is not ready: its wait, closed now, keeping
 * the failure (see CallbackWait.workerFailure).
 */
export const closedByFailure = (wait: CallbackWait, error: unknown, nowMs: number): CallbackWait => {
  const signal = classifyWorkerError(error)
  const name = error instanceof Error ? error.name : 'Error'
  const text = error instanceof Error ? error.message : String(error)
  // Kept as `last_error` keeps it: the stored bytes of a record stay bounded.
  const failure: WorkerFailure = {
    name: name.slice(0, 100),
    message: text.slice(0, LAST_ERROR_CHARS),
    signal: signal.kind,
  }
  if (signal.kind === 'not-ready' && signal.retryAfterSeconds !== undefined) {
    const seconds = signal.retryAfterSeconds
    if (Number.isFinite(seconds) && seconds >= 0) failure.retryAfterSeconds = seconds
  }
  return { ...wait, timeoutAtMs: Math.min(wait.timeoutAtMs, nowMs), workerFailure: failure }
}

/**
 * The failure a closed wait kept, as an error of its kind, named and worded as it was thrown; `elapsedMs` since it
 * was stored: a node not ready is looked at again when its worker said, counted from then.
 */
export const keptFailure = (failure: WorkerFailure, elapsedMs: number): Error => {
  const error = failureOfKind(failure, elapsedMs)
  Object.defineProperty(error, 'name', { value: failure.name, configurable: true, writable: true })
  return error
}

const failureOfKind = ({ signal, message, retryAfterSeconds: retry }: WorkerFailure, elapsedMs: number): Error => {
  switch (signal) {
    case 'failed-with-failed':
      return new FailedWithFailedError(message)
    case 'failed-with-continue':
      return new FailedWithContinueError(message)
    case 'not-ready':
      return new NotReadyError(retry === undefined ? undefined : Math.max(0, retry - elapsedMs / 1000), { message })
    case 'error':
      return new Error(message)
  }
}
