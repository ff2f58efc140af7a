import type { z } from 'zod'
import { type WorkflowConfig, workflowConfigSchema } from '../schemas/workflow-config.js'
import { describeIssues, issuePath } from '../schemas/zod-issues.js'
import { DefinitionError } from './errors.js'
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
}

export interface WorkflowDefinition {
  readonly type: string
  readonly name: string
  /** Content hash of the normalised config: instances record it and keep their graph when the config changes. */
  readonly version: string
  readonly retry: Partial<RetryPolicy> | undefined
  /** In definition order: `root`, the config's nodes in config order, `end`. */
  readonly nodes: readonly NodeDefinition[]
  readonly byId: ReadonlyMap<string, NodeDefinition>
  /** The normalised config the version was computed from; stored so older instances keep their graph. */
  readonly config: NormalisedConfig
}

export type NormalisedConfig = z.output<typeof workflowConfigSchema>

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

/** Validates a config (simple-workflow shape) and builds the graph with `root` and `end`. */
export const loadDefinition = (input: unknown): WorkflowDefinition => {
  const parsed = workflowConfigSchema.safeParse(input)
  if (!parsed.success) {
    const type = typeof (input as { id?: unknown })?.id === 'string' ? (input as { id: string }).id : '(unnamed)'
    throw new DefinitionError(`workflow '${type}' is invalid: ${describeIssues(parsed.error, '(root)')}`, {
      workflowType: type,
      issues: parsed.error.issues.map((issue) => ({ path: issuePath(issue.path), message: issue.message })),
    })
  }
  const config = parsed.data
  const fail = (message: string, details: Record<string, unknown> = {}): never => {
    throw new DefinitionError(`workflow '${config.id}' is invalid: ${message}`, { workflowType: config.id, ...details })
  }

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
  assertAcyclic(config, fail)

  const firstLevel = config.nodes.filter((node) => (prev.get(node.id) ?? []).length === 0).map((node) => node.id)
  const leaves = config.nodes.filter((node) => node.next_nodes.length === 0).map((node) => node.id)
  const nodes: NodeDefinition[] = [
    {
      id: ROOT_NODE_ID,
      name: 'root',
      next: firstLevel,
      prev: [],
      failMaxCount: 0,
      maxWaitTimeSeconds: 0,
      retry: undefined,
      synthetic: true,
    },
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
      }),
    ),
    {
      id: END_NODE_ID,
      name: 'end',
      next: [],
      prev: leaves,
      failMaxCount: 0,
      maxWaitTimeSeconds: 0,
      retry: undefined,
      synthetic: true,
    },
  ]
  return {
    type: config.id,
    name: config.name ?? config.id,
    // A config's null means "not set": `fail_max_count: null` and no fail_max_count are one version.
    version: hash53(canonicalJson(config, { omitNullMembers: true })),
    retry: toRetry(config.retry),
    nodes,
    byId: new Map(nodes.map((node) => [node.id, node])),
    config,
  }
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
