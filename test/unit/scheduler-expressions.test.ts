import { describe, expect, it } from 'vitest'
import {
  atExpression,
  isoSeconds,
  nextFireTime,
  parseScheduleExpression,
  validateRecurringSchedule,
  wakeupScheduleName,
} from '../../src/adapters/schedule-expressions.js'
import type { RecurringSchedule } from '../../src/core/dispatch-ports.js'
import { ValidationError } from '../../src/core/errors.js'

const utc = (iso: string): number => Date.parse(iso.endsWith('Z') ? iso : `${iso}Z`)

const validationField = (fn: () => unknown): string | undefined => {
  try {
    fn()
  } catch (error) {
    if (error instanceof ValidationError) return error.field
    throw error
  }
  return undefined
}

describe('atExpression', () => {
  it('writes the time in UTC as at(yyyy-mm-ddThh:mm:ss)', () => {
    expect(atExpression(utc('2026-11-21T20:05:09'))).toBe('at(2026-11-21T20:05:09)')
  })

  it('rounds a fraction of a second up, so that a wake-up never fires before its due time', () => {
    expect(atExpression(utc('2026-11-21T12:00:00.001'))).toBe('at(2026-11-21T12:00:01)')
    expect(atExpression(utc('2026-11-21T12:00:00.999'))).toBe('at(2026-11-21T12:00:01)')
    expect(atExpression(utc('2026-12-31T23:59:59.500'))).toBe('at(2027-01-01T00:00:00)')
  })

  it('keeps a time that is already a whole second', () => {
    expect(atExpression(utc('2026-11-21T12:00:00.000'))).toBe('at(2026-11-21T12:00:00)')
  })

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1000, 8.64e15])('rejects %s with a ValidationError on atMs', (ms) => {
    expect(validationField(() => atExpression(ms))).toBe('atMs')
  })
})

describe('isoSeconds', () => {
  it('is ISO 8601 UTC without milliseconds, like <aws.scheduler.scheduled-time>', () => {
    expect(isoSeconds(utc('2026-11-21T20:05:09.734'))).toBe('2026-11-21T20:05:09Z')
  })
})

describe('wakeupScheduleName', () => {
  const VALID = /^[0-9A-Za-z_.-]{1,64}$/
  const ulid = '01JD7Q3ZK8X2M4N6P8R0T2V4W6'

  it('is wake- followed by the id when the id is short and plain', () => {
    expect(wakeupScheduleName(ulid)).toBe(`wake-${ulid}`)
    expect(wakeupScheduleName('order_42-a')).toBe('wake-order_42-a')
    expect(wakeupScheduleName('x'.repeat(59))).toBe(`wake-${'x'.repeat(59)}`)
  })

  it('is deterministic', () => {
    const id = `tenant:acme.invoice:${'9'.repeat(80)}`
    expect(wakeupScheduleName(id)).toBe(wakeupScheduleName(id))
  })

  it.each(['x'.repeat(60), 'a'.repeat(128), 'tenant:acme:order:42', 'order.42', 'é-unicode-id', 'with space'])(
    'is a valid schedule name for %j',
    (id) => {
      const name = wakeupScheduleName(id)
      expect(name).toMatch(VALID)
      expect(name.length).toBeLessThanOrEqual(64)
      expect(name.startsWith('wake-')).toBe(true)
    },
  )

  it('keeps a readable prefix of a long or unusual id before the hash', () => {
    expect(wakeupScheduleName('tenant:acme:order:42')).toMatch(/^wake-tenant_acme_order_42\.[0-9a-f]{32}$/)
  })

  it('gives distinct names to long ids that share their first 64 characters', () => {
    const base = 'a'.repeat(100)
    const names = new Set([`${base}1`, `${base}2`, `${base}3`, `${'a'.repeat(101)}`].map(wakeupScheduleName))
    expect(names.size).toBe(4)
  })

  it('gives distinct names to ids that differ only in characters a schedule name cannot hold', () => {
    expect(wakeupScheduleName('a:b')).not.toBe(wakeupScheduleName('a.b'))
    expect(wakeupScheduleName('a:b')).not.toBe(wakeupScheduleName('a_b'))
  })

  it('cannot be claimed by an id that spells out another id’s hashed name', () => {
    const hashed = wakeupScheduleName('tenant:acme:order:42').slice('wake-'.length)
    expect(wakeupScheduleName(hashed)).not.toBe(wakeupScheduleName('tenant:acme:order:42'))
  })

  it('rejects an empty id', () => {
    expect(validationField(() => wakeupScheduleName(''))).toBe('instanceId')
  })
})

