import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import type { DeadLetterSink } from '../core/dispatch-ports.js'
import { StoreError, TickflowError } from '../core/errors.js'
import type { Logger } from '../core/ports.js'

/** What became of one message: done (deleted), dead (to the DLQ with a reason, then deleted), or retry. */
export type Outcome = { kind: 'done' } | { kind: 'dead'; reason: string } | { kind: 'retry'; reason: string }

export const done: Outcome = { kind: 'done' }
export const dead = (reason: string): Outcome => ({ kind: 'dead', reason })
export const retry = (reason: string): Outcome => ({ kind: 'retry', reason })

export interface BatchOptions {
  /** Queue name for logs and the dead letter's `source`. */
  source: string
  deadLetters: DeadLetterSink
  logger: Logger
  /** The queue's redrive limit: on the last receive a still failing message goes to the DLQ with its reason. */
  maxReceiveCount: number
}

const receiveCount = (record: SQSRecord): number => Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1

const describe = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error)

/**
 * Processes an SQS batch record by record and always answers with a partial batch response: only messages worth
 * retrying are reported as failures. A message that can never succeed goes to the dead-letter queue with its
 * reason at once; one that keeps failing goes there on its last receive, so nothing is retried forever and
 * nothing is dropped silently.
 */
export const processBatch = async (
  event: SQSEvent,
  options: BatchOptions,
  handle: (record: SQSRecord) => Promise<Outcome>,
): Promise<SQSBatchResponse> => {
  const failures: string[] = []
  await Promise.all(
    (event.Records ?? []).map(async (record) => {
      let outcome: Outcome
      try {
        outcome = await handle(record)
      } catch (error) {
        outcome = retry(describe(error))
      }
      const fields = { source: options.source, messageId: record.messageId, receiveCount: receiveCount(record) }
      if (outcome.kind === 'retry' && receiveCount(record) >= options.maxReceiveCount) {
        outcome = dead(`${outcome.reason} (still failing after ${receiveCount(record)} receives)`)
      }
      if (outcome.kind === 'dead') {
        try {
          await options.deadLetters.send({
            body: record.body,
            reason: outcome.reason,
            source: options.source,
            messageId: record.messageId,
          })
          options.logger.log('warn', 'message sent to the dead-letter queue', { ...fields, reason: outcome.reason })
        } catch (error) {
          options.logger.log('error', 'dead-letter queue refused a message; it will be retried', {
            ...fields,
            error: describe(error),
          })
          failures.push(record.messageId)
        }
        return
      }
      if (outcome.kind === 'retry') {
        options.logger.log('warn', 'message will be retried', { ...fields, reason: outcome.reason })
        failures.push(record.messageId)
      }
    }),
  )
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) }
}

/**
 * The default fate of a message whose engine call failed: an infrastructure error is retried, an error the
 * request itself caused (a 4xx) can never succeed and is dead-lettered; anything else is rethrown (and retried).
 */
export const outcomeOfError = (error: unknown): Outcome => {
  if (error instanceof StoreError) return retry(`${error.code}: ${error.message}`)
  if (error instanceof TickflowError && error.httpStatus < 500) return dead(`${error.code}: ${error.message}`)
  throw error
}

/** Time left to the Lambda, minus a margin for the last write; undefined outside Lambda. */
export const remainingFor = (context: { getRemainingTimeInMillis?: () => number } | undefined): number | undefined => {
  const remaining = context?.getRemainingTimeInMillis?.()
  return remaining === undefined ? undefined : Math.max(1_000, Math.min(3_600_000, Math.floor(remaining - 3_000)))
}
