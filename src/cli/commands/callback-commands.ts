import type { Command } from 'commander'
import type { CallbackCompletionInput } from '../../schemas/callbacks.js'
import type { LocalEventsResponse } from '../../schemas/http-api.js'
import { CliError, ExitCode } from '../exit-codes.js'
import { table } from '../format.js'
import { parseJson, wholeNumber } from '../options.js'
import type { Action } from './command-action.js'

/** `--failure` takes `{"error": …, "cause": …}`, or a bare error name. */
const failureOf = (text: string): { status: 'failure'; error?: string; cause?: string } => {
  const trimmed = text.trim()
  const value = trimmed.startsWith('{') ? parseJson(trimmed, '--failure') : trimmed
  if (typeof value === 'string') return { status: 'failure', ...(value ? { error: value } : {}) }
  const { error, cause } = value as { error?: unknown; cause?: unknown }
  return {
    status: 'failure',
    ...(typeof error === 'string' ? { error } : {}),
    ...(typeof cause === 'string' ? { cause } : {}),
  }
}

type BusEvent = LocalEventsResponse['items'][number]

const eventLine = (event: BusEvent): string[] => [
  String(event.seq),
  event.time,
  event['detail-type'].replace(/^Workflow /, '').replace(/ Status Change$/, ''),
  event.detail.status,
  event.detail.instanceId,
  event.detail.nodeId ?? '-',
  [event.detail.reason, event.detail.resent ? '(resent)' : undefined].filter(Boolean).join(' ') || '-',
]

const EVENT_HEADERS = ['SEQ', 'TIME', 'KIND', 'STATUS', 'INSTANCE', 'NODE', 'NOTE']
/** The largest `after` the API takes (`GET /_local/events`: up to 15 digits). */
const MAX_SEQ = 999_999_999_999_999
const MAX_COUNT = Number.MAX_SAFE_INTEGER

/** `tickflow callback TOKEN --success JSON | --failure JSON | --heartbeat` and `tickflow events [--follow]`. */
export const registerCallbackCommands = (
  program: Command,
  action: Action,
  io: { stdout: (text: string) => void },
): void => {
  program
    .command('callback')
    .description('complete, fail or keep alive the node a callback token names (the token is the credential)')
    .argument('<token>')
    .option('--success [json]', 'complete it, with this output (any JSON; none by default)')
    .option('--failure <json>', 'fail it: {"error": "Name", "cause": "what happened"}, or an error name')
    .option('--heartbeat', 'say it is still being worked on')
    .action(
      action(
        async (
          client,
          _options,
          token: string,
          local: { success?: string | true; failure?: string; heartbeat?: boolean },
        ) => {
          const chosen = [local.success !== undefined, local.failure !== undefined, local.heartbeat === true]
          if (chosen.filter(Boolean).length !== 1) {
            throw new CliError(
              'give exactly one of --success, --failure, --heartbeat',
              ExitCode.usage,
              'INVALID_ARGUMENT',
            )
          }
          const body: CallbackCompletionInput =
            local.heartbeat === true
              ? { status: 'heartbeat' }
              : local.failure !== undefined
                ? failureOf(local.failure)
                : {
                    status: 'success',
                    ...(typeof local.success === 'string' ? { output: parseJson(local.success, '--success') } : {}),
                  }
          const answer = await client.completeCallback(token, body)
          return [answer, `callback ${answer.status} accepted`]
        },
      ),
    )

  program
    .command('events')
    .description('lifecycle events of the local runtime (npm start), oldest first')
    .option('-f, --follow', 'keep watching for new events')
    .option('--after <seq>', 'only events after this one', wholeNumber('--after', 0, MAX_SEQ), 0)
    .option('--count <n>', 'with --follow: stop after this many events', wholeNumber('--count', 0, MAX_COUNT))
    .action(
      action(async (client, options, local: { follow?: boolean; after: number; count?: number }) => {
        let after = local.after
        const wanted = local.count ?? Number.POSITIVE_INFINITY
        const seen: BusEvent[] = []
        for (let header = !options.json; ; ) {
          const page = await client.localEvents({ after, waitSeconds: local.follow ? 20 : 0 })
          after = page.next
          const fresh = page.items.slice(0, wanted - seen.length)
          seen.push(...fresh)
          if (!local.follow) return [page, table(EVENT_HEADERS, page.items.map(eventLine))]
          // Following prints as events arrive (one JSON line each with --json), rather than at the end.
          for (const event of fresh) {
            if (header) io.stdout(`${table(EVENT_HEADERS, [eventLine(event)])}\n`)
            else
              io.stdout(
                `${
                  options.json
                    ? JSON.stringify(event)
                    : table(EVENT_HEADERS, [eventLine(event)])
                        .split('\n')
                        .pop()
                }\n`,
              )
            header = false
          }
          if (seen.length >= wanted) return [{ count: seen.length, next: after }, `${seen.length} events`]
        }
      }),
    )
}
