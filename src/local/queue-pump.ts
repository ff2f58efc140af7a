import type { SQSEvent } from 'aws-lambda'
import { LocalQueue } from '../adapters/memory/local-queue.js'
import { LocalScheduler } from '../adapters/memory/local-scheduler.js'
import type { QueueOperations } from '../core/consumer.js'
import type { Logger } from '../core/ports.js'
import type { DueIndex } from '../core/store.js'
import { runTick } from '../core/tick.js'
import { createEventsHandler } from '../handlers/events-handler.js'
import { createRunHandler } from '../handlers/run-handler.js'
import { createStartHandler } from '../handlers/start-handler.js'
import { encodeStartMessage } from '../schemas/queue-messages.js'
import { systemClock } from '../system/defaults.js'

/**
 * The queues and the scheduler of `npm start`, in process in place of SQS and EventBridge Scheduler, and the work
 * that moves them: a pump that fires due wake-ups and schedules and hands every queue's messages, as SQS-shaped
 * batches, to the same handlers as the Lambda functions; and the tick on a timer.
 */

const MAX_RECEIVE_COUNT = 5

/** A queue and the dead-letter queue its redrive policy moves messages to. */
export interface QueueWithDeadLetters {
  queue: LocalQueue
  deadLetter: LocalQueue
}

export interface LocalQueues {
  run: QueueWithDeadLetters
  events: QueueWithDeadLetters
  start: QueueWithDeadLetters
  scheduler: LocalScheduler
}

export const createLocalQueues = (now: () => number): LocalQueues => {
  const queue = (name: string): QueueWithDeadLetters => {
    const deadLetter = new LocalQueue({ name: `${name}-dlq`, now })
    return { queue: new LocalQueue({ name, now, maxReceiveCount: MAX_RECEIVE_COUNT, deadLetter }), deadLetter }
  }
  return {
    run: queue('tickflow-run'),
    events: queue('tickflow-events'),
    start: queue('tickflow-start'),
    scheduler: new LocalScheduler({ now }),
  }
}

export interface BackgroundWork {
  engine: QueueOperations
  store: DueIndex
  logger: Logger
  queues: LocalQueues
  now: () => number
  tickIntervalMs: number
  pumpIntervalMs: number
}

/** Each queue with the handler of the function that consumes it on AWS. */
const consumersOf = ({
  engine,
  logger,
  queues,
}: BackgroundWork): [LocalQueue, (event: SQSEvent) => Promise<unknown>][] => {
  const lambdaContext = { getRemainingTimeInMillis: () => 60_000 }
  const options = (pair: QueueWithDeadLetters) => ({
    engine,
    logger,
    deadLetters: pair.deadLetter,
    maxReceiveCount: MAX_RECEIVE_COUNT,
  })
  const run = createRunHandler(options(queues.run))
  return [
    [queues.run.queue, (event) => run(event, lambdaContext)],
    [queues.events.queue, createEventsHandler(options(queues.events))],
    [queues.start.queue, createStartHandler(options(queues.start))],
  ]
}

/** One round: due wake-ups and schedule firings onto their queues, then every queue drained. */
const pumpOnce = async (work: BackgroundWork, consumers: ReturnType<typeof consumersOf>): Promise<void> => {
  const { queues, logger } = work
  const due = queues.scheduler.due(work.now())
  if (due.runs.length) await queues.run.queue.sendRuns(due.runs)
  for (const request of due.starts) {
    const encoded = encodeStartMessage(request)
    // A start no consumer would accept goes where its consumer would put it: to the dead letters, with the reason.
    if (encoded.ok) queues.start.queue.send(encoded.body)
    else await queues.start.deadLetter.send({ body: JSON.stringify(request), reason: encoded.reason, source: 'start' })
  }
  for (const [source, handler] of consumers) {
    for (let batch = 0; batch < 100; batch++) {
      const result = await source.deliver(handler as never)
      if (result.error) logger.log('error', 'queue handler failed', { queue: source.name, error: String(result.error) })
      if (result.delivered + result.failed === 0) break
    }
  }
}

/** Starts the pump (one round at a time) and the tick; the answer stops both, after a round in progress. */
export const startBackgroundWork = (work: BackgroundWork): (() => Promise<void>) => {
  const { logger } = work
  const consumers = consumersOf(work)
  let pumping: Promise<void> | undefined
  const pumpTimer = setInterval(() => {
    pumping ??= pumpOnce(work, consumers)
      .catch((error: unknown) => logger.log('error', 'queue pump failed', { error: String(error) }))
      .finally(() => {
        pumping = undefined
      })
  }, work.pumpIntervalMs)
  const tickTimer = setInterval(() => {
    runTick(
      { store: work.store, queue: work.queues.run.queue, clock: systemClock, logger },
      { remainingTimeMs: work.tickIntervalMs },
    ).catch((error: unknown) => logger.log('error', 'tick failed', { error: String(error) }))
  }, work.tickIntervalMs)
  return async () => {
    clearInterval(pumpTimer)
    clearInterval(tickTimer)
    await pumping
  }
}
