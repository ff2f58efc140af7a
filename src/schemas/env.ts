import { z } from 'zod'
import { describeIssues } from './zod-issues.js'

/**
 * Environments, checked at start: the one every Lambda function of tickflow reads at cold start (LambdaEnv), and the
 * HTTP API's own settings, which `npm start` reads too.
 */
const arn = z.string().regex(/^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$/, 'must be an ARN')

/** A comma-separated list in one variable; blank entries are dropped, an empty variable is no list. */
export const commaList = <T extends string>(item: z.ZodType<T, string>) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    )
    .pipe(z.array(item))
const origin = z
  .string()
  .regex(/^(?:\*|https?:\/\/[^/\s?#]+)$/, 'each origin must be scheme://host[:port] without a path, or *')
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be header names')
const emptyIsAbsent = (value: unknown) => (value === '' ? undefined : value)

/**
 * The HTTP API's own settings, read by the API function and by `npm start`. CORS is off unless
 * CORS_ALLOWED_ORIGINS names at least one origin.
 */
export const apiEnvFields = {
  CORS_ALLOWED_ORIGINS: z.preprocess(emptyIsAbsent, commaList(origin).optional()),
  CORS_ALLOWED_METHODS: commaList(z.enum(['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', '*'])).default([
    'GET',
    'HEAD',
    'POST',
    'DELETE',
  ]),
  CORS_ALLOWED_HEADERS: commaList(headerName).default([
    'content-type',
    'authorization',
    'x-amz-date',
    'x-amz-security-token',
    'x-amz-content-sha256',
  ]),
  CORS_EXPOSED_HEADERS: commaList(headerName).default(['location', 'allow']),
  CORS_MAX_AGE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(600),
  /** The HMAC key of list cursors: every API function of a deployment must share it. */
  CURSOR_SECRET: z.preprocess(emptyIsAbsent, z.string().min(16, 'must be at least 16 characters').optional()),
}

export const apiEnvSchema = z.object(apiEnvFields)

/**
 * Where the callback secret is (one of the three; README, "Callbacks"), and the API's URL the callback URLs
 * handed to workers start with.
 */
const callbackEnvFields = {
  CALLBACK_SECRET: z.preprocess(emptyIsAbsent, z.string().min(32, 'must be at least 32 characters').optional()),
  CALLBACK_SECRET_ARN: z.preprocess(emptyIsAbsent, arn.optional()),
  CALLBACK_SECRET_PARAMETER: z.preprocess(emptyIsAbsent, z.string().min(1).max(2048).optional()),
  CALLBACK_BASE_URL: z.preprocess(emptyIsAbsent, z.url().optional()),
}

/**
 * The event bus lifecycle events go to (a name or an ARN; none: no events), the workflow types whose node status
 * changes go too (comma-separated, or `*`), and where events the bus refused for a day are dead-lettered.
 */
const lifecycleEnvFields = {
  EVENT_BUS_NAME: z.preprocess(emptyIsAbsent, z.string().min(1).max(1600).optional()),
  NODE_EVENT_TYPES: z.preprocess(
    emptyIsAbsent,
    z
      .string()
      .regex(/^(\*|[A-Za-z_][\w.-]{0,63}(,[A-Za-z_][\w.-]{0,63})*)$/, 'must be * or comma-separated workflow types')
      .optional(),
  ),
  LIFECYCLE_DEAD_LETTER_QUEUE_URL: z.preprocess(emptyIsAbsent, z.url().optional()),
}

export type ApiEnv = z.infer<typeof apiEnvSchema>

/** The environment of a Lambda function (functions/wiring.ts parses it once per cold start). */
export const lambdaEnvSchema = z.object({
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
  /** AWS X-Ray tracing through Powertools Tracer: `on` or `off` (the default). */
  TRACING: z.enum(['on', 'off']).default('off'),
  /** The `service` of every log line and metric (Powertools); serverless.yml sets tickflow-<stage>. */
  POWERTOOLS_SERVICE_NAME: z.string().min(1).default('tickflow'),
  /** The CloudWatch namespace of the EMF metrics. */
  POWERTOOLS_METRICS_NAMESPACE: z.string().min(1).default('tickflow'),
  /** Days a finished instance is kept before the table's TTL deletes it; 0 keeps finished instances. */
  RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /**
   * How far ahead (seconds) a due time may lie and keep an instance's place in the due index (README, "Running by
   * itself"); 0: every due time is its own place, and the tick reads no instance before it is due.
   */
  DUE_PLACE_HORIZON_SECONDS: z.coerce.number().int().min(0).max(86_400).default(3_600),
  ...callbackEnvFields,
  ...lifecycleEnvFields,
})

export type LambdaEnv = z.infer<typeof lambdaEnvSchema>

const parseEnv = <T extends z.ZodType>(schema: T, env: Record<string, string | undefined>): z.infer<T> => {
  const parsed = schema.safeParse(env)
  if (parsed.success) return parsed.data
  throw new Error(`invalid environment: ${describeIssues(parsed.error, '(environment)')}`)
}

/** Fails fast with a message naming every variable that is missing or wrong. */
export const parseLambdaEnv = (env: Record<string, string | undefined>): LambdaEnv => parseEnv(lambdaEnvSchema, env)

/** The HTTP API's settings alone (for `npm start`), failing like parseLambdaEnv. */
export const parseApiEnv = (env: Record<string, string | undefined>): ApiEnv => parseEnv(apiEnvSchema, env)
