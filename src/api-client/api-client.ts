import type { CallbackAnswer, CallbackCompletionInput } from '../schemas/callbacks.js'
import type {
  CountResponse,
  CreateBody,
  CreateResponse,
  DeadLetterList,
  EventBody,
  EventResponse,
  GraphResponse,
  HistoryPage,
  InstanceDetail,
  InstanceList,
  LocalEventsResponse,
  OperationResponse,
  PassResultResponse,
  PutScheduleBody,
  RedriveBody,
  RedriveResponse,
  RestartInstanceBody,
  RestartNodeBody,
  RunBody,
  RunBusyResponse,
  Schedule,
  ScheduleList,
  WorkflowType,
  WorkflowTypeList,
} from '../schemas/http-api.js'
import { ApiAnswerNotJson, ApiUnreachable, refusalOf } from './api-failures.js'

/**
 * The one typed client of the tickflow HTTP API, for the CLI (Node) and the dashboard (the browser, bundled with
 * esbuild): fetch only, no Node module, and the answers typed from `src/schemas/http-api.ts` with type-only imports.
 * What differs between its users is injected: where the API is, how a request is authorised (nothing, a bearer token,
 * a SigV4 signature), how long to wait.
 */

/** A request as it is about to be sent, for `authorize` to sign or decorate. */
export interface OutgoingRequest {
  method: string
  url: URL
  headers: Record<string, string>
  body?: string
}

export interface ApiClientOptions {
  /** The API's root (a stage path is kept: routes are resolved below it). */
  baseUrl: URL
  /** The headers to send instead of `request.headers`: the same ones with an authorization added. */
  authorize?: (request: OutgoingRequest) => Promise<Record<string, string>> | Record<string, string>
  /** Per request; none when absent. */
  timeoutMs?: number
}

type QueryValue = string | number | boolean | undefined
type Query = Record<string, QueryValue>

export interface InstanceFilters {
  workflowType?: string | undefined
  /** One status or several, comma-separated. */
  status?: string | undefined
  businessId?: string | undefined
  createdFromMs?: string | number | undefined
  createdToMs?: string | number | undefined
  parked?: boolean | undefined
}

export interface ListQuery extends InstanceFilters {
  limit?: string | number | undefined
  cursor?: string | undefined
  order?: string | undefined
}

export interface Answer {
  status: number
  contentType: string
  text: string
}

/** One path segment: an id as the URL carries it. */
const segment = (value: string): string => encodeURIComponent(value)

export class ApiClient {
  readonly #base: URL
  readonly #authorize: ApiClientOptions['authorize']
  readonly #timeoutMs: number | undefined

