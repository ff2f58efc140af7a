import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  GetScheduleCommand,
  InternalServerException,
  ListSchedulesCommand,
  ResourceNotFoundException,
  SchedulerClient,
  ThrottlingException,
  UpdateScheduleCommand,
  ValidationException,
} from '@aws-sdk/client-scheduler'
import { mockClient } from 'aws-sdk-client-mock'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createRecurringParams,
  EventBridgeRecurring,
  recurringFromSchedule,
} from '../../src/adapters/scheduler/eventbridge-recurring.js'
import {
  createWakeupParams,
  deleteWakeupParams,
  EventBridgeWakeups,
} from '../../src/adapters/scheduler/eventbridge-wakeups.js'
import type { RecurringSchedule } from '../../src/core/dispatch-ports.js'
import { StoreError, ValidationError } from '../../src/core/errors.js'

const GROUP = 'tickflow-test'
const RUN_QUEUE_ARN = 'arn:aws:sqs:eu-west-1:123456789012:tickflow-run'
const START_QUEUE_ARN = 'arn:aws:sqs:eu-west-1:123456789012:tickflow-start'
const ROLE_ARN = 'arn:aws:iam::123456789012:role/tickflow-scheduler'

/** The options an SDK exception is built from, as the client deserialises them from a response. */
const failure = (message: string, httpStatusCode: number) => ({
  message,
  Message: message,
  $metadata: { httpStatusCode },
})
const conflict = () => new ConflictException(failure('Schedule already exists.', 409))
const notFound = () => new ResourceNotFoundException(failure('Schedule not found.', 404))
const throttled = () => new ThrottlingException(failure('Rate exceeded', 400))

const COMMANDS = {
  CreateSchedule: CreateScheduleCommand,
  UpdateSchedule: UpdateScheduleCommand,
  DeleteSchedule: DeleteScheduleCommand,
  GetSchedule: GetScheduleCommand,
  ListSchedules: ListSchedulesCommand,
} as const

const schedulerMock = mockClient(SchedulerClient)
const client = new SchedulerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } })

/** Every command sent, in order, as [operation, input]. */
const sent = (): [string, unknown][] =>
  schedulerMock.calls().map((call) => {
    const command = call.args[0]
    const entry = Object.entries(COMMANDS).find(([, type]) => command instanceof type)
    return [entry?.[0] ?? 'Unknown', command.input]
  })

const caught = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the call to fail')
}

beforeEach(() => {
  schedulerMock.reset()
})

afterEach(() => {
  schedulerMock.reset()
})

