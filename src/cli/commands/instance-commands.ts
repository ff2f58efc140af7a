import type { Command } from 'commander'
import { CliError, ExitCode } from '../exit-codes.js'
import { table, time, timeMs } from '../format.js'
import { parseJson, parseJsonObject, wholeNumber } from '../options.js'
import { HISTORY_HEADERS, historyDetail, instanceTable, instanceText } from '../views.js'
import type { Action } from './command-action.js'

/** The commands about workflow instances and their nodes: list, create, get, graph, event, restart, cancel, history. */
export const registerInstanceCommands = (program: Command, action: Action): void => {
  for (const register of [list, create, get, graph, event, restart, cancel, history]) register(program, action)
}

const list = (program: Command, action: Action) =>
  program
    .command('list')
    .description('list instances, newest first')
    .option('-t, --type <workflowType>', 'only this workflow type')
    .option(
      '-s, --status <statuses>',
      'only these statuses, comma-separated (init,running,completed,failed,canceled,timed_out)',
    )
    .option('-b, --business-id <id>', 'only this business id')
    .option('-n, --limit <n>', 'at most this many (1-1000)', wholeNumber('--limit', 1, 1000))
    .option('--order <order>', 'asc or desc (default desc)')
    .option('--cursor <cursor>', 'the next page, from a previous list')
    .action(
      action(async (client, _options, local: Record<string, string | number | undefined>) => {
        const page = await client.listInstances({
          workflowType: local.type as string | undefined,
          status: local.status as string | undefined,
          businessId: local.businessId as string | undefined,
          limit: local.limit,
          order: local.order as string | undefined,
          cursor: local.cursor as string | undefined,
        })
        const more = page.cursor ? `\n\nmore: tickflow list --cursor ${page.cursor}` : ''
        return [page, `${instanceTable(page.items)}${more}`]
      }),
    )

const create = (program: Command, action: Action) =>
  program
    .command('create')
    .description('start an instance of a workflow type')
    .argument('<workflowType>')
    .option('-c, --context <json>', 'the input, a JSON object')
    .option('-b, --business-id <id>', 'a business id (events can find the instance by it)')
    .option('--id <id>', 'a client-chosen instance id: makes the create idempotent')
    .option('--no-run', 'leave it to the tick instead of running a pass now')
    .action(
      action(async (client, _options, workflowType: string, local: Record<string, string | boolean | undefined>) => {
        const result = await client.createInstance({
          workflowType,
          ...(typeof local.context === 'string' ? { context: parseJsonObject(local.context, '--context') } : {}),
          ...(typeof local.businessId === 'string' ? { businessId: local.businessId } : {}),
          ...(typeof local.id === 'string' ? { id: local.id } : {}),
          run: local.run !== false,
        })
        return [result, `${result.instanceId} ${result.status}${result.created ? '' : ' (already existed)'}`]
      }),
    )

const get = (program: Command, action: Action) =>
  program
    .command('get')
    .description('one instance with every node')
    .argument('<instanceId>')
    .option(
      '-w, --wait [seconds]',
      'wait until it is terminal: completed, failed, canceled or timed_out (at most 25 s)',
    )
    .action(
      action(async (client, _options, instanceId: string, local: { wait?: string | boolean }) => {
        const query =
          local.wait === undefined
            ? {}
            : {
                wait: 'terminal' as const,
                ...(typeof local.wait === 'string' ? { timeoutSeconds: wholeNumber('--wait', 1, 25)(local.wait) } : {}),
              }
        const instance = await client.getInstance(instanceId, query)
        return [instance, instanceText(instance)]
      }),
    )

const graph = (program: Command, action: Action) =>
  program
    .command('graph')
    .description("an instance's graph as Mermaid, with each node's status")
    .argument('<instanceId>')
    .action(
      action(async (client, options, instanceId: string) => {
        if (options.json) return [await client.instanceGraphJson(instanceId), '']
        return [undefined, (await client.instanceGraph(instanceId)).trimEnd()]
      }),
    )

