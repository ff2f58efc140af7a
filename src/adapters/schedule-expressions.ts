import { createHash } from 'node:crypto'
import { Cron } from 'croner'
import type { RecurringSchedule } from '../core/dispatch-ports.js'
import { ValidationError } from '../core/errors.js'
import { assertJsonValue, isJsonObject } from '../core/json.js'
import { idSchema } from '../schemas/workflow-config.js'

/**
 * Pure helpers for EventBridge Scheduler expressions and schedule names, shared by the AWS adapters and the
 * in-process LocalScheduler so that both accept exactly the same schedules and fire them at the same instants
 * (cron evaluation by croner, in any IANA time zone).
 *
 * Syntax (EventBridge Scheduler user guide, "Schedule types" and "Cron expressions reference"):
 * - `at(yyyy-mm-ddThh:mm:ss)`: one-time schedules, evaluated in `ScheduleExpressionTimezone`.
 * - `rate(value unit)`: value a positive integer, unit `minute | minutes | hour | hours | day | days`. As for
 *   EventBridge rules, a value of 1 takes the singular unit and larger values the plural one.
 * - `cron(minutes hours day-of-month month day-of-week year)`: six fields; exactly one of day-of-month and
 *   day-of-week is `?`.
 */

const SECOND_MS = 1000
const MINUTE_MS = 60 * SECOND_MS
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS
const YEAR_10000_MS = Date.UTC(10000, 0, 1)

/** EventBridge Scheduler schedule names: 1-64 of `[0-9a-zA-Z-_.]`. */
export const MAX_SCHEDULE_NAME_LENGTH = 64
export const SCHEDULE_NAME_PATTERN = /^[0-9A-Za-z_.-]{1,64}$/
/** `Description` of a schedule: at most 512 characters. */
export const MAX_SCHEDULE_DESCRIPTION_LENGTH = 512

/** Years a cron expression may name (the service's range); no firing is computed past the last one. */
export const MIN_CRON_YEAR = 1970
export const MAX_CRON_YEAR = 2199

// ---------------------------------------------------------------------------------------------------------------
// at()

/**
 * The `at()` expression of a one-time schedule at `ms`, in UTC (send it with `ScheduleExpressionTimezone: 'UTC'`).
 * The expression has whole seconds only, so a fraction of a second rounds UP: a wake-up never fires before its due
 * time. Throws a ValidationError (field `atMs`) for a time that is not finite or not in years 1970-9999.
 */
export const atExpression = (ms: number): string => {
  if (!Number.isFinite(ms)) throw new ValidationError(`wake-up time ${ms} is not a finite number`, 'atMs')
  const seconds = Math.ceil(ms / SECOND_MS) * SECOND_MS
  if (seconds < 0 || seconds >= YEAR_10000_MS) {
    throw new ValidationError(`wake-up time ${ms} is outside the years 1970-9999`, 'atMs')
  }
  return `at(${new Date(seconds).toISOString().slice(0, 19)})`
}

