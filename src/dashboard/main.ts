import './style.css'
import {
  ApiRefusal,
  type DeadLetterQueue,
  del,
  get,
  type HistoryEntry,
  type HistoryPage,
  INSTANCE_STATUSES,
  type InstanceDetail,
  type InstanceList,
  type NodeDetail,
  post,
  request,
  type Schedule,
  TERMINAL,
  type WorkflowType,
} from './api-client.js'
import { badge, clear, h, json, localTime, parseJsonObject, time } from './dom.js'
import { eventsView } from './events-view.js'

/**
 * The tickflow dashboard: one page over the HTTP API, routed by the URL's hash (`#/instances`, `#/instances/ID`,
 * `#/types`, `#/schedules`, `#/dead-letters`). Each view is a set of panels, so a panel (an instance's history, shown
 * when the API's OpenAPI document lists its route) can be added without touching the others.
 */

declare const mermaid: {
  initialize(config: Record<string, unknown>): void
  render(id: string, text: string): Promise<{ svg: string }>
}

interface Features {
  /** Routes the API serves, from its OpenAPI document: a panel whose route is missing is not shown. */
  paths: Set<string>
  deadLetters: boolean
  /** The local runtime's lifecycle events (`GET /_local/events`). */
  events: boolean
}

const COUNT_BOUND = 10_000
const REFRESH_MS = 1_500

let features: Features = { paths: new Set(), deadLetters: false, events: false }
let types: WorkflowType[] = []
let stopRefresh: (() => void) | undefined
let graphSeq = 0

const root = document.getElementById('app') as HTMLElement

// ---- shared pieces ------------------------------------------------------------------------------------------------

const message = (kind: 'error' | 'ok' | 'info', text: string): HTMLElement =>
  h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text)

const describeError = (error: unknown): string =>
  error instanceof ApiRefusal ? error.describe() : error instanceof Error ? error.message : String(error)

/** Runs an action the user confirmed, and shows the API's answer or its refusal in `out`. */
const act = async (question: string, out: HTMLElement, action: () => Promise<string>, after?: () => void) => {
  if (!window.confirm(question)) return
  clear(out, message('info', 'working…'))
  try {
    clear(out, message('ok', await action()))
    after?.()
  } catch (error) {
    clear(out, message('error', describeError(error)))
  }
}

const renderGraph = async (target: HTMLElement, text: string): Promise<void> => {
  try {
    graphSeq += 1
    const { svg } = await mermaid.render(`graph-${graphSeq}`, text)
    target.innerHTML = svg // mermaid's own output, rendered with securityLevel 'strict'
  } catch (error) {
    clear(target, message('error', `the graph could not be drawn: ${describeError(error)}`), h('pre', {}, text))
  }
}

const panel = (title: string, ...children: (Node | string | false | undefined)[]): HTMLElement =>
  h('section', { class: 'panel', 'data-panel': title.toLowerCase() }, h('h2', {}, title), ...children)

const field = (label: string, input: HTMLElement): HTMLElement =>
  h('label', { class: 'field' }, h('span', {}, label), input)

const typeSelect = (name: string, value: string | undefined, allowAny: boolean): HTMLSelectElement =>
  h(
    'select',
    { name },
    ...(allowAny ? [h('option', { value: '' }, 'any type')] : []),
    ...types.map((type) => h('option', { value: type.type, selected: type.type === value }, `${type.type}`)),
  ) as HTMLSelectElement

const toMs = (local: string): string | undefined => (local ? String(new Date(local).getTime()) : undefined)
const toLocalInput = (ms: string | undefined): string => {
  if (!ms) return ''
  const d = new Date(Number(ms))
  const offset = d.getTimezoneOffset() * 60_000
  return new Date(d.getTime() - offset).toISOString().slice(0, 16)
}

const countText = (count: { count: number; complete: boolean }): string =>
  count.complete ? count.count.toLocaleString('en') : `${Math.max(count.count, 0).toLocaleString('en')}+`

// ---- instances ----------------------------------------------------------------------------------------------------