describe('EventBridgeWakeups', () => {
  const wakeups = new EventBridgeWakeups({ client, groupName: GROUP, targetArn: RUN_QUEUE_ARN, roleArn: ROLE_ARN })
  const instanceId = '01JD7Q3ZK8X2M4N6P8R0T2V4W6'
  const atMs = Date.UTC(2026, 10, 21, 20, 5, 8, 250)

  const expectedInput = {
    Name: `wake-${instanceId}`,
    GroupName: GROUP,
    ScheduleExpression: 'at(2026-11-21T20:05:09)',
    ScheduleExpressionTimezone: 'UTC',
    FlexibleTimeWindow: { Mode: 'OFF' },
    ActionAfterCompletion: 'DELETE',
    State: 'ENABLED',
    Target: {
      Arn: RUN_QUEUE_ARN,
      RoleArn: ROLE_ARN,
      Input: JSON.stringify({ v: 1, kind: 'run', instanceId, dueAtMs: atMs }),
      RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 },
    },
  }

  describe('scheduleAt', () => {
    it('creates a one-time at() schedule in UTC, rounded up to the second, that deletes itself after firing', async () => {
      schedulerMock.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:schedule' })

      await wakeups.scheduleAt(instanceId, atMs)

      expect(sent()).toEqual([['CreateSchedule', expectedInput]])
    })

    it('sends a run message for the exact due time, which the runner parses back', async () => {
      schedulerMock.on(CreateScheduleCommand).resolves({})

      await wakeups.scheduleAt(instanceId, atMs)

      const input = schedulerMock.commandCalls(CreateScheduleCommand)[0]?.args[0].input
      expect(JSON.parse(input?.Target?.Input ?? '')).toEqual({ v: 1, kind: 'run', instanceId, dueAtMs: atMs })
    })

    it('moves an existing wake-up with UpdateSchedule and the same input when the create conflicts', async () => {
      schedulerMock.on(CreateScheduleCommand).rejects(conflict())
      schedulerMock.on(UpdateScheduleCommand).resolves({ ScheduleArn: 'arn:schedule' })

      await wakeups.scheduleAt(instanceId, atMs)

      expect(sent()).toEqual([
        ['CreateSchedule', expectedInput],
        ['UpdateSchedule', expectedInput],
      ])
    })

    it('creates the wake-up again when the old one fired and deleted itself between the create and the update', async () => {
      schedulerMock.on(CreateScheduleCommand).rejectsOnce(conflict()).resolves({})
      schedulerMock.on(UpdateScheduleCommand).rejects(notFound())

      await wakeups.scheduleAt(instanceId, atMs)

      expect(sent().map(([operation]) => operation)).toEqual(['CreateSchedule', 'UpdateSchedule', 'CreateSchedule'])
    })

    it('names the schedule of a long client-chosen id with a valid, hashed name', async () => {
      schedulerMock.on(CreateScheduleCommand).resolves({})
      const longId = `tenant:acme:${'x'.repeat(100)}`

      await wakeups.scheduleAt(longId, atMs)

      const name = schedulerMock.commandCalls(CreateScheduleCommand)[0]?.args[0].input.Name ?? ''
      expect(name).toMatch(/^wake-tenant_acme_x{12}\.[0-9a-f]{32}$/)
      expect(name.length).toBeLessThanOrEqual(64)
    })

    it('turns throttling into a retryable StoreError', async () => {
      schedulerMock.on(CreateScheduleCommand).rejects(throttled())

      const error = await caught(wakeups.scheduleAt(instanceId, atMs))

      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({ retryable: true, code: 'STORE_UNAVAILABLE' })
      expect((error as StoreError).cause).toBeInstanceOf(ThrottlingException)
    })

    it('turns an internal server error during the update into a retryable StoreError', async () => {
      schedulerMock.on(CreateScheduleCommand).rejects(conflict())
      schedulerMock.on(UpdateScheduleCommand).rejects(new InternalServerException(failure('boom', 500)))

      await expect(wakeups.scheduleAt(instanceId, atMs)).rejects.toMatchObject({ name: 'StoreError', retryable: true })
    })

    it('turns a validation error from the service into a non-retryable StoreError', async () => {
      schedulerMock.on(CreateScheduleCommand).rejects(new ValidationException(failure('bad role', 400)))

      await expect(wakeups.scheduleAt(instanceId, atMs)).rejects.toMatchObject({ name: 'StoreError', retryable: false })
    })

    it('rejects a time that is not a number before sending anything', async () => {
      await expect(wakeups.scheduleAt(instanceId, Number.NaN)).rejects.toBeInstanceOf(ValidationError)
      expect(sent()).toEqual([])
    })
  })

  describe('cancel', () => {
    it('deletes the instance’s wake-up by its deterministic name', async () => {
      schedulerMock.on(DeleteScheduleCommand).resolves({})

      await wakeups.cancel(instanceId)

      expect(sent()).toEqual([['DeleteSchedule', { Name: `wake-${instanceId}`, GroupName: GROUP }]])
    })

    it('is silent when there is no wake-up', async () => {
      schedulerMock.on(DeleteScheduleCommand).rejects(notFound())

      await expect(wakeups.cancel(instanceId)).resolves.toBeUndefined()
    })

    it('turns throttling into a retryable StoreError', async () => {
      schedulerMock.on(DeleteScheduleCommand).rejects(throttled())

      await expect(wakeups.cancel(instanceId)).rejects.toMatchObject({ name: 'StoreError', retryable: true })
    })
  })

  describe('the parameter builders', () => {
    it('build the same input the adapter sends', () => {
      const target = { groupName: GROUP, targetArn: RUN_QUEUE_ARN, roleArn: ROLE_ARN }
      expect(createWakeupParams(target, instanceId, atMs)).toEqual(expectedInput)
      expect(deleteWakeupParams(target, instanceId)).toEqual({ Name: `wake-${instanceId}`, GroupName: GROUP })
    })
  })
})

