import { z } from 'zod'

/** The environment a Lambda function of tickflow reads at cold start. */
export const runtimeEnvSchema = z.object({
  TABLE_NAME: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name'),
  DYNAMODB_ENDPOINT: z.url().optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
})

export type RuntimeEnv = z.infer<typeof runtimeEnvSchema>

/** Fails fast with a message naming every variable that is missing or wrong. */
export const parseRuntimeEnv = (env: Record<string, string | undefined>): RuntimeEnv => {
  const parsed = runtimeEnvSchema.safeParse(env)
  if (parsed.success) return parsed.data
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)
  throw new Error(`invalid environment: ${problems.join('; ')}`)
}
