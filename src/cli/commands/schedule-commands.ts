import type { Command } from 'commander'
import { table } from '../format.js'
import { parseJsonObject } from '../options.js'
import { SCHEDULE_HEADERS, scheduleRow, scheduleText } from '../views.js'
import type { Action } from './command-action.js'

/** `tickflow schedules list|get|put|delete`: the recurring schedules that start workflows. */
export const registerScheduleCommands = (program: Command, action: Action): void => {
  const schedules = program.command('schedules').description('recurring schedules that start workflows')
  for (const register of [list, get, put, remove]) register(schedules, action)
}

const list = (schedules: Command, action: Action) =>
  schedules
    .command('list', { isDefault: true })
    .description('every schedule, with its next firing')
    .action(
      action(async (client) => {
        const answer = await client.listSchedules()
        return [
          answer,
          answer.items.length === 0 ? 'no schedules' : table(SCHEDULE_HEADERS, answer.items.map(scheduleRow)),
        ]
      }),
    )

const get = (schedules: Command, action: Action) =>
  schedules
    .command('get')
    .description('one schedule')
    .argument('<name>')
    .action(
      action(async (client, _options, name: string) => {
        const schedule = await client.getSchedule(name)
        return [schedule, scheduleText(schedule)]
      }),
    )

const put = (schedules: Command, action: Action) =>
  schedules
    .command('put')
    .description('create or replace a schedule')
    .argument('<name>')
    .requiredOption(
      '-e, --expression <expression>',
      'cron(min hour day-of-month month day-of-week year) or rate(N unit)',
    )
    .requiredOption('-t, --type <workflowType>', 'the workflow type it starts')
    .option('-z, --timezone <zone>', 'IANA time zone of a cron expression (default UTC)')
    .option('-c, --context <json>', 'the input of every instance it starts, a JSON object')
    .option('-b, --business-id <id>', 'the business id of every instance it starts')
    .option('-d, --description <text>')
    .option('--disabled', 'store it without firing')
    .action(
      action(async (client, _options, name: string, local: Record<string, string | boolean | undefined>) => {
        const schedule = await client.putSchedule({
          name,
          // commander refuses the command without them (requiredOption)
          expression: local.expression as string,
          workflowType: local.type as string,
          ...(typeof local.timezone === 'string' ? { timezone: local.timezone } : {}),
          ...(typeof local.context === 'string' ? { context: parseJsonObject(local.context, '--context') } : {}),
          ...(typeof local.businessId === 'string' ? { businessId: local.businessId } : {}),
          ...(typeof local.description === 'string' ? { description: local.description } : {}),
          enabled: local.disabled !== true,
        })
        return [schedule, `schedule ${schedule.name} stored${schedule.enabled ? '' : ' (disabled)'}`]
      }),
    )

const remove = (schedules: Command, action: Action) =>
  schedules
    .command('delete')
    .description('delete a schedule (instances it started are not touched)')
    .argument('<name>')
    .action(
      action(async (client, _options, name: string) => {
        await client.deleteSchedule(name)
        return [{ deleted: name }, `schedule ${name} deleted`]
      }),
    )
