/** The dashboard's view of the HTTP API: relative URLs, JSON, and the API's refusals as errors worth showing. */

export class ApiRefusal extends Error {
  override readonly name = 'ApiRefusal'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
  }

  /** What the page shows: the status, the API's code and its message. */
  describe(): string {
    return `${this.status} ${this.code}: ${this.message}`
  }
}

/** The API is wherever the page is: `/` locally, `/<stage>/` or a base path when deployed. */
const base = (): URL => new URL('.', window.location.href)

export const apiUrl = (path: string, query: Record<string, string | undefined> = {}): string => {
  const url = new URL(path, base())
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') url.searchParams.set(name, value)
  }
  return url.href
}

export const request = async <T>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { query?: Record<string, string | undefined>; body?: unknown; text?: boolean } = {},
): Promise<T> => {
  // Every change says it comes from a script (README, "Security"): a form or another site's page cannot send this.
  const headers: Record<string, string> = method === 'GET' ? {} : { 'x-requested-with': 'tickflow-dashboard' }
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(apiUrl(path, options.query), {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  })
  const text = await response.text()
  if (!response.ok) {
    let parsed: { error?: { code?: string; message?: string; details?: Record<string, unknown> }; message?: string }
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = { message: text }
    }
    throw new ApiRefusal(
      response.status,
      parsed.error?.code ?? 'HTTP_ERROR',
      parsed.error?.message ?? parsed.message ?? response.statusText,
      parsed.error?.details ?? {},
    )
  }
  if (options.text) return text as T
  return (text === '' ? undefined : JSON.parse(text)) as T
}

export const get = <T>(path: string, query?: Record<string, string | undefined>) =>
  request<T>('GET', path, query ? { query } : {})
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body === undefined ? {} : { body })
export const del = <T>(path: string) => request<T>('DELETE', path)

// ---- shapes the dashboard reads: the API's own response types (src/schemas/http-api.ts) ---------------------

import type {
  CountResponse,
  HistoryEntryResponse,
  HistoryResponse,
  InstanceDetailResponse,
  InstanceListResponse,
  InstanceSummaryResponse,
  NodeDetailResponse,
  OperationResponse,
  ScheduleResponse,
  WorkflowTypeResponse,
} from '../schemas/http-api.js'
import { INSTANCE_STATUSES, type InstanceStatus, TERMINAL_INSTANCE_STATUSES } from '../schemas/statuses.js'

export { INSTANCE_STATUSES, type InstanceStatus }
export const TERMINAL = new Set<string>(TERMINAL_INSTANCE_STATUSES)

// Type-only imports: nothing of zod reaches the bundle, and the dashboard cannot drift from the API.
export type InstanceList = InstanceListResponse
export type InstanceSummary = InstanceSummaryResponse
export type InstanceDetail = InstanceDetailResponse
export type NodeDetail = NodeDetailResponse
export type WorkflowType = WorkflowTypeResponse
export type Schedule = ScheduleResponse
export type HistoryPage = HistoryResponse
export type HistoryEntry = HistoryEntryResponse
export type Count = CountResponse
export type Operation = OperationResponse

export interface DeadLetterQueue {
  queue: string
  deadLetterQueue: string
  messages: { messageId: string; reason: string; source?: string; sentAtMs: number; body: string }[]
}

// ---- calls the views share ---------------------------------------------------------------------------------

const instancePath = (id: string): string => `workflows/${encodeURIComponent(id)}`

export const getInstance = (id: string) => get<InstanceDetail>(instancePath(id))

/** The history, oldest first: up to `pages` pages of 500 entries (the CLI pages the rest). */
export const getHistory = async (
  id: string,
  pages = 4,
): Promise<{ entries: HistoryEntry[]; dropped: number; more: boolean }> => {
  const entries: HistoryEntry[] = []
  let dropped = 0
  let cursor: string | undefined
  for (let page = 0; page < pages; page++) {
    const answer = await get<HistoryPage>(`${instancePath(id)}/history`, { limit: '500', cursor })
    entries.push(...answer.items)
    dropped = answer.dropped
    cursor = answer.cursor
    if (cursor === undefined) break
  }
  return { entries, dropped, more: cursor !== undefined }
}

export const cancelInstance = (id: string) => post<Operation>(`${instancePath(id)}/cancel`)

export const restartInstance = (id: string, body: { context?: Record<string, unknown>; resetCounters?: boolean }) =>
  post<Operation>(`${instancePath(id)}/restart`, body)

export const restartNode = (id: string, node: string, body: { force?: boolean; resetCounters?: boolean }) =>
  post<Operation>(`${instancePath(id)}/nodes/${encodeURIComponent(node)}/restart`, body)

export const sendNodeEvent = (id: string, node: string, body: { eventTs: number; content: unknown }) =>
  post<{ eventTs: number; dueAtMs: number }>(`${instancePath(id)}/nodes/${encodeURIComponent(node)}/events`, body)
