import { beforeEach, describe, expect, it } from 'vitest'
import { LocalScheduler } from '../../src/adapters/memory/local-scheduler.js'
import type { RecurringSchedule } from '../../src/core/dispatch-ports.js'
import { ValidationError } from '../../src/core/errors.js'

const T0 = Date.parse('2026-11-21T12:00:00Z')
const SECOND = 1000
const MINUTE = 60 * SECOND

let now: number
let scheduler: LocalScheduler

beforeEach(() => {
  now = T0
  scheduler = new LocalScheduler({ now: () => now })
})

const everyMinute: RecurringSchedule = {
  name: 'every-minute',
  expression: 'rate(1 minute)',
  workflowType: 'sync',
  context: { source: 'crm' },
  businessId: 'crm-sync',
  enabled: true,
}

/** The scheduledTime of every start `due(nowMs)` hands out. */
const firedAt = (nowMs: number): string[] => scheduler.due(nowMs).starts.map((start) => start.scheduledTime)

describe('LocalScheduler wake-ups', () => {
  it('fire once, at their time and not before', async () => {
    await scheduler.scheduleAt('i-1', T0 + MINUTE)

    expect(scheduler.due(T0 + MINUTE - 1).runs).toEqual([])
    expect(scheduler.due(T0 + MINUTE).runs).toEqual([{ instanceId: 'i-1', dueAtMs: T0 + MINUTE }])
    expect(scheduler.due(T0 + 10 * MINUTE).runs).toEqual([])
    expect(scheduler.wakeups()).toEqual([])
  })

  it('fire late ones with the time they were due, earliest first', async () => {
    await scheduler.scheduleAt('late', T0 + 2 * MINUTE)
    await scheduler.scheduleAt('early', T0 + MINUTE)
    await scheduler.scheduleAt('future', T0 + 60 * MINUTE)

    expect(scheduler.due(T0 + 5 * MINUTE).runs).toEqual([
      { instanceId: 'early', dueAtMs: T0 + MINUTE },
      { instanceId: 'late', dueAtMs: T0 + 2 * MINUTE },
    ])
    expect(scheduler.wakeups()).toEqual([{ instanceId: 'future', atMs: T0 + 60 * MINUTE }])
  })

  it('are one per instance: a second scheduleAt moves the wake-up later', async () => {
    await scheduler.scheduleAt('i-1', T0 + MINUTE)
    await scheduler.scheduleAt('i-1', T0 + 3 * MINUTE)

    expect(scheduler.wakeups()).toEqual([{ instanceId: 'i-1', atMs: T0 + 3 * MINUTE }])
    expect(scheduler.due(T0 + 2 * MINUTE).runs).toEqual([])
    expect(scheduler.due(T0 + 3 * MINUTE).runs).toEqual([{ instanceId: 'i-1', dueAtMs: T0 + 3 * MINUTE }])
  })

  it('are one per instance: a second scheduleAt moves the wake-up earlier', async () => {
    await scheduler.scheduleAt('i-1', T0 + 3 * MINUTE)
    await scheduler.scheduleAt('i-1', T0 + MINUTE)

    expect(scheduler.due(T0 + MINUTE).runs).toEqual([{ instanceId: 'i-1', dueAtMs: T0 + MINUTE }])
    expect(scheduler.due(T0 + 3 * MINUTE).runs).toEqual([])
  })

  it('are removed by cancel', async () => {
    await scheduler.scheduleAt('i-1', T0 + MINUTE)
    await scheduler.cancel('i-1')

    expect(scheduler.wakeups()).toEqual([])
    expect(scheduler.due(T0 + 10 * MINUTE).runs).toEqual([])
  })

  it('can be cancelled when there is none', async () => {
    await expect(scheduler.cancel('never-scheduled')).resolves.toBeUndefined()
  })

  it('need a finite time', async () => {
    await expect(scheduler.scheduleAt('i-1', Number.NaN)).rejects.toBeInstanceOf(ValidationError)
  })

  it('use the clock when due is called without a time', async () => {
    await scheduler.scheduleAt('i-1', T0 + MINUTE)
    now = T0 + MINUTE

    expect(scheduler.due().runs).toEqual([{ instanceId: 'i-1', dueAtMs: T0 + MINUTE }])
  })
})

