import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda'
import type { DeadLetterSink, RunQueue, RunRequest } from '../../core/dispatch-ports.js'
import { MAX_QUEUE_DELAY_SECONDS } from '../../core/dispatch-ports.js'
import { deadLetterAttributes } from '../dead-letter-attributes.js'
import { clampDelaySeconds, runMessageBody, uniqueRunRequests } from '../run-requests.js'

/** A record as Lambda receives it from SQS. */
export type SqsRecordLike = SQSRecord

export type DeadLetter = Parameters<DeadLetterSink['send']>[0]

export interface LocalQueueOptions {
  /** The queue name (letters, digits, `-`, `_`; at most 80), as in the event source ARN. */
  name: string
  /** How long a received message stays invisible before it is delivered again; default 30 s, as SQS. */
  visibilityTimeoutMs?: number
  /** With `deadLetter`: a message received this many times moves there on its next receive (SQS redrive). */
  maxReceiveCount?: number
  deadLetter?: LocalQueue
  /** The clock of every delay and timeout; default `Date.now`. */
  now?: () => number
}

export interface LocalSendOptions {
  /** Whole seconds, 0..900. */
  delaySeconds?: number
  /** String message attributes. */
  attributes?: Record<string, string>
}

/** A message as `messages()` shows it. */
export interface LocalMessage {
  messageId: string
  body: string
  attributes: Record<string, string>
  receiveCount: number
  sentAtMs: number
  /** Received messages (in flight) and delayed ones become visible at this time. */
  visibleAtMs: number
  inFlight: boolean
}

export interface DeliveryResult {
  /** Records the handler processed: deleted from the queue. */
  delivered: number
  /** Records left on the queue, delivered again after the visibility timeout. */
  failed: number
  /** What the handler threw, or why its response failed the whole batch. */
  error?: unknown
}

// biome-ignore lint/suspicious/noConfusingVoidType: the return type of Lambda SQS handlers (`SQSHandler`)
export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | void>

interface StoredMessage {
  messageId: string
  body: string
  attributes: Record<string, string>
  sentAtMs: number
  visibleAtMs: number
  receiveCount: number
  firstReceivedAtMs?: number
  receiptHandle?: string
  deadLetterSourceArn?: string
}

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/
const MAX_BODY_BYTES = 1_048_576
const MAX_VISIBILITY_TIMEOUT_MS = 12 * 3600 * 1000
const SENDER_ID = '000000000000'
const MAX_RECEIVE_BATCH = 10

const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex')

const lengthPrefixed = (text: string): Buffer => {
  const bytes = Buffer.from(text, 'utf8')
  const length = Buffer.alloc(4)
  length.writeUInt32BE(bytes.length)
  return Buffer.concat([length, bytes])
}

/** MD5 of String message attributes as SQS computes it (names sorted; length-prefixed name, type, value). */
export const md5OfMessageAttributes = (attributes: Record<string, string>): string =>
  md5(
    Buffer.concat(
      Object.keys(attributes)
        .sort()
        .flatMap((name) => [
          lengthPrefixed(name),
          lengthPrefixed('String'),
          Buffer.from([1]),
          lengthPrefixed(attributes[name]!),
        ]),
    ),
  )

const requireInteger = (value: number, min: number, max: number, what: string): number => {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

/** Lambda fails the whole batch when the response names a message that is not in it, or names none. */
const failedMessageIds = (response: unknown, records: readonly SQSRecord[]): Set<string> | Error => {
  if (response === undefined || response === null) return new Set()
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures
  if (failures === undefined || failures === null) return new Set()
  if (!Array.isArray(failures)) return new Error('batchItemFailures is not a list')
  const ids = new Set(records.map((record) => record.messageId))
  const failed = new Set<string>()
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier
    if (typeof id !== 'string' || !ids.has(id)) {
      return new Error(`batchItemFailures names ${JSON.stringify(id)}, which is not a message of the batch`)
    }
    failed.add(id)
  }
  return failed
}

/**
 * An in-process queue with the semantics of an SQS standard queue, for tests and the local runtime: per-message
 * delays, a visibility timeout, receive counts, redrive to a dead-letter queue after `maxReceiveCount` receives, and
 * delivery to a Lambda SQS handler with partial batch responses. All time comes from the injected clock; nothing
 * happens in the background, so a test moves its clock and calls `receive` or `deliver`.
 *
 * Unlike SQS it delivers in send order, never twice at once, and a delete needs the latest receipt handle.
 */
export class LocalQueue implements RunQueue, DeadLetterSink {
  readonly name: string
  readonly arn: string
  readonly #visibilityTimeoutMs: number
  readonly #maxReceiveCount: number | undefined
  readonly #deadLetter: LocalQueue | undefined
  readonly #now: () => number
  /** In send order. */
  readonly #messages = new Map<string, StoredMessage>()
  /** Latest receipt handle → message id. */
  readonly #handles = new Map<string, string>()