const instancesView = async (params: URLSearchParams): Promise<void> => {
  const filters = {
    workflowType: params.get('workflowType') ?? '',
    status: params.get('status') ?? '',
    businessId: params.get('businessId') ?? '',
    createdFromMs: params.get('createdFromMs') ?? '',
    createdToMs: params.get('createdToMs') ?? '',
  }
  const cursor = params.get('cursor') ?? undefined
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'filters' },
    field('Type', typeSelect('workflowType', filters.workflowType, true)),
    field(
      'Status',
      h(
        'select',
        { name: 'status' },
        h('option', { value: '' }, 'any status'),
        ...INSTANCE_STATUSES.map((status) =>
          h('option', { value: status, selected: status === filters.status }, status),
        ),
      ),
    ),
    field('Business id', h('input', { name: 'businessId', value: filters.businessId, placeholder: 'ORDER-1' })),
    field(
      'Created from',
      h('input', { name: 'createdFrom', type: 'datetime-local', value: toLocalInput(filters.createdFromMs) }),
    ),
    field(
      'Created to',
      h('input', { name: 'createdTo', type: 'datetime-local', value: toLocalInput(filters.createdToMs) }),
    ),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', onclick: () => void route() }, 'Refresh'),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const data = new FormData(form as HTMLFormElement)
    const next = new URLSearchParams()
    for (const name of ['workflowType', 'status', 'businessId']) {
      const value = String(data.get(name) ?? '').trim()
      if (value) next.set(name, value)
    }
    const from = toMs(String(data.get('createdFrom') ?? ''))
    const to = toMs(String(data.get('createdTo') ?? ''))
    if (from) next.set('createdFromMs', from)
    if (to) next.set('createdToMs', to)
    window.location.hash = `#/instances?${next}`
  })

  const query = {
    workflowType: filters.workflowType || undefined,
    businessId: filters.businessId || undefined,
    createdFromMs: filters.createdFromMs || undefined,
    createdToMs: filters.createdToMs || undefined,
  }
  const counts = h('div', { class: 'counts', 'aria-label': 'counts by status' })
  const list = h('div', {})
  const out = h('div', {})
  clear(
    root,
    panel('New instance', createForm(out)),
    panel('Instances', form, counts, out, list),
    h('p', { class: 'muted' }, `Counts read at most ${COUNT_BOUND.toLocaleString('en')} index entries each.`),
  )

  const countsOf = INSTANCE_STATUSES.map(async (status) => {
    try {
      const count = await get<{ count: number; complete: boolean }>('workflows/count', { ...query, status })
      return h(
        'a',
        {
          class: `count status-${status}`,
          href: `#/instances?${new URLSearchParams({ ...definedOnly(filters), status })}`,
          'data-status': status,
        },
        h('strong', {}, countText(count)),
        ` ${status}`,
      )
    } catch (error) {
      return h('span', { class: 'count' }, `${status}: ${describeError(error)}`)
    }
  })
  void Promise.all(countsOf).then((chips) => clear(counts, ...chips))

  try {
    const page = await get<InstanceList>('workflows', {
      ...query,
      status: filters.status || undefined,
      limit: '25',
      cursor,
    })
    const rows = page.items.map((item) =>
      h(
        'tr',
        { 'data-id': item.id },
        h('td', {}, h('a', { href: `#/instances/${encodeURIComponent(item.id)}` }, item.id)),
        h('td', {}, item.workflowType),
        h('td', {}, item.businessId ?? ''),
        h('td', {}, badge(item.status)),
        h('td', {}, time(item.createdAtMs)),
      ),
    )
    const pager = h(
      'div',
      { class: 'pager' },
      cursor ? h('a', { href: `#/instances?${new URLSearchParams(definedOnly(filters))}` }, '« first page') : '',
      page.cursor
        ? h(
            'a',
            { href: `#/instances?${new URLSearchParams({ ...definedOnly(filters), cursor: page.cursor })}` },
            'next page »',
          )
        : '',
    )
    clear(
      list,
      rows.length
        ? h(
            'table',
            { class: 'instances' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', {}, 'id'),
                h('th', {}, 'type'),
                h('th', {}, 'business id'),
                h('th', {}, 'status'),
                h('th', {}, 'created'),
              ),
            ),
            h('tbody', {}, ...rows),
          )
        : h('p', { class: 'muted' }, 'No instance matches.'),
      pager,
    )
  } catch (error) {
    clear(list, message('error', describeError(error)))
  }
}

