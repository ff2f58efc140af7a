import {
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  DeleteScheduleCommand,
  type DeleteScheduleCommandInput,
  type SchedulerClient,
  UpdateScheduleCommand,
  type UpdateScheduleCommandInput,
} from '@aws-sdk/client-scheduler'
import type { WakeupScheduler } from '../../core/dispatch-ports.js'
import { StoreError } from '../../core/errors.js'
import { classifyAwsError } from '../aws-errors.js'
import { runMessageBody } from '../run-requests.js'
import { atExpression, wakeupScheduleName } from '../schedule-expressions.js'

interface AwsError {
  name?: string
  message?: string
  $retryable?: unknown
  $metadata?: { httpStatusCode?: number }
}

export const errorName = (error: unknown): string | undefined => (error as AwsError | undefined)?.name

/** A ConflictException from CreateSchedule: a schedule of that name already exists in the group. */
export const isConflict = (error: unknown): boolean => errorName(error) === 'ConflictException'

/** The schedule (or, on create, its group) does not exist. */
export const isNotFound = (error: unknown): boolean => errorName(error) === 'ResourceNotFoundException'

/**
 * Turns an EventBridge Scheduler error into the engine's StoreError; callers never see SDK types. Throttling,
 * internal errors and 5xx responses are retryable; validation, quota and permission errors are not.
 */
export const translateSchedulerError = (error: unknown, operation: string, scheduleName: string): StoreError =>
  classifyAwsError(error, { service: 'scheduler', operation, resource: scheduleName })

export interface EventBridgeWakeupsOptions {
  client: SchedulerClient
  /** The schedule group holding the wake-ups (it must exist). */
  groupName: string
  /** ARN of the run queue the wake-ups send to. */
  targetArn: string
  /** Role EventBridge Scheduler assumes to send to the queue (`sqs:SendMessage` on it). */
  roleArn: string
}

export type WakeupTarget = Pick<EventBridgeWakeupsOptions, 'groupName' | 'targetArn' | 'roleArn'>

/** Retries of a delivery the queue refused and how long one may keep trying (retry policy of every schedule). */
export const SCHEDULE_RETRY_POLICY = { MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 3600 } as const

/**
 * The CreateSchedule input of an instance's wake-up at `atMs`; UpdateSchedule takes the same input to move it.
 * A one-time `at()` schedule in UTC, without a flexible window, that deletes itself once it has fired, and sends
 * the run queue a run message for `atMs` (the un-rounded due time, which the runner deduplicates on).
 */
export const createWakeupParams = (
  target: WakeupTarget,
  instanceId: string,
  atMs: number,
): CreateScheduleCommandInput & UpdateScheduleCommandInput => ({
  Name: wakeupScheduleName(instanceId),
  GroupName: target.groupName,
  ScheduleExpression: atExpression(atMs),
  ScheduleExpressionTimezone: 'UTC',
  FlexibleTimeWindow: { Mode: 'OFF' },
  ActionAfterCompletion: 'DELETE',
  State: 'ENABLED',
  Target: {
    Arn: target.targetArn,
    RoleArn: target.roleArn,
    Input: runMessageBody({ instanceId, dueAtMs: atMs }),
    RetryPolicy: { ...SCHEDULE_RETRY_POLICY },
  },
})

/** The DeleteSchedule input that removes an instance's wake-up. */
export const deleteWakeupParams = (target: Pick<WakeupTarget, 'groupName'>, instanceId: string) =>
  ({ Name: wakeupScheduleName(instanceId), GroupName: target.groupName }) satisfies DeleteScheduleCommandInput

const tryCreate = async (client: SchedulerClient, params: CreateScheduleCommandInput): Promise<boolean> => {
  try {
    await client.send(new CreateScheduleCommand(params))
    return true
  } catch (error) {
    if (isConflict(error)) return false
    throw translateSchedulerError(error, 'CreateSchedule', params.Name ?? '')
  }
}

/**
 * CreateSchedule, or UpdateSchedule with the same input when a schedule of that name exists (ConflictException).
 * When the existing one disappears between the two calls (a wake-up that fired and deleted itself, a concurrent
 * delete), the update's ResourceNotFoundException leads to one more create; a second conflict after that is a
 * retryable StoreError (code `SCHEDULE_CONFLICT`).
 */
export const createOrUpdateSchedule = async (
  client: SchedulerClient,
  params: CreateScheduleCommandInput & UpdateScheduleCommandInput,
): Promise<void> => {
  const name = params.Name ?? ''
  if (await tryCreate(client, params)) return
  try {
    await client.send(new UpdateScheduleCommand(params))
    return
  } catch (error) {
    if (!isNotFound(error)) throw translateSchedulerError(error, 'UpdateSchedule', name)
  }
  if (await tryCreate(client, params)) return
  throw new StoreError(`schedule '${name}' kept changing while it was being written; try again`, true, {
    code: 'SCHEDULE_CONFLICT',
  })
}

/**
 * Wake-ups as EventBridge Scheduler one-time schedules, one per instance under a deterministic name
 * (`wakeupScheduleName`): creating it again moves it. Note that the service invokes targets with 60-second
 * precision, so the run handler must still check that the instance is due when the message arrives.
 */
export class EventBridgeWakeups implements WakeupScheduler {
  readonly #client: SchedulerClient
  readonly #target: WakeupTarget

  constructor(options: EventBridgeWakeupsOptions) {
    this.#client = options.client
    this.#target = { groupName: options.groupName, targetArn: options.targetArn, roleArn: options.roleArn }
  }

  /**
   * Creates the wake-up, or moves it when one exists (ConflictException → UpdateSchedule with the same input).
   */
  async scheduleAt(instanceId: string, atMs: number): Promise<void> {
    await createOrUpdateSchedule(this.#client, createWakeupParams(this.#target, instanceId, atMs))
  }

  /** Removes the wake-up; a missing one (never created, already fired or cancelled) is not an error. */
  async cancel(instanceId: string): Promise<void> {
    const params = deleteWakeupParams(this.#target, instanceId)
    try {
      await this.#client.send(new DeleteScheduleCommand(params))
    } catch (error) {
      if (isNotFound(error)) return
      throw translateSchedulerError(error, 'DeleteSchedule', params.Name)
    }
  }
}
