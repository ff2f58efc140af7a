import { assembleContext, nodeInput, successorView } from './context-assembly.js'
import { type NodeDefinition, ROOT_NODE_ID, type WorkflowDefinition } from './definition.js'
import {
  type CompiledExpression,
  type EvaluationEnvironment,
  type ExpressionBindings,
  type ExpressionFailure,
  evaluateCondition,
  type PredecessorBinding,
} from './expressions.js'
import type { InstanceRecord } from './store.js'

/**
 * Evaluating a node's condition (`when`) and its choice over the instance as a pass holds it. The environment is the
 * engine's clock and randomness, with no stopwatch of its own: the 100 ms timeout is measured on the engine's clock,
 * which is the system clock in production and stands still under a test's fake clock (so a test's expressions never
 * time out and every result is deterministic).
 */

/** An expression that could not decide: it failed to evaluate or returned something other than a boolean. */
export class ExpressionFailedError extends Error {
  override readonly name = 'ExpressionFailedError'
  constructor(
    /** Where the expression is: `when`, `choice[1].when`. */
    readonly field: string,
    readonly failure: ExpressionFailure,
  ) {
    const at = failure.position === undefined ? '' : ` at position ${failure.position}`
    super(`${field}: ${failure.code}${at}: ${failure.message}`)
  }
}

/** `$nodes`: each direct predecessor's status, its output when it ran (completed or failed), its skip reason. */
const predecessorBindings = (instance: InstanceRecord, node: NodeDefinition): Record<string, PredecessorBinding> => {
  const bindings: Record<string, PredecessorBinding> = {}
  for (const prev of node.prev) {
    if (prev === ROOT_NODE_ID) {
      bindings[prev] = { status: 'completed', output: {} }
      continue
    }
    const record = instance.nodes[prev]
    if (!record) {
      bindings[prev] = { status: 'uncreated' }
    } else if (record.status === 'completed' || record.status === 'failed') {
      bindings[prev] = { status: record.status, output: successorView(instance, prev) }
    } else if (record.status === 'skipped' && record.skipReason !== undefined) {
      bindings[prev] = { status: record.status, reason: record.skipReason }
    } else {
      bindings[prev] = { status: record.status }
    }
  }
  return bindings
}

/** What an expression of `node` reads; with `output` (what the node wrote), for a choice. */
const expressionBindings = (
  definition: WorkflowDefinition,
  instance: InstanceRecord,
  node: NodeDefinition,
  output?: ExpressionBindings['output'],
): ExpressionBindings => {
  const record = instance.nodes[node.id]
  const instanceBinding: ExpressionBindings['instance'] = {
    id: instance.id,
    type: instance.workflowType,
    version: instance.definitionVersion,
    createdAtMs: instance.createdAtMs,
    ...(instance.businessId !== undefined ? { businessId: instance.businessId } : {}),
  }
  return {
    input: nodeInput(instance, output === undefined ? undefined : record),
    nodes: predecessorBindings(instance, node),
    // A condition sees the context the worker would start with; a choice the context the node ended with.
    context: assembleContext(definition, instance, node.id, output === undefined ? undefined : record),
    instance: instanceBinding,
    ...(output !== undefined ? { output } : {}),
  }
}

const decide = async (
  expression: CompiledExpression,
  field: string,
  bindings: ExpressionBindings,
  environment: EvaluationEnvironment,
): Promise<boolean | ExpressionFailedError> => {
  const outcome = await evaluateCondition(expression, bindings, environment)
  return outcome.ok ? outcome.value : new ExpressionFailedError(field, outcome)
}

/** The node's `when` (true when it has none), evaluated once its join rule lets it run. */
export const evaluateWhen = async (
  environment: EvaluationEnvironment,
  definition: WorkflowDefinition,
  instance: InstanceRecord,
  node: NodeDefinition,
): Promise<boolean | ExpressionFailedError> => {
  if (node.when === undefined) return true
  return decide(node.when, 'when', expressionBindings(definition, instance, node), environment)
}

/** The branch a choice took: the successor (null: none) and how it was decided (`choice[1]`, `choice.default`). */
export interface Chosen {
  readonly next: string | null
  readonly by: string
}

/**
 * The node's choice, made once it completed: its rules in order with `$output`, the first true one wins, else the
 * default. A rule that fails to evaluate fails the choice (and the node): a later rule is not tried.
 */
export const evaluateChoice = async (
  environment: EvaluationEnvironment,
  definition: WorkflowDefinition,
  instance: InstanceRecord,
  node: NodeDefinition,
): Promise<Chosen | ExpressionFailedError> => {
  const choice = node.choice
  if (choice === undefined) throw new Error(`node '${node.id}' has no choice`)
  const bindings = expressionBindings(definition, instance, node, successorView(instance, node.id))
  for (const [index, rule] of choice.rules.entries()) {
    const field = `choice[${index}]`
    const holds = await decide(rule.when, `${field}.when`, bindings, environment)
    if (holds instanceof ExpressionFailedError) return holds
    if (holds) return { next: rule.next, by: field }
  }
  return { next: choice.default, by: 'choice.default' }
}

/** The history code of a decision: `when:true`, `choice[0]:approve`, `choice.default:none`. */
export const decisionCode = (decision: Chosen | 'when'): string =>
  decision === 'when' ? 'when:true' : `${decision.by}:${decision.next ?? 'none'}`