describe('parseScheduleExpression', () => {
  it.each([
    'rate(1 minute)',
    'rate(5 minutes)',
    'rate(1 hour)',
    'rate(12 hours)',
    'rate(1 day)',
    'rate(7 days)',
    'cron(0 9 ? * MON-FRI *)',
    'cron(*/15 * * * ? *)',
    'cron(0 0 L * ? *)',
    'cron(0 8 LW * ? *)',
    'cron(0 8 15W * ? *)',
    'cron(0 12 ? * 6#3 *)',
    'cron(0 12 ? * FRI#3 *)',
    'cron(0 10 ? * L *)',
    'cron(15 10 ? * 6 2026)',
    'cron(0/10 8-17 1,15 JAN,JUL ? 2026-2030)',
    'cron(5,35 14 * * ? *)',
    'cron(0 18 ? * mon-fri *)',
    'cron(0 0 1 1-12/3 ? */2)',
    'cron(* * * * ? *)',
  ])('accepts %s', (expression) => {
    expect(() => parseScheduleExpression(expression)).not.toThrow()
  })

  it.each([
    ['', 'empty'],
    ['at(2026-11-21T20:05:09)', 'one-time, not recurring'],
    ['rate(0 minutes)', 'zero'],
    ['rate(-5 minutes)', 'negative'],
    ['rate(1.5 hours)', 'fraction'],
    ['rate(5 minute)', 'singular unit for more than 1'],
    ['rate(1 minutes)', 'plural unit for 1'],
    ['rate(5 seconds)', 'unknown unit'],
    ['rate(5minutes)', 'no space'],
    ['RATE(5 minutes)', 'upper case keyword'],
    ['rate(5 minutes) ', 'trailing space'],
    ['cron(0 9 * * *)', 'five fields'],
    ['cron(0 9 * * ? * *)', 'seven fields'],
    ['cron(0 9 * * * *)', 'no ? in either day field'],
    ['cron(0 9 ? * ? *)', '? in both day fields'],
    ['cron(60 9 * * ? *)', 'minute 60'],
    ['cron(0 24 * * ? *)', 'hour 24'],
    ['cron(0 9 0 * ? *)', 'day 0'],
    ['cron(0 9 32 * ? *)', 'day 32'],
    ['cron(0 9 * 13 ? *)', 'month 13'],
    ['cron(0 9 ? * 8 *)', 'day-of-week 8'],
    ['cron(0 9 * * ? 1969)', 'year before 1970'],
    ['cron(0 9 * * ? 2200)', 'year after 2199'],
    ['cron(0 9 * FOO ? *)', 'unknown month name'],
    ['cron(0 9 ? * FRI-MON *)', 'wrap-around range'],
    ['cron(*/0 * * * ? *)', 'zero increment'],
    ['cron(0 9 ? * MON/2 *)', 'increment in day-of-week'],
    ['cron(0 9 ? * 6L *)', 'nL, not supported'],
    ['cron(0 9 L-3 * ? *)', 'L-n, not supported'],
    ['cron(0 9 1,L * ? *)', 'L in a list'],
    ['cron(0 9 ? * 2#6 *)', 'sixth weekday of a month'],
    ['cron(0 9 ? * 2#1,6#3 *)', 'two # expressions'],
    ['cron(? 9 * * ? *)', '? in minutes'],
    ['cron(0  9 * * ? *)', 'double space'],
    ['cron(0 9 * * ? *', 'unclosed'],
  ])('rejects %j (%s) with a ValidationError on expression', (expression) => {
    expect(validationField(() => parseScheduleExpression(expression))).toBe('expression')
  })

  it('gives the period of a rate', () => {
    expect(parseScheduleExpression('rate(5 minutes)')).toEqual({
      kind: 'rate',
      value: 5,
      unit: 'minute',
      periodMs: 300_000,
    })
  })

  it('expands cron fields into the values they select', () => {
    expect(parseScheduleExpression('cron(0/20 8-10 ? JAN,MAR-APR MON-WED 2026)')).toEqual({
      kind: 'cron',
      minutes: [0, 20, 40],
      hours: [8, 9, 10],
      months: [1, 3, 4],
      years: [2026],
      day: { kind: 'daysOfWeek', days: [2, 3, 4] },
    })
  })
})

