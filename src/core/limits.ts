import { ValidationError } from './errors.js'
import { type JsonObject, jsonSizeBytes } from './json.js'
import type { FailureSummary, InstanceRecord, NodeEventRecord, NodeRecord } from './store.js'

export interface Limits {
  /** Largest part of a node context the node itself stores (its output and any overrides), as JSON. */
  maxNodeContextBytes: number
  /** Largest instance input or event content. */
  maxInputBytes: number
  /** Budget for everything an instance stores, over all its items (the instance item is bounded by construction). */
  maxInstanceBytes: number
  maxDepth: number
}

export const DEFAULT_LIMITS: Limits = {
  maxNodeContextBytes: 64 * 1024,
  maxInputBytes: 64 * 1024,
  maxInstanceBytes: 8 * 1024 * 1024,
  maxDepth: 24,
}

/** DynamoDB's item limit: 400 KB, counted as 1,024 bytes per KB. */
export const DYNAMODB_ITEM_BYTES = 400 * 1024

/**
 * The largest payload (a node's output and overrides, an input, an event's content) the engine accepts: each one
 * is stored in an item of its own when it is not small, and that item also holds its keys and attribute names.
 */
export const MAX_PAYLOAD_BYTES = 350 * 1024

/**
 * The largest instance budget the engine accepts: what one instance may store over all its items. A whole instance
 * is read by one Query (paged at 1 MB), so the budget bounds what a `get` or a resumed pass reads.
 */
export const MAX_INSTANCE_BYTES = 64 * 1024 * 1024

/**
 * The layout rule both stores follow (README, "Table layout"): payloads up to these sizes are kept inline in the
 * instance item, larger ones in items of their own that the instance item refers to. With at most 200 nodes, every
 * node record at its largest inline size and an inline event per node, the instance item stays below 400 KB by
 * construction: 200 × (1,024 + 512 + record) + the instance's own attributes.
 */
export const INLINE_PAYLOAD_BYTES = 1024
export const INLINE_EVENT_BYTES = 512
export const INLINE_INPUT_BYTES = 1024

/** What a reference to a payload stored out of line costs in the instance item (its key and hash). */
export const PAYLOAD_REF_BYTES = 48

/**
 * Settled node records are moved out of the instance item, all together, once they take this many bytes there: a
 * small workflow never pays for an archive item, a large one keeps an instance item of about this size plus its
 * running nodes, so the cost of a node step does not grow with the nodes finished before it.
 */
export const ARCHIVE_AT_BYTES = 2048

/**
 * Checks limits against what DynamoDB can store: every size a positive integer, the instance budget below the item
 * limit with headroom, each per-item limit within the instance budget. Throws a ValidationError naming the limit.
 */
export const validateLimits = (limits: Limits): Limits => {
  const fail = (name: keyof Limits, why: string): never => {
    throw new ValidationError(`limits.${name} is ${String(limits[name])}: ${why}`, `limits.${name}`)
  }
  for (const name of ['maxNodeContextBytes', 'maxInputBytes', 'maxInstanceBytes', 'maxDepth'] as const) {
    if (!Number.isSafeInteger(limits[name]) || limits[name] < 1) fail(name, 'it must be a positive integer')
  }
  if (limits.maxInstanceBytes > MAX_INSTANCE_BYTES) {
    fail('maxInstanceBytes', `at most ${MAX_INSTANCE_BYTES} bytes (64 MiB), what one instance read may return`)
  }
  for (const name of ['maxNodeContextBytes', 'maxInputBytes'] as const) {
    if (limits[name] > MAX_PAYLOAD_BYTES) {
      fail(
        name,
        `at most ${MAX_PAYLOAD_BYTES} bytes (350 KiB): a payload is stored in one DynamoDB item of at most ${DYNAMODB_ITEM_BYTES} bytes with its keys`,
      )
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
const NODE_OVERHEAD_BYTES = 128
const EVENT_OVERHEAD_BYTES = 48

/** The bytes of a node's own payload (output and overrides), as JSON: what decides whether it is inline. */
export const nodePayloadBytes = (node: NodeRecord): number =>
  jsonSizeBytes(node.output) +
  (node.workflowContext === undefined ? 0 : jsonSizeBytes(node.workflowContext)) +
  (node.preNodeContext === undefined ? 0 : jsonSizeBytes(node.preNodeContext))

/** What a node record counts for, around a payload of `payloadBytes`. */
export const nodeBytesAround = (nodeId: string, node: NodeRecord, payloadBytes: number): number =>
  NODE_OVERHEAD_BYTES + nodeId.length + payloadBytes + (node.inputRef?.length ?? 0)

export const nodeStoredBytes = (nodeId: string, node: NodeRecord | undefined): number =>
  node === undefined ? 0 : nodeBytesAround(nodeId, node, nodePayloadBytes(node))

/** What a node record takes in the instance item: its payload when inline, a reference when not. */
export const nodeInlineBytes = (nodeId: string, node: NodeRecord, payloadBytes = nodePayloadBytes(node)): number =>
  nodeBytesAround(nodeId, node, payloadBytes > INLINE_PAYLOAD_BYTES ? PAYLOAD_REF_BYTES : payloadBytes)

export const eventStoredBytes = (nodeId: string, event: NodeEventRecord | undefined): number =>
  event === undefined ? 0 : EVENT_OVERHEAD_BYTES + nodeId.length + jsonSizeBytes(event.content)

export const failureStoredBytes = (failure: FailureSummary | undefined): number =>
  failure === undefined ? 0 : jsonSizeBytes(failure)

export const priorInputsStoredBytes = (priorInputs: Record<string, JsonObject> | undefined): number =>
  priorInputs === undefined ? 0 : jsonSizeBytes(priorInputs)

export const instanceStoredBytes = (record: InstanceRecord): number => {
  let bytes = INSTANCE_OVERHEAD_BYTES + jsonSizeBytes(record.input) + failureStoredBytes(record.failure)
  bytes += priorInputsStoredBytes(record.priorInputs)
  for (const [id, node] of Object.entries(record.nodes)) bytes += nodeStoredBytes(id, node)
  for (const [id, event] of Object.entries(record.events)) bytes += eventStoredBytes(id, event)
  return bytes
}
