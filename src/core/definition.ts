import type { z } from 'zod'
import {
  DEFAULT_FAILURE_MODE,
  DEFAULT_TRIGGER_RULE,
  type FailureMode,
  type TriggerRule,
  type WorkflowConfig,
  workflowConfigSchema,
} from '../schemas/workflow-config.js'
import { describeIssues, issuePath } from '../schemas/zod-issues.js'
import { DefinitionError } from './errors.js'
import { type CompiledExpression, compileExpression } from './expressions.js'
import { canonicalJson } from './json.js'
import type { RetryPolicy } from './retry-policy.js'

export const ROOT_NODE_ID = 'root'
export const END_NODE_ID = 'end'
export const RESERVED_NODE_IDS: ReadonlySet<string> = new Set([ROOT_NODE_ID, END_NODE_ID])

export interface NodeDefinition {
  readonly id: string
  readonly name: string
  /** Successors, with `end` for nodes that have none in the config. */
  readonly next: readonly string[]
  /** Predecessors, with `root` for nodes that have none in the config. */
  readonly prev: readonly string[]
  /** 0 = unlimited. */
  readonly failMaxCount: number
  /** 0 = no deadline. */
  readonly maxWaitTimeSeconds: number
  readonly retry: Partial<RetryPolicy> | undefined
  /** `root` and `end` have no worker: the engine completes them itself. */
  readonly synthetic: boolean
  /** Evaluated once, when the join rule lets the node run: `false` skips it (`condition_false`). */
  readonly when: CompiledExpression | undefined
  /** An exclusive choice among the successors, made when the node completes. */
  readonly choice: NodeChoice | undefined
  /** When the node runs, given how its predecessors ended (`none_failed_min_one_success` unless the config says). */
  readonly trigger: TriggerRule
  /** A terminal failure of this node counts as done for its successors. */
  readonly optional: boolean
  /** Bounds each attempt of the worker; undefined = no bound but the lease's. */
  readonly runTimeoutSeconds: number | undefined
  /** Bounds the whole node, from its creation, across attempts and waits; undefined = no deadline. */
  readonly timeoutSeconds: number | undefined
}

export interface ChoiceRule {
  readonly when: CompiledExpression
  /** A successor of the node. */
  readonly next: string
}

/**
 * The rules are tried in order and the first true one wins; when none is true, `default` is taken (`null`: no
 * successor is). Every successor of the node is a rule's target or the default, so each edge the choice does not
 * take is known.
 */
export interface NodeChoice {
  readonly rules: readonly ChoiceRule[]
  readonly default: string | null
}

export interface WorkflowDefinition {
  readonly type: string
  readonly name: string
  /** Content hash of the normalised config: instances record it and keep their graph when the config changes. */
  readonly version: string
  readonly retry: Partial<RetryPolicy> | undefined
  /** What a node's terminal failure does to the rest of the instance (`fail_fast` unless the config says). */
  readonly onFailure: FailureMode
  /** Bounds the whole instance; undefined = no deadline. */
  readonly timeoutSeconds: number | undefined
  /** In definition order: `root`, the config's nodes in config order, `end`. */
  readonly nodes: readonly NodeDefinition[]
  readonly byId: ReadonlyMap<string, NodeDefinition>
  /** The normalised config the version was computed from; stored so older instances keep their graph. */
  readonly config: NormalisedConfig
}

export type NormalisedConfig = z.output<typeof workflowConfigSchema>

/** The id of the node a config path is under (`nodes.2.…`), as the input spells it, if it has one. */
const nodeIdAt = (input: unknown, path: readonly PropertyKey[]): string | undefined => {
  if (path[0] !== 'nodes' || typeof path[1] !== 'number') return undefined
  const nodes = (input as { nodes?: unknown })?.nodes
  const id = Array.isArray(nodes) ? (nodes[path[1]] as { id?: unknown } | undefined)?.id : undefined
  return typeof id === 'string' ? id : undefined
}

