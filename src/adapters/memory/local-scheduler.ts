import type {
  RecurringSchedule,
  RecurringScheduler,
  RunRequest,
  ScheduleView,
  StartRequest,
  WakeupScheduler,
} from '../../core/dispatch-ports.js'
import { ValidationError } from '../../core/errors.js'
import { cloneJson } from '../../core/json.js'
import {
  isoSeconds,
  nextFireTime,
  nextFiring,
  type ParsedScheduleExpression,
  validateRecurringSchedule,
} from '../schedule-expressions.js'

export interface LocalSchedulerOptions {
  now: () => number
  /** Most StartRequests one `due` call returns per schedule; firings beyond it are skipped. Default 10. */
  maxStartsPerSchedule?: number
}

/** What `due` hands back: the wake-ups that came due and the starts recurring schedules fired. */
export interface DueWork {
  runs: RunRequest[]
  starts: StartRequest[]
}

interface Entry {
  schedule: RecurringSchedule
  parsed: ParsedScheduleExpression
  /** A rate schedule fires at anchorMs + k × period (k ≥ 1 in practice, see `put`). */
  anchorMs: number
  /** Firings at or before this time have been handed out (or skipped). */
  checkedMs: number
}

/** The prefix EventBridgeRecurring uses by default: local names are held to the same length limit. */
const DEFAULT_NAME_PREFIX = 'start-'

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

const normalise = (schedule: RecurringSchedule): RecurringSchedule => ({
  name: schedule.name,
  expression: schedule.expression,
  timezone: schedule.timezone ?? 'UTC',
  workflowType: schedule.workflowType,
  context: cloneJson(schedule.context),
  ...(schedule.businessId === undefined ? {} : { businessId: schedule.businessId }),
  enabled: schedule.enabled,
  ...(schedule.description === undefined || schedule.description === '' ? {} : { description: schedule.description }),
})

const view = (entry: Entry, nowMs: number): ScheduleView => ({
  ...entry.schedule,
  context: cloneJson(entry.schedule.context),
  ...nextFiring(entry.parsed, {
    // Firings up to the last `due` call have been handed out: the next one is after both.
    nowMs: Math.max(nowMs, entry.checkedMs),
    timezone: entry.schedule.timezone ?? 'UTC',
    anchorMs: entry.anchorMs,
    enabled: entry.schedule.enabled,
  }),
})

/**
 * In-process wake-ups and recurring schedules for tests and the local runtime, with the semantics of the EventBridge
 * adapters: one wake-up per instance (a second `scheduleAt` moves it, a fired one is gone, as with
 * `ActionAfterCompletion: DELETE`), recurring schedules by name, validated like EventBridgeRecurring (names held to
 * the default `start-` prefix's length; cron schedules in any IANA time zone, with the service's daylight saving
 * rules, see `nextFireTime`). `get` and `list` add when each schedule fires next.
 *
 * No timers: the caller drives it with `due(nowMs)`, which hands out what has come due since the previous call.
 * Rate schedules are anchored at the (whole-second) time of their `put` and first fire one period later; putting a
 * schedule again with the same expression and time zone keeps its anchor and what it already handed out.
 */
export class LocalScheduler implements WakeupScheduler, RecurringScheduler {
  readonly #now: () => number
  readonly #maxStarts: number
  readonly #wakeups = new Map<string, number>()
  readonly #schedules = new Map<string, Entry>()

  constructor(options: LocalSchedulerOptions) {
    this.#now = options.now
    this.#maxStarts = options.maxStartsPerSchedule ?? 10
  }

  async scheduleAt(instanceId: string, atMs: number): Promise<void> {
    if (typeof instanceId !== 'string' || instanceId === '') {
      throw new ValidationError('instance id is empty', 'instanceId')
    }
    if (!Number.isFinite(atMs)) throw new ValidationError(`wake-up time ${atMs} is not a finite number`, 'atMs')
    this.#wakeups.set(instanceId, atMs)
  }

  async cancel(instanceId: string): Promise<void> {
    this.#wakeups.delete(instanceId)
  }

  /** The pending wake-ups, earliest first. */
  wakeups(): { instanceId: string; atMs: number }[] {
    return [...this.#wakeups]
      .map(([instanceId, atMs]) => ({ instanceId, atMs }))
      .sort((a, b) => a.atMs - b.atMs || byName(a.instanceId, b.instanceId))
  }

  async put(schedule: RecurringSchedule): Promise<void> {
    const parsed = validateRecurringSchedule(schedule, DEFAULT_NAME_PREFIX)
    const stored = normalise(schedule)
    const nowMs = this.#now()
    const previous = this.#schedules.get(schedule.name)
    const sameTiming =
      previous !== undefined &&
      previous.schedule.expression === stored.expression &&
      previous.schedule.timezone === stored.timezone
    const anchorMs = sameTiming ? previous.anchorMs : Math.ceil(nowMs / 1000) * 1000
    // A schedule that was disabled, or whose timing changed, starts counting now: it never fires a backlog.
    const checkedMs = sameTiming && previous.schedule.enabled ? previous.checkedMs : Math.max(nowMs, anchorMs)
    this.#schedules.set(schedule.name, { schedule: stored, parsed, anchorMs, checkedMs })
  }

  async get(name: string): Promise<ScheduleView | undefined> {
    const entry = this.#schedules.get(name)
    return entry === undefined ? undefined : view(entry, this.#now())
  }

  async list(): Promise<ScheduleView[]> {
    const nowMs = this.#now()
    return [...this.#schedules.values()].map((entry) => view(entry, nowMs)).sort((a, b) => byName(a.name, b.name))
  }

  async delete(name: string): Promise<boolean> {
    return this.#schedules.delete(name)
  }

  /**
   * What has come due up to `nowMs`:
   * - `runs`: every wake-up at or before `nowMs` (`dueAtMs` its time), earliest first; they are removed.
   * - `starts`: for each enabled schedule, one StartRequest per firing in (previous check, `nowMs`], oldest first and
   *   at most `maxStartsPerSchedule` of them; the firings beyond that are skipped, not kept for later (a local
   *   runtime that slept for a day does not start a day of minutely workflows). `scheduledTime` is ISO 8601 UTC
   *   without milliseconds, like the service's `<aws.scheduler.scheduled-time>`. A disabled schedule fires
   *   nothing and its missed firings are not fired when it is enabled again.
   * A `nowMs` earlier than a previous call's fires no schedule again.
   */
  due(nowMs: number = this.#now()): DueWork {
    const runs: RunRequest[] = []
    for (const { instanceId, atMs } of this.wakeups()) {
      if (atMs > nowMs) break
      runs.push({ instanceId, dueAtMs: atMs })
      this.#wakeups.delete(instanceId)
    }
    const starts: StartRequest[] = []
    for (const name of [...this.#schedules.keys()].sort(byName)) {
      const entry = this.#schedules.get(name) as Entry
      if (nowMs <= entry.checkedMs) continue
      const { schedule } = entry
      if (schedule.enabled) {
        let after = entry.checkedMs
        for (let count = 0; count < this.#maxStarts; count++) {
          const at = nextFireTime(entry.parsed, after, schedule.timezone, entry.anchorMs)
          if (at === undefined || at > nowMs) break
          starts.push({
            schedule: schedule.name,
            workflowType: schedule.workflowType,
            context: cloneJson(schedule.context),
            ...(schedule.businessId === undefined ? {} : { businessId: schedule.businessId }),
            scheduledTime: isoSeconds(at),
          })
          after = at
        }
      }
      entry.checkedMs = nowMs
    }
    return { runs, starts }
  }
}
