import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { parseRunMessage } from '../adapters/sqs/messages.js'
import type { Engine } from '../core/engine.js'
import { LeaseLostError, LockConflictError, RegistrationError } from '../core/errors.js'
import { type BatchOptions, dead, done, type Outcome, outcomeOfError, processBatch, remainingFor } from './sqs-batch.js'

/**
 * The run-queue consumer: one `due` pass per message. A busy or terminal instance is acknowledged (the holder of
 * the lease, or nobody, has the work); an infrastructure error is retried; a message that can never run is
 * dead-lettered with its reason.
 */
export const createRunHandler =
  (deps: { engine: Engine } & Omit<BatchOptions, 'source'>) =>
  (event: SQSEvent, context?: { getRemainingTimeInMillis?: () => number }): Promise<SQSBatchResponse> =>
    processBatch(event, { ...deps, source: 'run' }, async (record): Promise<Outcome> => {
      const parsed = parseRunMessage(record.body)
      if (!parsed.ok) return dead(parsed.reason)
      const remainingTimeMs = remainingFor(context)
      try {
        const result = await deps.engine.runWorkflow(parsed.message.instanceId, {
          mode: 'due',
          ...(remainingTimeMs === undefined ? {} : { remainingTimeMs }),
        })
        deps.logger.log('info', 'run message processed', {
          instanceId: parsed.message.instanceId,
          status: result.status,
          executed: result.executed.length,
          ...(result.skipped ? { skipped: result.skipped } : {}),
        })
        return done
      } catch (error) {
        // Another runner holds the instance, or took it over: that runner has the work.
        if (error instanceof LockConflictError || error instanceof LeaseLostError) return done
        // A deployment without the worker for a node: retrying cannot help until it is fixed.
        if (error instanceof RegistrationError) return dead(`${error.code}: ${error.message}`)
        return outcomeOfError(error)
      }
    })
