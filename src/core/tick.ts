import type { RunQueue, RunRequest } from './dispatch-ports.js'
import { OUTBOX_GRACE_MS, type OutboxIndex } from './lifecycle-events.js'
import { MetricName, type Metrics } from './metrics.js'
import type { Clock, Logger } from './ports.js'
import type { DueIndex } from './store.js'

export interface TickOptions {
  /** Time the caller has left; the tick stops reading before it runs out. */
  remainingTimeMs: number
  pageSize?: number
  /** Safety margin kept free at the end. */
  stopMarginMs?: number
}

export interface TickResult {
  /** Due entries read from the index. */
  due: number
  /** Run requests handed to the queue. */
  sent: number
  failed: number
  /** How late the most overdue instance was (ms), or null when nothing was due. */
  oldestLagMs: number | null
  /** False when time ran out before every shard was read to the end. */
  complete: boolean
  /** Instances with lifecycle events left unpublished, sent to the run queue (whose pass publishes them). */
  outbox?: number
}

/**
 * Reads every shard of the due index for what is due now (paged, in parallel) and hands each due instance to the
 * run queue. It reads what is due, and on DynamoDB the places instances polled within the horizon keep before their
 * due time (a page may come back empty: it reads on): its cost grows with due and polled work, not with the number
 * of idle instances.
 */
export const runTick = async (
  deps: { store: DueIndex & Partial<OutboxIndex>; queue: RunQueue; clock: Clock; logger: Logger; metrics?: Metrics },
  options: TickOptions,
): Promise<TickResult> => {
  const { store, queue, clock, logger } = deps
  const now = clock.nowMs()
  const stopAt = now + options.remainingTimeMs - (options.stopMarginMs ?? 2_000)
  const pageSize = options.pageSize ?? 100
  const result: TickResult = { due: 0, sent: 0, failed: 0, oldestLagMs: null, complete: true }
  const readShard = async (shard: number): Promise<void> => {
    let cursor: string | undefined
    do {
      if (clock.nowMs() >= stopAt) {
        result.complete = false
        return
      }
      const page = await store.queryDue(shard, now, pageSize, cursor)
      cursor = page.cursor
      if (!page.items.length) continue
      result.due += page.items.length
      const oldest = Math.min(...page.items.map((item) => item.dueAtMs))
      result.oldestLagMs = Math.max(result.oldestLagMs ?? 0, now - oldest)
      const requests: RunRequest[] = page.items.map((item) => ({ ...item, delaySeconds: 0 }))
      const { failed } = await queue.sendRuns(requests)
      result.sent += requests.length - failed.length
      result.failed += failed.length
    } while (cursor !== undefined)
  }
  await Promise.all(Array.from({ length: store.dueShards }, (_, shard) => readShard(shard)))
  if (store.queryOutbox && store.outboxShards) {
    // Lifecycle events a writer left unpublished: any pass over the instance publishes them (README, "Outbox").
    const outbox = store as OutboxIndex
    const readOutbox = async (shard: number): Promise<void> => {
      let cursor: string | undefined
      do {
        if (clock.nowMs() >= stopAt) return
        const page = await outbox.queryOutbox(shard, now - OUTBOX_GRACE_MS, pageSize, cursor)
        cursor = page.cursor
        if (!page.items.length) continue
        const requests = page.items.map((item) => ({
          instanceId: item.instanceId,
          dueAtMs: item.sinceMs,
          delaySeconds: 0,
        }))
        const { failed } = await queue.sendRuns(requests)
        result.outbox = (result.outbox ?? 0) + requests.length - failed.length
      } while (cursor !== undefined)
    }
    await Promise.all(Array.from({ length: outbox.outboxShards }, (_, shard) => readOutbox(shard)))
  }
  // A tick that ran out of time left instances unread (their wake-up messages still come): said as a warning.
  logger.log(result.failed || !result.complete ? 'warn' : result.due ? 'info' : 'debug', 'tick', { ...result })
  // Every tick reports both, 0 when nothing is due, so that an alarm on the lag always has data.
  deps.metrics?.add(MetricName.dueInstances, result.due, 'Count')
  deps.metrics?.add(MetricName.oldestTickLagMs, result.oldestLagMs ?? 0, 'Milliseconds')
  deps.metrics?.add(MetricName.incompleteTicks, result.complete ? 0 : 1, 'Count')
  return result
}
