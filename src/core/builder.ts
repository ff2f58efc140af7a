import type { FailureMode, TriggerRule, WorkflowConfig } from '../schemas/workflow-config.js'
import type { Worker, WorkerStep } from './registry.js'
import type { RetryPolicy } from './retry-policy.js'

/** An entry of a node's `choice`: a rule, or the closing default (`null`: take no branch). */
export type ChoiceSpec<N extends string> = { when: string; next: NoInfer<N> } | { default: NoInfer<N> | null }

export interface NodeSpec<N extends string> {
  name?: string
  /** Successor node ids; checked against the keys of `nodes` by the compiler. */
  next?: readonly NoInfer<N>[]
  failMaxCount?: number
  maxWaitTimeSeconds?: number
  retry?: Partial<RetryPolicy>
  /** A JSONata condition: `false` skips the node. */
  when?: string
  /** An exclusive choice among `next`, ending with a default; targets are checked against the keys of `nodes`. */
  choice?: readonly ChoiceSpec<N>[]
  trigger?: TriggerRule
  optional?: boolean
  runTimeoutSeconds?: number
  timeoutSeconds?: number
  run: WorkerStep
  check?: WorkerStep
}

export interface WorkflowSpec<N extends string> {
  type: string
  name?: string
  retry?: Partial<RetryPolicy>
  onFailure?: FailureMode
  timeoutSeconds?: number
  /** Definition order is the key order of this object. */
  nodes: { [K in N]: NodeSpec<N> }
}

/** A workflow defined in TypeScript: its config (the simple-workflow shape) and its workers, registered together. */
export interface WorkflowModule<N extends string = string> {
  readonly config: WorkflowConfig
  readonly workers: Readonly<Record<N, Worker>>
}

const toRetryConfig = (retry: Partial<RetryPolicy> | undefined): WorkflowConfig['retry'] => {
  if (!retry) return undefined
  const config: NonNullable<WorkflowConfig['retry']> = {}
  if (retry.initialDelaySeconds !== undefined) config.initial_delay_seconds = retry.initialDelaySeconds
  if (retry.multiplier !== undefined) config.multiplier = retry.multiplier
  if (retry.maxDelaySeconds !== undefined) config.max_delay_seconds = retry.maxDelaySeconds
  if (retry.jitter !== undefined) config.jitter = retry.jitter
  return config
}

/**
 * Defines a workflow in code. Node ids in `next` and `choice` are type-checked against the node keys:
 *
 *     defineWorkflow({ type: 'order', nodes: {
 *       validate: { next: ['charge'], run: async (ctx) => { … } },
 *       charge: { run: async (ctx) => { … } },
 *     } })
 *
 * The result is validated like a JSON config when it is registered.
 */
export const defineWorkflow = <const N extends string>(spec: WorkflowSpec<N>): WorkflowModule<N> => {
  const entries = Object.entries(spec.nodes) as [N, NodeSpec<N>][]
  const config: WorkflowConfig = {
    id: spec.type,
    nodes: entries.map(([id, node]) => {
      const nodeConfig: WorkflowConfig['nodes'][number] = { id, next_nodes: [...(node.next ?? [])] }
      if (node.name !== undefined) nodeConfig.name = node.name
      if (node.failMaxCount !== undefined) nodeConfig.fail_max_count = node.failMaxCount
      if (node.maxWaitTimeSeconds !== undefined) nodeConfig.max_wait_time_ts = node.maxWaitTimeSeconds
      const retry = toRetryConfig(node.retry)
      if (retry) nodeConfig.retry = retry
      // Only what is set reaches the config, so that a workflow keeps its definition version until it uses these.
      if (node.when !== undefined) nodeConfig.when = node.when
      if (node.choice !== undefined) nodeConfig.choice = node.choice.map((entry) => ({ ...entry }))
      if (node.trigger !== undefined) nodeConfig.trigger = node.trigger
      if (node.optional !== undefined) nodeConfig.optional = node.optional
      if (node.runTimeoutSeconds !== undefined) nodeConfig.run_timeout_seconds = node.runTimeoutSeconds
      if (node.timeoutSeconds !== undefined) nodeConfig.timeout_seconds = node.timeoutSeconds
      return nodeConfig
    }),
  }
  if (spec.name !== undefined) config.name = spec.name
  const retry = toRetryConfig(spec.retry)
  if (retry) config.retry = retry
  if (spec.onFailure !== undefined) config.on_failure = spec.onFailure
  if (spec.timeoutSeconds !== undefined) config.timeout_seconds = spec.timeoutSeconds
  const workers = Object.fromEntries(
    entries.map(([id, node]) => [id, node.check ? { run: node.run, check: node.check } : { run: node.run }]),
  ) as Record<N, Worker>
  return { config, workers }
}
