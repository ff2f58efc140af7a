import type { HistoryEntry, InstanceDetail } from '../api-client.js'
import { badge, clear, duration, h, localTime, relative } from '../dom.js'
import { jsonViewer } from '../json-viewer.js'
import { errorText, eventContent, isSyntheticNode, waterfall } from '../node-facts.js'
import { message } from '../ui.js'

/**
 * An instance's history as a timeline (every entry with the time since the one before it, an event with its
 * content, an error said once) or as a waterfall of the nodes over time; filtered by node and by kind.
 */

/** Every kind of entry, with what the filter calls it (README, "History"). */
const KINDS = {
  created: 'created',
  node: 'status changes',
  event: 'events',
  error: 'errors',
  restart: 'restarts',
  cancel: 'cancels',
  parked: 'parkings',
  decision: 'decisions',
  finished: 'end',
} as const satisfies Record<HistoryEntry['kind'], string>

type Kind = keyof typeof KINDS
type Mode = 'timeline' | 'waterfall'

const MODE_KEY = 'tickflow.history.mode'

export interface HistoryData {
  detail: InstanceDetail
  entries: readonly HistoryEntry[]
  dropped: number
  more: boolean
}

const eventDetail = (entry: HistoryEntry, detail: InstanceDetail): (Node | string)[] => {
  const content = eventContent(entry, detail)
  const when =
    entry.eventTs !== undefined ? `event time ${localTime(entry.eventTs * 1000)} (eventTs ${entry.eventTs})` : ''
  switch (content.state) {
    case 'stored':
      return [when, jsonViewer(content.content, 'event content')]
    case 'superseded':
      return [when, h('span', { class: 'muted' }, ' — replaced by a later event before any pass saw it')]
    case 'replaced':
      return [when, h('span', { class: 'muted' }, ` — its content is gone: replaced by eventTs ${content.byEventTs}`)]
    default:
      return [when]
  }
}

const entryDetail = (entry: HistoryEntry, detail: InstanceDetail): HTMLElement => {
  const facts: (Node | string)[] = []
  if (entry.status !== undefined) facts.push(badge(entry.status))
  if (entry.attempt !== undefined && entry.attempt !== 1) facts.push(h('span', {}, `attempt ${entry.attempt}`))
  if (entry.durationMs !== undefined) facts.push(h('span', { class: 'took' }, `took ${duration(entry.durationMs)}`))
  if (entry.kind === 'event') facts.push(...eventDetail(entry, detail))
  if (entry.kind === 'error') facts.push(h('span', { class: 'error-text' }, errorText(entry)))
  else if (entry.message !== undefined) facts.push(h('span', {}, entry.message))
  if (entry.code !== undefined) facts.push(h('code', {}, entry.code))
  if (entry.origin !== undefined) facts.push(h('span', { class: 'muted' }, `from ${entry.origin}`))
  return h('span', { class: 'detail' }, ...facts)
}

export interface HistoryPanel {
  element: HTMLElement
  update(data: HistoryData): void
}

