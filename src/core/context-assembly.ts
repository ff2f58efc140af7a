import { END_NODE_ID, ROOT_NODE_ID, type WorkflowDefinition } from './definition.js'
import { cloneJson, isJsonObject, type JsonObject, type JsonValue, jsonEquals } from './json.js'
import { CONTEXT_KEYS } from './node-context.js'
import type { InstanceRecord, NodeEventRecord, NodeRecord } from './store.js'

/** A worker's own copy of stored data: a primitive as it is (nothing to share), an object or array copied. */
const own = <T extends JsonValue>(value: T): T =>
  typeof value === 'object' && value !== null ? cloneJson(value) : value

/**
 * Node contexts are stored without the parts that can be derived (the instance input, the predecessors' outputs,
 * the external event), which keeps an instance item small; these functions put them back together.
 */

export const nodeEventView = (event: NodeEventRecord): JsonObject => ({
  event_content: own(event.content),
  event_ts: event.eventTs,
})

/** What a node hands to its successors: its context minus pre_node_context, workflow_context and system. */
export const successorView = (instance: InstanceRecord, nodeId: string): JsonObject => {
  if (nodeId === ROOT_NODE_ID) return {}
  const record = instance.nodes[nodeId]
  const view: JsonObject = {}
  const event = instance.events[nodeId]
  if (event) view[CONTEXT_KEYS.nodeEvent] = nodeEventView(event)
  for (const [key, value] of Object.entries(record?.output ?? {})) {
    if (key !== CONTEXT_KEYS.system) view[key] = own(value)
  }
  return view
}

/** The input a node runs with: the instance's, or the earlier one a restart replaced (stored once, by reference). */
export const nodeInput = (instance: InstanceRecord, record: NodeRecord | undefined): JsonObject =>
  (record?.inputRef !== undefined ? instance.priorInputs?.[record.inputRef] : undefined) ?? instance.input

/** The predecessors' outputs a node sees; a skipped predecessor has none and is left out. */
export const derivedPreNodeContext = (
  definition: WorkflowDefinition,
  instance: InstanceRecord,
  nodeId: string,
): JsonObject => {
  const pre: JsonObject = {}
  for (const prev of definition.byId.get(nodeId)?.prev ?? []) {
    if (instance.nodes[prev]?.status !== 'skipped') pre[prev] = successorView(instance, prev)
  }
  return pre
}

/** `system` as a node's context shows it: what the worker stored there, with the engine's last error. */
const systemView = (record: NodeRecord): JsonObject | undefined => {
  const stored = record.output[CONTEXT_KEYS.system]
  if (record.lastError === undefined) return isJsonObject(stored) ? cloneJson(stored) : undefined
  return {
    ...(isJsonObject(stored) ? cloneJson(stored) : {}),
    last_error: record.lastError,
    ...(record.lastErrorAtSeconds === undefined ? {} : { last_error_time: record.lastErrorAtSeconds }),
  }
}

/** The whole context of a node as a worker (or the detail view) sees it. */
export const assembleContext = (
  definition: WorkflowDefinition,
  instance: InstanceRecord,
  nodeId: string,
  record: NodeRecord | undefined,
): JsonObject => {
  const context: JsonObject = {
    // A derived pre_node_context is made of copies already.
    [CONTEXT_KEYS.preNodeContext]: record?.preNodeContext
      ? cloneJson(record.preNodeContext)
      : nodeId === ROOT_NODE_ID
        ? {}
        : derivedPreNodeContext(definition, instance, nodeId),
    [CONTEXT_KEYS.workflowContext]: cloneJson(record?.workflowContext ?? nodeInput(instance, record)),
  }
  const event = instance.events[nodeId]
  if (event && nodeId !== END_NODE_ID) context[CONTEXT_KEYS.nodeEvent] = nodeEventView(event)
  for (const [key, value] of Object.entries(record?.output ?? {})) context[key] = own(value)
  const system = record && systemView(record)
  if (system) context[CONTEXT_KEYS.system] = system
  return context
}

/**
 * Splits a context back into what is stored: the node's own output, plus overrides where the worker changed a
 * derived part. The external event is owned by the event API: a worker's changes to `node_event` are not kept.
 */
export const splitContext = (
  definition: WorkflowDefinition,
  instance: InstanceRecord,
  nodeId: string,
  context: JsonObject,
): Pick<NodeRecord, 'output' | 'workflowContext' | 'preNodeContext'> => {
  const output: JsonObject = {}
  for (const [key, value] of Object.entries(context)) {
    if (key === CONTEXT_KEYS.preNodeContext || key === CONTEXT_KEYS.workflowContext || key === CONTEXT_KEYS.nodeEvent) {
      continue
    }
    if (value !== undefined) output[key] = value
  }
  // The engine's own `system` fields live in the node record: only what the worker put there is its output.
  const system = output[CONTEXT_KEYS.system]
  if (isJsonObject(system)) {
    const { last_error: _error, last_error_time: _time, ...rest } = system
    if (Object.keys(rest).length) output[CONTEXT_KEYS.system] = rest
    else delete output[CONTEXT_KEYS.system]
  }
  const split: Pick<NodeRecord, 'output' | 'workflowContext' | 'preNodeContext'> = { output }
  const workflowContext = context[CONTEXT_KEYS.workflowContext]
  if (!jsonEquals(workflowContext, nodeInput(instance, instance.nodes[nodeId]))) {
    split.workflowContext = (workflowContext ?? {}) as JsonObject
  }
  const preNodeContext = context[CONTEXT_KEYS.preNodeContext]
  if (!jsonEquals(preNodeContext, derivedPreNodeContext(definition, instance, nodeId))) {
    split.preNodeContext = (preNodeContext ?? {}) as JsonObject
  }
  return split
}
