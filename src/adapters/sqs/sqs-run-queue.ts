import {
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { RunQueue, RunRequest } from '../../core/dispatch-ports.js'
import type { StoreError } from '../../core/errors.js'
import { classifyAwsError } from '../aws-errors.js'
import { clampDelaySeconds, runMessageBody, uniqueRunRequests } from '../run-requests.js'

/** SQS takes at most 10 entries per SendMessageBatch. */
export const MAX_BATCH_ENTRIES = 10
/** Batches of one sendRuns call in flight at once. */
const MAX_BATCHES_IN_FLIGHT = 8

/**
 * Turns an SQS SDK error into the engine's StoreError: a missing queue is `QUEUE_NOT_FOUND`, denied access or a
 * broken key `QUEUE_MISCONFIGURED` (neither retryable unless `retryable` overrides it); anything else keeps the
 * default code. Callers never see SDK types.
 */
export const translateSqsError = (
  error: unknown,
  operation: string,
  queueUrl: string,
  options?: { retryable?: boolean },
): StoreError =>
  classifyAwsError(error, {
    service: 'sqs',
    operation,
    resource: queueUrl,
    ...(options?.retryable === undefined ? {} : { retryable: options.retryable }),
  })

/** Errors that fail every send the same way: sendRuns throws them instead of reporting requests as failed. */
const isMisconfiguration = (error: StoreError): boolean =>
  error.code === 'QUEUE_NOT_FOUND' || error.code === 'QUEUE_MISCONFIGURED'

interface PlannedEntry {
  request: RunRequest
  entry: SendMessageBatchRequestEntry
}

/** The unique requests as batch entries, in chunks of 10, each entry's Id its index in its chunk. */
const planBatches = (requests: readonly RunRequest[]): PlannedEntry[][] => {
  const unique = uniqueRunRequests(requests)
  const batches: PlannedEntry[][] = []
  for (let start = 0; start < unique.length; start += MAX_BATCH_ENTRIES) {
    batches.push(
      unique.slice(start, start + MAX_BATCH_ENTRIES).map((request, index) => ({
        request,
        entry: {
          Id: String(index),
          MessageBody: runMessageBody(request),
          ...(request.delaySeconds === undefined ? {} : { DelaySeconds: clampDelaySeconds(request.delaySeconds) }),
        },
      })),
    )
  }
  return batches
}

/**
 * The SendMessageBatch inputs for `requests`: duplicates of an (instanceId, dueAtMs) dropped, delays clamped to
 * whole seconds in 0..900 (rounded up), 10 entries per batch with Ids unique within it. A request without a delay
 * gets no DelaySeconds (the queue's default applies). Throws a ValidationError for a request no consumer would
 * accept, before anything is sent.
 */
export const sendMessageBatchParams = (
  queueUrl: string,
  requests: readonly RunRequest[],
): SendMessageBatchCommandInput[] =>
  planBatches(requests).map((batch) => ({ QueueUrl: queueUrl, Entries: batch.map(({ entry }) => entry) }))

export interface SqsRunQueueOptions {
  client: SQSClient
  queueUrl: string
}

/**
 * The run queue on SQS. A send is best effort per request: entries SQS reports as failed are sent once more, and
 * whatever still fails (or was in a batch whose request failed) is returned for the caller to handle. Only a queue
 * that cannot work at all (missing, access denied) throws.
 */
export class SqsRunQueue implements RunQueue {
  readonly queueUrl: string
  readonly #client: SQSClient

  constructor(options: SqsRunQueueOptions) {
    this.#client = options.client
    this.queueUrl = options.queueUrl
  }

  async sendRuns(requests: readonly RunRequest[]): Promise<{ failed: RunRequest[] }> {
    const batches = planBatches(requests)
    const failedPerBatch: RunRequest[][] = new Array(batches.length)
    let next = 0
    let fatal: unknown
    let stopped = false
    const worker = async (): Promise<void> => {
      while (!stopped && next < batches.length) {
        const index = next++
        try {
          failedPerBatch[index] = await this.#sendBatch(batches[index]!)
        } catch (error) {
          stopped = true
          fatal = error
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(MAX_BATCHES_IN_FLIGHT, batches.length) }, worker))
    if (stopped) throw fatal
    return { failed: failedPerBatch.flat() }
  }

  /** Sends one batch, then its failed entries once more; returns the requests not sent. */
  async #sendBatch(batch: PlannedEntry[]): Promise<RunRequest[]> {
    let pending = batch
    for (let attempt = 1; attempt <= 2 && pending.length > 0; attempt++) {
      let sent: Set<string>
      try {
        const output = await this.#client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending.map(({ entry }) => entry) }),
        )
        // An entry counts as sent only when SQS says so; one it lists nowhere is treated as failed.
        sent = new Set((output.Successful ?? []).map((entry) => entry.Id ?? ''))
      } catch (error) {
        const translated = translateSqsError(error, 'sendRuns', this.queueUrl)
        if (isMisconfiguration(translated)) throw translated
        break
      }
      pending = pending.filter(({ entry }) => !sent.has(entry.Id!))
    }
    return pending.map(({ request }) => request)
  }
}
