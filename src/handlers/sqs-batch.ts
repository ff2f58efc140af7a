import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { type Delivery, dead, QueueConsumer, type QueueName, type QueueOperations, retry } from '../core/consumer.js'
import type { DeadLetterSink } from '../core/dispatch-ports.js'
import { MetricName, type Metrics } from '../core/metrics.js'
import type { Logger } from '../core/ports.js'

export interface BatchOptions {
  deadLetters: DeadLetterSink
  logger: Logger
  /** Counts dead letters (dimension queue); nothing when absent. */
  metrics?: Metrics
  /** The queue's redrive limit: on the last receive a still failing message goes to the DLQ with its reason. */
  maxReceiveCount: number
}

type LambdaContext = { getRemainingTimeInMillis?: () => number } | undefined

const receiveCount = (record: SQSRecord): number => Number(record.attributes?.ApproximateReceiveCount ?? '1') || 1

const describe = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error)

/**
 * The SQS adapter over the one consumer core, QueueConsumer, built here once per handler over the engine's
 * operations: each record is handed to it, and the answer becomes a partial batch response. A message that can never
 * succeed goes to the dead-letter queue with its reason at once; one that keeps failing goes there on its last
 * receive, so nothing is retried forever and nothing is dropped silently.
 */
export const sqsConsumer = (queue: QueueName, deps: { engine: QueueOperations } & BatchOptions) => {
  const consumer = new QueueConsumer(deps.engine, deps.logger, deps.metrics)
  return async (event: SQSEvent, context?: LambdaContext): Promise<SQSBatchResponse> => {
    const failures: string[] = []
    await Promise.all(
      (event.Records ?? []).map(async (record) => {
        let outcome: Delivery
        try {
          const remainingTimeMs = context?.getRemainingTimeInMillis?.()
          outcome = await consumer.deliver(queue, {
            body: record.body,
            ...(remainingTimeMs === undefined ? {} : { remainingTimeMs }),
          })
        } catch (error) {
          outcome = retry(describe(error))
        }
        const fields = { source: queue, messageId: record.messageId, receiveCount: receiveCount(record) }
        if (outcome.kind === 'retry' && receiveCount(record) >= deps.maxReceiveCount) {
          outcome = dead(`${outcome.reason} (still failing after ${receiveCount(record)} receives)`)
        }
        if (outcome.kind === 'dead') {
          try {
            await deps.deadLetters.send({
              body: record.body,
              reason: outcome.reason,
              source: queue,
              messageId: record.messageId,
            })
            deps.logger.log('warn', 'message sent to the dead-letter queue', { ...fields, reason: outcome.reason })
            deps.metrics?.add(MetricName.deadLetters, 1, 'Count', { queue })
          } catch (error) {
            deps.logger.log('error', 'dead-letter queue refused a message; it will be retried', {
              ...fields,
              error: describe(error),
            })
            failures.push(record.messageId)
          }
          return
        }
        if (outcome.kind === 'retry') {
          deps.logger.log('warn', 'message will be retried', { ...fields, reason: outcome.reason })
          failures.push(record.messageId)
        }
      }),
    )
    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) }
  }
}