describe('LocalScheduler recurring schedules', () => {
  it('yield one StartRequest per minute of a rate(1 minute) schedule over five minutes', async () => {
    await scheduler.put(everyMinute)

    const { starts } = scheduler.due(T0 + 5 * MINUTE)

    expect(starts).toEqual(
      ['12:01', '12:02', '12:03', '12:04', '12:05'].map((hm) => ({
        schedule: 'every-minute',
        workflowType: 'sync',
        context: { source: 'crm' },
        businessId: 'crm-sync',
        scheduledTime: `2026-11-21T${hm}:00Z`,
      })),
    )
  })

  it('hand out each firing once however often due is called', async () => {
    await scheduler.put(everyMinute)
    const times: string[] = []

    for (let t = T0; t <= T0 + 5 * MINUTE; t += 20 * SECOND) {
      times.push(...firedAt(t))
    }

    expect(times).toEqual([
      '2026-11-21T12:01:00Z',
      '2026-11-21T12:02:00Z',
      '2026-11-21T12:03:00Z',
      '2026-11-21T12:04:00Z',
      '2026-11-21T12:05:00Z',
    ])
  })

  it('anchor a rate at the whole second after the put, and write scheduledTime without milliseconds', async () => {
    now = T0 + 400
    await scheduler.put(everyMinute)

    expect(firedAt(T0 + 2 * MINUTE + SECOND)).toEqual(['2026-11-21T12:01:01Z', '2026-11-21T12:02:01Z'])
  })

  it('fire a cron schedule at the times it names', async () => {
    await scheduler.put({ ...everyMinute, name: 'quarterly', expression: 'cron(*/15 * * * ? *)' })

    expect(firedAt(T0 + 60 * MINUTE)).toEqual([
      '2026-11-21T12:15:00Z',
      '2026-11-21T12:30:00Z',
      '2026-11-21T12:45:00Z',
      '2026-11-21T13:00:00Z',
    ])
  })

  it('fire nothing while disabled, and no backlog once enabled again', async () => {
    await scheduler.put({ ...everyMinute, enabled: false })

    expect(scheduler.due(T0 + 5 * MINUTE).starts).toEqual([])

    now = T0 + 5 * MINUTE + 30 * SECOND
    await scheduler.put(everyMinute)
    expect(firedAt(T0 + 7 * MINUTE)).toEqual(['2026-11-21T12:06:00Z', '2026-11-21T12:07:00Z'])
  })

  it('fire at most ten starts per schedule in one call and skip the rest', async () => {
    await scheduler.put(everyMinute)

    const first = firedAt(T0 + 60 * MINUTE)
    const next = firedAt(T0 + 61 * MINUTE)

    expect(first).toHaveLength(10)
    expect(first[0]).toBe('2026-11-21T12:01:00Z')
    expect(first[9]).toBe('2026-11-21T12:10:00Z')
    expect(next).toEqual(['2026-11-21T13:01:00Z'])
  })

  it('take their limit per call from the options', async () => {
    scheduler = new LocalScheduler({ now: () => now, maxStartsPerSchedule: 2 })
    await scheduler.put(everyMinute)

    expect(scheduler.due(T0 + 5 * MINUTE).starts).toHaveLength(2)
  })

  it('keep their cadence and what they handed out when put again with the same expression', async () => {
    await scheduler.put(everyMinute)
    scheduler.due(T0 + 2 * MINUTE + 30 * SECOND)

    now = T0 + 2 * MINUTE + 30 * SECOND
    await scheduler.put({ ...everyMinute, context: { source: 'erp' } })

    expect(scheduler.due(T0 + 3 * MINUTE).starts).toEqual([
      expect.objectContaining({ scheduledTime: '2026-11-21T12:03:00Z', context: { source: 'erp' } }),
    ])
  })

  it('restart their cadence when the expression changes', async () => {
    await scheduler.put(everyMinute)
    now = T0 + 30 * SECOND
    await scheduler.put({ ...everyMinute, expression: 'rate(2 minutes)' })

    expect(firedAt(T0 + 5 * MINUTE)).toEqual(['2026-11-21T12:02:30Z', '2026-11-21T12:04:30Z'])
  })

  it('fire each schedule on its own, in name order', async () => {
    await scheduler.put({ ...everyMinute, name: 'b-every-2', expression: 'rate(2 minutes)' })
    await scheduler.put({ ...everyMinute, name: 'a-every-3', expression: 'rate(3 minutes)' })

    expect(scheduler.due(T0 + 4 * MINUTE).starts.map((start) => [start.schedule, start.scheduledTime])).toEqual([
      ['a-every-3', '2026-11-21T12:03:00Z'],
      ['b-every-2', '2026-11-21T12:02:00Z'],
      ['b-every-2', '2026-11-21T12:04:00Z'],
    ])
  })

  it('stop firing once deleted', async () => {
    await scheduler.put(everyMinute)

    expect(await scheduler.delete('every-minute')).toBe(true)
    expect(await scheduler.delete('every-minute')).toBe(false)
    expect(scheduler.due(T0 + 5 * MINUTE).starts).toEqual([])
  })

  it('leave out the business id when the schedule has none', async () => {
    const { businessId: _businessId, ...withoutBusinessId } = everyMinute
    await scheduler.put(withoutBusinessId)

    expect(scheduler.due(T0 + MINUTE).starts[0]).not.toHaveProperty('businessId')
  })
})

