import { z } from 'zod'
import { commaList } from './env.js'

/**
 * The settings of `npm start` (the local runtime), from the environment and the command line. Parsed once, before
 * anything starts, like the Lambda environment (`env.ts`): a wrong value stops the start with a message naming the
 * variable. An empty variable counts as unset, as `PORT= npm start` reads.
 */

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,9}$/, `must be a whole number ${min}-${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `must be a whole number ${min}-${max}`).max(max, `must be a whole number ${min}-${max}`))

const boolean = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((value) => {
  return value === 'true' || value === '1'
})

/** A host name or an IPv4/IPv6 address to listen on. */
const host = z
  .string()
  .regex(
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/,
    {
      error: 'must be a host name or an IP address, such as 127.0.0.1, 0.0.0.0 or ::1',
    },
  )

export const LOCAL_LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const

export const localEnvSchema = z.object({
  /** The HTTP API's port; 0 picks a free one. */
  PORT: integer(0, 65_535).default(3000),
  HOST: host.default('127.0.0.1'),
  TICK_INTERVAL_SECONDS: integer(1, 3600).default(5),
  LOG_LEVEL: z.enum(LOCAL_LOG_LEVELS, { error: 'must be debug, info, warn or error' }).default('info'),
  /** Use this DynamoDB instead of starting DynamoDB Local. */
  DYNAMODB_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL, such as http://127.0.0.1:8000' })
    .optional(),
  TABLE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name (3-255 letters, digits, _ . -)')
    .default('tickflow'),
  TICKFLOW_DATA_DIR: z.string().default('.data'),
  TICKFLOW_IN_MEMORY: boolean.default(false),
  /** Host names the HTTP server answers besides 127.0.0.1, localhost, ::1 and HOST (comma-separated). */
  ALLOWED_HOSTS: commaList(host).default([]),
})

export type LocalEnv = z.infer<typeof localEnvSchema>

/** The variables `localEnvSchema` reads, for the README and `--help`. */
export const LOCAL_ENV_NAMES = Object.keys(localEnvSchema.shape) as (keyof LocalEnv)[]