/** ISO 8601 in UTC without milliseconds (`2026-11-21T20:05:09Z`), the form of `<aws.scheduler.scheduled-time>`. */
export const isoSeconds = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`

// ---------------------------------------------------------------------------------------------------------------
// names

const WAKEUP_PREFIX = 'wake-'
/** Ids taken verbatim: allowed characters except `.`, short enough for the prefix. */
const VERBATIM_ID = new RegExp(`^[0-9A-Za-z_-]{1,${MAX_SCHEDULE_NAME_LENGTH - WAKEUP_PREFIX.length}}$`)
const READABLE_PREFIX_LENGTH = 24
const HASH_HEX_LENGTH = 32

/**
 * The name of an instance's one wake-up schedule: deterministic, 1-64 of `[0-9a-zA-Z-_.]`.
 *
 * - `wake-<id>` when the id has only letters, digits, `_` and `-` and fits (at most 59 characters);
 * - otherwise `wake-<readable prefix>.<hash>`: the first 24 characters of the id with every character outside
 *   `[0-9A-Za-z_-]` replaced by `_`, a `.`, and 32 hex digits (128 bits) of the id's SHA-256.
 *
 * Verbatim names never contain a `.` and hashed ones always do, so no client-chosen id can take over another
 * instance's wake-up by spelling out its hashed name.
 */
export const wakeupScheduleName = (instanceId: string): string => {
  if (instanceId === '') throw new ValidationError('instance id is empty', 'instanceId')
  if (VERBATIM_ID.test(instanceId)) return `${WAKEUP_PREFIX}${instanceId}`
  const readable = instanceId.slice(0, READABLE_PREFIX_LENGTH).replace(/[^0-9A-Za-z_-]/g, '_')
  const hash = createHash('sha256').update(instanceId, 'utf8').digest('hex').slice(0, HASH_HEX_LENGTH)
  return `${WAKEUP_PREFIX}${readable}.${hash}`
}

/** Throws a ValidationError (field `field`) unless `name` is a valid schedule name. */
export const assertScheduleName = (name: string, field = 'name'): void => {
  if (!SCHEDULE_NAME_PATTERN.test(name)) {
    throw new ValidationError(
      `schedule name '${name}' must be 1-${MAX_SCHEDULE_NAME_LENGTH} letters, digits or _ . -`,
      field,
    )
  }
}

// ---------------------------------------------------------------------------------------------------------------
// rate() and cron()

export type RateUnit = 'minute' | 'hour' | 'day'

export interface RateExpression {
  kind: 'rate'
  value: number
  unit: RateUnit
  periodMs: number
}

/** Which days of a month a cron expression fires on. Days of the week are 1 (SUN) to 7 (SAT), as in AWS. */
export type CronDayRule =
  | { kind: 'daysOfMonth'; days: readonly number[] }
  | { kind: 'lastDayOfMonth' }
  | { kind: 'lastWeekdayOfMonth' }
  | { kind: 'nearestWeekday'; day: number }
  | { kind: 'daysOfWeek'; days: readonly number[] }
  | { kind: 'nthDayOfWeek'; dayOfWeek: number; n: number }

export interface CronExpression {
  kind: 'cron'
  /** Sorted, distinct. */
  minutes: readonly number[]
  hours: readonly number[]
  /** 1-12. */
  months: readonly number[]
  years: readonly number[]
  day: CronDayRule
}

export type ParsedScheduleExpression = RateExpression | CronExpression

const UNIT_MS: Record<RateUnit, number> = { minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS }

const invalid = (expression: string, why: string): ValidationError =>
  new ValidationError(`schedule expression '${expression}' is invalid: ${why}`, 'expression', { expression })

const parseRate = (expression: string, inner: string): RateExpression => {
  const match = /^([1-9][0-9]{0,8}) (minute|minutes|hour|hours|day|days)$/.exec(inner)
  if (!match) {
    throw invalid(expression, 'expected rate(value unit): a positive integer and minute(s), hour(s) or day(s)')
  }
  const value = Number(match[1])
  const word = match[2] as string
  const plural = word.endsWith('s')
  if (value === 1 && plural) throw invalid(expression, `a value of 1 takes the singular unit '${word.slice(0, -1)}'`)
  if (value > 1 && !plural) throw invalid(expression, `a value above 1 takes the plural unit '${word}s'`)
  const unit = (plural ? word.slice(0, -1) : word) as RateUnit
  return { kind: 'rate', value, unit, periodMs: value * UNIT_MS[unit] }
}

interface FieldSpec {
  label: string
  min: number
  max: number
  names?: readonly string[]
  /** `/` increments allowed. */
  steps: boolean
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']

const MINUTES: FieldSpec = { label: 'minutes', min: 0, max: 59, steps: true }
const HOURS: FieldSpec = { label: 'hours', min: 0, max: 23, steps: true }
const DAYS_OF_MONTH: FieldSpec = { label: 'day-of-month', min: 1, max: 31, steps: true }
const MONTHS: FieldSpec = { label: 'month', min: 1, max: 12, names: MONTH_NAMES, steps: true }
const DAYS_OF_WEEK: FieldSpec = { label: 'day-of-week', min: 1, max: 7, names: DAY_NAMES, steps: false }
const YEARS: FieldSpec = { label: 'year', min: MIN_CRON_YEAR, max: MAX_CRON_YEAR, steps: true }

const parseValue = (expression: string, spec: FieldSpec, text: string): number => {
  let value: number
  if (/^[0-9]{1,4}$/.test(text)) {
    value = Number(text)
  } else {
    const index = spec.names?.indexOf(text.toUpperCase()) ?? -1
    if (index < 0) throw invalid(expression, `'${text}' is not a value of the ${spec.label} field`)
    value = index + spec.min
  }
  if (value < spec.min || value > spec.max) {
    throw invalid(expression, `${spec.label} value ${value} is outside ${spec.min}-${spec.max}`)
  }
  return value
}

/** A list of `*`, `n`, `n-m`, each optionally `/step`, into the sorted distinct values it selects. */
const parseList = (expression: string, spec: FieldSpec, field: string): number[] => {
  const values = new Set<number>()
  for (const item of field.split(',')) {
    const [range, stepText, extra] = item.split('/')
    if (range === undefined || range === '' || extra !== undefined) {
      throw invalid(expression, `'${item}' is not a valid ${spec.label} item`)
    }
    let step = 1
    if (stepText !== undefined) {
      if (!spec.steps) throw invalid(expression, `the ${spec.label} field does not take / increments`)
      if (!/^[0-9]{1,4}$/.test(stepText) || Number(stepText) < 1) {
        throw invalid(expression, `increment '${stepText}' in the ${spec.label} field must be a positive integer`)
      }
      step = Number(stepText)
    }
    let from: number
    let to: number
    if (range === '*') {
      from = spec.min
      to = spec.max
    } else {
      const bounds = range.split('-')
      if (bounds.length > 2 || bounds.some((bound) => bound === '')) {
        throw invalid(expression, `'${range}' is not a valid ${spec.label} range`)
      }
      from = parseValue(expression, spec, bounds[0] as string)
      to =
        bounds[1] === undefined ? (stepText === undefined ? from : spec.max) : parseValue(expression, spec, bounds[1])
      if (to < from) {
        throw invalid(expression, `the ${spec.label} range '${range}' runs backwards (wrap-around is not supported)`)
      }
    }
    for (let value = from; value <= to; value += step) values.add(value)
  }
  return [...values].sort((a, b) => a - b)
}

const parseDayOfMonth = (expression: string, field: string): CronDayRule => {
  if (field === 'L') return { kind: 'lastDayOfMonth' }
  if (field === 'LW') return { kind: 'lastWeekdayOfMonth' }
  const weekday = /^([0-9]{1,2})W$/.exec(field)
  if (weekday) return { kind: 'nearestWeekday', day: parseValue(expression, DAYS_OF_MONTH, weekday[1] as string) }
  if (/[LW]/.test(field)) {
    throw invalid(expression, `'${field}': L, LW and nW stand alone in the day-of-month field`)
  }
  return { kind: 'daysOfMonth', days: parseList(expression, DAYS_OF_MONTH, field) }
}

const parseDayOfWeek = (expression: string, field: string): CronDayRule => {
  if (field === 'L') return { kind: 'daysOfWeek', days: [7] }
  const nth = /^([^#]+)#([0-9]+)$/.exec(field)
  if (nth) {
    const n = Number(nth[2])
    if (n < 1 || n > 5) throw invalid(expression, `'${field}': the # instance must be 1-5`)
    return { kind: 'nthDayOfWeek', dayOfWeek: parseValue(expression, DAYS_OF_WEEK, nth[1] as string), n }
  }
  if (/[L#]/.test(field)) {
    throw invalid(expression, `'${field}': L and d#n stand alone in the day-of-week field (nL is not supported)`)
  }
  return { kind: 'daysOfWeek', days: parseList(expression, DAYS_OF_WEEK, field) }
}

