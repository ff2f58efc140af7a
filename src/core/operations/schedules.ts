import { type PutScheduleParams, putScheduleParamsSchema, scheduleNameSchema } from '../../schemas/engine-params.js'
import type { RecurringSchedule, RecurringScheduler, ScheduleView } from '../dispatch-ports.js'
import { NotConfiguredError, ScheduleNotFoundError } from '../errors.js'
import type { Limits } from '../limits.js'
import type { Registry } from '../registry.js'
import { checkedInput, parseParams } from './parse.js'

/** Recurring starts: cron or rate schedules that create an instance of a type each time they fire. */
export class Schedules {
  constructor(
    readonly registry: Registry,
    readonly limits: Limits,
    readonly recurring: RecurringScheduler | undefined,
  ) {}

  #scheduler(): RecurringScheduler {
    if (!this.recurring) throw new NotConfiguredError('recurring schedules are not configured for this deployment')
    return this.recurring
  }

  /** Creates or replaces a recurring schedule that starts `workflowType` with `context` on a cron or rate. */
  async put(params: PutScheduleParams): Promise<RecurringSchedule> {
    const p = parseParams(putScheduleParamsSchema, params)
    const recurring = this.#scheduler()
    this.registry.definition(p.workflowType)
    const schedule: RecurringSchedule = {
      name: p.name,
      expression: p.expression,
      workflowType: p.workflowType,
      context: checkedInput(p.context ?? {}, 'context', this.limits),
      enabled: p.enabled ?? true,
    }
    if (p.timezone !== undefined) schedule.timezone = p.timezone
    if (p.businessId !== undefined) schedule.businessId = p.businessId
    if (p.description !== undefined) schedule.description = p.description
    await recurring.put(schedule)
    return schedule
  }

  async get(name: string): Promise<ScheduleView> {
    const schedule = await this.#scheduler().get(parseParams(scheduleNameSchema, name))
    if (!schedule) throw new ScheduleNotFoundError(name)
    return schedule
  }

  async list(): Promise<ScheduleView[]> {
    return this.#scheduler().list()
  }

  async delete(name: string): Promise<void> {
    if (!(await this.#scheduler().delete(parseParams(scheduleNameSchema, name)))) {
      throw new ScheduleNotFoundError(name)
    }
  }
}