  constructor(options: ApiClientOptions) {
    const base = new URL(options.baseUrl.href)
    if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`
    this.#base = base
    this.#authorize = options.authorize
    this.#timeoutMs = options.timeoutMs
  }

  // ---- instances ------------------------------------------------------------------------------------------------

  listInstances(query: ListQuery = {}): Promise<InstanceList> {
    return this.json('GET', 'workflows', { query: { ...query } })
  }

  countInstances(query: InstanceFilters = {}): Promise<CountResponse> {
    return this.json('GET', 'workflows/count', { query: { ...query } })
  }

  createInstance(body: CreateBody): Promise<CreateResponse> {
    return this.json('POST', 'workflows', { body })
  }

  /** With `wait: 'terminal'`, the API answers once the instance is terminal or the timeout is up. */
  getInstance(
    id: string,
    query: { wait?: 'terminal'; timeoutSeconds?: string | number | undefined } = {},
  ): Promise<InstanceDetail> {
    return this.json('GET', `workflows/${segment(id)}`, { query })
  }

  instanceHistory(
    id: string,
    query: { limit?: string | number | undefined; cursor?: string | undefined } = {},
  ): Promise<HistoryPage> {
    return this.json('GET', `workflows/${segment(id)}/history`, { query })
  }

  /** The instance's Mermaid flowchart, as text. */
  async instanceGraph(id: string): Promise<string> {
    return (await this.request('GET', `workflows/${segment(id)}/graph`)).text
  }

  instanceGraphJson(id: string): Promise<GraphResponse> {
    return this.json('GET', `workflows/${segment(id)}/graph`, { query: { format: 'json' } })
  }

  /** A pass's result, or (202) that another pass holds the instance. */
  runInstance(id: string, body?: RunBody): Promise<PassResultResponse | RunBusyResponse> {
    return this.json('POST', `workflows/${segment(id)}/run`, body === undefined ? {} : { body })
  }

  cancelInstance(id: string): Promise<OperationResponse> {
    return this.json('POST', `workflows/${segment(id)}/cancel`)
  }

  restartInstance(id: string, body?: RestartInstanceBody): Promise<OperationResponse> {
    return this.json('POST', `workflows/${segment(id)}/restart`, body === undefined ? {} : { body })
  }

  // ---- nodes ----------------------------------------------------------------------------------------------------

  restartNode(id: string, nodeId: string, body?: RestartNodeBody): Promise<OperationResponse> {
    return this.json(
      'POST',
      `workflows/${segment(id)}/nodes/${segment(nodeId)}/restart`,
      body === undefined ? {} : { body },
    )
  }

  sendEvent(id: string, nodeId: string, body: EventBody): Promise<EventResponse> {
    return this.json('POST', `workflows/${segment(id)}/nodes/${segment(nodeId)}/events`, { body })
  }

  // ---- schedules ------------------------------------------------------------------------------------------------

  listSchedules(): Promise<ScheduleList> {
    return this.json('GET', 'schedules')
  }

  getSchedule(name: string): Promise<Schedule> {
    return this.json('GET', `schedules/${segment(name)}`)
  }

  putSchedule(body: PutScheduleBody): Promise<Schedule> {
    return this.json('POST', 'schedules', { body })
  }

  async deleteSchedule(name: string): Promise<void> {
    await this.request('DELETE', `schedules/${segment(name)}`)
  }

  // ---- workflow types and documentation -------------------------------------------------------------------------

  workflowTypes(): Promise<WorkflowTypeList> {
    return this.json('GET', 'workflow-types')
  }

  workflowType(type: string): Promise<WorkflowType> {
    return this.json('GET', `workflow-types/${segment(type)}`)
  }

  /** Completes, fails or keeps alive the node a callback token names (the token is the only credential it needs). */
  completeCallback(token: string, body: CallbackCompletionInput): Promise<CallbackAnswer> {
    return this.json('POST', `callbacks/${segment(token)}`, { body })
  }

  /** The OpenAPI document: which routes this API serves. */
  openApi(): Promise<{ paths: Record<string, unknown> }> {
    return this.json('GET', 'openapi.json')
  }

  // ---- local only (`npm start`) ---------------------------------------------------------------------------------

  deadLetters(): Promise<DeadLetterList> {
    return this.json('GET', '_local/dead-letters')
  }

  /** Moves dead letters (all, or the named ones) back to the queue they came from. */
  redriveDeadLetters(queue: string, body?: RedriveBody): Promise<RedriveResponse> {
    return this.json('POST', `_local/dead-letters/${segment(queue)}/redrive`, body === undefined ? {} : { body })
  }

  /** The lifecycle events the local bus received after `after`, waiting up to `waitSeconds` for one. */
  localEvents(query: { after?: number; waitSeconds?: number; limit?: number } = {}): Promise<LocalEventsResponse> {
    return this.json('GET', '_local/events', { query })
  }

  // ---- transport ------------------------------------------------------------------------------------------------

  /**
   * One request; `path` is relative to the API's root. Resolves with a 2xx answer; throws ApiRefusal for another
   * status and ApiUnreachable when nothing answered.
   */
  async request(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<Answer> {
    const url = new URL(path, this.#base)
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value))
    }
    const body = options.body === undefined ? undefined : JSON.stringify(options.body)
    const unsigned: Record<string, string> = {
      accept: 'application/json, text/plain',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    }
    const headers = this.#authorize
      ? await this.#authorize({ method, url, headers: unsigned, ...(body === undefined ? {} : { body }) })
      : unsigned
    let response: Response
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(this.#timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(this.#timeoutMs) }),
      })
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError'
      throw new ApiUnreachable(method, url.href, timedOut, { cause: error })
    }
    const text = await response.text()
    if (!response.ok) throw refusalOf(response.status, response.statusText, text)
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', text }
  }

  /** A request whose answer is JSON (nothing for a 204 or an empty body). */
  async json<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
    const answer = await this.request(method, path, options)
    if (answer.status === 204 || answer.text === '') return undefined as T
    try {
      return JSON.parse(answer.text) as T
    } catch (error) {
      throw new ApiAnswerNotJson(method, `/${path}`, { cause: error })
    }
  }
}
