import {
  type Count,
  cancelInstance,
  get,
  getInstance,
  INSTANCE_STATUSES,
  type InstanceList,
  type InstanceSummary,
  isTerminalInstanceStatus,
  post,
  restartInstance,
} from '../api-client.js'
import { badge, cellTime, clear, duration, h, localTime, parseJsonObject } from '../dom.js'
import { bulkTargets, endedAtMs } from '../node-facts.js'
import { COUNT_EVERY_REFRESHES, LIST_REFRESH_MS } from '../refresh.js'
import { describeError, field, leaving, message, outcomeSlot, runAction, typeSelect } from '../ui.js'

/**
 * The instances: filters, counts by status, a page of instances with their end and duration, sorting, page size,
 * previous and next pages, a live refresh that can be paused, and cancel or restart of the selected instances.
 */

const COUNT_BOUND = 10_000
const PAGE_SIZES = ['10', '25', '50', '100'] as const
const DEFAULT_PAGE_SIZE = '25'
const LIVE_KEY = 'tickflow.instances.live'
/** Which page a cursor came from, so that "previous" works after a reload or with the back button. */
const PREVIOUS_KEY = 'tickflow.instances.previous'

const FILTERS = ['workflowType', 'status', 'businessId', 'createdFromMs', 'createdToMs'] as const

type SortKey = 'id' | 'type' | 'business' | 'status' | 'created' | 'ended' | 'duration'
const COLUMNS: { key: SortKey; title: string }[] = [
  { key: 'id', title: 'instance' },
  { key: 'type', title: 'type' },
  { key: 'business', title: 'business id' },
  { key: 'status', title: 'status' },
  { key: 'created', title: 'created' },
  { key: 'ended', title: 'ended' },
  { key: 'duration', title: 'duration' },
]

/** When each finished instance ended: read once from its detail (the list does not carry it), kept by status. */
const endings = new Map<string, { status: string; endedAtMs: number | undefined }>()

const previousCursors = (): Record<string, string> => {
  try {
    return JSON.parse(window.sessionStorage.getItem(PREVIOUS_KEY) ?? '{}') as Record<string, string>
  } catch {
    return {}
  }
}
const rememberPrevious = (next: string, current: string | undefined): void => {
  const map = previousCursors()
  map[next] = current ?? ''
  window.sessionStorage.setItem(PREVIOUS_KEY, JSON.stringify(map))
}

const toMs = (local: string): string | undefined => (local ? String(new Date(local).getTime()) : undefined)
const toLocalInput = (ms: string | undefined): string => {
  if (!ms) return ''
  const d = new Date(Number(ms))
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
}

const countText = (count: Count): string =>
  count.complete ? count.count.toLocaleString('en') : `${Math.max(count.count, 0).toLocaleString('en')}+`