/** Every issue, with the node it concerns named beside its index: `nodes.2.trigger (node 'charge'): …`. */
const formatIssues = (error: z.ZodError, input: unknown): string =>
  describeIssues(error, '(root)', (path) => {
    const nodeId = nodeIdAt(input, path)
    return nodeId === undefined ? undefined : `(node '${nodeId}')`
  })

const toRetry = (config: NormalisedConfig['retry']): Partial<RetryPolicy> | undefined => {
  if (!config) return undefined
  const retry: { -readonly [K in keyof RetryPolicy]?: RetryPolicy[K] } = {}
  if (config.initial_delay_seconds !== undefined) retry.initialDelaySeconds = config.initial_delay_seconds
  if (config.multiplier !== undefined) retry.multiplier = config.multiplier
  if (config.max_delay_seconds !== undefined) retry.maxDelaySeconds = config.max_delay_seconds
  if (config.jitter !== undefined) retry.jitter = config.jitter
  return retry
}

/** A 53-bit string hash (cyrb53) as 14 hex digits: deterministic and dependency-free. */
export const hash53 = (text: string): string => {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0')
}

/** The config as its schema reads it; a DefinitionError naming every problem (and the node it is in) otherwise. */
const parseConfig = (input: unknown): NormalisedConfig => {
  const parsed = workflowConfigSchema.safeParse(input)
  if (parsed.success) return parsed.data
  const type = typeof (input as { id?: unknown })?.id === 'string' ? (input as { id: string }).id : '(unnamed)'
  throw new DefinitionError(`workflow '${type}' is invalid: ${formatIssues(parsed.error, input)}`, {
    workflowType: type,
    issues: parsed.error.issues.map((issue) => {
      const nodeId = nodeIdAt(input, issue.path)
      return { path: issuePath(issue.path), message: issue.message, ...(nodeId !== undefined ? { nodeId } : {}) }
    }),
  })
}

type Fail = (message: string, details?: Record<string, unknown>) => never

/** Ids unique and not reserved, next nodes known and named once: each node's predecessors. */
const predecessorsOf = (config: NormalisedConfig, fail: Fail): Map<string, string[]> => {
  const ids = new Set<string>()
  for (const node of config.nodes) {
    if (RESERVED_NODE_IDS.has(node.id)) fail(`node id '${node.id}' is reserved`, { nodeId: node.id })
    if (ids.has(node.id)) fail(`node id '${node.id}' is used twice`, { nodeId: node.id })
    ids.add(node.id)
  }
  const prev = new Map<string, string[]>(config.nodes.map((node) => [node.id, []]))
  for (const node of config.nodes) {
    const seen = new Set<string>()
    for (const next of node.next_nodes) {
      if (next === node.id) fail(`node '${node.id}' lists itself in next_nodes`, { nodeId: node.id })
      if (!ids.has(next)) fail(`node '${node.id}' names unknown next node '${next}'`, { nodeId: node.id, next })
      if (seen.has(next)) fail(`node '${node.id}' names next node '${next}' twice`, { nodeId: node.id, next })
      seen.add(next)
      prev.get(next)?.push(node.id)
    }
  }
  return prev
}

/** `root` or `end`: synthetic, with no worker and no rule of its own. */
const syntheticNode = (id: typeof ROOT_NODE_ID | typeof END_NODE_ID, next: string[], prev: string[]) => ({
  id,
  name: id,
  next,
  prev,
  failMaxCount: 0,
  maxWaitTimeSeconds: 0,
  retry: undefined,
  synthetic: true,
  ...SYNTHETIC_RULES,
})