const definedOnly = (values: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(values).filter(([, value]) => value !== ''))

const createForm = (out: HTMLElement): HTMLElement => {
  const type = typeSelect('workflowType', undefined, false)
  const businessId = h('input', { name: 'businessId', placeholder: 'optional' }) as HTMLInputElement
  const context = h('textarea', {
    name: 'context',
    rows: 3,
    placeholder: '{"requester": "ada", "amount": 120}',
  }) as HTMLTextAreaElement
  const form = h(
    'form',
    { class: 'create', 'aria-label': 'new instance' },
    field('Type', type),
    field('Business id', businessId),
    field('Context (JSON)', context),
    h('button', { type: 'submit' }, 'Create'),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void act(`Create a ${type.value} instance?`, out, async () => {
      const body = {
        workflowType: type.value,
        context: parseJsonObject(context.value, 'the context'),
        ...(businessId.value.trim() ? { businessId: businessId.value.trim() } : {}),
      }
      const created = await post<{ instanceId: string }>('workflows', body)
      window.location.hash = `#/instances/${encodeURIComponent(created.instanceId)}`
      return `created ${created.instanceId}`
    })
  })
  return form
}

// ---- one instance -------------------------------------------------------------------------------------------------

const instanceView = async (id: string): Promise<void> => {
  const summary = h('div', {})
  const graph = h('div', { class: 'graph', 'aria-label': 'graph' })
  const nodes = h('div', {})
  const out = h('div', { class: 'action-result', 'aria-live': 'polite' })
  const actions = h('div', { class: 'actions' })
  const history = features.paths.has('/workflows/{id}/history') ? h('div', {}) : undefined
  clear(
    root,
    h('p', {}, h('a', { href: '#/instances' }, '« instances')),
    summary,
    panel('Actions', actions, out),
    panel('Graph', graph),
    panel('Nodes', nodes),
    history && panel('History', history),
  )
  let lastGraph = ''
  let detail: InstanceDetail | undefined
  const refresh = async (): Promise<void> => {
    try {
      detail = await get<InstanceDetail>(`workflows/${encodeURIComponent(id)}`)
    } catch (error) {
      clear(summary, message('error', describeError(error)))
      return
    }
    renderSummary(summary, detail)
    renderNodes(nodes, detail, out, refresh)
    // The actions offered depend on the status: drawn again when it changes, keeping what the user typed.
    if (actions.getAttribute('data-status') !== detail.status) {
      renderActions(actions, detail, out, refresh)
      actions.setAttribute('data-status', detail.status)
    }
    if (history) await renderHistory(history, id)
    const text = await request<string>('GET', `workflows/${encodeURIComponent(id)}/graph`, { text: true }).catch(
      () => '',
    )
    if (text && text !== lastGraph) {
      lastGraph = text
      await renderGraph(graph, text)
    }
  }
  await refresh()
  const timer = window.setInterval(() => {
    if (
      detail &&
      TERMINAL.has(detail.status) &&
      !detail.nodes.some((node) => !TERMINAL.has(node.status) && node.status !== 'uncreated')
    )
      return
    void refresh()
  }, REFRESH_MS)
  stopRefresh = () => window.clearInterval(timer)
}

/** The most history pages the panel reads on one refresh (500 entries each). */
const HISTORY_PAGES = 4