export const historyPanel = (onNode: (nodeId: string) => void): HistoryPanel => {
  let data: HistoryData | undefined
  let mode: Mode = window.localStorage?.getItem(MODE_KEY) === 'waterfall' ? 'waterfall' : 'timeline'
  let nodeFilter = ''
  const kinds = new Set<Kind>(Object.keys(KINDS) as Kind[])

  const body = h('div', { class: 'history-body' })
  const count = h('span', { class: 'muted' })
  const nodeSelect = h('select', { name: 'history-node', 'aria-label': 'node' }) as HTMLSelectElement
  nodeSelect.addEventListener('change', () => {
    nodeFilter = nodeSelect.value
    draw()
  })
  const modeButtons = (['timeline', 'waterfall'] as const).map((name) => {
    const button = h(
      'button',
      { type: 'button', class: 'small toggle', 'data-mode': name, 'aria-pressed': String(mode === name) },
      name,
    )
    button.addEventListener('click', () => {
      mode = name
      window.localStorage?.setItem(MODE_KEY, name)
      for (const other of modeButtons) other.setAttribute('aria-pressed', String(other.dataset.mode === mode))
      draw()
    })
    return button
  })
  const kindBoxes = (Object.entries(KINDS) as [Kind, string][]).map(([kind, label]) => {
    const box = h('input', { type: 'checkbox', name: `kind-${kind}`, checked: true }) as HTMLInputElement
    box.addEventListener('change', () => {
      if (box.checked) kinds.add(kind)
      else kinds.delete(kind)
      draw()
    })
    return h('label', { class: `chip kind-${kind}` }, box, ` ${label}`)
  })
  const element = h(
    'section',
    { class: 'panel', 'data-panel': 'history' },
    h('h2', {}, 'History'),
    h(
      'div',
      { class: 'history-tools' },
      h('div', { class: 'segmented', role: 'group', 'aria-label': 'view' }, ...modeButtons),
      h('label', { class: 'inline' }, 'node ', nodeSelect),
      h('div', { class: 'kinds', role: 'group', 'aria-label': 'kinds' }, ...kindBoxes),
      count,
    ),
    body,
  )

  const drawTimeline = (shown: readonly HistoryEntry[], detail: InstanceDetail): HTMLElement => {
    let previous: number | undefined
    let day = ''
    /** The time to the millisecond (a pass's steps share a second); the date only where it changes. */
    const when = (ms: number): string => {
      const full = localTime(ms, true)
      const date = full.slice(0, 10)
      const shown = date === day ? full.slice(11) : `${full.slice(5, 10)} ${full.slice(11)}`
      day = date
      return shown
    }
    return h(
      'ol',
      { class: 'timeline', 'aria-label': 'history' },
      ...shown.map((entry) => {
        const delta = previous === undefined ? '' : `+${duration(entry.atMs - previous)}`
        previous = entry.atMs
        return h(
          'li',
          { 'data-kind': entry.kind, 'data-seq': entry.seq, ...(entry.nodeId ? { 'data-node': entry.nodeId } : {}) },
          h(
            'time',
            { datetime: entry.at, title: `${localTime(entry.atMs, true)} (${relative(entry.atMs)})` },
            when(entry.atMs),
          ),
          h('span', { class: 'delta muted' }, delta),
          h('span', { class: `kind kind-${entry.kind}` }, entry.kind),
          entry.nodeId !== undefined
            ? h(
                'button',
                { type: 'button', class: 'link node-link', onclick: () => onNode(entry.nodeId as string) },
                entry.nodeId,
              )
            : h('span', {}),
          entryDetail(entry, detail),
        )
      }),
    )
  }

  const drawWaterfall = (shown: readonly HistoryEntry[], detail: InstanceDetail): HTMLElement => {
    const nodes = detail.nodes
      .filter((node) => !isSyntheticNode(node.id))
      .filter((node) => nodeFilter === '' || node.id === nodeFilter)
      .map((node) => node.id)
    const chart = waterfall(detail, shown, nodes, Date.now())
    const span = Math.max(1, chart.endMs - chart.startMs)
    const at = (ms: number) => `${(((ms - chart.startMs) / span) * 100).toFixed(3)}%`
    const rows = chart.rows.map((row) => {
      const track = h('div', { class: 'wf-track' })
      for (const segment of row.segments) {
        const bar = h('span', {
          class: `wf-bar status-${segment.status}${segment.toMs === segment.fromMs ? ' point' : ''}`,
          title: `${segment.status} ${localTime(segment.fromMs, true).slice(11)}${segment.toMs > segment.fromMs ? `, ${duration(segment.toMs - segment.fromMs)}` : ''}`,
        })
        bar.style.left = at(segment.fromMs)
        bar.style.width =
          segment.toMs > segment.fromMs ? `max(2px, ${((segment.toMs - segment.fromMs) / span) * 100}%)` : ''
        track.append(bar)
      }
      for (const mark of row.marks) {
        const tick = h('span', {
          class: `wf-mark mark-${mark.kind}`,
          title: `${mark.text} at ${localTime(mark.atMs, true).slice(11)}`,
        })
        tick.style.left = at(mark.atMs)
        track.append(tick)
      }
      const total = row.segments.length
        ? (row.segments[row.segments.length - 1] as { toMs: number }).toMs -
          (row.segments[0] as { fromMs: number }).fromMs
        : undefined
      return h(
        'div',
        { class: 'wf-row', 'data-node': row.nodeId },
        h(
          'button',
          { type: 'button', class: 'link wf-label', title: row.nodeId, onclick: () => onNode(row.nodeId) },
          detail.nodes.find((node) => node.id === row.nodeId)?.name ?? row.nodeId,
        ),
        track,
        h('span', { class: 'wf-total muted' }, total === undefined ? 'not started' : duration(total)),
      )
    })
    return h(
      'div',
      { class: 'waterfall', 'aria-label': 'nodes over time' },
      h(
        'div',
        { class: 'wf-axis muted' },
        h('span', {}, localTime(chart.startMs, true).slice(11)),
        h('span', {}, `${duration(span)} in all`),
        h('span', {}, localTime(chart.endMs, true).slice(11)),
      ),
      ...rows,
      h(
        'p',
        { class: 'wf-legend muted' },
        h('span', { class: 'wf-key status-running' }),
        ' running ',
        h('span', { class: 'wf-key status-pending' }),
        ' waiting (check) ',
        h('span', { class: 'wf-key status-restarting' }),
        ' restarting ',
        h('span', { class: 'wf-key mark-event' }),
        ' event ',
        h('span', { class: 'wf-key mark-error' }),
        ' error',
      ),
    )
  }

  const draw = () => {
    if (!data) return
    const { detail, entries } = data
    const shown = entries.filter((entry) => kinds.has(entry.kind) && (nodeFilter === '' || entry.nodeId === nodeFilter))
    clear(count, `${shown.length} of ${entries.length} entries`)
    if (!entries.length) {
      clear(body, message('info', 'no history yet'))
      return
    }
    clear(
      body,
      mode === 'timeline' ? drawTimeline(shown, detail) : drawWaterfall(shown, detail),
      data.dropped > 0
        ? h(
            'p',
            { class: 'muted' },
            `${data.dropped} entries were dropped at the cap (kept: the first and the latest).`,
          )
        : '',
      data.more ? h('p', { class: 'muted' }, 'Later entries beyond these are left out; the CLI pages them all.') : '',
    )
  }

  return {
    element,
    update(next) {
      const changed =
        !data ||
        data.entries.length !== next.entries.length ||
        data.entries[data.entries.length - 1]?.seq !== next.entries[next.entries.length - 1]?.seq ||
        data.detail.status !== next.detail.status ||
        JSON.stringify(data.detail.nodes.map((node) => node.context?.node_event)) !==
          JSON.stringify(next.detail.nodes.map((node) => node.context?.node_event)) ||
        mode === 'waterfall'
      data = next
      const ids = next.detail.nodes.filter((node) => !isSyntheticNode(node.id)).map((node) => node.id)
      if (nodeSelect.options.length !== ids.length + 1) {
        clear(
          nodeSelect,
          h('option', { value: '' }, 'every node'),
          ...ids.map((id) => h('option', { value: id, selected: id === nodeFilter }, id)),
        )
      }
      if (changed) draw()
    },
  }
}
