import {
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  GetScheduleCommand,
  type GetScheduleCommandOutput,
  ListSchedulesCommand,
  type SchedulerClient,
  type UpdateScheduleCommandInput,
} from '@aws-sdk/client-scheduler'
import { z } from 'zod'
import type { RecurringSchedule, RecurringScheduler, ScheduleView } from '../../core/dispatch-ports.js'
import { StoreError, ValidationError } from '../../core/errors.js'
import type { JsonObject } from '../../core/json.js'
import { encodeMessage, startMessage, startMessageSchema } from '../../schemas/queue-messages.js'
import { describeIssues } from '../../schemas/zod-issues.js'
import {
  nextFiring,
  parseScheduleExpression,
  SCHEDULE_NAME_PATTERN,
  validateRecurringSchedule,
} from '../schedule-expressions.js'
import {
  createOrUpdateSchedule,
  isNotFound,
  SCHEDULE_RETRY_POLICY,
  translateSchedulerError,
} from './eventbridge-wakeups.js'

/** The context attribute EventBridge Scheduler replaces with the firing time (`2026-11-21T20:05:00Z`). */
export const SCHEDULED_TIME_ATTRIBUTE = '<aws.scheduler.scheduled-time>'

/**
 * The start message a recurring schedule sends, as stored in its `Target.Input`: the start-queue message, with the
 * placeholder that EventBridge Scheduler replaces by the firing time instead of a time.
 */
export const startInputSchema = startMessageSchema.extend({ scheduledTime: z.literal(SCHEDULED_TIME_ATTRIBUTE) })

export interface EventBridgeRecurringOptions {
  client: SchedulerClient
  /** The schedule group holding the recurring schedules (it must exist). */
  groupName: string
  /** ARN of the start queue the schedules send to. */
  targetArn: string
  /** Role EventBridge Scheduler assumes to send to the queue. */
  roleArn: string
  /** Prefixed to a schedule's name to make the EventBridge schedule name; default `start-`. */
  namePrefix?: string
  /** The clock `get` and `list` compute the next firing with; default the system clock. */
  now?: () => number
}

export interface RecurringTarget {
  groupName: string
  targetArn: string
  roleArn: string
  namePrefix: string
}

/** The `Target.Input` of a recurring schedule: a start message whose `scheduledTime` the service fills in. */
export const startInput = (schedule: RecurringSchedule): string => {
  const encoded = encodeMessage(
    startInputSchema,
    startMessage({
      schedule: schedule.name,
      workflowType: schedule.workflowType,
      context: schedule.context,
      ...(schedule.businessId === undefined ? {} : { businessId: schedule.businessId }),
      scheduledTime: SCHEDULED_TIME_ATTRIBUTE,
    }),
  )
  if (!encoded.ok) throw new ValidationError(`schedule cannot start a workflow: ${encoded.reason}`, encoded.field)
  return encoded.body
}

/**
 * The CreateSchedule input of a recurring schedule; UpdateSchedule takes the same input to replace it (UpdateSchedule
 * resets every field it is not given, so the description disappears when the new schedule has none). Does not
 * validate: `EventBridgeRecurring.put` does that first.
 */
export const createRecurringParams = (
  target: RecurringTarget,
  schedule: RecurringSchedule,
): CreateScheduleCommandInput & UpdateScheduleCommandInput => ({
  Name: `${target.namePrefix}${schedule.name}`,
  GroupName: target.groupName,
  ScheduleExpression: schedule.expression,
  ScheduleExpressionTimezone: schedule.timezone ?? 'UTC',
  FlexibleTimeWindow: { Mode: 'OFF' },
  State: schedule.enabled ? 'ENABLED' : 'DISABLED',
  ...(schedule.description === undefined ? {} : { Description: schedule.description }),
  Target: {
    Arn: target.targetArn,
    RoleArn: target.roleArn,
    Input: startInput(schedule),
    RetryPolicy: { ...SCHEDULE_RETRY_POLICY },
  },
})

/**
 * Reads a GetSchedule response back into a RecurringSchedule. The time zone is always present (`UTC` when the
 * schedule has none); the description only when it is not empty. Throws a non-retryable StoreError (code
 * `INVALID_SCHEDULE`) for a schedule this adapter did not write.
 */
export const recurringFromSchedule = (name: string, output: GetScheduleCommandOutput): RecurringSchedule => {
  const corrupt = (why: string, cause?: unknown): StoreError =>
    new StoreError(`schedule '${output.Name ?? name}' is not a recurring start schedule: ${why}`, false, {
      code: 'INVALID_SCHEDULE',
      ...(cause === undefined ? {} : { cause }),
    })
  if (output.ScheduleExpression === undefined) throw corrupt('it has no schedule expression')
  if (output.Target?.Input === undefined) throw corrupt('its target has no input')
  let json: unknown
  try {
    json = JSON.parse(output.Target.Input)
  } catch (error) {
    throw corrupt('its target input is not JSON', error)
  }
  const parsed = startInputSchema.safeParse(json)
  if (!parsed.success) {
    throw corrupt(`its target input is not a start message (${describeIssues(parsed.error, '(input)')})`)
  }
  const input = parsed.data
  return {
    name,
    expression: output.ScheduleExpression,
    timezone: output.ScheduleExpressionTimezone ?? 'UTC',
    workflowType: input.workflowType,
    context: input.context as JsonObject,
    ...(input.businessId === undefined ? {} : { businessId: input.businessId }),
    enabled: output.State !== 'DISABLED',
    ...(output.Description === undefined || output.Description === '' ? {} : { description: output.Description }),
  }
}