const event = (program: Command, action: Action) =>
  program
    .command('event')
    .description("send an external event to a node (stored as the node's node_event)")
    .argument('<instanceId>')
    .argument('<nodeId>')
    .option('-c, --content <json>', 'the event content, any JSON (default null)')
    .option('--ts <seconds>', 'the event version, Unix seconds (default now)', wholeNumber('--ts', 0, 2 ** 40))
    .action(
      action(async (client, _options, instanceId: string, nodeId: string, local: { content?: string; ts?: number }) => {
        const result = await client.sendEvent(instanceId, nodeId, {
          eventTs: local.ts ?? Math.floor(Date.now() / 1000),
          content: local.content === undefined ? null : parseJson(local.content, '--content'),
        })
        const due =
          result.dueAtMs === null
            ? 'the instance is parked: the event waits for its restart'
            : `the instance is due at ${time(result.dueAtMs)}`
        return [result, `event ${result.eventTs} stored for ${nodeId}; ${due}`]
      }),
    )

interface RestartOptions {
  force?: boolean
  resetCounters?: boolean
  context?: string
  run?: boolean
}

const restart = (program: Command, action: Action) =>
  program
    .command('restart')
    .description('restart a failed, canceled or timed-out instance, or one node and its descendants')
    .argument('<instanceId>')
    .argument('[nodeId]', 'restart only this node (and what follows it)')
    .option('--force', 'a node of a completed, failed or canceled instance')
    .option('--reset-counters', 'set fail counts and creation times back')
    .option('-c, --context <json>', 'replace the instance input (instance restart only)')
    .option('--no-run', 'leave it to the tick instead of running a pass now')
    .action(
      action(async (client, _options, instanceId: string, nodeId: string | undefined, local: RestartOptions) => {
        const common = {
          ...(local.resetCounters ? { resetCounters: true } : {}),
          ...(local.run === false ? { run: false } : {}),
        }
        if (nodeId !== undefined && local.context !== undefined) {
          throw new CliError(
            '--context replaces the input of an instance restart, not of a node restart',
            ExitCode.usage,
            'INVALID_ARGUMENT',
          )
        }
        const result =
          nodeId === undefined
            ? await client.restartInstance(instanceId, {
                ...common,
                ...(local.context === undefined ? {} : { context: parseJsonObject(local.context, '--context') }),
              })
            : await client.restartNode(instanceId, nodeId, { ...common, ...(local.force ? { force: true } : {}) })
        return [result, `${result.instanceId} ${result.status}`]
      }),
    )

const cancel = (program: Command, action: Action) =>
  program
    .command('cancel')
    .description('cancel an instance and every node that has not finished')
    .argument('<instanceId>')
    .action(
      action(async (client, _options, instanceId: string) => {
        const result = await client.cancelInstance(instanceId)
        return [result, `${result.instanceId} ${result.status}${result.changed ? '' : ' (already canceled)'}`]
      }),
    )

const history = (program: Command, action: Action) =>
  program
    .command('history')
    .description(
      "an instance's history, oldest first: node status changes (skips with their reason), decisions, events, errors, restarts, cancels",
    )
    .argument('<instanceId>')
    .option('-n, --limit <n>', 'at most this many entries (1-500, default 100)', wholeNumber('--limit', 1, 500))
    .option('--cursor <cursor>', 'the next page, from a previous history')
    .action(
      action(async (client, _options, instanceId: string, local: { limit?: number; cursor?: string }) => {
        const page = await client.instanceHistory(instanceId, { limit: local.limit, cursor: local.cursor })
        const rows = page.items.map((entry) => [
          String(entry.seq),
          timeMs(entry.atMs),
          entry.kind,
          entry.nodeId ?? '-',
          historyDetail(entry),
        ])
        const dropped = page.dropped ? `\n\n${page.dropped} entries dropped at the cap (gaps in SEQ)` : ''
        const more = page.cursor ? `\n\nmore: tickflow history ${instanceId} --cursor ${page.cursor}` : ''
        const text = rows.length ? table(HISTORY_HEADERS, rows) : 'no history'
        return [page, `${text}${dropped}${more}`]
      }),
    )