describe('EventBridgeRecurring', () => {
  // A Thursday, 13:00 in Paris.
  const NOW = Date.parse('2026-11-19T12:00:00Z')
  const recurring = new EventBridgeRecurring({
    client,
    groupName: GROUP,
    targetArn: START_QUEUE_ARN,
    roleArn: ROLE_ARN,
    now: () => NOW,
  })
  /** Friday 02:00 in Paris. */
  const nightlyNext = { nextFireAtMs: Date.parse('2026-11-20T01:00:00Z'), nextFireAt: '2026-11-20T01:00:00Z' }

  const nightly: RecurringSchedule = {
    name: 'nightly-report',
    expression: 'cron(0 2 ? * MON-FRI *)',
    timezone: 'Europe/Paris',
    workflowType: 'report',
    context: { region: 'eu', recipients: ['ops@example.com'], limits: { rows: 1000 } },
    businessId: 'report-eu',
    enabled: true,
    description: 'EU report on weekday nights',
  }

  const nightlyInput: CreateScheduleCommandInput = {
    Name: 'start-nightly-report',
    GroupName: GROUP,
    ScheduleExpression: 'cron(0 2 ? * MON-FRI *)',
    ScheduleExpressionTimezone: 'Europe/Paris',
    FlexibleTimeWindow: { Mode: 'OFF' },
    State: 'ENABLED',
    Description: 'EU report on weekday nights',
    Target: {
      Arn: START_QUEUE_ARN,
      RoleArn: ROLE_ARN,
      Input: JSON.stringify({
        v: 1,
        kind: 'start',
        schedule: 'nightly-report',
        workflowType: 'report',
        context: nightly.context,
        businessId: 'report-eu',
        scheduledTime: '<aws.scheduler.scheduled-time>',
      }),
      RetryPolicy: { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 },
    },
  }

  /** What GetSchedule returns for a schedule created with `input`. */
  const stored = (input: CreateScheduleCommandInput) => ({
    Arn: `arn:aws:scheduler:eu-west-1:123456789012:schedule/${GROUP}/${input.Name}`,
    CreationDate: new Date('2026-11-01T00:00:00Z'),
    LastModificationDate: new Date('2026-11-02T00:00:00Z'),
    ...input,
  })

  describe('put', () => {
    it('creates a schedule named with the prefix that sends a start message with the scheduled-time attribute', async () => {
      schedulerMock.on(CreateScheduleCommand).resolves({})

      await recurring.put(nightly)

      expect(sent()).toEqual([['CreateSchedule', nightlyInput]])
    })

    it('replaces an existing schedule with UpdateSchedule and the same input', async () => {
      schedulerMock.on(CreateScheduleCommand).rejects(conflict())
      schedulerMock.on(UpdateScheduleCommand).resolves({})

      await recurring.put(nightly)

      expect(sent()).toEqual([
        ['CreateSchedule', nightlyInput],
        ['UpdateSchedule', nightlyInput],
      ])
    })

    it('writes a disabled schedule as DISABLED, in UTC when it names no time zone, without description or business id', async () => {
      schedulerMock.on(CreateScheduleCommand).resolves({})
      const { timezone: _tz, description: _d, businessId: _b, ...rest } = nightly

      await recurring.put({ ...rest, expression: 'rate(1 hour)', enabled: false })

      const input = schedulerMock.commandCalls(CreateScheduleCommand)[0]?.args[0].input
      expect(input).toMatchObject({
        State: 'DISABLED',
        ScheduleExpressionTimezone: 'UTC',
        ScheduleExpression: 'rate(1 hour)',
      })
      expect(input).not.toHaveProperty('Description')
      expect(JSON.parse(input?.Target?.Input ?? '')).not.toHaveProperty('businessId')
    })

    it.each([
      ['an invalid cron expression', { expression: 'cron(0 2 * * * *)' }],
      ['a one-time expression', { expression: 'at(2026-11-21T20:05:09)' }],
      ['a name with characters a schedule name cannot hold', { name: 'nightly report' }],
      ['an unknown time zone', { timezone: 'Mars/Olympus' }],
    ])('rejects %s before any command is sent', async (_what, change) => {
      await expect(recurring.put({ ...nightly, ...change })).rejects.toBeInstanceOf(ValidationError)
      expect(sent()).toEqual([])
    })

    it('turns throttling into a retryable StoreError', async () => {
      schedulerMock.on(CreateScheduleCommand).rejects(throttled())

      await expect(recurring.put(nightly)).rejects.toMatchObject({ name: 'StoreError', retryable: true })
    })
  })

  describe('get', () => {
    it('reads the schedule back, parsing the start message out of the target input', async () => {
      schedulerMock.on(GetScheduleCommand).resolves(stored(nightlyInput))

      expect(await recurring.get('nightly-report')).toEqual({ ...nightly, ...nightlyNext })
      expect(sent()).toEqual([['GetSchedule', { Name: 'start-nightly-report', GroupName: GROUP }]])
    })

    it('round-trips what put wrote', async () => {
      const minimal: RecurringSchedule = {
        name: 'hourly',
        expression: 'rate(1 hour)',
        workflowType: 'sync',
        context: {},
        enabled: false,
      }
      schedulerMock.on(CreateScheduleCommand).resolves({})
      await recurring.put(minimal)
      const written = schedulerMock.commandCalls(CreateScheduleCommand)[0]?.args[0].input
      schedulerMock.on(GetScheduleCommand).resolves({ ...written, State: 'DISABLED' })

      expect(await recurring.get('hourly')).toEqual({ ...minimal, timezone: 'UTC' })
    })

    it('is undefined when there is no such schedule', async () => {
      schedulerMock.on(GetScheduleCommand).rejects(notFound())

      expect(await recurring.get('missing')).toBeUndefined()
    })

    it('is undefined, without a call, for a name no schedule can have', async () => {
      expect(await recurring.get('no spaces allowed')).toBeUndefined()
      expect(sent()).toEqual([])
    })

    it('fails with a non-retryable StoreError for a schedule whose input is not a start message', async () => {
      schedulerMock.on(GetScheduleCommand).resolves({
        ...stored(nightlyInput),
        Target: { Arn: START_QUEUE_ARN, RoleArn: ROLE_ARN, Input: '{"hello":"world"}' },
      })

      await expect(recurring.get('nightly-report')).rejects.toMatchObject({
        name: 'StoreError',
        retryable: false,
        code: 'INVALID_SCHEDULE',
      })
    })
  })

  describe('list', () => {
    it('pages through ListSchedules with the group and the prefix, then reads every schedule', async () => {
      const hourly = createRecurringParams(
        { groupName: GROUP, targetArn: START_QUEUE_ARN, roleArn: ROLE_ARN, namePrefix: 'start-' },
        { name: 'hourly', expression: 'rate(1 hour)', workflowType: 'sync', context: { full: false }, enabled: true },
      )
      schedulerMock
        .on(ListSchedulesCommand, { GroupName: GROUP, NamePrefix: 'start-' })
        .resolvesOnce({ Schedules: [{ Name: 'start-nightly-report', GroupName: GROUP }], NextToken: 'page-2' })
        .resolvesOnce({ Schedules: [{ Name: 'start-hourly', GroupName: GROUP }] })
      schedulerMock.on(GetScheduleCommand, { Name: 'start-nightly-report' }).resolves(stored(nightlyInput))
      schedulerMock.on(GetScheduleCommand, { Name: 'start-hourly' }).resolves(stored(hourly))

      const schedules = await recurring.list()

      expect(schedules).toEqual([
        {
          name: 'hourly',
          expression: 'rate(1 hour)',
          timezone: 'UTC',
          workflowType: 'sync',
          context: { full: false },
          enabled: true,
          // Counted in hours from its creation at midnight.
          nextFireAtMs: Date.parse('2026-11-19T13:00:00Z'),
          nextFireAt: '2026-11-19T13:00:00Z',
        },
        { ...nightly, ...nightlyNext },
      ])
      expect(sent()).toEqual([
        ['ListSchedules', { GroupName: GROUP, NamePrefix: 'start-' }],
        ['ListSchedules', { GroupName: GROUP, NamePrefix: 'start-', NextToken: 'page-2' }],
        ['GetSchedule', { Name: 'start-nightly-report', GroupName: GROUP }],
        ['GetSchedule', { Name: 'start-hourly', GroupName: GROUP }],
      ])
    })

    it('leaves out a schedule deleted between the list and the read', async () => {
      schedulerMock.on(ListSchedulesCommand).resolves({ Schedules: [{ Name: 'start-gone' }] })
      schedulerMock.on(GetScheduleCommand).rejects(notFound())

      expect(await recurring.list()).toEqual([])
    })

    it('turns throttling of the listing into a retryable StoreError', async () => {
      schedulerMock.on(ListSchedulesCommand).rejects(throttled())

      await expect(recurring.list()).rejects.toMatchObject({ name: 'StoreError', retryable: true })
    })
  })

  describe('delete', () => {
    it('deletes the schedule and reports that there was one', async () => {
      schedulerMock.on(DeleteScheduleCommand).resolves({})

      expect(await recurring.delete('nightly-report')).toBe(true)
      expect(sent()).toEqual([['DeleteSchedule', { Name: 'start-nightly-report', GroupName: GROUP }]])
    })

    it('reports false when there was no such schedule', async () => {
      schedulerMock.on(DeleteScheduleCommand).rejects(notFound())

      expect(await recurring.delete('missing')).toBe(false)
    })
  })

  describe('with another name prefix', () => {
    it('names, lists and reads schedules with that prefix', async () => {
      const custom = new EventBridgeRecurring({
        client,
        groupName: GROUP,
        targetArn: START_QUEUE_ARN,
        roleArn: ROLE_ARN,
        namePrefix: 'cron.',
      })
      schedulerMock.on(CreateScheduleCommand).resolves({})
      schedulerMock.on(ListSchedulesCommand).resolves({ Schedules: [] })

      await custom.put(nightly)
      await custom.list()

      expect(sent()).toEqual([
        ['CreateSchedule', { ...nightlyInput, Name: 'cron.nightly-report' }],
        ['ListSchedules', { GroupName: GROUP, NamePrefix: 'cron.' }],
      ])
    })
  })

  describe('recurringFromSchedule', () => {
    it('treats a schedule without a state as enabled and drops an empty description', () => {
      const { State: _state, ...withoutState } = stored(nightlyInput)
      const { description: _description, ...withoutDescription } = nightly

      expect(recurringFromSchedule('nightly-report', { ...withoutState, Description: '', $metadata: {} })).toEqual(
        withoutDescription,
      )
    })
  })
})