describe('LocalScheduler schedule storage', () => {
  it('reads a schedule back with its time zone made explicit', async () => {
    await scheduler.put({ ...everyMinute, description: 'CRM sync' })

    expect(await scheduler.get('every-minute')).toEqual({
      ...everyMinute,
      timezone: 'UTC',
      description: 'CRM sync',
      nextFireAtMs: T0 + MINUTE,
      nextFireAt: '2026-11-21T12:01:00Z',
    })
    expect(await scheduler.get('missing')).toBeUndefined()
  })

  it('lists schedules by name', async () => {
    await scheduler.put({ ...everyMinute, name: 'zeta' })
    await scheduler.put({ ...everyMinute, name: 'alpha', enabled: false })

    expect((await scheduler.list()).map((schedule) => [schedule.name, schedule.enabled])).toEqual([
      ['alpha', false],
      ['zeta', true],
    ])
  })

  it('keeps its own copy of the context', async () => {
    const context = { source: 'crm' }
    await scheduler.put({ ...everyMinute, context })
    context.source = 'changed'
    const read = await scheduler.get('every-minute')
    if (read) read.context.source = 'changed too'

    expect((await scheduler.get('every-minute'))?.context).toEqual({ source: 'crm' })
    expect(scheduler.due(T0 + MINUTE).starts[0]?.context).toEqual({ source: 'crm' })
  })

  it.each<[string, Partial<RecurringSchedule>, string]>([
    ['an invalid cron expression', { expression: 'cron(0 9 * * * *)' }, 'expression'],
    ['an unknown time zone', { expression: 'cron(0 9 * * ? *)', timezone: 'Mars/Olympus' }, 'timezone'],
    ['a name EventBridge could not hold', { name: 'every minute' }, 'name'],
    ['a name too long for the start- prefix', { name: 'n'.repeat(59) }, 'name'],
  ])('rejects %s like the EventBridge adapter', async (_what, change, field) => {
    await expect(scheduler.put({ ...everyMinute, ...change })).rejects.toMatchObject({
      name: 'ValidationError',
      field,
    })
    expect(await scheduler.list()).toEqual([])
  })

  it('accepts a rate schedule in another time zone, which a rate ignores', async () => {
    await scheduler.put({ ...everyMinute, timezone: 'Europe/Paris' })

    expect(scheduler.due(T0 + MINUTE).starts).toHaveLength(1)
  })
})

