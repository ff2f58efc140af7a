import { z } from 'zod'

/** Ids of workflow types and nodes: they appear in URLs, keys and diagrams, so keep them plain. */
export const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/
/** Names every JavaScript object has (`constructor`, `toString`, `__proto__`…): ids key plain objects, so not these. */
const OBJECT_NAMES: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype))
export const idSchema = z
  .string()
  .regex(ID_PATTERN, 'must start with a letter or underscore and contain only letters, digits, _ . - (max 64)')
  .refine((id) => !OBJECT_NAMES.has(id), 'is a name every JavaScript object has (constructor, toString, __proto__…)')

const nonNegativeInt = z.number().int('must be an integer').min(0, 'must not be negative')
/** Deadlines: whole seconds, at most a year (like `max_wait_time_ts`), never zero (leave the field out instead). */
const deadlineSeconds = z
  .number()
  .int('must be an integer')
  .positive('must be a positive number of seconds')
  .max(366 * 86_400, 'must be at most 366 days')

/**
 * When a node with several predecessors runs. Every rule waits until all predecessors are terminal: a join is never
 * decided early.
 */
export const TriggerRule = {
  /** Run if no predecessor failed and at least one completed; skip if every one was skipped. The default. */
  none_failed_min_one_success: 'none_failed_min_one_success',
  /** Run only if every predecessor completed: any skipped or failed one skips the node. */
  all_success: 'all_success',
  /** Run once every predecessor is terminal, whatever happened (cleanup, notification). */
  all_done: 'all_done',
} as const
export type TriggerRule = (typeof TriggerRule)[keyof typeof TriggerRule]
export const TRIGGER_RULES = Object.values(TriggerRule) as [TriggerRule, ...TriggerRule[]]
export const DEFAULT_TRIGGER_RULE: TriggerRule = TriggerRule.none_failed_min_one_success

/** What a node's terminal failure does to the rest of the instance. */
export const FailureMode = {
  /** Stop dispatching, cancel what runs, skip what never started; the instance fails. The default. */
  fail_fast: 'fail_fast',
  /** Skip only the failed node's descendants; independent branches finish, then the instance fails. */
  isolate: 'isolate',
} as const
export type FailureMode = (typeof FailureMode)[keyof typeof FailureMode]
export const FAILURE_MODES = Object.values(FailureMode) as [FailureMode, ...FailureMode[]]
export const DEFAULT_FAILURE_MODE: FailureMode = FailureMode.fail_fast

/** A JSONata expression; it is parsed (and its size checked) when the definition loads. */
const expressionSchema = z.string().min(1, 'must not be empty')

/** One entry of a node's `choice`: a rule `{when, next}`, or the closing `{default}` (`null`: skip every branch). */
export const choiceEntrySchema = z.union(
  [z.strictObject({ when: expressionSchema, next: z.string() }), z.strictObject({ default: z.string().nullable() })],
  { error: 'must be {"when": expression, "next": node id} or {"default": node id or null}' },
)

export const retryPolicyConfigSchema = z.strictObject({
  initial_delay_seconds: z.number().positive().max(86_400).optional(),
  multiplier: z.number().min(1).max(10).optional(),
  max_delay_seconds: z.number().positive().max(86_400).optional(),
  jitter: z.number().min(0).max(1).optional(),
})

export const nodeConfigSchema = z.strictObject({
  id: idSchema,
  name: z.string().max(256).optional(),
  description: z.string().max(2048).optional(),
  next_nodes: z.array(z.string()).max(64).default([]),
  fail_max_count: nonNegativeInt.max(1_000_000).nullish(),
  max_wait_time_ts: nonNegativeInt.max(366 * 86_400).nullish(),
  retry: retryPolicyConfigSchema.optional(),
  /** A condition over `$input`, `$nodes`, `$context`, `$instance`: `false` skips the node. */
  when: expressionSchema.optional(),
  /** An exclusive choice among `next_nodes`, made when the node completes; the first true rule wins. */
  choice: z.array(choiceEntrySchema).max(65).optional(),
  trigger: z.enum(TRIGGER_RULES).optional(),
  /** A terminal failure of this node counts as done for its successors. */
  optional: z.boolean().optional(),
  /** Bounds each attempt of the worker. */
  run_timeout_seconds: deadlineSeconds.optional(),
  /** Bounds the whole node, across attempts and waits. */
  timeout_seconds: deadlineSeconds.optional(),
})

/**
 * The simple-workflow config shape, with tickflow's additions: retry policies, conditions, choices, join rules, failure
 * modes and deadlines. Additions are optional and carry no default here, so a config that does not use them keeps its
 * definition version.
 */
export const workflowConfigSchema = z.strictObject({
  id: idSchema,
  name: z.string().max(256).optional(),
  description: z.string().max(2048).optional(),
  retry: retryPolicyConfigSchema.optional(),
  on_failure: z.enum(FAILURE_MODES).optional(),
  /** Bounds the whole instance: when it passes, the instance ends `timed_out`. */
  timeout_seconds: deadlineSeconds.optional(),
  nodes: z.array(nodeConfigSchema).min(1, 'a workflow needs at least one node').max(200),
})

export type WorkflowConfig = z.input<typeof workflowConfigSchema>
export type NodeConfig = z.input<typeof nodeConfigSchema>
export type RetryPolicyConfig = z.input<typeof retryPolicyConfigSchema>
export type ChoiceEntryConfig = z.input<typeof choiceEntrySchema>
