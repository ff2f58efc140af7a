import { Command, CommanderError, Option } from 'commander'
import { regionOfApiUrl, sigV4Signer } from '../adapters/http/sigv4-signer.js'
import { ApiClient, type Auth } from './api-client.js'
import { addCallbackCommands } from './callback-commands.js'
import { CliError, ExitCode } from './errors.js'
import { fields, table, time, timeMs } from './format.js'

export const DEFAULT_API_URL = 'http://127.0.0.1:3000'

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
}

interface GlobalOptions {
  api: string
  token?: string
  iam?: boolean
  region?: string
  json?: boolean
  timeout: string
}

interface Instance {
  id: string
  workflowType: string
  businessId?: string
  status: string
  createdAtMs: number
  updatedAtMs: number
  dueAtMs?: number
  lease?: { owner: string; untilMs: number }
  context: Record<string, unknown>
  nodes: {
    id: string
    status: string
    failCount: number
    attempt: number
    updatedAtMs?: number
    nextAttemptAtMs?: number
    context?: Record<string, unknown>
  }[]
}

interface Schedule {
  name: string
  expression: string
  timezone?: string
  workflowType: string
  context: Record<string, unknown>
  businessId?: string
  enabled: boolean
  description?: string
  nextFireAtMs?: number
  nextFireAt?: string
}

const parseJson = (text: string, option: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new CliError(
      `${option} is not JSON: ${(error as Error).message}`,
      ExitCode.usage,
      'INVALID_ARGUMENT',
      {},
      {
        cause: error,
      },
    )
  }
}

const parseJsonObject = (text: string, option: string): Record<string, unknown> => {
  const value = parseJson(text, option)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(`${option} must be a JSON object`, ExitCode.usage, 'INVALID_ARGUMENT')
  }
  return value as Record<string, unknown>
}

const wholeNumber = (option: string, min: number, max: number) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new CliError(`${option} must be a whole number ${min}-${max}`, ExitCode.usage, 'INVALID_ARGUMENT')
  }
  return Number(value)
}

const instanceTable = (items: Instance[] | Omit<Instance, 'nodes' | 'context' | 'updatedAtMs'>[]): string =>
  items.length === 0
    ? 'no instances'
    : table(
        ['ID', 'TYPE', 'STATUS', 'BUSINESS ID', 'CREATED'],
        items.map((item) => [item.id, item.workflowType, item.status, item.businessId ?? '-', time(item.createdAtMs)]),
      )

const instanceText = (instance: Instance): string =>
  [
    fields([
      ['instance', instance.id],
      ['type', instance.workflowType],
      ['status', instance.status],
      ['business id', instance.businessId],
      ['created', time(instance.createdAtMs)],
      ['updated', time(instance.updatedAtMs)],
      ['due', instance.dueAtMs === undefined ? undefined : time(instance.dueAtMs)],
      ['lease', instance.lease ? `${instance.lease.owner} until ${time(instance.lease.untilMs)}` : undefined],
    ]),
    '',
    table(
      ['NODE', 'STATUS', 'FAILS', 'ATTEMPT', 'UPDATED', 'NEXT ATTEMPT', 'LAST ERROR'],
      instance.nodes.map((node) => {
        const system = node.context?.system as { last_error?: unknown } | undefined
        const lastError = typeof system?.last_error === 'string' ? system.last_error.slice(0, 60) : ''
        return [
          node.id,
          node.status,
          String(node.failCount),
          String(node.attempt),
          time(node.updatedAtMs),
          time(node.nextAttemptAtMs),
          lastError,
        ]
      }),
    ),
  ].join('\n')

const scheduleRow = (schedule: Schedule): string[] => [
  schedule.name,
  schedule.expression,
  schedule.timezone ?? 'UTC',
  schedule.workflowType,
  schedule.enabled ? 'yes' : 'no',
  schedule.nextFireAtMs === undefined ? '-' : time(schedule.nextFireAtMs),
]

const SCHEDULE_HEADERS = ['NAME', 'EXPRESSION', 'TIME ZONE', 'TYPE', 'ENABLED', 'NEXT FIRING']

interface HistoryEntry {
  seq: number
  atMs: number
  kind: string
  nodeId?: string
  status?: string
  attempt?: number
  durationMs?: number
  eventTs?: number
  superseded?: boolean
  errorClass?: string
  message?: string
  code?: string
  origin?: string
}

interface HistoryPage {
  items: HistoryEntry[]
  cursor?: string
  dropped: number
}