const parseCron = (expression: string, inner: string): CronExpression => {
  const fields = inner.split(' ')
  if (fields.length !== 6 || fields.some((field) => field === '')) {
    throw invalid(
      expression,
      'expected six fields separated by single spaces: minutes hours day-of-month month day-of-week year',
    )
  }
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ]
  for (const [label, field] of [
    ['minutes', minutes],
    ['hours', hours],
    ['month', month],
    ['year', year],
  ] as const) {
    if (field.includes('?')) throw invalid(expression, `? is only allowed in day-of-month or day-of-week, not ${label}`)
  }
  const domAny = dayOfMonth === '?'
  const dowAny = dayOfWeek === '?'
  if (domAny === dowAny) {
    throw invalid(expression, 'exactly one of day-of-month and day-of-week must be ?')
  }
  if (dayOfMonth.includes('?') && !domAny) throw invalid(expression, '? must stand alone in day-of-month')
  if (dayOfWeek.includes('?') && !dowAny) throw invalid(expression, '? must stand alone in day-of-week')
  return {
    kind: 'cron',
    minutes: parseList(expression, MINUTES, minutes),
    hours: parseList(expression, HOURS, hours),
    months: parseList(expression, MONTHS, month),
    years: parseList(expression, YEARS, year),
    day: domAny ? parseDayOfWeek(expression, dayOfWeek) : parseDayOfMonth(expression, dayOfMonth),
  }
}

