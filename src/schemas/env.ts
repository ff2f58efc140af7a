import { z } from 'zod'

/** The environment a Lambda function of tickflow reads at cold start. */
const arn = z.string().regex(/^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$/, 'must be an ARN')

export const runtimeEnvSchema = z.object({
  TABLE_NAME: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name'),
  DYNAMODB_ENDPOINT: z.url().optional(),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** The run queue: wake-ups within 15 minutes and the tick's run requests. */
  RUN_QUEUE_URL: z.url().optional(),
  RUN_QUEUE_ARN: arn.optional(),
  /** The start queue recurring schedules send to. */
  START_QUEUE_ARN: arn.optional(),
  /** The dead-letter queue of the queue this function consumes. */
  DEAD_LETTER_QUEUE_URL: z.url().optional(),
  /** The consumed queue's maxReceiveCount: on the last receive a failing message is dead-lettered with its reason. */
  MAX_RECEIVE_COUNT: z.coerce.number().int().min(1).max(1000).default(5),
  SCHEDULER_GROUP: z.string().min(1).max(64).optional(),
  SCHEDULER_ROLE_ARN: arn.optional(),
  SQS_ENDPOINT: z.url().optional(),
})

export type RuntimeEnv = z.infer<typeof runtimeEnvSchema>

/** Fails fast with a message naming every variable that is missing or wrong. */
export const parseRuntimeEnv = (env: Record<string, string | undefined>): RuntimeEnv => {
  const parsed = runtimeEnvSchema.safeParse(env)
  if (parsed.success) return parsed.data
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)
  throw new Error(`invalid environment: ${problems.join('; ')}`)
}
