import { z } from 'zod'

/** Ids of workflow types and nodes: they appear in URLs, keys and diagrams, so keep them plain. */
export const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/
export const idSchema = z
  .string()
  .regex(ID_PATTERN, 'must start with a letter or underscore and contain only letters, digits, _ . - (max 64)')

const nonNegativeInt = z.number().int('must be an integer').min(0, 'must not be negative')

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
})

/** The simple-workflow config shape, with tickflow's optional retry policies. */
export const workflowConfigSchema = z.strictObject({
  id: idSchema,
  name: z.string().max(256).optional(),
  description: z.string().max(2048).optional(),
  retry: retryPolicyConfigSchema.optional(),
  nodes: z.array(nodeConfigSchema).min(1, 'a workflow needs at least one node').max(200),
})

export type WorkflowConfig = z.input<typeof workflowConfigSchema>
export type NodeConfig = z.input<typeof nodeConfigSchema>
export type RetryPolicyConfig = z.input<typeof retryPolicyConfigSchema>