/**
 * Validates a recurring schedule expression, `rate(...)` or six-field `cron(...)`, and returns its parsed form.
 * Throws a ValidationError with field `expression` for anything else, including `at()` (one-time schedules are not
 * recurring) and syntax outside the EventBridge cron reference that other cron dialects accept: `nL` (last given
 * weekday of the month), `L-n` offsets, ranges that wrap around (`FRI-MON`). The syntax is checked here, field by
 * field; evaluation is croner's (see `nextFireTime`).
 */
export const parseScheduleExpression = (expression: string): ParsedScheduleExpression => {
  if (typeof expression !== 'string') throw invalid(String(expression), 'not a string')
  const match = /^(rate|cron)\((.*)\)$/.exec(expression)
  if (!match) throw invalid(expression, 'expected rate(value unit) or cron(fields)')
  return match[1] === 'rate' ? parseRate(expression, match[2] as string) : parseCron(expression, match[2] as string)
}

// ---------------------------------------------------------------------------------------------------------------
// time zones and firing times

/** Whether `timezone` is a time zone this runtime knows (an IANA name such as `Europe/Paris`, or `UTC`). */
export const isKnownTimeZone = (timezone: string): boolean => {
  if (typeof timezone !== 'string' || timezone === '') return false
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
    return true
  } catch {
    return false
  }
}

interface WallTime {
  year: number
  month: number
  day: number
  hour: number
  minute: number
}

const wallFormats = new Map<string, Intl.DateTimeFormat>()

/** The wall-clock time at `ms` in `timezone`, to the minute. */
const wallTime = (ms: number, timezone: string): WallTime => {
  let format = wallFormats.get(timezone)
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    })
    wallFormats.set(timezone, format)
  }
  const parts: Record<string, number> = {}
  for (const part of format.formatToParts(ms)) if (part.type !== 'literal') parts[part.type] = Number(part.value)
  return {
    year: parts.year as number,
    month: parts.month as number,
    day: parts.day as number,
    hour: parts.hour as number,
    minute: parts.minute as number,
  }
}

const sameWallTime = (a: WallTime, b: WallTime): boolean =>
  a.year === b.year && a.month === b.month && a.day === b.day && a.hour === b.hour && a.minute === b.minute

/** Minutes east of UTC at `ms` in `timezone`. */
const offsetMinutes = (ms: number, timezone: string): number => {
  const wall = wallTime(ms, timezone)
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute)
  return Math.round((asUtc - Math.floor(ms / MINUTE_MS) * MINUTE_MS) / MINUTE_MS)
}

/**
 * The croner pattern of the minute, hour, day and month fields, built from the parsed (already AWS-checked) fields
 * so that croner never sees a syntax AWS would refuse. Seconds are always 0; the year is checked here, not by croner.
 * Days of the week keep AWS's numbering, 1 (SUN) to 7 (SAT), through croner's `alternativeWeekdays`.
 */