/** The instance's history as a timeline, oldest first; a failed read keeps what was shown and says why. */
const renderHistory = async (target: HTMLElement, id: string): Promise<void> => {
  const entries: HistoryEntry[] = []
  let dropped = 0
  let cursor: string | undefined
  try {
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const answer: HistoryPage = await get<HistoryPage>(`workflows/${encodeURIComponent(id)}/history`, {
        limit: '500',
        cursor,
      })
      entries.push(...answer.items)
      dropped = answer.dropped
      cursor = answer.cursor
      if (cursor === undefined) break
    }
  } catch (error) {
    clear(target, message('error', describeError(error)))
    return
  }
  const items = entries.map((entry) =>
    h(
      'li',
      { 'data-kind': entry.kind, 'data-seq': entry.seq },
      time(entry.atMs, true),
      ' ',
      h('span', { class: `kind kind-${entry.kind}` }, entry.kind),
      entry.nodeId !== undefined && h('span', { class: 'node' }, ` ${entry.nodeId}`),
      ' ',
      historyDetail(entry),
    ),
  )
  clear(
    target,
    entries.length
      ? h('ol', { class: 'timeline', 'aria-label': 'history' }, ...items)
      : message('info', 'no history yet'),
    dropped > 0 &&
      h('p', { class: 'muted' }, `${dropped} entries were dropped at the cap (kept: the first and the latest).`),
    cursor !== undefined &&
      h('p', { class: 'muted' }, 'older entries beyond these are left out; the CLI pages them all.'),
  )
}

const duration = (ms: number): string => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`)

/** An entry's facts besides its time, kind and node. */
const historyDetail = (entry: HistoryEntry): HTMLElement => {
  const parts: (Node | string)[] = []
  if (entry.status !== undefined) parts.push(badge(entry.status))
  const facts = [
    entry.attempt !== undefined && entry.attempt !== 1 ? `attempt ${entry.attempt}` : undefined,
    entry.durationMs !== undefined ? `took ${duration(entry.durationMs)}` : undefined,
    // event_ts is the sender's version of the event, in seconds: shown as a time, with the number it came as.
    entry.eventTs !== undefined
      ? `event time ${localTime(entry.eventTs * 1000)} (eventTs ${entry.eventTs})`
      : undefined,
    entry.superseded ? 'superseded before any pass saw it' : undefined,
    entry.code,
    entry.errorClass !== undefined ? `${entry.errorClass}: ${entry.message ?? ''}` : entry.message,
    entry.origin !== undefined ? `from ${entry.origin}` : undefined,
  ].filter((fact): fact is string => fact !== undefined && fact !== '')
  if (facts.length) parts.push(` ${facts.join(' · ')}`)
  return h('span', { class: 'detail' }, ...parts)
}

const renderSummary = (target: HTMLElement, detail: InstanceDetail): void => {
  const facts: [string, Node | string][] = [
    ['type', h('a', { href: `#/types/${encodeURIComponent(detail.workflowType)}` }, detail.workflowType)],
    ['business id', detail.businessId ?? '—'],
    ['created', time(detail.createdAtMs)],
    ['updated', time(detail.updatedAtMs)],
    ['next due', time(detail.dueAtMs)],
    ['definition version', detail.definitionVersion],
  ]
  if (detail.startAtMs !== undefined) facts.push(['starts', time(detail.startAtMs)])
  if (detail.lease) facts.push(['lease held until', time(detail.lease.untilMs)])
  clear(
    target,
    h('h1', {}, `${detail.workflowType} `, h('code', {}, detail.id), ' ', badge(detail.status)),
    detail.failure &&
      h(
        'div',
        { class: 'message error failure', 'data-summary': 'failure' },
        h('strong', {}, `Failed at node ${detail.failure.nodeId}`),
        ` — ${detail.failure.reason} — `,
        time(detail.failure.atMs),
      ),
    detail.parked &&
      h(
        'div',
        { class: 'message warn parked', 'data-summary': 'parked' },
        h('strong', {}, `Parked: ${detail.parked.code}`),
        ` — ${detail.parked.reason} — `,
        time(detail.parked.atMs),
        ' — restart the instance once it is fixed.',
      ),
    h('dl', { class: 'facts' }, ...facts.flatMap(([name, value]) => [h('dt', {}, name), h('dd', {}, value)])),
  )
}

