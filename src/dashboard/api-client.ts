/**
 * The dashboard's calls of the HTTP API, through the one typed client the CLI uses too (`src/api-client/`): relative
 * to wherever the page is, and marked as coming from a script on every change (README, "Security": a form or another
 * site's page cannot send that header).
 */
import { ApiClient } from '../api-client/api-client.js'
import type {
  CountResponse,
  DeadLetterQueue,
  HistoryEntry,
  HistoryPage,
  InstanceDetail,
  InstanceList,
  InstanceSummary,
  LocalEventsResponse,
  NodeDetail,
  Schedule,
  WorkflowType,
} from '../schemas/http-api.js'
import {
  INSTANCE_STATUSES,
  type InstanceStatus,
  isTerminalInstanceStatus,
  isTerminalNodeStatus,
} from '../schemas/statuses.js'

export { ApiRefusal } from '../api-client/api-failures.js'
// Type-only imports: nothing of zod reaches the bundle, and the dashboard cannot drift from the API.
export type {
  DeadLetterQueue,
  HistoryEntry,
  HistoryPage,
  InstanceDetail,
  InstanceList,
  InstanceSummary,
  NodeDetail,
  Schedule,
  WorkflowType,
}
export { INSTANCE_STATUSES, type InstanceStatus, isTerminalInstanceStatus, isTerminalNodeStatus }
export type Count = CountResponse
/** An event of the local runtime's bus, as `GET /_local/events` answers it. */
export type BusEvent = LocalEventsResponse['items'][number]

/** The API is wherever the page is: `/` locally, `/<stage>/` or a base path when deployed. */
export const client = new ApiClient({
  baseUrl: new URL('.', window.location.href),
  authorize: (request) =>
    request.method === 'GET' ? request.headers : { ...request.headers, 'x-requested-with': 'tickflow-dashboard' },
})

type Query = Record<string, string | undefined>
const given = (query: Query = {}): Query =>
  Object.fromEntries(Object.entries(query).filter(([, value]) => value !== undefined && value !== ''))

/** A call of a route the views name themselves; the answer is JSON (or the text, with `text`). */
export const request = async <T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { query?: Query; body?: unknown; text?: boolean } = {},
): Promise<T> => {
  const query = given(options.query)
  const init = { query, ...(options.body === undefined ? {} : { body: options.body }) }
  if (options.text) return (await client.request(method, path, init)).text as T
  return client.json<T>(method, path, init)
}

export const get = <T>(path: string, query?: Query) => request<T>('GET', path, query ? { query } : {})
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body === undefined ? {} : { body })
export const del = <T>(path: string) => request<T>('DELETE', path)

// ---- calls the views share ---------------------------------------------------------------------------------

export const getInstance = (id: string) => client.getInstance(id)
/** The local bus's lifecycle events after `after`, waiting up to `waitSeconds` for one. */
export const localEvents = (after: number, waitSeconds: number) => client.localEvents({ after, waitSeconds })

/** The history, oldest first: up to `pages` pages of 500 entries (the CLI pages the rest). */
export const getHistory = async (
  id: string,
  pages = 4,
): Promise<{ entries: HistoryEntry[]; dropped: number; more: boolean }> => {
  const entries: HistoryEntry[] = []
  let dropped = 0
  let cursor: string | undefined
  for (let page = 0; page < pages; page++) {
    const answer = await client.instanceHistory(id, { limit: 500, cursor })
    entries.push(...answer.items)
    dropped = answer.dropped
    cursor = answer.cursor
    if (cursor === undefined) break
  }
  return { entries, dropped, more: cursor !== undefined }
}

export const cancelInstance = (id: string) => client.cancelInstance(id)

export const restartInstance = (id: string, body: { context?: Record<string, unknown>; resetCounters?: boolean }) =>
  client.restartInstance(id, body)

export const restartNode = (id: string, node: string, body: { force?: boolean; resetCounters?: boolean }) =>
  client.restartNode(id, node, body)

export const sendNodeEvent = (id: string, node: string, body: { eventTs: number; content: unknown }) =>
  client.sendEvent(id, node, body)