const HISTORY_HEADERS = ['SEQ', 'TIME', 'KIND', 'NODE', 'DETAIL']

/** What an entry says besides its kind and node, on one line. */
const historyDetail = (entry: HistoryEntry): string =>
  [
    entry.status,
    entry.attempt !== undefined && entry.attempt !== 1 ? `attempt ${entry.attempt}` : undefined,
    entry.durationMs !== undefined ? `${(entry.durationMs / 1000).toFixed(1)} s` : undefined,
    entry.eventTs !== undefined ? `eventTs ${entry.eventTs}` : undefined,
    entry.superseded ? 'superseded' : undefined,
    entry.code,
    entry.errorClass !== undefined ? `${entry.errorClass}: ${entry.message ?? ''}` : entry.message,
    entry.origin !== undefined ? `origin ${entry.origin}` : undefined,
  ]
    .filter((part) => part !== undefined && part !== '')
    .join(', ') || '-'

const EXIT_CODES_HELP = `
Exit codes: 0 ok, 2 wrong usage or a request the API refused as invalid (400), 3 not found (404),
4 conflict (409, 410), 5 the API failed or cannot be reached, 6 credentials refused (401/403), 1 anything else.`

/** Builds the `tickflow` program; `run` resolves with the exit code. */
export const createProgram = (io: CliIo) => {
  const program = new Command('tickflow')
  let exitCode: ExitCode = ExitCode.ok

  program
    .description('Look at and steer tickflow workflow instances through the HTTP API (local or deployed).')
    .addOption(new Option('--api <url>', 'the API base URL').env('TICKFLOW_API').default(DEFAULT_API_URL))
    .addOption(new Option('--token <token>', 'send Authorization: Bearer <token> (JWT auth)').env('TICKFLOW_TOKEN'))
    .addOption(new Option('--iam', 'sign requests with AWS SigV4 (IAM auth), credentials from the AWS chain'))
    .addOption(new Option('--region <region>', 'the region to sign for (default: from the URL, or AWS_REGION)'))
    .option('--json', 'print the API answer as JSON instead of a table')
    .option('--timeout <seconds>', 'per request', '60')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(tickflow --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })

  const globals = (command: Command): GlobalOptions => command.optsWithGlobals() as GlobalOptions

  const clientOf = (options: GlobalOptions): ApiClient => {
    if (options.token !== undefined && options.iam) {
      throw new CliError('--token and --iam exclude each other', ExitCode.usage, 'INVALID_ARGUMENT')
    }
    let auth: Auth = { kind: 'none' }
    if (options.token !== undefined) auth = { kind: 'bearer', token: options.token }
    if (options.iam) {
      let region = options.region ?? io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION
      try {
        region = options.region ?? regionOfApiUrl(new URL(options.api)) ?? region
      } catch {
        // The URL is checked by the client.
      }
      if (region === undefined) {
        throw new CliError(
          '--iam needs a region: --region, AWS_REGION, or an execute-api URL',
          ExitCode.usage,
          'NO_REGION',
        )
      }
      auth = { kind: 'sigv4', sign: sigV4Signer(region) }
    }
    const timeoutSeconds = wholeNumber('--timeout', 1, 3600)(options.timeout)
    return new ApiClient({ baseUrl: options.api, auth, timeoutMs: timeoutSeconds * 1000 })
  }

  /** Runs a command's body with its client; prints JSON or the text the body returns. */
  const action =
    <A extends unknown[]>(
      body: (client: ApiClient, options: GlobalOptions, ...args: A) => Promise<[unknown, string]>,
    ) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command
      const options = globals(command)
      const [answer, text] = await body(clientOf(options), options, ...(args.slice(0, -1) as A))
      io.stdout(`${options.json ? JSON.stringify(answer, null, 2) : text}\n`)
    }

  const id = (value: string) => encodeURIComponent(value)

  program
    .command('list')
    .description('list instances, newest first')
    .option('-t, --type <workflowType>', 'only this workflow type')
    .option('-s, --status <statuses>', 'only these statuses, comma-separated (running,failed,…)')
    .option('-b, --business-id <id>', 'only this business id')
    .option('-n, --limit <n>', 'at most this many (1-1000)', wholeNumber('--limit', 1, 1000))
    .option('--order <order>', 'asc or desc (default desc)')
    .option('--cursor <cursor>', 'the next page, from a previous list')
    .action(
      action(async (client, _options, local: Record<string, string | number | undefined>) => {
        const page = await client.json<{ items: Instance[]; cursor?: string }>('GET', '/workflows', {
          query: {
            workflowType: local.type,
            status: local.status,
            businessId: local.businessId,
            limit: local.limit,
            order: local.order,
            cursor: local.cursor,
          },
        })
        const more = page.cursor ? `\n\nmore: tickflow list --cursor ${page.cursor}` : ''
        return [page, `${instanceTable(page.items)}${more}`]
      }),
    )

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
        const result = await client.json<{ instanceId: string; status: string; created: boolean }>(
          'POST',
          '/workflows',
          {
            body: {
              workflowType,
              ...(typeof local.context === 'string' ? { context: parseJsonObject(local.context, '--context') } : {}),
              ...(typeof local.businessId === 'string' ? { businessId: local.businessId } : {}),
              ...(typeof local.id === 'string' ? { id: local.id } : {}),
              run: local.run !== false,
            },
          },
        )
        return [result, `${result.instanceId} ${result.status}${result.created ? '' : ' (already existed)'}`]
      }),
    )

  program
    .command('get')
    .description('one instance with every node')
    .argument('<instanceId>')
    .option('-w, --wait [seconds]', 'wait until it is completed, failed or canceled (at most 25 s)')
    .action(
      action(async (client, _options, instanceId: string, local: { wait?: string | boolean }) => {
        const query =
          local.wait === undefined
            ? {}
            : {
                wait: 'terminal',
                ...(typeof local.wait === 'string' ? { timeoutSeconds: wholeNumber('--wait', 1, 25)(local.wait) } : {}),
              }
        const instance = await client.json<Instance>('GET', `/workflows/${id(instanceId)}`, { query })
        return [instance, instanceText(instance)]
      }),
    )

  program
    .command('graph')
    .description("an instance's graph as Mermaid, with each node's status")
    .argument('<instanceId>')
    .action(
      action(async (client, options, instanceId: string) => {
        const path = `/workflows/${id(instanceId)}/graph`
        if (options.json) {
          return [await client.json('GET', path, { query: { format: 'json' } }), '']
        }
        const answer = await client.request('GET', path)
        return [undefined, answer.text.trimEnd()]
      }),
    )

  program
    .command('event')
    .description("send an external event to a node (stored as the node's node_event)")
    .argument('<instanceId>')
    .argument('<nodeId>')
    .option('-c, --content <json>', 'the event content, any JSON (default null)')
    .option('--ts <seconds>', 'the event version, Unix seconds (default now)', wholeNumber('--ts', 0, 2 ** 40))
    .action(
      action(async (client, _options, instanceId: string, nodeId: string, local: { content?: string; ts?: number }) => {
        const result = await client.json<{ eventTs: number; dueAtMs: number }>(
          'POST',
          `/workflows/${id(instanceId)}/nodes/${id(nodeId)}/events`,
          {
            body: {
              eventTs: local.ts ?? Math.floor(Date.now() / 1000),
              content: local.content === undefined ? null : parseJson(local.content, '--content'),
            },
          },
        )
        return [result, `event ${result.eventTs} stored for ${nodeId}; the instance is due at ${time(result.dueAtMs)}`]
      }),
    )

  program
    .command('restart')
    .description('restart a failed or canceled instance, or one node and its descendants')
    .argument('<instanceId>')
    .argument('[nodeId]', 'restart only this node (and what follows it)')
    .option('--force', 'a node of a completed, failed or canceled instance')
    .option('--reset-counters', 'set fail counts and creation times back')
    .option('-c, --context <json>', 'replace the instance input (instance restart only)')
    .option('--no-run', 'leave it to the tick instead of running a pass now')
    .action(
      action(
        async (
          client,
          _options,
          instanceId: string,
          nodeId: string | undefined,
          local: { force?: boolean; resetCounters?: boolean; context?: string; run?: boolean },
        ) => {
          const common = {
            ...(local.resetCounters ? { resetCounters: true } : {}),
            ...(local.run === false ? { run: false } : {}),
          }
          if (nodeId !== undefined && local.context !== undefined) {
            throw new CliError(
              '--context replaces the input of an instance restart, not of a node restart',
              2,
              'INVALID_ARGUMENT',
            )
          }
          const result = await client.json<{ instanceId: string; status: string; changed: boolean }>(
            'POST',
            nodeId === undefined
              ? `/workflows/${id(instanceId)}/restart`
              : `/workflows/${id(instanceId)}/nodes/${id(nodeId)}/restart`,
            {
              body:
                nodeId === undefined
                  ? {
                      ...common,
                      ...(local.context === undefined ? {} : { context: parseJsonObject(local.context, '--context') }),
                    }
                  : { ...common, ...(local.force ? { force: true } : {}) },
            },
          )
          return [result, `${result.instanceId} ${result.status}`]
        },
      ),
    )

  program
    .command('cancel')
    .description('cancel an instance and every node that has not finished')
    .argument('<instanceId>')
    .action(
      action(async (client, _options, instanceId: string) => {
        const result = await client.json<{ instanceId: string; status: string; changed: boolean }>(
          'POST',
          `/workflows/${id(instanceId)}/cancel`,
        )
        return [result, `${result.instanceId} ${result.status}${result.changed ? '' : ' (already canceled)'}`]
      }),
    )

  program
    .command('history')
    .description("an instance's history, oldest first: node status changes, events, errors, restarts, cancels")
    .argument('<instanceId>')
    .option('-n, --limit <n>', 'at most this many entries (1-500, default 100)', wholeNumber('--limit', 1, 500))
    .option('--cursor <cursor>', 'the next page, from a previous history')
    .action(
      action(async (client, _options, instanceId: string, local: { limit?: number; cursor?: string }) => {
        const page = await client.json<HistoryPage>('GET', `/workflows/${id(instanceId)}/history`, {
          query: { limit: local.limit, cursor: local.cursor },
        })
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

  const schedules = program.command('schedules').description('recurring schedules that start workflows')

  schedules
    .command('list', { isDefault: true })
    .description('every schedule, with its next firing')
    .action(
      action(async (client) => {
        const answer = await client.json<{ items: Schedule[] }>('GET', '/schedules')
        return [
          answer,
          answer.items.length === 0 ? 'no schedules' : table(SCHEDULE_HEADERS, answer.items.map(scheduleRow)),
        ]
      }),
    )

  schedules
    .command('get')
    .description('one schedule')
    .argument('<name>')
    .action(
      action(async (client, _options, name: string) => {
        const schedule = await client.json<Schedule>('GET', `/schedules/${id(name)}`)
        return [
          schedule,
          fields([
            ['schedule', schedule.name],
            ['expression', schedule.expression],
            ['time zone', schedule.timezone ?? 'UTC'],
            ['starts', schedule.workflowType],
            ['context', JSON.stringify(schedule.context)],
            ['business id', schedule.businessId],
            ['enabled', schedule.enabled ? 'yes' : 'no'],
            ['description', schedule.description],
            ['next firing', schedule.nextFireAtMs === undefined ? '-' : time(schedule.nextFireAtMs)],
          ]),
        ]
      }),
    )

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
        const schedule = await client.json<Schedule>('POST', '/schedules', {
          body: {
            name,
            expression: local.expression,
            workflowType: local.type,
            ...(typeof local.timezone === 'string' ? { timezone: local.timezone } : {}),
            ...(typeof local.context === 'string' ? { context: parseJsonObject(local.context, '--context') } : {}),
            ...(typeof local.businessId === 'string' ? { businessId: local.businessId } : {}),
            ...(typeof local.description === 'string' ? { description: local.description } : {}),
            enabled: local.disabled !== true,
          },
        })
        return [schedule, `schedule ${schedule.name} stored${schedule.enabled ? '' : ' (disabled)'}`]
      }),
    )

  schedules
    .command('delete')
    .description('delete a schedule (instances it started are not touched)')
    .argument('<name>')
    .action(
      action(async (client, _options, name: string) => {
        await client.request('DELETE', `/schedules/${id(name)}`)
        return [{ deleted: name }, `schedule ${name} deleted`]
      }),
    )

  addCallbackCommands(program, action, io)

  const report = (error: unknown, json: boolean): ExitCode => {
    const cliError =
      error instanceof CliError
        ? error
        : new CliError(error instanceof Error ? error.message : String(error), ExitCode.internal, 'INTERNAL')
    io.stderr(json ? `${JSON.stringify(cliError.toJSON())}\n` : `tickflow: ${cliError.message}\n`)
    return cliError.exitCode
  }

  return {
    program,
    run: async (argv: readonly string[]): Promise<ExitCode> => {
      const json = argv.includes('--json')
      try {
        await program.parseAsync([...argv], { from: 'user' })
      } catch (error) {
        if (error instanceof CommanderError) {
          // --help and --version end here too, with code 0; what commander printed stays as it is.
          return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage
        }
        exitCode = report(error, json)
      }
      return exitCode
    },
  }
}

/** Runs `tickflow argv…` and resolves with its exit code. */
export const runCli = (argv: readonly string[], io: CliIo): Promise<ExitCode> => createProgram(io).run(argv)