const renderActions = (target: HTMLElement, detail: InstanceDetail, out: HTMLElement, refresh: () => Promise<void>) => {
  const id = encodeURIComponent(detail.id)
  const draft = (target.querySelector('textarea[name="restart-context"]') as HTMLTextAreaElement | null)?.value
  const context = h(
    'textarea',
    { rows: 4, name: 'restart-context' },
    draft ?? JSON.stringify(detail.context, null, 2),
  ) as HTMLTextAreaElement
  const reset = h('input', { type: 'checkbox', name: 'reset-counters' }) as HTMLInputElement
  const terminal = TERMINAL.has(detail.status)
  const restartable = detail.status === 'failed' || detail.status === 'canceled' || detail.parked !== undefined
  clear(
    target,
    !terminal &&
      h(
        'div',
        { class: 'action' },
        h(
          'button',
          {
            type: 'button',
            class: 'danger',
            onclick: () =>
              void act(
                `Cancel instance ${detail.id}?`,
                out,
                async () => {
                  const result = await post<{ status: string; changed: boolean }>(`workflows/${id}/cancel`)
                  return result.changed ? `canceled (${result.status})` : `nothing to cancel (${result.status})`
                },
                () => void refresh(),
              ),
          },
          'Cancel instance',
        ),
      ),
    restartable &&
      h(
        'details',
        { class: 'action' },
        h('summary', {}, 'Restart the instance with a new context'),
        field('Context (JSON)', context),
        h('label', { class: 'inline' }, reset, ' reset fail counters'),
        h(
          'button',
          {
            type: 'button',
            onclick: () =>
              void act(
                `Restart instance ${detail.id}?`,
                out,
                async () => {
                  const body = {
                    context: parseJsonObject(context.value, 'the context'),
                    ...(reset.checked ? { resetCounters: true } : {}),
                  }
                  const result = await post<{ status: string }>(`workflows/${id}/restart`, body)
                  return `restarted: ${result.status}`
                },
                () => void refresh(),
              ),
          },
          'Restart instance',
        ),
      ),
    !restartable &&
      terminal &&
      h('p', { class: 'muted' }, `The instance is ${detail.status}; a node can still be restarted below.`),
  )
}

const renderNodes = (target: HTMLElement, detail: InstanceDetail, out: HTMLElement, refresh: () => Promise<void>) => {
  const open = new Set([...target.querySelectorAll('details[open]')].map((element) => element.getAttribute('data-key')))
  const drafts = new Map(
    [...target.querySelectorAll('textarea')].map((element) => [
      element.getAttribute('name'),
      (element as HTMLTextAreaElement).value,
    ]),
  )
  const rows = detail.nodes.map((node) => nodeRow(detail, node, out, refresh, open, drafts))
  clear(
    target,
    h(
      'table',
      { class: 'nodes' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...[
            'node',
            'status',
            'attempt',
            'calls',
            'fails',
            'attempt started',
            'next attempt',
            'deadline',
            'updated',
            '',
          ].map((title) => h('th', {}, title)),
        ),
      ),
      h('tbody', {}, ...rows.flat()),
    ),
  )
}

