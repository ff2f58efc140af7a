import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { z } from 'zod'
import type { LocalQueue } from '../adapters/memory/local-queue.js'
import type { ApiEvent } from '../api/handler.js'

/** A queue of the local runtime and the dead-letter queue its redrive policy moves messages to. */
export interface LocalQueuePair {
  queue: LocalQueue
  deadLetter: LocalQueue
}

const redriveBodySchema = z.strictObject({ messageIds: z.array(z.string().min(1)).max(1000).optional() }).optional()

const reply = (statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
})

const refusal = (statusCode: number, code: string, message: string, details: Record<string, unknown> = {}) =>
  reply(statusCode, { error: { code, message, details } })

/**
 * Local-only routes under `/_local/` (the deployed API has none): the dead-letter queues with each message's
 * reason, and a redrive that moves messages back to the queue they came from. Answers undefined for other paths.
 */
export const localDeadLetterRoutes =
  (pairs: readonly LocalQueuePair[]) =>
  (event: ApiEvent): APIGatewayProxyStructuredResultV2 | undefined => {
    const method = event.requestContext.http.method.toUpperCase()
    const path = event.rawPath.replace(/\/$/, '')
    if (path === '/_local/dead-letters') {
      if (method !== 'GET') return refusal(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`)
      return reply(200, {
        items: pairs.map(({ queue, deadLetter }) => ({
          queue: queue.name,
          deadLetterQueue: deadLetter.name,
          messages: deadLetter.messages().map((message) => ({
            messageId: message.messageId,
            reason: message.attributes.reason ?? 'unspecified',
            source: message.attributes.source,
            originalMessageId: message.attributes.originalMessageId,
            sentAtMs: message.sentAtMs,
            body: message.body,
          })),
        })),
      })
    }
    const match = /^\/_local\/dead-letters\/([^/]+)\/redrive$/.exec(path)
    if (!match) return undefined
    if (method !== 'POST') return refusal(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`)
    const name = decodeURIComponent(match[1] as string)
    const pair = pairs.find(({ queue }) => queue.name === name)
    if (!pair) return refusal(404, 'QUEUE_NOT_FOUND', `no local queue '${name}'`, { queue: name })
    let raw: unknown
    try {
      const text = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8').toString('utf8')
      raw = text === '' ? undefined : JSON.parse(text)
    } catch {
      return refusal(400, 'MALFORMED_JSON', 'body is not valid JSON', { field: 'body' })
    }
    const body = redriveBodySchema.safeParse(raw)
    if (!body.success) {
      return refusal(400, 'VALIDATION_ERROR', `body: ${body.error.issues[0]?.message ?? 'invalid'}`, { field: 'body' })
    }
    const moved = pair.deadLetter.redriveTo(pair.queue, body.data?.messageIds)
    return reply(200, { queue: pair.queue.name, moved })
  }
