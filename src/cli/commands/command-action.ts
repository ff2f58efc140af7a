import type { ApiClient } from '../../api-client/api-client.js'
import type { GlobalOptions } from '../api-connection.js'

/** A command's work: the API answer (printed with --json) and its text (printed otherwise). */
export type CommandBody<A extends unknown[]> = (
  client: ApiClient,
  options: GlobalOptions,
  ...args: A
) => Promise<[answer: unknown, text: string]>

/** Turns a command's work into a commander action: the client, the output, and the failures as CliErrors. */
export type Action = <A extends unknown[]>(body: CommandBody<A>) => (...args: unknown[]) => Promise<void>