/** Validates a config (simple-workflow shape) and builds the graph with `root` and `end`. */
export const loadDefinition = (input: unknown): WorkflowDefinition => {
  const config = parseConfig(input)
  const fail: Fail = (message, details = {}) => {
    throw new DefinitionError(`workflow '${config.id}' is invalid: ${message}`, { workflowType: config.id, ...details })
  }
  const prev = predecessorsOf(config, fail)
  assertAcyclic(config, fail)
  const compiled = compileNodeExpressions(config, fail)
  const firstLevel = config.nodes.filter((node) => (prev.get(node.id) ?? []).length === 0).map((node) => node.id)
  const leaves = config.nodes.filter((node) => node.next_nodes.length === 0).map((node) => node.id)
  const nodes: NodeDefinition[] = [
    syntheticNode(ROOT_NODE_ID, firstLevel, []),
    ...config.nodes.map(
      (node): NodeDefinition => ({
        id: node.id,
        name: node.name ?? node.id,
        next: node.next_nodes.length ? node.next_nodes : [END_NODE_ID],
        prev: (prev.get(node.id) ?? []).length ? (prev.get(node.id) ?? []) : [ROOT_NODE_ID],
        failMaxCount: node.fail_max_count ?? 0,
        maxWaitTimeSeconds: node.max_wait_time_ts ?? 0,
        retry: toRetry(node.retry),
        synthetic: false,
        when: compiled.get(node.id)?.when,
        choice: compiled.get(node.id)?.choice,
        trigger: node.trigger ?? DEFAULT_TRIGGER_RULE,
        optional: node.optional ?? false,
        runTimeoutSeconds: node.run_timeout_seconds,
        timeoutSeconds: node.timeout_seconds,
      }),
    ),
    syntheticNode(END_NODE_ID, [], leaves),
  ]
  return {
    type: config.id,
    name: config.name ?? config.id,
    // A config's null means "not set": `fail_max_count: null` and no fail_max_count are one version.
    version: hash53(canonicalJson(config, { omitNullMembers: true })),
    retry: toRetry(config.retry),
    onFailure: config.on_failure ?? DEFAULT_FAILURE_MODE,
    timeoutSeconds: config.timeout_seconds,
    nodes,
    byId: new Map(nodes.map((node) => [node.id, node])),
    config,
  }
}

/** `root` and `end` carry no condition, choice or deadline of their own. */
const SYNTHETIC_RULES = {
  when: undefined,
  choice: undefined,
  trigger: DEFAULT_TRIGGER_RULE,
  optional: false,
  runTimeoutSeconds: undefined,
  timeoutSeconds: undefined,
} as const satisfies Partial<NodeDefinition>

/** Compiles an expression at `field` of a node; a syntax error or an oversized source names both. */
const compileAt = (nodeId: string, field: string, source: string, fail: Fail): CompiledExpression => {
  const outcome = compileExpression(source)
  if (outcome.ok) return outcome.value
  const at = outcome.position === undefined ? '' : ` at position ${outcome.position}`
  return fail(`node '${nodeId}' ${field}: ${outcome.code}${at}: ${outcome.message}`, {
    nodeId,
    field,
    code: outcome.code,
    ...(outcome.position !== undefined ? { position: outcome.position } : {}),
  })
}

/**
 * Checks each node's `when` and `choice` and compiles their expressions. A choice has at least one rule, ends with
 * exactly one default, and governs every successor of its node: each successor is a rule's target or the default,
 * and no target is anything else, so that an edge the choice does not take always has a meaning.
 */
const compileNodeExpressions = (
  config: NormalisedConfig,
  fail: Fail,
): Map<string, { when?: CompiledExpression; choice?: NodeChoice }> => {
  const compiled = new Map<string, { when?: CompiledExpression; choice?: NodeChoice }>()
  for (const node of config.nodes) {
    const entry: { when?: CompiledExpression; choice?: NodeChoice } = {}
    if (node.when !== undefined) entry.when = compileAt(node.id, 'when', node.when, fail)
    if (node.choice !== undefined) entry.choice = checkChoice(node, fail)
    compiled.set(node.id, entry)
  }
  return compiled
}

