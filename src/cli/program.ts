import { Command, type Command as CommanderCommand, CommanderError, Option } from 'commander'
import { connect, type GlobalOptions } from './api-connection.js'
import { registerCallbackCommands } from './commands/callback-commands.js'
import type { Action, CommandBody } from './commands/command-action.js'
import { registerInstanceCommands } from './commands/instance-commands.js'
import { registerScheduleCommands } from './commands/schedule-commands.js'
import { CliError, ExitCode } from './exit-codes.js'

export const DEFAULT_API_URL = 'http://127.0.0.1:3000'

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
}

const EXIT_CODES_HELP = `
Exit codes: 0 ok, 2 wrong usage or a request the API refused as invalid (400), 3 not found (404),
4 conflict (409, 410), 5 the API failed or cannot be reached, 6 credentials refused (401/403), 1 anything else.`

/** The program with its global options; the commands are added by their modules. */
const baseProgram = (io: CliIo): Command =>
  new Command('tickflow')
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

/** Runs a command's work with a client for the global options; prints JSON or the text the work returns. */
const actionFor =
  (io: CliIo): Action =>
  <A extends unknown[]>(body: CommandBody<A>) =>
  async (...args: unknown[]) => {
    const command = args[args.length - 1] as CommanderCommand
    const options = command.optsWithGlobals() as GlobalOptions
    const { client, failure } = connect(options, io.env)
    let answer: unknown
    let text: string
    try {
      ;[answer, text] = await body(client, options, ...(args.slice(0, -1) as A))
    } catch (error) {
      throw failure(error)
    }
    io.stdout(`${options.json ? JSON.stringify(answer, null, 2) : text}\n`)
  }

/** What the CLI prints for a failure, and the exit code it ends with. */
const reportFailure = (io: CliIo, error: unknown, json: boolean): ExitCode => {
  const cliError =
    error instanceof CliError
      ? error
      : new CliError(error instanceof Error ? error.message : String(error), ExitCode.internal, 'INTERNAL')
  io.stderr(json ? `${JSON.stringify(cliError.toJSON())}\n` : `tickflow: ${cliError.message}\n`)
  return cliError.exitCode
}

/** Builds the `tickflow` program; `run` resolves with the exit code. */
export const createProgram = (io: CliIo) => {
  const program = baseProgram(io)
  const action = actionFor(io)
  registerInstanceCommands(program, action)
  registerScheduleCommands(program, action)
  registerCallbackCommands(program, action, io)
  return {
    program,
    run: async (argv: readonly string[]): Promise<ExitCode> => {
      try {
        await program.parseAsync([...argv], { from: 'user' })
        return ExitCode.ok
      } catch (error) {
        // --help and --version end here too, with code 0; what commander printed stays as it is.
        if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage
        return reportFailure(io, error, argv.includes('--json'))
      }
    },
  }
}

/** Runs `tickflow argv…` and resolves with its exit code. */
export const runCli = (argv: readonly string[], io: CliIo): Promise<ExitCode> => createProgram(io).run(argv)
