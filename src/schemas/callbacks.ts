import { z } from 'zod'

/**
 * A callback's completion, as a third party sends it — in the body of `POST /callbacks/{token}`, or on the events
 * queue with the token (`kind: "callback"`). `output` is any JSON value; a failure's `error` may name a worker
 * signal (`FailedWithFailedError` fails the node for good, `FailedWithContinueError` lets its successors run).
 */
const success = { status: z.literal('success'), output: z.unknown().optional() }
const failure = {
  status: z.literal('failure'),
  error: z.string().min(1).max(256).optional().meta({ description: 'an error name, e.g. PaymentDeclined' }),
  cause: z.string().max(4096).optional().meta({ description: 'what happened, in words' }),
}
const heartbeat = { status: z.literal('heartbeat') }

export const callbackCompletionSchema = z.discriminatedUnion('status', [
  z.strictObject(success),
  z.strictObject(failure),
  z.strictObject(heartbeat),
])
export type CallbackCompletionInput = z.input<typeof callbackCompletionSchema>

/** The longest token the API looks at (a version 1 token is at most 370 characters). */
export const MAX_CALLBACK_TOKEN_CHARS = 1024

export const callbackTokenSchema = z.string().min(1).max(MAX_CALLBACK_TOKEN_CHARS)

/** The same completion on the events queue, with its token: `{"v": 1, "kind": "callback", "token": …, …}`. */
const onQueue = { v: z.literal(1), kind: z.literal('callback'), token: callbackTokenSchema }
export const callbackMessageSchema = z.discriminatedUnion('status', [
  z.strictObject({ ...onQueue, ...success }),
  z.strictObject({ ...onQueue, ...failure }),
  z.strictObject({ ...onQueue, ...heartbeat }),
])
export type CallbackMessage = z.infer<typeof callbackMessageSchema>

/** The answer to a completion: the same for the first one and for each repetition of it. */
export const callbackAnswerSchema = z.object({
  accepted: z.literal(true),
  status: z.enum(['success', 'failure', 'heartbeat']),
})
export type CallbackAnswer = z.infer<typeof callbackAnswerSchema>

/** What a node waiting for a callback shows in the instance detail (`nodes[].waiting`). */
export const nodeWaitingSchema = z.object({
  reason: z.literal('waiting for a callback'),
  sinceMs: z.number().meta({ description: 'when the worker asked for the callback' }),
  timeoutAtMs: z.number().meta({ description: 'when the wait fails (a failed attempt) unless completed' }),
  closesAtMs: z.number().optional().meta({
    description:
      'when the deadline of its node (max wait, timeout) or instance (timeout) closes the wait, when earlier than timeoutAtMs: a completion from then is refused (410), and the node fails or the instance times out',
  }),
  heartbeatSeconds: z.number().optional(),
  heartbeatDeadlineMs: z.number().optional().meta({ description: 'a heartbeat or the completion is due by then' }),
})
export type NodeWaiting = z.infer<typeof nodeWaitingSchema>
