import {
  cancelInstance,
  getHistory,
  getInstance,
  type HistoryEntry,
  type InstanceDetail,
  isTerminalInstanceStatus,
  isTerminalNodeStatus,
  type NodeDetail,
  restartInstance,
} from '../api-client.js'
import { badge, cellTime, clear, duration, h, parseJsonObject, time } from '../dom.js'
import { graphView } from '../graph-view.js'
import {
  endedAtMs,
  hasCheck,
  instanceActions,
  isSyntheticNode,
  type NodeState,
  nodeState,
  nodeTookMs,
} from '../node-facts.js'
import { INSTANCE_ACTIVE_REFRESH_MS, INSTANCE_RESTING_REFRESH_MS } from '../refresh.js'
import {
  actionButton,
  app,
  describeError,
  factList,
  field,
  leaving,
  message,
  outcomeSlot,
  panel,
  runAction,
} from '../ui.js'
import { historyPanel } from './history.js'
import { emptyNodePanel, renderNodePanel } from './node-panel.js'

/**
 * One instance (`#/instances/ID`, `?node=N` opens a node): its summary and the actions its status allows, the graph,
 * the nodes, the node panel, and the history. Read again every 1.5 s while anything can move, every 10 s at rest.
 */

const atRest = (detail: InstanceDetail): boolean =>
  isTerminalInstanceStatus(detail.status) &&
  !detail.nodes.some((node) => !isTerminalNodeStatus(node.status) && node.status !== 'uncreated')

/** What a graph node says besides its status: why it was skipped, where its choice went, its failures. */
const graphNote = (node: NodeDetail): { note?: string } => {
  if (node.status === 'skipped' && node.skipReason) return { note: node.skipReason }
  if (node.chosen !== undefined) return { note: `→ ${node.chosen ?? 'no branch'}` }
  return node.failCount > 0 ? { note: `fails ${node.failCount}` } : {}
}

/** The nodes table's state column: what a node does; for a settled one, why it was skipped or where its choice went. */
const stateCell = (node: NodeDetail, state: NodeState): string => {
  if (state.kind !== 'settled') return state.text.split(' — ')[0]?.split(';')[0] ?? ''
  if (node.status === 'skipped') return node.skipReason ?? ''
  return node.chosen === undefined ? '' : `→ ${node.chosen ?? 'no branch'}`
}

