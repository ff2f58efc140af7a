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
  const response = await fetch(apiUrl(path, options.query), {
    method,
    headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
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

// ---- shapes the dashboard reads (the API's OpenAPI document has them all) -------------------------------------

import type { z } from 'zod'
import type {
  historyResponseSchema,
  instanceDetailSchema,
  listResponseSchema,
  scheduleSchema,
  workflowTypeSchema,
} from '../schemas/http-api.js'
import {
  INSTANCE_STATUSES,
  type InstanceStatus,
  TERMINAL_INSTANCE_STATUSES,
  TERMINAL_NODE_STATUSES,
} from '../schemas/statuses.js'

export { INSTANCE_STATUSES, type InstanceStatus }
export const TERMINAL = new Set<string>(TERMINAL_INSTANCE_STATUSES)
/** Node statuses that do not change any more (a skipped node included). */
export const TERMINAL_NODE = new Set<string>(TERMINAL_NODE_STATUSES)

// The API's answers, typed from the same zod schemas the API validates and documents them with (type-only imports:
// nothing of zod reaches the bundle), so the dashboard cannot drift from the API.
export type InstanceList = z.output<typeof listResponseSchema>
export type InstanceSummary = InstanceList['items'][number]
export type InstanceDetail = z.output<typeof instanceDetailSchema>
export type NodeDetail = InstanceDetail['nodes'][number]
export type WorkflowType = z.output<typeof workflowTypeSchema>
export type Schedule = z.output<typeof scheduleSchema>
export type HistoryPage = z.output<typeof historyResponseSchema>
export type HistoryEntry = HistoryPage['items'][number]

export interface DeadLetterQueue {
  queue: string
  deadLetterQueue: string
  messages: { messageId: string; reason: string; source?: string; sentAtMs: number; body: string }[]
}