  constructor(options: LocalQueueOptions) {
    if (!QUEUE_NAME.test(options.name)) {
      throw new RangeError(`queue name '${options.name}' must be 1-80 letters, digits, '-' or '_'`)
    }
    if ((options.maxReceiveCount === undefined) !== (options.deadLetter === undefined)) {
      throw new RangeError('maxReceiveCount and deadLetter go together (an SQS redrive policy needs both)')
    }
    this.name = options.name
    this.arn = `arn:aws:sqs:local:000000000000:${options.name}`
    this.#visibilityTimeoutMs = requireInteger(
      options.visibilityTimeoutMs ?? 30_000,
      0,
      MAX_VISIBILITY_TIMEOUT_MS,
      'visibilityTimeoutMs',
    )
    this.#maxReceiveCount =
      options.maxReceiveCount === undefined
        ? undefined
        : requireInteger(options.maxReceiveCount, 1, 1000, 'maxReceiveCount')
    this.#deadLetter = options.deadLetter
    this.#now = options.now ?? Date.now
  }

  /** Enqueues a message; returns its message id. */
  send(body: string, options?: LocalSendOptions): string
  /** DeadLetterSink: enqueues the body unchanged, with `reason`, `source` and `originalMessageId` attributes. */
  send(message: DeadLetter): Promise<void>
  send(bodyOrLetter: string | DeadLetter, options?: LocalSendOptions): string | Promise<void> {
    if (typeof bodyOrLetter === 'string') return this.#enqueue(bodyOrLetter, options ?? {})
    try {
      const attributes: Record<string, string> = {}
      for (const [name, value] of Object.entries(deadLetterAttributes(bodyOrLetter))) {
        if (value !== undefined) attributes[name] = value
      }
      this.#enqueue(bodyOrLetter.body, { attributes })
      return Promise.resolve()
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** RunQueue: one message per unique (instanceId, dueAtMs), delays clamped as the SQS adapter does. */
  async sendRuns(requests: readonly RunRequest[]): Promise<{ failed: RunRequest[] }> {
    const bodies = uniqueRunRequests(requests).map((request) => ({ request, body: runMessageBody(request) }))
    for (const { request, body } of bodies) {
      this.#enqueue(
        body,
        request.delaySeconds === undefined ? {} : { delaySeconds: clampDelaySeconds(request.delaySeconds) },
      )
    }
    return { failed: [] }
  }

  /**
   * Up to `max` (1..10) visible messages, oldest first: each becomes invisible for the visibility timeout and gets
   * a new receipt handle. A message already received `maxReceiveCount` times moves to the dead-letter queue
   * instead, with the reason `maxReceiveCount exceeded`.
   */
  receive(max = MAX_RECEIVE_BATCH): SqsRecordLike[] {
    requireInteger(max, 1, MAX_RECEIVE_BATCH, 'max')
    const now = this.#now()
    const records: SqsRecordLike[] = []
    for (const message of [...this.#messages.values()]) {
      if (records.length >= max) break
      if (message.visibleAtMs > now) continue
      if (this.#maxReceiveCount !== undefined && message.receiveCount >= this.#maxReceiveCount) {
        this.#moveToDeadLetter(message)
        continue
      }
      if (message.receiptHandle !== undefined) this.#handles.delete(message.receiptHandle)
      message.receiveCount += 1
      message.firstReceivedAtMs ??= now
      message.visibleAtMs = now + this.#visibilityTimeoutMs
      message.receiptHandle = randomBytes(36).toString('base64')
      this.#handles.set(message.receiptHandle, message.messageId)
      records.push(this.#record(message))
    }
    return records
  }

  /** Deletes the message last received with this handle; false when the handle is unknown or superseded. */
  delete(receiptHandle: string): boolean {
    const messageId = this.#handles.get(receiptHandle)
    if (messageId === undefined) return false
    this.#handles.delete(receiptHandle)
    return this.#messages.delete(messageId)
  }

  /** Messages on the queue: visible, delayed and in flight. */
  pending(): number {
    return this.#messages.size
  }

  /** A snapshot of the messages on the queue, in send order. */
  messages(): LocalMessage[] {
    const now = this.#now()
    return [...this.#messages.values()].map((message) => ({
      messageId: message.messageId,
      body: message.body,
      attributes: { ...message.attributes },
      receiveCount: message.receiveCount,
      sentAtMs: message.sentAtMs,
      visibleAtMs: message.visibleAtMs,
      inFlight: message.receiptHandle !== undefined && message.visibleAtMs > now,
    }))
  }

  /**
   * A DLQ redrive (SQS `StartMessageMoveTask`): moves the messages (all, or those named) back to `target` as new
   * messages with the same body, without the dead-letter attributes. Returns the ids moved.
   */
  redriveTo(target: LocalQueue, messageIds?: readonly string[]): string[] {
    const wanted = messageIds === undefined ? undefined : new Set(messageIds)
    const moved: string[] = []
    for (const message of [...this.#messages.values()]) {
      if (wanted !== undefined && !wanted.has(message.messageId)) continue
      if (message.receiptHandle !== undefined && message.visibleAtMs > this.#now()) continue
      const { reason: _reason, source: _source, originalMessageId: _original, ...attributes } = message.attributes
      target.send(message.body, { attributes })
      if (message.receiptHandle !== undefined) this.#handles.delete(message.receiptHandle)
      this.#messages.delete(message.messageId)
      moved.push(message.messageId)
    }
    return moved
  }

  /**
   * Delivers one batch to a Lambda SQS handler as the event source mapping does with ReportBatchItemFailures:
   * records the handler does not list in `batchItemFailures` are deleted; a handler that throws, or a response
   * naming a message not in the batch, leaves the whole batch to be delivered again after the visibility timeout.
   * The handler is not called when no message is visible.
   */
  async deliver(handler: SqsBatchHandler, options?: { maxMessages?: number }): Promise<DeliveryResult> {
    const records = this.receive(options?.maxMessages ?? MAX_RECEIVE_BATCH)
    if (records.length === 0) return { delivered: 0, failed: 0 }
    let response: unknown
    try {
      response = await handler({ Records: records })
    } catch (error) {
      return { delivered: 0, failed: records.length, error }
    }
    const failed = failedMessageIds(response, records)
    if (failed instanceof Error) return { delivered: 0, failed: records.length, error: failed }
    let delivered = 0
    for (const record of records) {
      if (!failed.has(record.messageId) && this.delete(record.receiptHandle)) delivered += 1
    }
    return { delivered, failed: records.length - delivered }
  }

  #enqueue(body: string, options: LocalSendOptions, kept?: Pick<StoredMessage, 'messageId' | 'sentAtMs'>): string {
    if (body === '') throw new RangeError('a message body must not be empty')
    if (Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) {
      throw new RangeError(`a message body must not exceed ${MAX_BODY_BYTES} bytes`)
    }
    for (const [name, value] of Object.entries(options.attributes ?? {})) {
      if (value === '') throw new RangeError(`message attribute '${name}' must not be empty`)
    }
    const delaySeconds = requireInteger(options.delaySeconds ?? 0, 0, MAX_QUEUE_DELAY_SECONDS, 'delaySeconds')
    const now = this.#now()
    const message: StoredMessage = {
      messageId: kept?.messageId ?? randomUUID(),
      body,
      attributes: { ...options.attributes },
      sentAtMs: kept?.sentAtMs ?? now,
      visibleAtMs: now + delaySeconds * 1000,
      receiveCount: 0,
    }
    this.#messages.set(message.messageId, message)
    return message.messageId
  }

  /** SQS redrive: the same message (id, body, sent time) moves, its receive count starts over. */
  #moveToDeadLetter(message: StoredMessage): void {
    const deadLetter = this.#deadLetter!
    if (message.receiptHandle !== undefined) this.#handles.delete(message.receiptHandle)
    this.#messages.delete(message.messageId)
    deadLetter.#enqueue(
      message.body,
      { attributes: { ...message.attributes, reason: 'maxReceiveCount exceeded', source: this.name } },
      message,
    )
    deadLetter.#messages.get(message.messageId)!.deadLetterSourceArn = this.arn
  }

  #record(message: StoredMessage): SqsRecordLike {
    const messageAttributes: SQSMessageAttributes = {}
    for (const [name, value] of Object.entries(message.attributes)) {
      messageAttributes[name] = { stringValue: value, stringListValues: [], binaryListValues: [], dataType: 'String' }
    }
    const hasAttributes = Object.keys(message.attributes).length > 0
    return {
      messageId: message.messageId,
      receiptHandle: message.receiptHandle!,
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentAtMs),
        SenderId: SENDER_ID,
        ApproximateFirstReceiveTimestamp: String(message.firstReceivedAtMs ?? message.sentAtMs),
        ...(message.deadLetterSourceArn === undefined ? {} : { DeadLetterQueueSourceArn: message.deadLetterSourceArn }),
      },
      messageAttributes,
      md5OfBody: md5(message.body),
      ...(hasAttributes ? { md5OfMessageAttributes: md5OfMessageAttributes(message.attributes) } : {}),
      eventSource: 'aws:sqs',
      eventSourceARN: this.arn,
      awsRegion: 'local',
    }
  }
}