const cronerPattern = (cron: CronExpression): string => {
  const list = (values: readonly number[]) => values.join(',')
  let dayOfMonth = '*'
  let dayOfWeek = '*'
  const rule = cron.day
  switch (rule.kind) {
    case 'daysOfMonth':
      dayOfMonth = list(rule.days)
      break
    case 'lastDayOfMonth':
      dayOfMonth = 'L'
      break
    case 'lastWeekdayOfMonth':
      dayOfMonth = 'LW'
      break
    case 'nearestWeekday':
      dayOfMonth = `${rule.day}W`
      break
    case 'daysOfWeek':
      dayOfWeek = list(rule.days)
      break
    case 'nthDayOfWeek':
      dayOfWeek = `${rule.dayOfWeek}#${rule.n}`
      break
  }
  return `0 ${list(cron.minutes)} ${list(cron.hours)} ${dayOfMonth} ${list(cron.months)} ${dayOfWeek}`
}

const crons = new WeakMap<CronExpression, Map<string, Cron>>()

const cronFor = (cron: CronExpression, timezone: string): Cron => {
  let byZone = crons.get(cron)
  if (byZone === undefined) {
    byZone = new Map()
    crons.set(cron, byZone)
  }
  let job = byZone.get(timezone)
  if (job === undefined) {
    job = new Cron(cronerPattern(cron), {
      timezone,
      mode: '6-part',
      // AWS: one of the day fields is `?`, the other alone decides (croner's OR rule would let `*` match every day).
      domAndDow: true,
      alternativeWeekdays: true,
      paused: true,
    })
    byZone.set(timezone, job)
  }
  return job
}

/** The year of a time zone's wall clock from which a year-field search can resume (every zone is within ±15 h). */
const startOfYearMs = (year: number): number => Date.UTC(year, 0, 1) - 15 * HOUR_MS

/**
 * croner finds the next minute the fields name in the time zone; this adds what AWS does differently:
 * - the year field (croner's pattern has none): candidates in other years are skipped, past the last year is never;
 * - daylight saving: a wall-clock time that does not exist (spring forward) does not fire, where croner would fire
 *   just after the gap, and a wall-clock time that happens twice (fall back) fires once, at its first occurrence,
 *   where croner fires an interval expression on both. This is how EventBridge Scheduler documents its DST handling.
 */
const nextCronTime = (cron: CronExpression, afterMs: number, timezone: string): number | undefined => {
  const lastYear = cron.years[cron.years.length - 1] ?? MAX_CRON_YEAR
  const job = cronFor(cron, timezone)
  let after = Math.max(afterMs, startOfYearMs(MIN_CRON_YEAR))
  // Each step skips at least one candidate or jumps to a later year; a day that never exists ends croner's search.
  for (let guard = 0; guard < 10_000; guard++) {
    const next = job.nextRun(new Date(after))
    if (next === null) return undefined
    const at = next.getTime()
    const wall = wallTime(at, timezone)
    if (wall.year > lastYear) return undefined
    if (!cron.years.includes(wall.year)) {
      const year = cron.years.find((candidate) => candidate > wall.year)
      if (year === undefined) return undefined
      after = Math.max(at, startOfYearMs(year))
      continue
    }
    after = at
    // Shifted past a spring-forward gap: the time the expression names did not exist that day.
    if (!cron.hours.includes(wall.hour) || !cron.minutes.includes(wall.minute)) continue
    // The second pass through a repeated hour: the same wall-clock time already happened, earlier by the shift.
    const shiftMinutes = offsetMinutes(at - 3 * HOUR_MS, timezone) - offsetMinutes(at, timezone)
    if (shiftMinutes > 0 && sameWallTime(wallTime(at - shiftMinutes * MINUTE_MS, timezone), wall)) continue
    return at
  }
  return undefined
}

/**
 * The first firing of a recurring schedule strictly after `afterMs`, or undefined when it never fires again (a cron
 * expression whose years are over, or one naming a day that does not exist such as `cron(0 0 30 2 ? *)`).
 *
 * - `rate(N unit)` fires at `anchorMs + k × period` for every integer k ≥ 0: the anchor is the schedule's start (the
 *   service starts a rate schedule without StartDate when it is created). The default anchor 0 (the Unix epoch)
 *   aligns rates to the clock: `rate(5 minutes)` fires at :00, :05, :10 ... Rates ignore the time zone (a day is
 *   24 hours, as for the service).
 * - `cron(...)` fires at whole minutes of the wall clock in `timezone` (an IANA name; default UTC), with the daylight
 *   saving rules of `nextCronTime`. An unknown time zone is a ValidationError on `timezone`.
 */