const summary = (target: HTMLElement, detail: InstanceDetail): void => {
  const ended = endedAtMs(detail)
  const facts: [string, Node | string][] = [
    ['type', h('a', { href: `#/types/${encodeURIComponent(detail.workflowType)}` }, detail.workflowType)],
    ['business id', detail.businessId ?? '—'],
    ['created', time(detail.createdAtMs)],
    ended === undefined ? ['updated', time(detail.updatedAtMs)] : ['ended', time(ended)],
    [ended === undefined ? 'running for' : 'took', duration((ended ?? Date.now()) - detail.createdAtMs)],
  ]
  if (ended === undefined) facts.push(['next due', time(detail.dueAtMs)])
  if (ended === undefined && detail.deadlineAtMs !== undefined) facts.push(['times out', time(detail.deadlineAtMs)])
  if (detail.startAtMs !== undefined) facts.push(['starts', time(detail.startAtMs)])
  if (detail.lease) facts.push(['lease held until', time(detail.lease.untilMs)])
  facts.push(['definition', h('code', {}, detail.definitionVersion)])
  clear(
    target,
    detail.failure &&
      h(
        'div',
        { class: 'message error failure', 'data-summary': 'failure' },
        h(
          'strong',
          {},
          detail.status === 'timed_out'
            ? 'Timed out'
            : detail.failure.nodeId === undefined
              ? 'Failed'
              : `Failed at node ${detail.failure.nodeId}`,
        ),
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
    factList(facts),
  )
}

/** The instance's actions, as its status allows them; drawn again only when that changes, keeping what was typed. */
const actions = (target: HTMLElement, detail: InstanceDetail, refresh: () => void): void => {
  const allowed = instanceActions(detail)
  const state = `${detail.status}:${detail.parked?.code ?? ''}`
  if (target.dataset.state === state) return
  target.dataset.state = state
  const draft = target.querySelector<HTMLTextAreaElement>('textarea[name="restart-context"]')?.value
  const context = h(
    'textarea',
    { rows: 4, name: 'restart-context' },
    draft ?? JSON.stringify(detail.context, null, 2),
  ) as HTMLTextAreaElement
  const reset = h('input', { type: 'checkbox', name: 'reset-counters' }) as HTMLInputElement
  const restartForm = h(
    'form',
    { class: 'restart-instance', 'aria-label': 'restart the instance' },
    field('Context (JSON)', context, 'replaces the instance input; nodes that completed keep the input they ran with'),
    h('label', { class: 'inline' }, reset, ' reset fail counters'),
    h(
      'div',
      { class: 'action-row' },
      h('button', { type: 'submit' }, 'Restart instance'),
      outcomeSlot(`restart:${detail.id}`, state),
    ),
  )
  restartForm.addEventListener('submit', (event) => {
    event.preventDefault()
    void runAction({
      key: `restart:${detail.id}`,
      state,
      confirm: `Restart instance ${detail.id}?`,
      run: async () => {
        const result = await restartInstance(detail.id, {
          context: parseJsonObject(context.value, 'the context'),
          ...(reset.checked ? { resetCounters: true } : {}),
        })
        return `restarted: ${result.status}`
      },
      after: refresh,
    })
  })
  clear(
    target,
    allowed.cancel &&
      actionButton(
        'Cancel instance',
        {
          key: `cancel:${detail.id}`,
          state,
          confirm: `Cancel instance ${detail.id}?`,
          run: async () => {
            const result = await cancelInstance(detail.id)
            return result.changed ? `canceled (${result.status})` : `nothing to cancel (${result.status})`
          },
          after: refresh,
        },
        { class: 'danger' },
      ),
    allowed.restart &&
      h('details', { class: 'action' }, h('summary', {}, 'Restart the instance, with a new context'), restartForm),
    !allowed.cancel &&
      !allowed.restart &&
      h(
        'p',
        { class: 'muted' },
        `The instance is ${detail.status}: it is not restarted as a whole; open a node to restart it (with force).`,
      ),
    // The outcome of a cancel stays for a moment after the button has gone.
    !allowed.cancel && outcomeSlot(`cancel:${detail.id}`, state),
  )
}

const nodeRows = (
  detail: InstanceDetail,
  entries: readonly HistoryEntry[],
  selected: string | undefined,
  select: (id: string) => void,
): HTMLElement => {
  const row = (node: NodeDetail) => {
    const state = nodeState(detail, node, entries, hasCheck(app.types, detail.workflowType, node.id))
    const took = nodeTookMs(detail, node, Date.now())
    const tr = h(
      'tr',
      {
        'data-node': node.id,
        'data-status': node.status,
        tabindex: 0,
        class: `${selected === node.id ? 'selected' : ''}${isSyntheticNode(node.id) ? ' synthetic' : ''}`,
        'aria-selected': selected === node.id ? 'true' : 'false',
        onclick: () => select(node.id),
        onkeydown: (event: Event) => {
          if ((event as KeyboardEvent).key === 'Enter') select(node.id)
        },
      },
      h(
        'td',
        { class: 'node-name' },
        h('strong', {}, node.name),
        node.name !== node.id ? h('small', { class: 'muted' }, node.id) : '',
      ),
      // failed_optional is a label, not a status: the node failed, and its successors counted it as done.
      h('td', {}, badge(node.status === 'failed' && node.optional ? 'failed_optional' : node.status)),
      h('td', { class: `state state-${state.kind}` }, stateCell(node, state)),
      h('td', { class: 'num' }, node.attempt),
      h('td', { class: 'num' }, node.calls),
      h('td', { class: `num${node.failCount ? ' fails' : ''}` }, node.failCount),
      h('td', {}, cellTime(node.createdAtMs)),
      h('td', {}, took === undefined ? '' : duration(took)),
    )
    return tr
  }
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: 'nodes' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['node', 'status', 'doing', 'attempt', 'calls', 'fails', 'created', 'duration'].map((title) =>
            h('th', {}, title),
          ),
        ),
      ),
      h('tbody', {}, ...detail.nodes.map(row)),
    ),
  )
}