/** At most `limit` calls at a time. */
const inBatches = async <T, R>(items: readonly T[], limit: number, call: (item: T) => Promise<R>): Promise<R[]> => {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await call(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

export const instancesView = async (root: HTMLElement, params: URLSearchParams): Promise<void> => {
  const onLeave = leaving()
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ''])) as Record<
    (typeof FILTERS)[number],
    string
  >
  const order = params.get('order') === 'asc' ? 'asc' : 'desc'
  // Any size the API takes (1-1000) from the address; the menu offers the usual ones.
  const asked = Number(params.get('limit'))
  const limit = Number.isInteger(asked) && asked >= 1 && asked <= 1000 ? String(asked) : DEFAULT_PAGE_SIZE
  const cursor = params.get('cursor') ?? undefined
  const [sortKey, sortDir] = (params.get('sort') ?? '').split('-') as [SortKey | '', string | undefined]

  /** The URL of this list with some parameters changed (`undefined` drops one); a new query starts at page 1. */
  const link = (changes: Record<string, string | undefined>): string => {
    const next = new URLSearchParams(params)
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined || value === '') next.delete(name)
      else next.set(name, value)
    }
    if (!('cursor' in changes)) next.delete('cursor')
    return `#/instances?${next}`
  }

  // ---- filters -----------------------------------------------------------------------------------------------
  const filterForm = h(
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
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '#/instances' }, 'Clear')),
  )
  filterForm.addEventListener('submit', (event) => {
    event.preventDefault()
    const data = new FormData(filterForm as HTMLFormElement)
    const text = (name: string) => String(data.get(name) ?? '').trim() || undefined
    window.location.hash = link({
      workflowType: text('workflowType'),
      status: text('status'),
      businessId: text('businessId'),
      createdFromMs: toMs(String(data.get('createdFrom') ?? '')),
      createdToMs: toMs(String(data.get('createdTo') ?? '')),
    })
  })

  // ---- the frame of the page -----------------------------------------------------------------------------------
  const counts = h('div', { class: 'counts', 'aria-label': 'counts by status' })
  const table = h('div', { class: 'table-scroll' })
  const pager = h('nav', { class: 'pager', 'aria-label': 'pages' })
  const selection = new Set<string>()
  const bulk = h('div', { class: 'bulk', 'aria-label': 'selected instances' })
  const live = h('input', {
    type: 'checkbox',
    name: 'live',
    checked: window.localStorage?.getItem(LIVE_KEY) !== 'false',
  }) as HTMLInputElement
  const updated = h('span', { class: 'muted updated' })
  const pageSize = h(
    'select',
    { name: 'limit', 'aria-label': 'instances per page' },
    ...[...new Set([...PAGE_SIZES, limit])]
      .sort((a, b) => Number(a) - Number(b))
      .map((size) => h('option', { value: size, selected: size === limit }, size)),
  ) as HTMLSelectElement
  pageSize.addEventListener('change', () => {
    window.location.hash = link({ limit: pageSize.value === DEFAULT_PAGE_SIZE ? undefined : pageSize.value })
  })
  const newInstance = h(
    'details',
    { class: 'panel create-panel', 'data-panel': 'new instance' },
    h('summary', {}, 'New instance'),
    createForm(),
  )
  clear(
    root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Instances'), newInstance),
    h('section', { class: 'panel', 'data-panel': 'instances' }, filterForm, counts),
    h(
      'section',
      { class: 'panel', 'data-panel': 'list' },
      h(
        'div',
        { class: 'toolbar' },
        bulk,
        h(
          'div',
          { class: 'toolbar-right' },
          h('label', { class: 'inline' }, 'per page ', pageSize),
          h(
            'label',
            { class: 'inline', title: `read the page again every ${LIST_REFRESH_MS / 1000} s` },
            live,
            ' live',
          ),
          h('button', { type: 'button', class: 'small', onclick: () => void load(true) }, 'Refresh'),
          updated,
        ),
      ),
      table,
      pager,
    ),
    h('p', { class: 'muted' }, `Counts read at most ${COUNT_BOUND.toLocaleString('en')} index entries each.`),
  )

  // ---- reading ---------------------------------------------------------------------------------------------------
  const query = {
    workflowType: filters.workflowType || undefined,
    businessId: filters.businessId || undefined,
    createdFromMs: filters.createdFromMs || undefined,
    createdToMs: filters.createdToMs || undefined,
  }
  let items: InstanceSummary[] = []
  let nextCursor: string | undefined
  let failure: string | undefined

  const loadCounts = async () => {
    const chips = await Promise.all(
      INSTANCE_STATUSES.map(async (status) => {
        try {
          const count = await get<Count>('workflows/count', { ...query, status })
          return h(
            'a',
            {
              class: `count status-${status}${filters.status === status ? ' active' : ''}`,
              href: link({ status: filters.status === status ? undefined : status }),
              'data-status': status,
            },
            h('strong', {}, countText(count)),
            ` ${status}`,
          )
        } catch (error) {
          return h('span', { class: 'count' }, `${status}: ${describeError(error)}`)
        }
      }),
    )
    clear(counts, ...chips)
  }

  /** Reads the end of the finished instances on the page that are not known yet (their status tells). */
  const loadEndings = async () => {
    const unknown = items.filter(
      (item) => isTerminalInstanceStatus(item.status) && endings.get(item.id)?.status !== item.status,
    )
    if (!unknown.length) return
    await inBatches(unknown, 4, async (item) => {
      try {
        const detail = await getInstance(item.id)
        endings.set(item.id, { status: detail.status, endedAtMs: endedAtMs(detail) })
      } catch {
        // A row without its end says "—"; the next refresh tries again.
      }
    })
    drawTable()
  }

  const load = async (withCounts: boolean) => {
    if (withCounts) void loadCounts()
    try {
      const page = await get<InstanceList>('workflows', {
        ...query,
        status: filters.status || undefined,
        limit,
        order,
        cursor,
      })
      items = page.items
      nextCursor = page.cursor
      failure = undefined
    } catch (error) {
      failure = describeError(error)
    }
    for (const id of [...selection]) if (!items.some((item) => item.id === id)) selection.delete(id)
    clear(updated, `read ${localTime(Date.now()).slice(11)}`)
    drawTable()
    drawPager()
    drawBulk()
    void loadEndings()
  }

  // ---- drawing ---------------------------------------------------------------------------------------------------
  const endOf = (item: InstanceSummary): number | undefined =>
    endings.get(item.id)?.status === item.status ? endings.get(item.id)?.endedAtMs : undefined
  const durationOf = (item: InstanceSummary): number | undefined => {
    const end = endOf(item)
    if (end !== undefined) return end - item.createdAtMs
    return isTerminalInstanceStatus(item.status) ? undefined : Date.now() - item.createdAtMs
  }
  const sortValue = (item: InstanceSummary, key: SortKey): string | number => {
    switch (key) {
      case 'id':
        return item.id
      case 'type':
        return item.workflowType
      case 'business':
        return item.businessId ?? ''
      case 'status':
        return item.status
      case 'created':
        return item.createdAtMs
      case 'ended':
        return endOf(item) ?? Number.POSITIVE_INFINITY
      case 'duration':
        return durationOf(item) ?? Number.POSITIVE_INFINITY
    }
  }
  const sorted = (): InstanceSummary[] => {
    if (!sortKey || sortKey === 'created') return items
    const factor = sortDir === 'desc' ? -1 : 1
    return [...items].sort((a, b) => {
      const x = sortValue(a, sortKey)
      const y = sortValue(b, sortKey)
      return (x < y ? -1 : x > y ? 1 : 0) * factor
    })
  }

  const header = (key: SortKey, title: string): HTMLElement => {
    // Creation order is the API's own (across pages); the other columns sort the page that is shown.
    const serverSide = key === 'created'
    const active = serverSide ? !sortKey || sortKey === 'created' : sortKey === key
    const direction = serverSide ? order : sortDir === 'desc' ? 'desc' : 'asc'
    const href = serverSide
      ? link({ order: order === 'desc' ? 'asc' : undefined, sort: undefined })
      : link({ sort: `${key}-${active && direction === 'asc' ? 'desc' : 'asc'}`, cursor: cursor })
    return h(
      'th',
      { 'aria-sort': active ? (direction === 'asc' ? 'ascending' : 'descending') : 'none', 'data-column': key },
      h(
        'a',
        { href, title: serverSide ? 'sort by creation time (all pages)' : 'sort this page' },
        title,
        active ? (direction === 'asc' ? ' ▲' : ' ▼') : '',
      ),
    )
  }

  const selectAll = h('input', {
    type: 'checkbox',
    'aria-label': 'select every instance of this page',
  }) as HTMLInputElement
  selectAll.addEventListener('change', () => {
    for (const item of items) {
      if (selectAll.checked) selection.add(item.id)
      else selection.delete(item.id)
    }
    drawTable()
    drawBulk()
  })

  const drawTable = () => {
    if (failure !== undefined) {
      clear(table, message('error', failure))
      return
    }
    if (!items.length) {
      clear(table, h('p', { class: 'muted' }, 'No instance matches.'))
      return
    }
    selectAll.checked = items.every((item) => selection.has(item.id))
    const rows = sorted().map((item) => {
      const box = h('input', {
        type: 'checkbox',
        'aria-label': `select ${item.id}`,
        checked: selection.has(item.id),
      }) as HTMLInputElement
      box.addEventListener('change', () => {
        if (box.checked) selection.add(item.id)
        else selection.delete(item.id)
        selectAll.checked = items.every((candidate) => selection.has(candidate.id))
        drawBulk()
      })
      const took = durationOf(item)
      return h(
        'tr',
        { 'data-id': item.id, 'data-status': item.status, class: selection.has(item.id) ? 'selected' : '' },
        h('td', { class: 'select' }, box),
        h(
          'td',
          { class: 'id' },
          h('a', { href: `#/instances/${encodeURIComponent(item.id)}` }, item.id),
          item.parked ? h('span', { class: 'badge parked', title: 'parked: restart it once fixed' }, item.parked) : '',
        ),
        h('td', {}, item.workflowType),
        h('td', {}, item.businessId ?? ''),
        h('td', {}, badge(item.status)),
        h('td', {}, cellTime(item.createdAtMs)),
        h('td', { 'data-column': 'ended' }, cellTime(endOf(item))),
        h(
          'td',
          { 'data-column': 'duration', class: isTerminalInstanceStatus(item.status) ? '' : 'muted' },
          took === undefined ? '—' : `${duration(took)}${isTerminalInstanceStatus(item.status) ? '' : ' so far'}`,
        ),
      )
    })
    clear(
      table,
      h(
        'table',
        { class: 'instances' },
        h(
          'thead',
          {},
          h('tr', {}, h('th', { class: 'select' }, selectAll), ...COLUMNS.map(({ key, title }) => header(key, title))),
        ),
        h('tbody', {}, ...rows),
      ),
    )
  }

  const drawPager = () => {
    const previous = cursor === undefined ? undefined : previousCursors()[cursor]
    let page = 1
    for (let at = cursor, seen = 0; at !== undefined && seen < 1000; seen++) {
      const before = previousCursors()[at]
      if (before === undefined) {
        page = 0
        break
      }
      page += 1
      at = before === '' ? undefined : before
    }
    const next = nextCursor
    clear(
      pager,
      cursor ? h('a', { href: link({}), class: 'first' }, '« first') : h('span', { class: 'muted' }, '« first'),
      cursor
        ? h(
            'a',
            { href: link({ cursor: previous === undefined || previous === '' ? undefined : previous }), rel: 'prev' },
            '‹ previous',
          )
        : h('span', { class: 'muted' }, '‹ previous'),
      h('span', { class: 'page' }, page > 0 ? `page ${page}` : ''),
      next
        ? h(
            'a',
            {
              href: link({ cursor: next }),
              rel: 'next',
              onclick: () => rememberPrevious(next, cursor),
            },
            'next ›',
          )
        : h('span', { class: 'muted' }, 'next ›'),
    )
  }

  const drawBulk = () => {
    const chosen = items.filter((item) => selection.has(item.id))
    // What each instance's own page offers: cancel until it ends; restart when failed, canceled, timed out or parked.
    const { cancel: cancelable, restart: restartable } = bulkTargets(chosen)
    // The outcome lists instances that may leave the selection: it expires by time, not with the selection.
    const state = 'bulk'
    const bulkAction = (verb: 'cancel' | 'restart', targets: InstanceSummary[]) => {
      const left = chosen.length - targets.length
      const note =
        left > 0
          ? ` (${left} of the ${chosen.length} selected ${left === 1 ? 'is' : 'are'} left alone: ${verb === 'cancel' ? 'already finished' : 'neither failed, canceled, timed out nor parked'})`
          : ''
      return runAction({
        key: 'bulk',
        state,
        confirm: `${verb === 'cancel' ? 'Cancel' : 'Restart'} ${targets.length} instance${targets.length === 1 ? '' : 's'}?${note}`,
        run: async () => {
          const results = await inBatches(targets, 4, async (item) => {
            try {
              if (verb === 'cancel') await cancelInstance(item.id)
              else await restartInstance(item.id, {})
              return undefined
            } catch (error) {
              return `${item.id}: ${describeError(error)}`
            }
          })
          const refusals = results.filter((result): result is string => result !== undefined)
          const done = targets.length - refusals.length
          const past = verb === 'cancel' ? 'canceled' : 'restarted'
          if (!refusals.length) return `${past} ${done} of ${targets.length}`
          return {
            kind: done === 0 ? 'error' : 'warn',
            text: `${past} ${done} of ${targets.length}; refused:`,
            lines: refusals,
          }
        },
        after: () => {
          selection.clear()
          void load(true)
        },
      })
    }
    clear(
      bulk,
      h('span', { class: 'muted' }, chosen.length ? `${chosen.length} selected` : 'select instances to act on them'),
      h(
        'button',
        {
          type: 'button',
          class: 'danger small',
          disabled: cancelable.length === 0,
          'data-bulk': 'cancel',
          onclick: () => void bulkAction('cancel', cancelable),
        },
        `Cancel ${cancelable.length || ''}`.trim(),
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          disabled: restartable.length === 0,
          'data-bulk': 'restart',
          onclick: () => void bulkAction('restart', restartable),
        },
        `Restart ${restartable.length || ''}`.trim(),
      ),
      chosen.length
        ? h(
            'button',
            {
              type: 'button',
              class: 'small link',
              onclick: () => {
                selection.clear()
                drawTable()
                drawBulk()
              },
            },
            'clear',
          )
        : '',
      outcomeSlot('bulk', state),
    )
  }

  await load(true)
  let ticks = 0
  const timer = window.setInterval(() => {
    if (!live.checked || document.visibilityState === 'hidden') return
    ticks += 1
    void load(ticks % COUNT_EVERY_REFRESHES === 0)
  }, LIST_REFRESH_MS)
  live.addEventListener('change', () => {
    window.localStorage?.setItem(LIVE_KEY, String(live.checked))
    if (live.checked) void load(false)
  })
  onLeave(() => window.clearInterval(timer))
}

const createForm = (): HTMLElement => {
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
    h('div', { class: 'action-row' }, h('button', { type: 'submit' }, 'Create'), outcomeSlot('create', '')),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void runAction({
      key: 'create',
      state: '',
      confirm: `Create a ${type.value} instance?`,
      run: async () => {
        const body = {
          workflowType: type.value,
          context: parseJsonObject(context.value, 'the context'),
          ...(businessId.value.trim() ? { businessId: businessId.value.trim() } : {}),
        }
        const created = await post<{ instanceId: string }>('workflows', body)
        window.location.hash = `#/instances/${encodeURIComponent(created.instanceId)}`
        return `created ${created.instanceId}`
      },
    })
  })
  return form
}