export const nextFireTime = (
  expression: string | ParsedScheduleExpression,
  afterMs: number,
  timezone = 'UTC',
  anchorMs = 0,
): number | undefined => {
  const parsed = typeof expression === 'string' ? parseScheduleExpression(expression) : expression
  if (!Number.isFinite(afterMs)) throw new ValidationError(`time ${afterMs} is not a finite number`, 'afterMs')
  if (parsed.kind === 'rate') {
    if (afterMs < anchorMs) return anchorMs
    return anchorMs + (Math.floor((afterMs - anchorMs) / parsed.periodMs) + 1) * parsed.periodMs
  }
  if (!isKnownTimeZone(timezone)) {
    throw new ValidationError(`'${timezone}' is not a known IANA time zone`, 'timezone')
  }
  return nextCronTime(parsed, afterMs, timezone)
}

/**
 * The next firing of a stored schedule after `nowMs`, as the `nextFireAtMs` / `nextFireAt` fields of a ScheduleView:
 * empty when the schedule is disabled or never fires again.
 */
export const nextFiring = (
  parsed: ParsedScheduleExpression,
  options: { nowMs: number; timezone: string; anchorMs: number; enabled: boolean },
): { nextFireAtMs?: number; nextFireAt?: string } => {
  if (!options.enabled) return {}
  const at = nextFireTime(parsed, options.nowMs, options.timezone, options.anchorMs)
  return at === undefined ? {} : { nextFireAtMs: at, nextFireAt: isoSeconds(at) }
}

// ---------------------------------------------------------------------------------------------------------------
// recurring schedules

/**
 * Checks what both RecurringScheduler implementations require of a schedule before storing it: a name that makes a
 * valid schedule name with `namePrefix`, a valid expression, a known time zone, a workflow type that is a valid id
 * (what the start-queue consumer accepts), a JSON object context, a business id of 1-256 characters and a
 * description of at most 512 characters. Returns the parsed expression.
 */
export const validateRecurringSchedule = (
  schedule: RecurringSchedule,
  namePrefix: string,
): ParsedScheduleExpression => {
  if (typeof schedule.name !== 'string' || !/^[0-9A-Za-z_.-]+$/.test(schedule.name)) {
    throw new ValidationError(`schedule name '${schedule.name}' must be letters, digits or _ . -`, 'name')
  }
  const maxName = MAX_SCHEDULE_NAME_LENGTH - namePrefix.length
  if (schedule.name.length > maxName) {
    throw new ValidationError(`schedule name '${schedule.name}' is longer than ${maxName} characters`, 'name')
  }
  const parsed = parseScheduleExpression(schedule.expression)
  if (schedule.timezone !== undefined && !isKnownTimeZone(schedule.timezone)) {
    throw new ValidationError(`'${schedule.timezone}' is not a known IANA time zone`, 'timezone')
  }
  if (!idSchema.safeParse(schedule.workflowType).success) {
    throw new ValidationError(
      `workflow type '${schedule.workflowType}' must start with a letter or _ and have at most 64 letters, digits or _ . -`,
      'workflowType',
    )
  }
  if (!isJsonObject(schedule.context)) throw new ValidationError('a schedule context must be a JSON object', 'context')
  assertJsonValue(schedule.context, 'context', { maxDepth: 64 })
  if (schedule.businessId !== undefined && (schedule.businessId === '' || schedule.businessId.length > 256)) {
    throw new ValidationError('a business id must be 1-256 characters', 'businessId')
  }
  if (schedule.description !== undefined && schedule.description.length > MAX_SCHEDULE_DESCRIPTION_LENGTH) {
    throw new ValidationError(
      `a schedule description may have at most ${MAX_SCHEDULE_DESCRIPTION_LENGTH} characters`,
      'description',
    )
  }
  return parsed
}
