import type { CallbackMessage } from '../schemas/callbacks.js'
import type { AddNodeEventParams, CreateParams, RunParams } from '../schemas/engine-params.js'
import {
  type EventMessage,
  parseEventsQueueMessage,
  parseRunMessage,
  parseStartMessage,
} from '../schemas/queue-messages.js'
import {
  IllegalStateError,
  LeaseLostError,
  LockConflictError,
  StaleEventError,
  StoreError,
  TickflowError,
} from './errors.js'
import { jsonEquals } from './json.js'
import { MetricName, type Metrics, noMetrics } from './metrics.js'
import type { PassResult } from './pass.js'
import type { Logger } from './ports.js'
import type { NodeEventRecord } from './store.js'

/**
 * The one consumer core behind every queue adapter (SQS Lambda handlers, the local queues): it decides what becomes
 * of a message. The adapter only maps the answer to its platform: done → delete, retry → report a batch item
 * failure (on the last receive: dead-letter with the reason), dead → dead-letter with the reason.
 */
export type Delivery = { kind: 'done' } | { kind: 'dead'; reason: string } | { kind: 'retry'; reason: string }

export const done: Delivery = { kind: 'done' }
export const dead = (reason: string): Delivery => ({ kind: 'dead', reason })
export const retry = (reason: string): Delivery => ({ kind: 'retry', reason })

export type QueueName = 'run' | 'events' | 'start'

export interface IncomingMessage {
  body: string
  /** The caller's remaining time (a Lambda's `getRemainingTimeInMillis()`), for sizing leases. */
  remainingTimeMs?: number | undefined
}

/** Instance id of a scheduled start: the schedule and its firing time, so a re-delivered start creates nothing new. */
export const scheduledInstanceId = (schedule: string, scheduledTime: string): string =>
  `${schedule}-${Math.floor(Date.parse(scheduledTime) / 1000)}`

/**
 * The default fate of a message whose engine call failed, read from the error: one that the request itself caused
 * (a 4xx) and that no retry cures can never succeed and is dead-lettered at once; a failure a retry may cure, or a
 * fault of the system (a missing table is fixed by a deployment, not by the message), is retried, and dead-lettered
 * with its reason on the last receive. Anything that is not a TickflowError is retried.
 */
export const deliveryOfError = (error: unknown): Delivery => {
  if (!(error instanceof TickflowError)) {
    return retry(error instanceof Error ? `${error.name}: ${error.message}` : String(error))
  }
  if (!error.retryable && error.httpStatus < 500) return dead(`${error.code}: ${error.message}`)
  return retry(error instanceof StoreError ? `${error.code}: ${error.message}` : `${error.name}: ${error.message}`)
}

/**
 * The operations a queue message can lead to, and nothing else: what the consumer needs of the engine, not who
 * provides it (the Engine does; a test may pass a fake).
 */
export interface QueueOperations {
  /** One pass; the consumer runs `due` passes only. */
  runWorkflow(instanceId: string, options: Omit<RunParams, 'instanceId'>): Promise<PassResult>
  addNodeEvent(params: AddNodeEventParams): Promise<unknown>
  create(params: CreateParams): Promise<{ instanceId: string; status: string; created: boolean }>
  /** The instance an event names by business id; undefined when none is visible (yet). */
  findByBusinessId(workflowType: string, businessId: string): Promise<string | undefined>
  /** The event stored for a node, to tell a re-delivered event from a different one. */
  storedEvent(instanceId: string, nodeId: string): Promise<NodeEventRecord | undefined>
  /** Completes, fails or keeps alive the callback a token names. */
  completeCallback(token: string, completion: unknown): Promise<unknown>
}

export class QueueConsumer {
  constructor(
    readonly engine: QueueOperations,
    readonly logger: Logger,
    readonly metrics: Metrics = noMetrics,
  ) {}

  /**
   * One message of a queue (run requests, external events, scheduled starts): what became of it — done, retry (with
   * the reason; the adapter dead-letters it on its last receive), or dead with the reason.
   */
  deliver(queue: QueueName, message: IncomingMessage): Promise<Delivery> {
    switch (queue) {
      case 'run':
        return this.#run(message)
      case 'events': {
        const parsed = parseEventsQueueMessage(message.body)
        if (!parsed.ok) return Promise.resolve(dead(parsed.reason))
        return parsed.message.kind === 'callback'
          ? this.#callback(parsed.message.callback)
          : this.#event(parsed.message.event)
      }
      case 'start':
        return this.#start(message)
    }
  }