const checkChoice = (node: NormalisedConfig['nodes'][number], fail: Fail): NodeChoice => {
  const entries = node.choice ?? []
  const last = entries.length - 1
  const successors = new Set(node.next_nodes)
  const isSuccessor = (target: string, field: string) => {
    if (!successors.has(target)) {
      fail(`node '${node.id}' ${field} '${target}' is not one of its next_nodes`, { nodeId: node.id, field, target })
    }
  }
  const rules: ChoiceRule[] = []
  let fallback: string | null | undefined
  entries.forEach((entry, index) => {
    if ('default' in entry) {
      if (index !== last) {
        fail(`node '${node.id}' choice[${index}]: the default must be the last entry, and the only one`, {
          nodeId: node.id,
          field: `choice[${index}]`,
        })
      }
      if (entry.default !== null) isSuccessor(entry.default, `choice[${index}].default`)
      fallback = entry.default
      return
    }
    isSuccessor(entry.next, `choice[${index}].next`)
    rules.push({ when: compileAt(node.id, `choice[${index}].when`, entry.when, fail), next: entry.next })
  })
  if (fallback === undefined) {
    fail(
      `node '${node.id}' choice needs a default as its last entry: {"default": node id}, or {"default": null} to take no branch when no rule holds`,
      { nodeId: node.id, field: 'choice' },
    )
  }
  if (rules.length === 0) {
    fail(`node '${node.id}' choice needs at least one rule before its default`, { nodeId: node.id, field: 'choice' })
  }
  const targets = new Set([...rules.map((rule) => rule.next), ...(fallback ? [fallback] : [])])
  const ungoverned = node.next_nodes.filter((next) => !targets.has(next))
  if (ungoverned.length) {
    fail(
      `node '${node.id}' choice does not name its next node(s) ${ungoverned.map((id) => `'${id}'`).join(', ')}: every successor of a node with a choice must be a rule's target or the default`,
      { nodeId: node.id, field: 'choice', nodes: ungoverned },
    )
  }
  return { rules, default: fallback ?? null }
}

/** Kahn's algorithm over every node, so that a cycle is found even where root cannot reach it. */
const assertAcyclic = (
  config: NormalisedConfig,
  fail: (message: string, details?: Record<string, unknown>) => never,
) => {
  const indegree = new Map<string, number>(config.nodes.map((node) => [node.id, 0]))
  for (const node of config.nodes) {
    for (const next of node.next_nodes) indegree.set(next, (indegree.get(next) ?? 0) + 1)
  }
  const queue = config.nodes.filter((node) => indegree.get(node.id) === 0).map((node) => node.id)
  const byId = new Map(config.nodes.map((node) => [node.id, node]))
  let visited = 0
  while (queue.length) {
    const id = queue.shift() as string
    visited++
    for (const next of byId.get(id)?.next_nodes ?? []) {
      const remaining = (indegree.get(next) ?? 0) - 1
      indegree.set(next, remaining)
      if (remaining === 0) queue.push(next)
    }
  }
  if (visited !== config.nodes.length) {
    const inCycle = [...indegree.entries()].filter(([, degree]) => degree > 0).map(([id]) => id)
    fail(`the graph has a cycle through nodes ${inCycle.map((id) => `'${id}'`).join(', ')}`, { nodes: inCycle })
  }
}

/** Every node reachable forwards from `nodeId`, including it, in definition order. */
export const descendantsOf = (definition: WorkflowDefinition, nodeId: string): string[] => {
  const found = new Set<string>()
  const stack = [nodeId]
  while (stack.length) {
    const id = stack.pop() as string
    if (found.has(id)) continue
    found.add(id)
    for (const next of definition.byId.get(id)?.next ?? []) stack.push(next)
  }
  return definition.nodes.filter((node) => found.has(node.id)).map((node) => node.id)
}

export type { WorkflowConfig }
