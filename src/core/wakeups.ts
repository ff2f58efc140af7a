import { MAX_QUEUE_DELAY_SECONDS, type RunQueue, type WakeupScheduler } from './dispatch-ports.js'
import type { Logger } from './ports.js'

/**
 * Turns an instance's next due time into a precise wake-up: a delayed queue message when it is within the queue's
 * delay limit, else a one-time schedule. Failures are logged, never thrown: the tick finds every due instance anyway.
 */
export class Wakeups {
  constructor(
    readonly queue: RunQueue | undefined,
    readonly scheduler: WakeupScheduler | undefined,
    readonly logger: Logger,
  ) {}

  /**
   * `dueAtMs` null: the instance needs nothing more (terminal or idle); a schedule made for an earlier far due time
   * (`previousDueAtMs`) is removed.
   */
  async plan(instanceId: string, dueAtMs: number | null, nowMs: number, previousDueAtMs?: number): Promise<void> {
    const farBefore = previousDueAtMs !== undefined && previousDueAtMs - nowMs > MAX_QUEUE_DELAY_SECONDS * 1000
    try {
      if (dueAtMs === null) {
        if (farBefore) await this.scheduler?.cancel(instanceId)
        return
      }
      const delayMs = Math.max(0, dueAtMs - nowMs)
      if (delayMs <= MAX_QUEUE_DELAY_SECONDS * 1000 || !this.scheduler) {
        if (!this.queue) return
        // Rounded up: a message that arrived before the due time would find nothing due and be gone.
        const delaySeconds = Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(delayMs / 1000))
        const { failed } = await this.queue.sendRuns([{ instanceId, dueAtMs, delaySeconds }])
        if (failed.length) this.logger.log('warn', 'wake-up message not sent; the tick will find it', { instanceId })
        return
      }
      await this.scheduler.scheduleAt(instanceId, dueAtMs)
    } catch (error) {
      this.logger.log('warn', 'wake-up not scheduled; the tick will find it', {
        instanceId,
        dueAtMs,
        error: error instanceof Error ? error.message : String(error),
      })
    }
  }
}
