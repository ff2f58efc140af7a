import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Engine } from '../core/engine.js'
import { parseMessage, startMessageSchema } from '../schemas/queue-messages.js'
import { type BatchOptions, dead, done, type Outcome, outcomeOfError, processBatch } from './sqs-batch.js'

/** Instance id of a scheduled start: the schedule and its firing time, so a re-delivered start creates nothing new. */
export const scheduledInstanceId = (schedule: string, scheduledTime: string): string =>
  `${schedule}-${Math.floor(Date.parse(scheduledTime) / 1000)}`

/** The start-queue consumer: creates (and runs) the instance a recurring schedule asked for, idempotently. */
export const createStartHandler =
  (deps: { engine: Engine } & Omit<BatchOptions, 'source'>) =>
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    processBatch(event, { ...deps, source: 'start' }, async (record): Promise<Outcome> => {
      const parsed = parseMessage(startMessageSchema, record.body)
      if (!parsed.ok) return dead(`invalid start message: ${parsed.reason}`)
      const message = parsed.message
      try {
        const result = await deps.engine.create({
          workflowType: message.workflowType,
          context: message.context,
          ...(message.businessId === undefined ? {} : { businessId: message.businessId }),
          id: scheduledInstanceId(message.schedule, message.scheduledTime),
        })
        deps.logger.log('info', 'scheduled start', {
          schedule: message.schedule,
          instanceId: result.instanceId,
          created: result.created,
          status: result.status,
        })
        return done
      } catch (error) {
        return outcomeOfError(error)
      }
    })