describe('LocalScheduler cron schedules in a time zone', () => {
  const breakfast: RecurringSchedule = {
    name: 'breakfast',
    expression: 'cron(0 9 ? * MON-FRI *)',
    timezone: 'Europe/Paris',
    workflowType: 'report',
    context: {},
    enabled: true,
  }

  it('fires at the UTC instant of the wall-clock time, as the clock moves', async () => {
    now = Date.parse('2026-11-19T07:00:00Z') // a Thursday, 08:00 in Paris (UTC+1)
    await scheduler.put(breakfast)

    expect(firedAt(Date.parse('2026-11-19T07:59:59Z'))).toEqual([])
    expect(firedAt(Date.parse('2026-11-19T08:00:00Z'))).toEqual(['2026-11-19T08:00:00Z'])
    // Friday, then nothing over the weekend, then Monday.
    expect(firedAt(Date.parse('2026-11-22T23:00:00Z'))).toEqual(['2026-11-20T08:00:00Z'])
    expect(firedAt(Date.parse('2026-11-23T08:00:00Z'))).toEqual(['2026-11-23T08:00:00Z'])
  })

  it('keeps the wall-clock time across the change to summer time', async () => {
    now = Date.parse('2026-03-26T12:00:00Z') // Thursday; the clocks go forward on Sunday 29 March
    await scheduler.put({ ...breakfast, expression: 'cron(0 9 * * ? *)' })

    const fired: string[] = []
    for (let t = now; t <= Date.parse('2026-03-31T12:00:00Z'); t += 30 * MINUTE) fired.push(...firedAt(t))
    expect(fired).toEqual([
      '2026-03-27T08:00:00Z',
      '2026-03-28T08:00:00Z',
      '2026-03-29T07:00:00Z',
      '2026-03-30T07:00:00Z',
      '2026-03-31T07:00:00Z',
    ])
  })

  it('skips the hour that does not exist and fires the repeated hour once', async () => {
    now = Date.parse('2026-03-28T12:00:00Z')
    await scheduler.put({ ...breakfast, name: 'night', expression: 'cron(30 2 * * ? *)' })
    expect(firedAt(Date.parse('2026-03-30T12:00:00Z'))).toEqual(['2026-03-30T00:30:00Z'])

    await scheduler.delete('night')
    now = Date.parse('2026-10-24T12:00:00Z')
    await scheduler.put({ ...breakfast, name: 'autumn', expression: 'cron(30 2 * * ? *)' })
    const fired: string[] = []
    for (let t = now; t <= Date.parse('2026-10-26T12:00:00Z'); t += 10 * MINUTE) fired.push(...firedAt(t))
    expect(fired).toEqual(['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z'])
  })

  it('reads back when a schedule fires next, and nothing for a disabled one', async () => {
    now = Date.parse('2026-11-19T07:00:00Z')
    await scheduler.put(breakfast)
    await scheduler.put({ ...everyMinute, name: 'off', enabled: false })

    expect(await scheduler.get('breakfast')).toMatchObject({
      nextFireAtMs: Date.parse('2026-11-19T08:00:00Z'),
      nextFireAt: '2026-11-19T08:00:00Z',
    })
    expect(await scheduler.get('off')).not.toHaveProperty('nextFireAtMs')
    scheduler.due(Date.parse('2026-11-19T08:00:00Z'))
    now = Date.parse('2026-11-19T08:00:30Z')
    expect((await scheduler.list()).find((item) => item.name === 'breakfast')?.nextFireAt).toBe('2026-11-20T08:00:00Z')
  })

  it('reads back the next firing of a rate from its start', async () => {
    await scheduler.put({ ...everyMinute, expression: 'rate(5 minutes)' })
    now = T0 + 7 * MINUTE

    expect((await scheduler.get('every-minute'))?.nextFireAtMs).toBe(T0 + 10 * MINUTE)
  })
})