/**
 * Recurring starts as EventBridge Scheduler cron/rate schedules named `namePrefix + name` in one group, sending
 * start messages to the start queue. Schedules are validated (`validateRecurringSchedule`) before any call, so a bad
 * expression never reaches the service.
 */
export class EventBridgeRecurring implements RecurringScheduler {
  readonly #client: SchedulerClient
  readonly #target: RecurringTarget
  readonly #now: () => number

  constructor(options: EventBridgeRecurringOptions) {
    this.#now = options.now ?? Date.now
    const namePrefix = options.namePrefix ?? 'start-'
    if (!/^[0-9A-Za-z_.-]{0,63}$/.test(namePrefix)) {
      throw new ValidationError(`name prefix '${namePrefix}' must be 0-63 letters, digits or _ . -`, 'namePrefix')
    }
    this.#client = options.client
    this.#target = { groupName: options.groupName, targetArn: options.targetArn, roleArn: options.roleArn, namePrefix }
  }

  /**
   * Validates, then creates the schedule or replaces it when one of that name exists (ConflictException →
   * UpdateSchedule with the same input).
   */
  async put(schedule: RecurringSchedule): Promise<void> {
    validateRecurringSchedule(schedule, this.#target.namePrefix)
    await createOrUpdateSchedule(this.#client, createRecurringParams(this.#target, schedule))
  }

  /** The schedule, or undefined when there is none (a name no schedule can have included). */
  /** The schedule with its next firing (a rate counts from its StartDate, or from its creation). */
  async get(name: string): Promise<ScheduleView | undefined> {
    const scheduleName = this.#scheduleName(name)
    if (scheduleName === undefined) return undefined
    let output: GetScheduleCommandOutput
    try {
      output = await this.#client.send(
        new GetScheduleCommand({ Name: scheduleName, GroupName: this.#target.groupName }),
      )
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw translateSchedulerError(error, 'GetSchedule', scheduleName)
    }
    const schedule = recurringFromSchedule(name, output)
    let timing: ReturnType<typeof nextFiring> = {}
    try {
      timing = nextFiring(parseScheduleExpression(schedule.expression), {
        nowMs: this.#now(),
        timezone: schedule.timezone ?? 'UTC',
        anchorMs: (output.StartDate ?? output.CreationDate)?.getTime() ?? 0,
        enabled: schedule.enabled,
      })
    } catch {
      // A schedule written by other means with syntax this module does not evaluate: shown without a next firing.
    }
    return { ...schedule, ...timing }
  }

  /**
   * Every schedule of the group whose name has the prefix, sorted by name: ListSchedules pages (NextToken), then
   * GetSchedule for each (the list has no targets). A schedule deleted in between is left out.
   */
  async list(): Promise<ScheduleView[]> {
    const { groupName, namePrefix } = this.#target
    const names: string[] = []
    let nextToken: string | undefined
    do {
      const page = await this.#client
        .send(
          new ListSchedulesCommand({
            GroupName: groupName,
            ...(namePrefix === '' ? {} : { NamePrefix: namePrefix }),
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
        )
        .catch((error: unknown) => {
          throw translateSchedulerError(error, 'ListSchedules', `${namePrefix}*`)
        })
      for (const summary of page.Schedules ?? []) {
        if (summary.Name?.startsWith(namePrefix)) names.push(summary.Name.slice(namePrefix.length))
      }
      nextToken = page.NextToken === '' ? undefined : page.NextToken
    } while (nextToken !== undefined)
    const schedules: ScheduleView[] = []
    for (const name of names) {
      const schedule = await this.get(name)
      if (schedule !== undefined) schedules.push(schedule)
    }
    return schedules.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** Deletes the schedule; false when there was none. */
  async delete(name: string): Promise<boolean> {
    const scheduleName = this.#scheduleName(name)
    if (scheduleName === undefined) return false
    try {
      await this.#client.send(new DeleteScheduleCommand({ Name: scheduleName, GroupName: this.#target.groupName }))
      return true
    } catch (error) {
      if (isNotFound(error)) return false
      throw translateSchedulerError(error, 'DeleteSchedule', scheduleName)
    }
  }

  #scheduleName(name: string): string | undefined {
    const scheduleName = `${this.#target.namePrefix}${name}`
    return name !== '' && SCHEDULE_NAME_PATTERN.test(scheduleName) ? scheduleName : undefined
  }
}