const nodeRow = (
  detail: InstanceDetail,
  node: NodeDetail,
  out: HTMLElement,
  refresh: () => Promise<void>,
  open: Set<string | null>,
  drafts: Map<string | null, string>,
): HTMLElement[] => {
  const base = `workflows/${encodeURIComponent(detail.id)}/nodes/${encodeURIComponent(node.id)}`
  const synthetic = node.id === 'root' || node.id === 'end'
  const eventName = `event-${node.id}`
  const content = h(
    'textarea',
    { rows: 3, name: eventName },
    drafts.get(eventName) ?? '{"decision": "approved"}',
  ) as HTMLTextAreaElement
  const force = h('input', { type: 'checkbox', name: `force-${node.id}` }) as HTMLInputElement
  // Events only help a node that can still run: not on a finished node nor in a finished instance.
  const waiting = !TERMINAL.has(node.status) && !TERMINAL.has(detail.status)
  const tools = synthetic
    ? h('td', {})
    : h(
        'td',
        { class: 'tools' },
        waiting &&
          h(
            'details',
            { 'data-key': `event-${node.id}`, open: open.has(`event-${node.id}`) },
            h('summary', {}, 'Send event'),
            field('Content (JSON)', content),
            h(
              'button',
              {
                type: 'button',
                onclick: () =>
                  void act(
                    `Send this event to node ${node.id}?`,
                    out,
                    async () => {
                      const body = {
                        eventTs: Math.floor(Date.now() / 1000),
                        content: parseJsonObject(content.value, 'the event content'),
                      }
                      await post(`${base}/events`, body)
                      return `event sent to ${node.id}`
                    },
                    () => void refresh(),
                  ),
              },
              'Send',
            ),
          ),
        node.status !== 'uncreated' &&
          h(
            'details',
            { 'data-key': `restart-${node.id}`, open: open.has(`restart-${node.id}`) },
            h('summary', {}, 'Restart node'),
            h('label', { class: 'inline' }, force, ' force (also a running node)'),
            h(
              'button',
              {
                type: 'button',
                onclick: () =>
                  void act(
                    `Restart node ${node.id} and the nodes after it?`,
                    out,
                    async () => {
                      const result = await post<{ status: string }>(
                        `${base}/restart`,
                        force.checked ? { force: true } : {},
                      )
                      return `node ${node.id} restarted: instance ${result.status}`
                    },
                    () => void refresh(),
                  ),
              },
              'Restart',
            ),
          ),
      )
  const main = h(
    'tr',
    { 'data-node': node.id, 'data-status': node.status },
    h('td', {}, h('strong', {}, node.id), node.name !== node.id ? h('div', { class: 'muted' }, node.name) : ''),
    h('td', {}, badge(node.status), node.waiting ? h('div', { class: 'muted' }, node.waiting.reason) : ''),
    h('td', {}, node.attempt),
    h('td', {}, node.calls),
    h('td', { class: node.failCount ? 'fails' : '' }, node.failCount),
    h(
      'td',
      {},
      node.attemptStartedAtMs === undefined
        ? '—'
        : h('span', {}, time(node.attemptStartedAtMs), node.attemptStep ? ` (${node.attemptStep})` : ''),
    ),
    h('td', {}, time(node.nextAttemptAtMs)),
    h('td', {}, time(node.deadlineAtMs)),
    h('td', {}, time(node.updatedAtMs)),
    tools,
  )
  // A waiting node records its NotReady as last_error too: only a failed attempt is worth showing in red.
  const system = node.context?.system as Record<string, unknown> | undefined
  const lastError = node.failCount > 0 || node.status === 'failed' ? system?.last_error : undefined
  const extra = h(
    'tr',
    { class: 'node-extra' },
    h(
      'td',
      { colspan: 10 },
      typeof lastError === 'string' ? h('div', { class: 'last-error' }, `last error: ${lastError}`) : '',
      node.context
        ? h(
            'details',
            { 'data-key': `context-${node.id}`, open: open.has(`context-${node.id}`) },
            h('summary', {}, 'context'),
            json(node.context),
          )
        : '',
    ),
  )
  return node.context || typeof lastError === 'string' ? [main, extra] : [main]
}

// ---- workflow types, schedules, dead letters ----------------------------------------------------------------------

const typesView = async (only?: string): Promise<void> => {
  const shown = only ? types.filter((type) => type.type === only) : types
  const panels = shown.map((type) => {
    const graph = h('div', { class: 'graph' })
    void renderGraph(graph, type.mermaid)
    return panel(
      `${type.type}`,
      h(
        'p',
        {},
        `${type.name} — version `,
        h('code', {}, type.version),
        ' — ',
        h('a', { href: `#/instances?workflowType=${encodeURIComponent(type.type)}` }, 'instances'),
      ),
      graph,
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h('tr', {}, ...['node', 'name', 'after', 'fail max', 'max wait', 'check'].map((t) => h('th', {}, t))),
        ),
        h(
          'tbody',
          {},
          ...type.nodes.map((node) =>
            h(
              'tr',
              {},
              h('td', {}, node.id),
              h('td', {}, node.name),
              h('td', {}, node.predecessors.join(', ')),
              h('td', {}, node.failMaxCount),
              h('td', {}, node.maxWaitTimeSeconds ? `${node.maxWaitTimeSeconds} s` : '—'),
              h('td', {}, node.hasCheck ? 'yes' : ''),
            ),
          ),
        ),
      ),
    )
  })
  clear(
    root,
    h('h1', {}, 'Workflow types'),
    ...(panels.length ? panels : [message('error', `no workflow type '${only}'`)]),
  )
}

