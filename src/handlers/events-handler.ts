import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Engine } from '../core/engine.js'
import { IllegalStateError, StaleEventError } from '../core/errors.js'
import { jsonEquals } from '../core/json.js'
import { type EventMessage, eventMessageSchema, parseMessage } from '../schemas/queue-messages.js'
import { type BatchOptions, dead, done, type Outcome, outcomeOfError, processBatch } from './sqs-batch.js'

/**
 * The instance an event is for: named directly, or by type and business id — the newest one still running, else
 * the newest one at all (so a re-delivered or late event for a finished instance is judged, not lost).
 */
const resolveInstance = async (engine: Engine, message: EventMessage): Promise<string | undefined> => {
  if (message.instanceId !== undefined) return message.instanceId
  const filters = { workflowType: message.workflowType as string, businessId: message.businessId as string, limit: 1 }
  const running = await engine.list({ ...filters, status: ['init', 'running'] })
  return running.items[0]?.id ?? (await engine.list(filters)).items[0]?.id
}

/**
 * The events-queue consumer: validates each message, stores the event (which makes the instance due and sends a
 * run request), and acknowledges duplicates and events older than the stored one. An invalid or impossible
 * message goes to the dead-letter queue with its reason.
 */
export const createEventsHandler =
  (deps: { engine: Engine } & Omit<BatchOptions, 'source'>) =>
  (event: SQSEvent): Promise<SQSBatchResponse> =>
    processBatch(event, { ...deps, source: 'events' }, async (record): Promise<Outcome> => {
      const parsed = parseMessage(eventMessageSchema, record.body)
      if (!parsed.ok) return dead(`invalid event message: ${parsed.reason}`)
      const message = parsed.message
      const fields = { nodeId: message.nodeId, eventTs: message.eventTs, eventId: message.eventId }
      let instanceId: string | undefined
      try {
        instanceId = await resolveInstance(deps.engine, message)
        if (instanceId === undefined) {
          return dead(`no instance of '${message.workflowType}' with business id '${message.businessId}'`)
        }
        await deps.engine.addNodeEvent({
          instanceId,
          nodeId: message.nodeId,
          eventTs: message.eventTs,
          content: message.content ?? null,
        })
        deps.logger.log('info', 'event stored', { instanceId, ...fields })
        return done
      } catch (error) {
        if (error instanceof StaleEventError) {
          deps.logger.log('warn', 'event older than the stored one acknowledged', { instanceId, ...fields })
          return done
        }
        if (error instanceof IllegalStateError && instanceId !== undefined) {
          // A re-delivery after the node finished: the same event is already stored.
          const stored = (await deps.engine.get(instanceId)).nodes.find((node) => node.id === message.nodeId)?.context
            ?.node_event as { event_ts?: number; event_content?: unknown } | undefined
          if (stored?.event_ts === message.eventTs && jsonEquals(stored.event_content, message.content ?? null)) {
            deps.logger.log('info', 'duplicate event acknowledged', { instanceId, ...fields })
            return done
          }
          return dead(`${error.code}: ${error.message}`)
        }
        return outcomeOfError(error)
      }
    })