export const instanceView = async (root: HTMLElement, id: string, params: URLSearchParams): Promise<void> => {
  const onLeave = leaving()
  let selected = params.get('node') ?? undefined
  let detail: InstanceDetail | undefined
  let entries: HistoryEntry[] = []
  let dropped = 0
  let more = false
  let historyStamp = ''

  const heading = h('div', { class: 'instance-title' })
  const head = h('div', { class: 'instance-summary' })
  const actionBar = h('div', { class: 'actions', 'aria-label': 'instance actions' })
  const graphSlot = h('div', { class: 'graph-slot' })
  const nodesSlot = h('div', {})
  const nodePanel = h('section', { class: 'panel node-panel', 'data-panel': 'node', 'aria-label': 'node' })
  const history = historyPanel((nodeId) => select(nodeId))
  clear(
    root,
    h('p', { class: 'crumbs' }, h('a', { href: '#/instances' }, '« instances')),
    heading,
    h('div', { class: 'instance-bar' }, head, actionBar),
    h(
      'div',
      { class: 'instance-grid' },
      h('div', { class: 'instance-main' }, panel('Graph', graphSlot), panel('Nodes', nodesSlot), history.element),
      h('div', { class: 'instance-side' }, nodePanel),
    ),
  )

  let graphKey = ''
  const drawGraph = () => {
    if (!detail) return
    const key = JSON.stringify([
      selected,
      detail.nodes.map((node) => [node.id, node.status, node.failCount, node.skipReason, node.chosen]),
    ])
    if (key === graphKey) return
    graphKey = key
    const current = detail
    clear(
      graphSlot,
      graphView(
        current.nodes.map((node) => ({
          id: node.id,
          name: node.name,
          successors: node.successors,
          status: node.status === 'failed' && node.optional ? 'failed_optional' : node.status,
          ...graphNote(node),
        })),
        { label: `graph of ${current.id}`, ...(selected ? { selected } : {}), onSelect: (nodeId) => select(nodeId) },
      ),
    )
  }

  let panelKey = ''
  const drawNodePanel = (force = false) => {
    if (!detail) return
    const node = selected === undefined ? undefined : detail.nodes.find((candidate) => candidate.id === selected)
    if (!node) {
      panelKey = ''
      emptyNodePanel(nodePanel)
      return
    }
    const mine = entries.filter((entry) => entry.nodeId === node.id)
    const key = JSON.stringify([node, detail.status, mine.length, mine[mine.length - 1]?.seq])
    if (key === panelKey && !force) return
    panelKey = key
    renderNodePanel(nodePanel, {
      detail,
      node,
      entries,
      refresh: () => void refresh(),
      close: () => select(undefined),
    })
  }

  let nodesKey = ''
  const drawNodes = () => {
    if (!detail) return
    const key = JSON.stringify([selected, detail.status, detail.nodes, entries.length])
    if (key === nodesKey) return
    nodesKey = key
    clear(
      nodesSlot,
      nodeRows(detail, entries, selected, (nodeId) => select(nodeId)),
    )
  }

  function select(nodeId: string | undefined): void {
    selected = nodeId
    const query = nodeId === undefined ? '' : `?${new URLSearchParams({ node: nodeId })}`
    // The node is part of the address (a link opens it), but choosing one is no navigation: no redraw of the page.
    window.history.replaceState(null, '', `#/instances/${encodeURIComponent(id)}${query}`)
    drawGraph()
    drawNodes()
    drawNodePanel(true)
    if (nodeId !== undefined && !window.matchMedia('(min-width: 1280px)').matches) {
      nodePanel.scrollIntoView({ block: 'start', behavior: 'smooth' })
    }
  }

  const refresh = async (): Promise<void> => {
    try {
      detail = await getInstance(id)
    } catch (error) {
      clear(head, message('error', describeError(error)))
      return
    }
    // The history is read again when the instance changed (an event changes it too), and now and then.
    const stamp = `${detail.updatedAtMs}:${detail.status}:${JSON.stringify(detail.nodes.map((node) => node.context?.node_event?.valueOf()))}`
    if (stamp !== historyStamp) {
      try {
        const answer = await getHistory(id)
        entries = answer.entries
        dropped = answer.dropped
        more = answer.more
        historyStamp = stamp
      } catch (error) {
        clear(history.element.querySelector('.history-body') as HTMLElement, message('error', describeError(error)))
      }
    }
    clear(heading, h('h1', {}, `${detail.workflowType} `, h('code', {}, detail.id), ' ', badge(detail.status)))
    summary(head, detail)
    actions(actionBar, detail, () => void refresh())
    drawGraph()
    drawNodes()
    drawNodePanel()
    history.update({ detail, entries, dropped, more })
  }

  await refresh()
  let last = Date.now()
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'hidden') return
    const every = detail && atRest(detail) ? INSTANCE_RESTING_REFRESH_MS : INSTANCE_ACTIVE_REFRESH_MS
    if (Date.now() - last < every - 100) return
    last = Date.now()
    void refresh()
  }, INSTANCE_ACTIVE_REFRESH_MS)
  onLeave(() => window.clearInterval(timer))
}
