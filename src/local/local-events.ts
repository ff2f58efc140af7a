import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { z } from 'zod'
import type { ApiEvent } from '../api/handler.js'
import type { LocalEventBus } from './local-event-bus.js'

/**
 * What `npm start` adds for callbacks and lifecycle events: the callback secret it makes and keeps, and the route
 * that watches its event bus.
 */

/** The longest a watch waits for an event, as a long-poll of the API does. */
const MAX_WAIT_SECONDS = 25

const querySchema = z.strictObject({
  after: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a whole number')
    .transform(Number)
    .optional(),
  waitSeconds: z
    .string()
    .regex(/^\d{1,2}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().max(MAX_WAIT_SECONDS))
    .optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'must be a whole number')
    .transform(Number)
    .optional(),
})

const reply = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
})

/**
 * `GET /_local/events?after=SEQ&waitSeconds=N&limit=N`: the events published after `after` (oldest first), waiting
 * up to `waitSeconds` (at most 25) for one when there is none; `next` is the `after` of the next call.
 */
export const localEventRoutes =
  (bus: LocalEventBus) =>
  async (event: ApiEvent): Promise<APIGatewayProxyStructuredResultV2 | undefined> => {
    if (event.rawPath.replace(/\/$/, '') !== '/_local/events') return undefined
    const method = event.requestContext.http.method.toUpperCase()
    if (method !== 'GET') {
      return reply(405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed`, details: {} } })
    }
    const parsed = querySchema.safeParse(event.queryStringParameters ?? {})
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const field = `query.${issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys[0] : '')}`
      return reply(400, {
        error: { code: 'VALIDATION_ERROR', message: `${field}: ${issue?.message ?? 'invalid'}`, details: { field } },
      })
    }
    const { after = 0, waitSeconds = 0, limit = 500 } = parsed.data
    return reply(200, await bus.wait(after, waitSeconds * 1000, Math.max(1, limit)))
  }

/**
 * The local runtime's callback secret: `CALLBACK_SECRET` when set; else one made on the first start and kept in
 * `<data dir>/callback-secret` (readable by its owner only), so that tokens handed out stay valid across restarts;
 * a run in memory keeps nothing and makes a new one.
 */
export const localCallbackSecret = async (options: {
  given: string | undefined
  dataDir: string
  inMemory: boolean
}): Promise<string> => {
  if (options.given) return options.given
  const made = randomBytes(32).toString('base64url')
  if (options.inMemory) return made
  const path = join(options.dataDir, 'callback-secret')
  const kept = await readFile(path, 'utf8').catch(() => undefined)
  if (kept !== undefined && kept.trim().length >= 32) return kept.trim()
  await mkdir(options.dataDir, { recursive: true })
  await writeFile(path, `${made}\n`, { mode: 0o600 })
  await chmod(path, 0o600)
  return made
}