describe('nextFireTime', () => {
  const next = (expression: string, after: string, anchor?: string): string | undefined => {
    const at = nextFireTime(expression, utc(after), 'UTC', anchor === undefined ? 0 : utc(anchor))
    return at === undefined ? undefined : isoSeconds(at)
  }

  describe('for cron(0 9 ? * MON-FRI *) (09:00 on weekdays)', () => {
    it('fires later the same weekday', () => {
      expect(next('cron(0 9 ? * MON-FRI *)', '2026-11-19T08:30:00')).toBe('2026-11-19T09:00:00Z')
    })
    it('skips the weekend from a Friday afternoon to Monday', () => {
      expect(next('cron(0 9 ? * MON-FRI *)', '2026-11-20T10:00:00')).toBe('2026-11-23T09:00:00Z')
    })
    it('is strictly after the given time', () => {
      expect(next('cron(0 9 ? * MON-FRI *)', '2026-11-19T09:00:00')).toBe('2026-11-20T09:00:00Z')
    })
  })

  describe('for cron(*/15 * * * ? *) (every quarter hour)', () => {
    it('fires at the next quarter', () => {
      expect(next('cron(*/15 * * * ? *)', '2026-11-21T12:07:30')).toBe('2026-11-21T12:15:00Z')
    })
    it('fires at the following quarter when given one exactly', () => {
      expect(next('cron(*/15 * * * ? *)', '2026-11-21T12:15:00')).toBe('2026-11-21T12:30:00Z')
    })
    it('rolls over the hour, the day and the year', () => {
      expect(next('cron(*/15 * * * ? *)', '2026-12-31T23:50:00')).toBe('2027-01-01T00:00:00Z')
    })
  })

  describe('for cron(0 0 L * ? *) (midnight on the last day of the month)', () => {
    it('finds 29 February in a leap year', () => {
      expect(next('cron(0 0 L * ? *)', '2028-02-10T00:00:00')).toBe('2028-02-29T00:00:00Z')
    })
    it('finds 28 February otherwise, then 31 March', () => {
      expect(next('cron(0 0 L * ? *)', '2026-02-01T00:00:00')).toBe('2026-02-28T00:00:00Z')
      expect(next('cron(0 0 L * ? *)', '2026-02-28T00:00:00')).toBe('2026-03-31T00:00:00Z')
    })
  })

  it.each([
    ['cron(0 8 LW * ? *)', '2026-10-01T00:00:00', '2026-10-30T08:00:00Z', 'last weekday: the 31st is a Saturday'],
    ['cron(0 8 LW * ? *)', '2026-05-01T00:00:00', '2026-05-29T08:00:00Z', 'last weekday: the 31st is a Sunday'],
    ['cron(0 8 1W * ? *)', '2026-07-15T00:00:00', '2026-08-03T08:00:00Z', 'the 1st is a Saturday: Monday the 3rd'],
    ['cron(0 8 31W * ? *)', '2026-05-01T00:00:00', '2026-05-29T08:00:00Z', 'the 31st is a Sunday: Friday the 29th'],
    ['cron(0 8 21W * ? *)', '2026-11-01T00:00:00', '2026-11-20T08:00:00Z', 'the 21st is a Saturday: Friday the 20th'],
    ['cron(0 12 ? * 6#3 *)', '2026-11-01T00:00:00', '2026-11-20T12:00:00Z', 'third Friday'],
    ['cron(0 12 ? * MON#1 *)', '2026-11-01T00:00:00', '2026-11-02T12:00:00Z', 'first Monday'],
    ['cron(0 10 ? * L *)', '2026-11-20T12:00:00', '2026-11-21T10:00:00Z', 'L alone is Saturday'],
    ['cron(30 6 1 JAN,JUL ? *)', '2026-02-01T00:00:00', '2026-07-01T06:30:00Z', 'month names'],
    ['cron(0 0 1 1 ? 2030)', '2026-11-21T00:00:00', '2030-01-01T00:00:00Z', 'a given year'],
  ])('%s after %s is %s (%s)', (expression, after, expected) => {
    expect(next(expression, after)).toBe(expected)
  })

  it('is undefined once the years of a cron expression are over', () => {
    expect(next('cron(0 0 1 1 ? 2027)', '2027-01-01T00:00:00')).toBeUndefined()
  })

  it('is undefined for a day that never exists', () => {
    expect(next('cron(0 0 30 2 ? *)', '2026-01-01T00:00:00')).toBeUndefined()
  })

  describe('for rate(5 minutes)', () => {
    it('aligns to the epoch by default: :00, :05, :10 ...', () => {
      expect(next('rate(5 minutes)', '2026-11-21T12:07:00')).toBe('2026-11-21T12:10:00Z')
      expect(next('rate(5 minutes)', '2026-11-21T12:10:00')).toBe('2026-11-21T12:15:00Z')
    })
    it('counts periods from the anchor when one is given', () => {
      expect(next('rate(5 minutes)', '2026-11-21T12:07:00', '2026-11-21T12:01:30')).toBe('2026-11-21T12:11:30Z')
    })
    it('fires at the anchor itself when asked before it', () => {
      expect(next('rate(5 minutes)', '2026-11-21T11:00:00', '2026-11-21T12:01:30')).toBe('2026-11-21T12:01:30Z')
    })
  })

  it('steps through a day rate', () => {
    expect(next('rate(2 days)', '2026-11-21T00:00:00', '2026-11-20T06:00:00')).toBe('2026-11-22T06:00:00Z')
  })

  describe('in a time zone', () => {
    const zoned = (expression: string, after: string, timezone: string): string | undefined => {
      const at = nextFireTime(expression, utc(after), timezone)
      return at === undefined ? undefined : isoSeconds(at)
    }

    it.each([
      ['cron(0 9 ? * MON-FRI *)', '2026-11-19T00:00:00', 'Europe/Paris', '2026-11-19T08:00:00Z', 'CET, UTC+1'],
      ['cron(0 9 ? * MON-FRI *)', '2026-07-16T00:00:00', 'Europe/Paris', '2026-07-16T07:00:00Z', 'CEST, UTC+2'],
      ['cron(0 9 * * ? *)', '2026-11-21T00:00:00', 'America/New_York', '2026-11-21T14:00:00Z', 'EST, UTC-5'],
      ['cron(30 8 * * ? *)', '2026-11-21T00:00:00', 'Asia/Kolkata', '2026-11-21T03:00:00Z', 'IST, UTC+5:30'],
      ['cron(0 0 1 * ? *)', '2026-11-15T00:00:00', 'Pacific/Auckland', '2026-11-30T11:00:00Z', 'the 1st, local'],
      ['cron(0 1 ? * MON *)', '2026-11-21T00:00:00', 'Asia/Tokyo', '2026-11-22T16:00:00Z', 'Monday in Tokyo'],
      ['cron(0 0 L * ? *)', '2026-02-01T00:00:00', 'Europe/Berlin', '2026-02-27T23:00:00Z', 'last day, local'],
      ['cron(0 0 1 1 ? 2027)', '2026-06-01T00:00:00', 'America/Los_Angeles', '2027-01-01T08:00:00Z', 'year, local'],
      ['cron(0 9 * * ? *)', '2026-11-21T00:00:00', 'Etc/UTC', '2026-11-21T09:00:00Z', 'Etc/UTC'],
    ])('%s after %s in %s is %s (%s)', (expression, after, timezone, expected) => {
      expect(zoned(expression, after, timezone)).toBe(expected)
    })

    it('follows the shift to summer time: 09:00 in Paris is 08:00 UTC before, 07:00 UTC after', () => {
      expect(zoned('cron(0 9 * * ? *)', '2026-03-28T00:00:00', 'Europe/Paris')).toBe('2026-03-28T08:00:00Z')
      expect(zoned('cron(0 9 * * ? *)', '2026-03-28T08:00:00', 'Europe/Paris')).toBe('2026-03-29T07:00:00Z')
    })

    it('skips a time that does not exist when the clocks go forward, as EventBridge Scheduler does', () => {
      // 29 March 2026 in Paris: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens that day.
      expect(zoned('cron(30 2 * * ? *)', '2026-03-28T12:00:00', 'Europe/Paris')).toBe('2026-03-30T00:30:00Z')
      expect(zoned('cron(*/30 * * * ? *)', '2026-03-29T00:45:00', 'Europe/Paris')).toBe('2026-03-29T01:00:00Z')
    })

    it('fires once, at the first pass, a time that happens twice when the clocks go back', () => {
      // 25 October 2026 in Paris: 03:00 CEST goes back to 02:00 CET, so 02:00-02:59 happens twice.
      expect(zoned('cron(30 2 * * ? *)', '2026-10-25T00:00:00', 'Europe/Paris')).toBe('2026-10-25T00:30:00Z')
      expect(zoned('cron(30 2 * * ? *)', '2026-10-25T00:30:00', 'Europe/Paris')).toBe('2026-10-26T01:30:00Z')
      expect(zoned('cron(*/30 * * * ? *)', '2026-10-25T00:30:00', 'Europe/Paris')).toBe('2026-10-25T02:00:00Z')
    })

    it('rejects an unknown time zone with a ValidationError on timezone', () => {
      expect(validationField(() => nextFireTime('cron(0 9 * * ? *)', 0, 'Mars/Olympus'))).toBe('timezone')
    })
  })

  it('ignores the time zone of a rate', () => {
    expect(nextFireTime('rate(1 hour)', utc('2026-11-21T00:30:00'), 'Europe/Paris')).toBe(utc('2026-11-21T01:00:00'))
  })

  it('validates the expression', () => {
    expect(validationField(() => nextFireTime('cron(0 9 * * * *)', 0))).toBe('expression')
  })
})

