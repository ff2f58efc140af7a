import type { JsonObject } from './json.js'

/**
 * Ports through which the engine hands work to runners and asks to be woken up. AWS adapters implement them with
 * SQS and EventBridge Scheduler; in-process implementations serve tests and the local runtime.
 */

/** A request to run a `due` pass over an instance. `dueAtMs` names the due time it was sent for (deduplication). */
export interface RunRequest {
  instanceId: string
  dueAtMs: number
  /** 0-900: SQS delivers the message this many seconds later. */
  delaySeconds?: number
}

export const MAX_QUEUE_DELAY_SECONDS = 900

export interface RunQueue {
  /** Sends run requests (batched by the adapter); returns the ones that could not be sent. */
  sendRuns(requests: readonly RunRequest[]): Promise<{ failed: RunRequest[] }>
}

/** One-time wake-ups later than a queue delay allows (EventBridge Scheduler `at()` schedules). */
export interface WakeupScheduler {
  /** Creates or moves the instance's one wake-up (a deterministic name per instance) to `atMs`. */
  scheduleAt(instanceId: string, atMs: number): Promise<void>
  /** Removes the instance's wake-up; no error when there is none. */
  cancel(instanceId: string): Promise<void>
}

/** What a recurring schedule starts. */
export interface RecurringSchedule {
  /** Unique per deployment; letters, digits, `_ . -`. */
  name: string
  /** `cron(min hour day-of-month month day-of-week year)` or `rate(N unit)` (EventBridge Scheduler syntax). */
  expression: string
  /** IANA time zone of a cron expression; default UTC. */
  timezone?: string
  workflowType: string
  context: JsonObject
  businessId?: string
  enabled: boolean
  description?: string
}

/** A stored schedule as read back: with its next firing, absent when it is disabled or never fires again. */
export interface ScheduleView extends RecurringSchedule {
  nextFireAtMs?: number
  /** The same time, ISO 8601 UTC. */
  nextFireAt?: string
}

/** Recurring starts (EventBridge Scheduler recurring schedules that send start messages). */
export interface RecurringScheduler {
  /** Creates or replaces a schedule. */
  put(schedule: RecurringSchedule): Promise<void>
  get(name: string): Promise<ScheduleView | undefined>
  list(): Promise<ScheduleView[]>
  /** Returns false when there was no such schedule. */
  delete(name: string): Promise<boolean>
}

/** A start message, sent by a recurring schedule when it fires. */
export interface StartRequest {
  schedule: string
  workflowType: string
  context: JsonObject
  businessId?: string
  /** When the schedule fired (ISO 8601): with the schedule name it makes the create idempotent. */
  scheduledTime: string
}

/** Where a queue handler puts a message that can never succeed, with the reason, instead of retrying it forever. */
export interface DeadLetterSink {
  send(message: { body: string; reason: string; source: string; messageId?: string }): Promise<void>
}
