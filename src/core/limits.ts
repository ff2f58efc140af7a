import { ValidationError } from './errors.js'
import { type JsonObject, jsonSizeBytes, payloadBytes } from './json.js'
import type { CallbackResult, FailureSummary, InstanceRecord, NodeEventRecord, NodeRecord } from './records.js'

/** The last error a node's context shows under `system`, at most this many characters (it lives in the record). */
export const LAST_ERROR_CHARS = 300

export interface Limits {
  /** Largest part of a node context the node itself stores (its output and any overrides), as JSON. */
  maxNodeContextBytes: number
  /** Largest instance input or event content. */
  maxInputBytes: number
  /** Budget for everything an instance stores (a store keeps each of its items bounded by construction). */
  maxInstanceBytes: number
  maxDepth: number
}

export const DEFAULT_LIMITS: Limits = {
  maxNodeContextBytes: 64 * 1024,
  maxInputBytes: 64 * 1024,
  maxInstanceBytes: 8 * 1024 * 1024,
  maxDepth: 24,
}

/**
 * Kept free in every instance's budget for recording how it fails: a node's last error, the failure summary, the
 * instance's end. Outputs, events and inputs may fill the budget up to this much less than `maxInstanceBytes`; a
 * write that fails a node or ends the instance may use it all, so a full instance can always fail with its reason.
 */
export const FAILURE_HEADROOM_BYTES = 2048

/** What outputs, events and inputs may fill of an instance's budget (the rest is kept for its failure). */
export const growthBudget = (limits: Pick<Limits, 'maxInstanceBytes'>): number =>
  Math.max(0, limits.maxInstanceBytes - FAILURE_HEADROOM_BYTES)

/**
 * What a store can hold of one instance, at most: the engine refuses limits beyond it. Each store states its own
 * (the DynamoDB store's come from DynamoDB's item and read limits).
 */
export interface StoreCapacity {
  /** The largest payload (a node's output and overrides, an input, an event's content) one item can hold. */
  maxPayloadBytes: number
  /** The largest budget an instance may have (what one read of a whole instance may return). */
  maxInstanceBytes: number
  /** Why, for the refusal's message: what holds one payload, what reads one instance. */
  payloadHeldBy: string
  instanceReadBy: string
}

/**
 * Checks limits against what the store can hold: every size a positive integer, the instance budget within the
 * store's, each per-item limit within the store's payload limit and within the instance budget. Throws a
 * ValidationError naming the limit.
 */
export const validateLimits = (limits: Limits, capacity: StoreCapacity): Limits => {
  const fail = (name: keyof Limits, why: string): never => {
    throw new ValidationError(`limits.${name} is ${String(limits[name])}: ${why}`, `limits.${name}`)
  }
  for (const name of ['maxNodeContextBytes', 'maxInputBytes', 'maxInstanceBytes', 'maxDepth'] as const) {
    if (!Number.isSafeInteger(limits[name]) || limits[name] < 1) fail(name, 'it must be a positive integer')
  }
  if (limits.maxInstanceBytes > capacity.maxInstanceBytes) {
    fail('maxInstanceBytes', `at most ${capacity.maxInstanceBytes} bytes, ${capacity.instanceReadBy}`)
  }
  for (const name of ['maxNodeContextBytes', 'maxInputBytes'] as const) {
    if (limits[name] > capacity.maxPayloadBytes) {
      fail(name, `at most ${capacity.maxPayloadBytes} bytes: ${capacity.payloadHeldBy}`)
    }
  }
  for (const name of ['maxNodeContextBytes', 'maxInputBytes'] as const) {
    if (limits[name] > limits.maxInstanceBytes) {
      fail(name, `it cannot exceed limits.maxInstanceBytes (${limits.maxInstanceBytes}), which must hold it`)
    }
  }
  if (limits.maxDepth > 100) fail('maxDepth', 'at most 100 levels')
  return limits
}

/**
 * What an instance stores, in bytes, as the engine counts it against `maxInstanceBytes`: a fixed allowance for the
 * item's own attributes, plus each stored part's JSON and a fixed allowance per node and event. It depends only on
 * content (not on which defaults a record happens to spell out), and it is additive: each write adds the difference
 * it makes to the `bytes` attribute the store keeps, and conditions on it.
 */