const schedulesView = async (): Promise<void> => {
  const out = h('div', {})
  const list = h('div', {})
  const name = h('input', { name: 'name', required: true, placeholder: 'nightly-billing' }) as HTMLInputElement
  const expression = h('input', {
    name: 'expression',
    required: true,
    placeholder: 'cron(0 2 * * ? *) or rate(5 minutes)',
  }) as HTMLInputElement
  const timezone = h('input', { name: 'timezone', placeholder: 'Europe/Paris (optional)' }) as HTMLInputElement
  const type = typeSelect('workflowType', undefined, false)
  const context = h('textarea', { name: 'context', rows: 2, placeholder: '{}' }) as HTMLTextAreaElement
  const form = h(
    'form',
    { class: 'create', 'aria-label': 'new schedule' },
    field('Name', name),
    field('Expression', expression),
    field('Time zone', timezone),
    field('Type', type),
    field('Context (JSON)', context),
    h('button', { type: 'submit' }, 'Create schedule'),
  )
  const load = async () => {
    try {
      const { items } = await get<{ items: Schedule[] }>('schedules')
      clear(
        list,
        items.length
          ? h(
              'table',
              {},
              h(
                'thead',
                {},
                h('tr', {}, ...['name', 'expression', 'time zone', 'type', 'enabled', ''].map((t) => h('th', {}, t))),
              ),
              h(
                'tbody',
                {},
                ...items.map((item) =>
                  h(
                    'tr',
                    { 'data-schedule': item.name },
                    h('td', {}, item.name),
                    h('td', {}, h('code', {}, item.expression)),
                    h('td', {}, item.timezone ?? 'UTC'),
                    h('td', {}, item.workflowType),
                    h('td', {}, item.enabled ? 'yes' : 'no'),
                    h(
                      'td',
                      {},
                      h(
                        'button',
                        {
                          type: 'button',
                          class: 'danger',
                          onclick: () =>
                            void act(
                              `Delete schedule ${item.name}?`,
                              out,
                              async () => {
                                await del(`schedules/${encodeURIComponent(item.name)}`)
                                return `deleted ${item.name}`
                              },
                              () => void load(),
                            ),
                        },
                        'Delete',
                      ),
                    ),
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'No schedule.'),
      )
    } catch (error) {
      clear(list, message('error', describeError(error)))
    }
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void act(
      `Create schedule ${name.value}?`,
      out,
      async () => {
        const body = {
          name: name.value.trim(),
          expression: expression.value.trim(),
          workflowType: type.value,
          context: parseJsonObject(context.value, 'the context'),
          ...(timezone.value.trim() ? { timezone: timezone.value.trim() } : {}),
        }
        const stored = await post<Schedule>('schedules', body)
        return `stored ${stored.name}`
      },
      () => void load(),
    )
  })
  clear(root, h('h1', {}, 'Schedules'), panel('New schedule', form), out, panel('Schedules', list))
  await load()
}

const deadLettersView = async (): Promise<void> => {
  const out = h('div', {})
  const list = h('div', {})
  const load = async () => {
    try {
      const { items } = await get<{ items: DeadLetterQueue[] }>('_local/dead-letters')
      clear(
        list,
        ...items.map((queue) =>
          panel(
            `${queue.deadLetterQueue}`,
            h(
              'p',
              {},
              queue.messages.length
                ? `${queue.messages.length} message(s); a redrive moves them back to ${queue.queue}. `
                : `Empty (its messages would come from ${queue.queue}).`,
              queue.messages.length
                ? h(
                    'button',
                    {
                      type: 'button',
                      onclick: () =>
                        void act(
                          `Redrive every message of ${queue.deadLetterQueue} to ${queue.queue}?`,
                          out,
                          async () => {
                            const result = await post<{ moved: string[] }>(
                              `_local/dead-letters/${encodeURIComponent(queue.queue)}/redrive`,
                            )
                            return `moved ${result.moved.length} message(s) to ${queue.queue}`
                          },
                          () => void load(),
                        ),
                    },
                    'Redrive all',
                  )
                : '',
            ),
            queue.messages.length
              ? h(
                  'table',
                  {},
                  h('thead', {}, h('tr', {}, ...['message', 'reason', 'sent', 'body', ''].map((t) => h('th', {}, t)))),
                  h(
                    'tbody',
                    {},
                    ...queue.messages.map((item) =>
                      h(
                        'tr',
                        {},
                        h('td', {}, h('code', {}, item.messageId)),
                        h('td', { class: 'reason' }, item.reason),
                        h('td', {}, time(item.sentAtMs)),
                        h('td', {}, h('pre', { class: 'json' }, item.body.slice(0, 500))),
                        h(
                          'td',
                          {},
                          h(
                            'button',
                            {
                              type: 'button',
                              onclick: () =>
                                void act(
                                  `Redrive message ${item.messageId}?`,
                                  out,
                                  async () => {
                                    await request(
                                      'POST',
                                      `_local/dead-letters/${encodeURIComponent(queue.queue)}/redrive`,
                                      {
                                        body: { messageIds: [item.messageId] },
                                      },
                                    )
                                    return `moved ${item.messageId} to ${queue.queue}`
                                  },
                                  () => void load(),
                                ),
                            },
                            'Redrive',
                          ),
                        ),
                      ),
                    ),
                  ),
                )
              : '',
          ),
        ),
      )
    } catch (error) {
      clear(list, message('error', describeError(error)))
    }
  }
  clear(root, h('h1', {}, 'Dead-letter queues (local)'), out, list)
  await load()
}

// ---- routing ------------------------------------------------------------------------------------------------------

const nav = (): HTMLElement => {
  const links: [string, string][] = [
    ['#/instances', 'Instances'],
    ['#/types', 'Workflow types'],
    ['#/schedules', 'Schedules'],
  ]
  if (features.deadLetters) links.push(['#/dead-letters', 'Dead letters'])
  if (features.events) links.push(['#/events', 'Events'])
  return h(
    'nav',
    {},
    h('a', { class: 'brand', href: '#/instances' }, 'tickflow'),
    ...links.map(([href, text]) =>
      h('a', { href, class: window.location.hash.startsWith(href) ? 'active' : '' }, text),
    ),
    h('a', { href: 'docs', class: 'right' }, 'API docs'),
  )
}

const route = async (): Promise<void> => {
  stopRefresh?.()
  stopRefresh = undefined
  const hash = window.location.hash.replace(/^#/, '') || '/instances'
  const [path = '/instances', search = ''] = hash.split('?')
  const params = new URLSearchParams(search)
  document.querySelector('nav')?.replaceWith(nav())
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  try {
    if (parts[0] === 'instances' && parts[1]) await instanceView(parts[1])
    else if (parts[0] === 'types') await typesView(parts[1])
    else if (parts[0] === 'schedules') await schedulesView()
    else if (parts[0] === 'dead-letters') await deadLettersView()
    else if (parts[0] === 'events') stopRefresh = eventsView(root)
    else await instancesView(params)
  } catch (error) {
    clear(root, message('error', describeError(error)))
  }
}

const start = async (): Promise<void> => {
  mermaid.initialize({
    startOnLoad: false,
    securityLevel: 'strict',
    theme: 'default',
    flowchart: { useMaxWidth: true },
  })
  const [openapi, typeList, deadLetters, events] = await Promise.all([
    get<{ paths: Record<string, unknown> }>('openapi.json').catch(() => ({ paths: {} })),
    get<{ items: WorkflowType[] }>('workflow-types').catch(() => ({ items: [] })),
    get('_local/dead-letters').then(
      () => true,
      () => false,
    ),
    get('_local/events').then(
      () => true,
      () => false,
    ),
  ])
  features = { paths: new Set(Object.keys(openapi.paths)), deadLetters, events }
  types = typeList.items
  document.body.prepend(nav())
  window.addEventListener('hashchange', () => void route())
  await route()
}

void start()
