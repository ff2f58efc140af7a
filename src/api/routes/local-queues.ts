import {
  deadLettersResponseSchema,
  type LocalEventsResponse,
  localEventsQuerySchema,
  localEventsResponseSchema,
  localQueuePathSchema,
  queuedMessageResponseSchema,
  redriveBodySchema,
  redriveResponseSchema,
} from '../../schemas/http-api.js'
import { json } from '../http.js'
import { HttpError } from '../http-errors.js'
import { parsePart, type Route, route } from '../router.js'

/**
 * Routes of `npm start` only (the deployed API has none), under `/_local/`: the dead-letter queues with each
 * message's reason, a redrive that moves messages back to the queue they came from, and a way to put a raw message
 * on the events queue the way an external system would with SQS. They are mounted on the one router when the
 * handler is given the local queues, and left out of the OpenAPI document.
 */

/** A queue of the local runtime as these routes use it (the in-process LocalQueue has this shape). */
export interface LocalQueueAccess {
  readonly name: string
  send(body: string): string
  messages(): readonly { messageId: string; body: string; attributes: Record<string, string>; sentAtMs: number }[]
  redriveTo(target: LocalQueueAccess, messageIds?: readonly string[]): string[]
}

/** A queue and the dead-letter queue its redrive policy moves messages to. */
export interface LocalQueuePair {
  queue: LocalQueueAccess
  deadLetter: LocalQueueAccess
}

/** The local event bus as the watch route uses it (the in-process LocalEventBus has this shape). */
export interface LocalEventWatch {
  /** The events published after `afterSeq`, waiting up to `timeoutMs` for one when there is none yet. */
  wait(afterSeq: number, timeoutMs: number, limit?: number): Promise<LocalEventsResponse>
}

export interface LocalQueues {
  pairs: readonly LocalQueuePair[]
  /** Where `POST /_local/queues/events` puts its body. */
  events: LocalQueueAccess
  /** Where lifecycle events are published: `GET /_local/events` watches it. */
  bus?: LocalEventWatch
}

/** What a developer reads back is what is in the queue now: never cached. */
const NO_STORE = { 'cache-control': 'no-store' }

export const localRoutes = (queues: LocalQueues): Route[] => [
  deadLettersRoute(queues),
  redriveRoute(queues),
  sendEventRoute(queues),
  ...(queues.bus ? [watchEventsRoute(queues.bus)] : []),
]

const deadLettersRoute = ({ pairs }: LocalQueues) =>
  route({
    method: 'GET',
    path: '/_local/dead-letters',
    tag: 'local',
    local: true,
    operationId: 'listLocalDeadLetters',
    summary: 'The dead-letter queues of the local runtime, each message with its reason',
    responses: { 200: { description: 'the dead letters', schema: deadLettersResponseSchema } },
    handle: async () =>
      json(
        200,
        {
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
        },
        NO_STORE,
      ),
  })

const redriveRoute = ({ pairs }: LocalQueues) =>
  route({
    method: 'POST',
    path: '/_local/dead-letters/{queue}/redrive',
    tag: 'local',
    local: true,
    operationId: 'redriveLocalDeadLetters',
    summary: 'Move dead letters (all, or `messageIds`) back to the queue they came from',
    params: localQueuePathSchema,
    // Read here rather than by the handler, so that a redrive without a body needs no content type.
    rawBody: true,
    responses: { 200: { description: 'the moved message ids', schema: redriveResponseSchema } },
    handle: async ({ params, request }) => {
      const pair = pairs.find(({ queue }) => queue.name === params.queue)
      if (!pair) {
        throw new HttpError(
          404,
          'QUEUE_NOT_FOUND',
          `no local queue '${params.queue}'`,
          { queue: params.queue },
          NO_STORE,
        )
      }
      const body = parsePart(redriveBodySchema, jsonOf(request.rawBody ?? ''), 'body')
      const moved = pair.deadLetter.redriveTo(pair.queue, body?.messageIds)
      return json(200, { queue: pair.queue.name, moved }, NO_STORE)
    },
  })

const jsonOf = (text: string): unknown => {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new HttpError(400, 'MALFORMED_JSON', 'body is not valid JSON', { field: 'body' }, NO_STORE)
  }
}

const sendEventRoute = ({ events }: LocalQueues) =>
  route({
    method: 'POST',
    path: '/_local/queues/events',
    tag: 'local',
    local: true,
    operationId: 'sendLocalEventMessage',
    summary: 'Put a raw message on the events queue, as an external system would with SQS',
    rawBody: true,
    responses: { 202: { description: 'queued', schema: queuedMessageResponseSchema } },
    handle: async ({ request }) => ({
      statusCode: 202,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messageId: events.send(request.rawBody ?? '') }),
    }),
  })

/**
 * `GET /_local/events?after=SEQ&waitSeconds=N&limit=N`: the lifecycle events published after `after` (oldest first),
 * waiting up to `waitSeconds` for one when there is none; `next` is the `after` of the next call.
 */
const watchEventsRoute = (bus: LocalEventWatch) =>
  route({
    method: 'GET',
    path: '/_local/events',
    tag: 'local',
    local: true,
    operationId: 'watchLocalEvents',
    summary: 'The lifecycle events the local bus received after `after`, waiting for one when there is none',
    query: localEventsQuerySchema,
    responses: { 200: { description: 'the events', schema: localEventsResponseSchema } },
    handle: async ({ query }) => {
      const { after = 0, waitSeconds = 0, limit = 500 } = query
      return json(200, await bus.wait(after, waitSeconds * 1000, Math.max(1, limit)), NO_STORE)
    },
  })