export const INSTANCE_OVERHEAD_BYTES = 1024
export const NODE_OVERHEAD_BYTES = 128
const EVENT_OVERHEAD_BYTES = 48
/** At least what merging an output into its node's output as `callback_output` adds (`"callback_output":` and a comma). */
const CALLBACK_ARRIVAL_OVERHEAD_BYTES = 48
const PRIOR_INPUT_OVERHEAD_BYTES = 16

/** The bytes of a node's own payload (output and overrides), as JSON: what decides whether it is inline. */
export const nodePayloadBytes = (node: Pick<NodeRecord, 'output' | 'workflowContext' | 'preNodeContext'>): number =>
  payloadBytes(node.output) +
  (node.workflowContext === undefined ? 0 : payloadBytes(node.workflowContext)) +
  (node.preNodeContext === undefined ? 0 : payloadBytes(node.preNodeContext))

/** What a node record counts for, around a payload of `payloadBytes` (its last error included). */
export const nodeBytesAround = (nodeId: string, node: NodeRecord, payloadBytes: number): number =>
  NODE_OVERHEAD_BYTES +
  nodeId.length +
  payloadBytes +
  (node.inputRef?.length ?? 0) +
  (node.lastError === undefined ? 0 : jsonSizeBytes(node.lastError))

export const nodeStoredBytes = (nodeId: string, node: NodeRecord | undefined): number =>
  node === undefined ? 0 : nodeBytesAround(nodeId, node, nodePayloadBytes(node))

/** What an event counts for, around content of `contentBytes`. */
export const eventBytesAround = (nodeId: string, contentBytes: number): number =>
  EVENT_OVERHEAD_BYTES + nodeId.length + contentBytes

export const eventStoredBytes = (nodeId: string, event: NodeEventRecord | undefined): number =>
  event === undefined ? 0 : eventBytesAround(nodeId, jsonSizeBytes(event.content))

/**
 * What a callback completion counts for from its arrival until a pass consumes it: its output, or its error and
 * cause, and an allowance. Settling it frees this and grows the node by at most as much (the allowance covers the
 * `callback_output` key), so a settling write never grows the instance.
 */
export const callbackArrivalBytes = (nodeId: string, completion: CallbackResult): number =>
  CALLBACK_ARRIVAL_OVERHEAD_BYTES +
  nodeId.length +
  // An absent part serialises to nothing: 0 bytes.
  (completion.status === 'success'
    ? jsonSizeBytes(completion.output)
    : jsonSizeBytes(completion.error) + jsonSizeBytes(completion.cause))

export const failureStoredBytes = (failure: FailureSummary | undefined): number =>
  failure === undefined ? 0 : jsonSizeBytes(failure)

/**
 * What prior inputs count for: each distinct input once (see InstanceRecord.priorInputs); `unread`, the bytes of
 * those a store did not read.
 */
export const priorInputsStoredBytes = (
  priorInputs: Record<string, JsonObject> | undefined,
  unread: Readonly<Record<string, number>> = {},
): number => {
  let bytes = 0
  for (const [key, input] of Object.entries(priorInputs ?? {})) {
    bytes += PRIOR_INPUT_OVERHEAD_BYTES + key.length + (unread[key] ?? jsonSizeBytes(input))
  }
  return bytes
}

export const instanceStoredBytes = (record: InstanceRecord): number => {
  const unread = record.unread
  let bytes =
    INSTANCE_OVERHEAD_BYTES + (unread?.input ?? jsonSizeBytes(record.input)) + failureStoredBytes(record.failure)
  bytes += priorInputsStoredBytes(record.priorInputs, unread?.priorInputs)
  for (const [id, node] of Object.entries(record.nodes)) {
    const unread = record.unread?.nodes[id]
    bytes += unread === undefined ? nodeStoredBytes(id, node) : nodeBytesAround(id, node, unread)
  }
  for (const [id, event] of Object.entries(record.events)) {
    const unread = record.unread?.events[id]
    bytes += unread === undefined ? eventStoredBytes(id, event) : eventBytesAround(id, unread)
  }
  for (const arrival of Object.values(record.callbacks ?? {})) bytes += arrival.storedBytes ?? 0
  return bytes
}