  /** One due pass. A busy, terminal, parked or not-yet-due instance is acknowledged: someone, or nobody, has it. */
  async #run(message: IncomingMessage): Promise<Delivery> {
    const parsed = parseRunMessage(message.body)
    if (!parsed.ok) return dead(parsed.reason)
    const { instanceId } = parsed.message
    try {
      const result = await this.engine.runWorkflow(instanceId, {
        mode: 'due',
        ...(message.remainingTimeMs === undefined ? {} : { remainingTimeMs: message.remainingTimeMs }),
      })
      // A skipped wake-up is routine: only a pass that did something is worth an info line.
      this.logger.log(result.skipped ? 'debug' : 'info', 'run message processed', {
        instanceId,
        workflowType: result.workflowType,
        status: result.status,
        executed: result.executed.length,
        ...(result.skipped ? { skipped: result.skipped } : {}),
      })
      return done
    } catch (error) {
      // Another runner holds the instance, or took it over: that runner has the work.
      if (error instanceof LeaseLostError) this.metrics.add(MetricName.leaseConflicts, 1, 'Count', { kind: 'lost' })
      if (error instanceof LockConflictError || error instanceof LeaseLostError) return done
      return deliveryOfError(error)
    }
  }

  /**
   * Stores an event (which makes the instance due and sends a run request). Duplicates and events older than the
   * stored one are acknowledged; an instance named by business id that is not visible yet is retried, and
   * dead-lettered with the reason on the last receive.
   */
  async #event(event: EventMessage): Promise<Delivery> {
    const fields = { nodeId: event.nodeId, eventTs: event.eventTs, eventId: event.eventId }
    let instanceId: string | undefined
    try {
      instanceId = await this.#resolve(event)
      if (instanceId === undefined) {
        return retry(`no instance of '${event.workflowType}' with business id '${event.businessId}' is visible`)
      }
      await this.engine.addNodeEvent({
        instanceId,
        nodeId: event.nodeId,
        eventTs: event.eventTs,
        content: event.content ?? null,
        origin: 'queue',
      })
      this.logger.log('info', 'event stored', { instanceId, ...fields })
      return done
    } catch (error) {
      if (error instanceof StaleEventError) {
        this.logger.log('warn', 'event older than the stored one acknowledged', { instanceId, ...fields })
        return done
      }
      // The node's event was replaced under it five times in a row: newer events keep arriving, and a retry would
      // find one of them stored.
      if (error instanceof LockConflictError) return dead(`${error.code}: ${error.message}`)
      if (error instanceof IllegalStateError && instanceId !== undefined) {
        // A re-delivery after the node finished: the same event is already stored.
        const stored = await this.engine.storedEvent(instanceId, event.nodeId)
        if (stored?.eventTs === event.eventTs && jsonEquals(stored.content, event.content ?? null)) {
          this.logger.log('info', 'duplicate event acknowledged', { instanceId, ...fields })
          return done
        }
        return dead(`${error.code}: ${error.message}`)
      }
      return deliveryOfError(error)
    }
  }

  /**
   * Completes a callback with the token the message carries, as `POST /callbacks/{token}` would. A repeated
   * completion is acknowledged; one that can never be stored (unknown token, old attempt, finished node, another
   * completion stored) is dead-lettered with the reason.
   */
  async #callback(message: CallbackMessage): Promise<Delivery> {
    const { v: _v, kind: _kind, token, ...completion } = message
    try {
      await this.engine.completeCallback(token, completion)
      this.logger.log('info', 'callback completion stored', { status: completion.status })
      return done
    } catch (error) {
      return deliveryOfError(error)
    }
  }

  #resolve(event: EventMessage): Promise<string | undefined> {
    if (event.instanceId !== undefined) return Promise.resolve(event.instanceId)
    return this.engine.findByBusinessId(event.workflowType as string, event.businessId as string)
  }

  /** Creates (and runs) the instance a recurring schedule asked for, idempotently. */
  async #start(message: IncomingMessage): Promise<Delivery> {
    const parsed = parseStartMessage(message.body)
    if (!parsed.ok) return dead(parsed.reason)
    const start = parsed.message
    try {
      const result = await this.engine.create({
        workflowType: start.workflowType,
        context: start.context,
        ...(start.businessId === undefined ? {} : { businessId: start.businessId }),
        id: scheduledInstanceId(start.schedule, start.scheduledTime),
        origin: 'schedule',
        ...(message.remainingTimeMs === undefined ? {} : { remainingTimeMs: message.remainingTimeMs }),
      })
      this.logger.log('info', 'scheduled start', {
        schedule: start.schedule,
        instanceId: result.instanceId,
        created: result.created,
        status: result.status,
      })
      return done
    } catch (error) {
      return deliveryOfError(error)
    }
  }
}
