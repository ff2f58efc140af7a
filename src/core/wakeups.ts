import { MAX_QUEUE_DELAY_SECONDS, type RunQueue, type WakeupScheduler } from './dispatch-ports.js'
import type { Logger } from './ports.js'

/** A due time beyond the queue's delay limit needs a one-time schedule instead of a delayed message. */
export const isFarWakeup = (dueAtMs: number, nowMs: number): boolean => dueAtMs - nowMs > MAX_QUEUE_DELAY_SECONDS * 1000

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

  /** True when a wake-up at `dueAtMs` would be a one-time schedule (the instance records it, to remove it later). */
  usesSchedule(dueAtMs: number | null, nowMs: number): boolean {
    return dueAtMs !== null && this.scheduler !== undefined && isFarWakeup(dueAtMs, nowMs)
  }

  /**
   * `dueAtMs` null: the instance needs nothing more (terminal or parked). `scheduledAtMs`: a one-time schedule the
   * instance recorded earlier; it is moved, or removed when no longer needed.
   */
  async plan(instanceId: string, dueAtMs: number | null, nowMs: number, scheduledAtMs?: number): Promise<void> {
    try {
      if (this.usesSchedule(dueAtMs, nowMs)) {
        await this.scheduler?.scheduleAt(instanceId, dueAtMs as number)
        return
      }
      if (scheduledAtMs !== undefined) await this.scheduler?.cancel(instanceId)
      if (dueAtMs === null || !this.queue) return
      const delayMs = Math.max(0, dueAtMs - nowMs)
      // Rounded up: a message that arrived before the due time would find nothing due and be gone.
      const delaySeconds = Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(delayMs / 1000))
      const { failed } = await this.queue.sendRuns([{ instanceId, dueAtMs, delaySeconds }])
      if (failed.length) this.logger.log('warn', 'wake-up message not sent; the tick will find it', { instanceId })
    } catch (error) {
      this.logger.log('warn', 'wake-up not scheduled; the tick will find it', {
        instanceId,
        dueAtMs,
        error: error instanceof Error ? error.message : String(error),
      })
    }
  }
}