describe('validateRecurringSchedule', () => {
  const schedule: RecurringSchedule = {
    name: 'nightly-report',
    expression: 'cron(0 2 * * ? *)',
    workflowType: 'report',
    context: { region: 'eu' },
    enabled: true,
  }

  it('accepts a complete schedule and returns its parsed expression', () => {
    expect(validateRecurringSchedule(schedule, 'start-').kind).toBe('cron')
  })

  it.each<[string, Partial<RecurringSchedule>, string]>([
    ['a name with a space', { name: 'nightly report' }, 'name'],
    ['an empty name', { name: '' }, 'name'],
    ['a name too long for the prefix', { name: 'n'.repeat(59) }, 'name'],
    ['a bad expression', { expression: 'cron(0 2 * * * *)' }, 'expression'],
    ['an unknown time zone', { timezone: 'Mars/Olympus' }, 'timezone'],
    ['an empty workflow type', { workflowType: '' }, 'workflowType'],
    ['a workflow type that is not an id', { workflowType: 'daily report' }, 'workflowType'],
    ['a description over 512 characters', { description: 'd'.repeat(513) }, 'description'],
    ['an empty business id', { businessId: '' }, 'businessId'],
  ])('rejects %s', (_what, change, field) => {
    expect(validationField(() => validateRecurringSchedule({ ...schedule, ...change }, 'start-'))).toBe(field)
  })

  it('allows a name of 58 characters with the 6-character prefix (64 in all)', () => {
    expect(() => validateRecurringSchedule({ ...schedule, name: 'n'.repeat(58) }, 'start-')).not.toThrow()
  })

  it('accepts any IANA time zone (the service evaluates it)', () => {
    expect(() => validateRecurringSchedule({ ...schedule, timezone: 'America/New_York' }, 'start-')).not.toThrow()
  })
})
