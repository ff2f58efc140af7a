import { ValidationError } from './errors.js'
import { type JsonObject, jsonSizeBytes } from './json.js'
import type { FailureSummary, InstanceRecord, NodeEventRecord, NodeRecord } from './store.js'

export interface Limits {
  /** Largest part of a node context the node itself stores (its output and any overrides), as JSON. */
  maxNodeContextBytes: number
  /** Largest instance input or event content. */
  maxInputBytes: number
  /** Budget for everything an instance stores, well below DynamoDB's 400 KB item limit. */
  maxInstanceBytes: number
  maxDepth: number
}

export const DEFAULT_LIMITS: Limits = {
  maxNodeContextBytes: 64 * 1024,
  maxInputBytes: 64 * 1024,
  maxInstanceBytes: 300 * 1024,
  maxDepth: 24,
}

/** DynamoDB's item limit: 400 KB, counted as 1,024 bytes per KB. */
export const DYNAMODB_ITEM_BYTES = 400 * 1024

/**
 * The largest instance budget the engine accepts. The budget counts stored data as JSON; the item also holds
 * attribute names, keys, index attributes, the lease and a parked reason, which the 40 KiB of headroom covers.
 */
export const MAX_INSTANCE_BYTES = 360 * 1024

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
    fail(
      'maxInstanceBytes',
      `at most ${MAX_INSTANCE_BYTES} bytes (360 KiB) fit in a DynamoDB item of ${DYNAMODB_ITEM_BYTES} bytes with the headroom its bookkeeping needs`,
    )
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

export const nodeStoredBytes = (nodeId: string, node: NodeRecord | undefined): number =>
  node === undefined
    ? 0
    : NODE_OVERHEAD_BYTES +
      nodeId.length +
      jsonSizeBytes(node.output) +
      (node.workflowContext === undefined ? 0 : jsonSizeBytes(node.workflowContext)) +
      (node.preNodeContext === undefined ? 0 : jsonSizeBytes(node.preNodeContext)) +
      (node.inputRef?.length ?? 0)

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
