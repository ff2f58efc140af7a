import { type HistoryEntry, type InstanceDetail, type NodeDetail, restartNode, sendNodeEvent } from '../api-client.js'
import { badge, clear, duration, h, localTime, parseJson, relative, time } from '../dom.js'
import { jsonViewer } from '../json-viewer.js'
import { errorText, isSyntheticNode, nodeActions, nodeData, nodeEntries, nodeState } from '../node-facts.js'
import { app, factList, field, message, outcomeSlot, runAction } from '../ui.js'

/**
 * One node, opened from the graph or the table: what it is doing or waiting for, its input (the context it ran
 * with), output, event, the engine's notes, its attempts and history entries, and the actions the API would accept
 * on it — each with its outcome right next to its button.
 */

export interface NodePanelContext {
  detail: InstanceDetail
  node: NodeDetail
  entries: readonly HistoryEntry[]
  refresh: () => void
  close: () => void
}

/** What the user typed into event boxes, per instance and node: kept across redraws. */
const drafts = new Map<string, string>()

const typeNode = (detail: InstanceDetail, nodeId: string) =>
  app.types.find((type) => type.type === detail.workflowType)?.nodes.find((node) => node.id === nodeId)

const section = (
  title: string,
  key: string,
  open: boolean,
  touched: boolean,
  ...children: (Node | string)[]
): HTMLElement => {
  const element = h(
    'details',
    { class: 'node-section', 'data-section': key, open, ...(touched ? { 'data-touched': '' } : {}) },
    h('summary', {}, title),
    ...children,
  )
  element.querySelector('summary')?.addEventListener('click', () => element.setAttribute('data-touched', ''))
  return element
}

const entryWhat = (entry: HistoryEntry): (Node | string)[] => {
  switch (entry.kind) {
    case 'node':
      return [badge(entry.status ?? '?'), entry.durationMs !== undefined ? ` took ${duration(entry.durationMs)}` : '']
    case 'error':
      return [h('span', { class: 'error-text' }, errorText(entry))]
    case 'event':
      return [
        `event received (eventTs ${entry.eventTs ?? '?'})`,
        entry.superseded ? ' — replaced before any pass saw it' : '',
        entry.origin ? ` from ${entry.origin}` : '',
      ]
    case 'restart':
      return [`restart${entry.origin ? ` from ${entry.origin}` : ''}`]
    default:
      return [entry.kind, entry.message ? `: ${entry.message}` : '']
  }
}

/** The node's attempts and history: each entry with its time, the time since the one before, and what happened. */
const attemptsTable = (entries: readonly HistoryEntry[]): HTMLElement => {
  if (!entries.length) return h('p', { class: 'muted' }, 'Nothing recorded for this node yet.')
  let previous: number | undefined
  return h(
    'table',
    { class: 'attempts' },
    h('thead', {}, h('tr', {}, h('th', {}, 'time'), h('th', {}, '+'), h('th', {}, 'attempt'), h('th', {}, 'what'))),
    h(
      'tbody',
      {},
      ...entries.map((entry) => {
        const since = previous === undefined ? '' : `+${duration(entry.atMs - previous)}`
        previous = entry.atMs
        return h(
          'tr',
          { 'data-kind': entry.kind, class: entry.kind === 'error' ? 'error-row' : '' },
          h(
            'td',
            {},
            h(
              'time',
              { datetime: entry.at, title: `${entry.at} (${relative(entry.atMs)})` },
              localTime(entry.atMs, true).slice(11),
            ),
          ),
          h('td', { class: 'muted' }, since),
          h('td', {}, entry.attempt ?? ''),
          h('td', {}, ...entryWhat(entry)),
        )
      }),
    ),
  )
}

/** Where an event's outcome shows: in its form, and after the form when the event moved the node past taking one. */
const eventOutcome = (context: NodePanelContext): string => `event:${context.detail.id}\u0000${context.node.id}`

const eventForm = (context: NodePanelContext, mode: 'now' | 'early'): HTMLElement => {
  const { detail, node } = context
  const key = `${detail.id}\u0000${node.id}`
  const content = h(
    'textarea',
    { rows: 3, name: `event-${node.id}`, 'aria-label': 'event content (JSON)' },
    drafts.get(key) ?? '{"decision": "approved"}',
  ) as HTMLTextAreaElement
  content.addEventListener('input', () => drafts.set(key, content.value))
  const outcome = eventOutcome(context)
  const state = `${detail.status}:${node.status}`
  const form = h(
    'form',
    { class: 'node-action', 'data-action': 'event', 'aria-label': 'send an event' },
    h(
      'h3',
      {},
      mode === 'early' ? 'Send an event early' : 'Send an event',
      h('small', { class: 'muted' }, mode === 'early' ? ' — kept until the node starts' : ' — the node runs at once'),
    ),
    field('Content (JSON)', content),
    h('div', { class: 'action-row' }, h('button', { type: 'submit' }, 'Send event'), outcomeSlot(outcome, state)),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void runAction({
      key: outcome,
      state,
      confirm: `Send this event to node ${node.id}?`,
      run: async () => {
        const body = { eventTs: Math.floor(Date.now() / 1000), content: parseJson(content.value, 'the event content') }
        const answer = await sendNodeEvent(detail.id, node.id, body)
        drafts.delete(key)
        return mode === 'early'
          ? `event stored (eventTs ${answer.eventTs}): the node sees it when it starts`
          : `event sent (eventTs ${answer.eventTs}): the node runs again now`
      },
      after: context.refresh,
    })
  })
  return form
}

const restartForm = (context: NodePanelContext, force: boolean): HTMLElement => {
  const { detail, node } = context
  const outcome = `restart-node:${detail.id}\u0000${node.id}`
  const state = `${detail.status}:${node.status}`
  const reset = h('input', { type: 'checkbox', name: 'reset-counters' }) as HTMLInputElement
  const forced = h('input', { type: 'checkbox', name: `force-${node.id}` }) as HTMLInputElement
  const button = h('button', { type: 'submit', disabled: force }, 'Restart node') as HTMLButtonElement
  forced.addEventListener('change', () => {
    button.disabled = !forced.checked
  })
  const form = h(
    'form',
    { class: 'node-action', 'data-action': 'restart', 'aria-label': 'restart the node' },
    h('h3', {}, 'Restart', h('small', { class: 'muted' }, ' — with every node after it')),
    force
      ? h(
          'label',
          { class: 'inline force' },
          forced,
          ` force: needed because the instance is ${detail.status} — the restart puts it back to running`,
        )
      : '',
    h('label', { class: 'inline' }, reset, ' reset the fail counters'),
    h('div', { class: 'action-row' }, button, outcomeSlot(outcome, state)),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void runAction({
      key: outcome,
      state,
      confirm: `Restart node ${node.id} and the nodes after it?`,
      run: async () => {
        const result = await restartNode(detail.id, node.id, {
          ...(forced.checked ? { force: true } : {}),
          ...(reset.checked ? { resetCounters: true } : {}),
        })
        return `restarted: the instance is ${result.status}`
      },
      after: context.refresh,
    })
  })
  return form
}

const actionsFor = (context: NodePanelContext): HTMLElement => {
  const { detail, node } = context
  const allowed = nodeActions(detail, node)
  const forms: HTMLElement[] = []
  if (allowed.event) forms.push(eventForm(context, allowed.event))
  if (allowed.restart) forms.push(restartForm(context, allowed.restart.force))
  // An event the node took at once can complete it (and the instance) before the page reads it again: the form goes,
  // and what the operator was told about the event stays here while it is fresh.
  const sent = allowed.event ? '' : outcomeSlot(eventOutcome(context), `${detail.status}:${node.status}`)
  if (!forms.length) {
    const why = isSyntheticNode(node.id)
      ? 'The synthetic start and end take no events and no restart.'
      : 'No action: the node has not started, and the instance takes no more events.'
    return h('div', { class: 'node-actions' }, h('p', { class: 'muted' }, why), sent)
  }
  return h('div', { class: 'node-actions' }, ...forms, sent)
}

/** Draws the panel; its action forms are kept while the node's and the instance's statuses stay the same. */
export const renderNodePanel = (target: HTMLElement, context: NodePanelContext): void => {
  const { detail, node, entries } = context
  const data = nodeData(node)
  const spec = typeNode(detail, node.id)
  const state = nodeState(detail, node, entries, spec?.hasCheck ?? false)
  const actionsKey = `${node.id}:${node.status}:${detail.status}`
  const previousActions = target.querySelector<HTMLElement>('.node-actions-slot')
  const keepActions = previousActions?.dataset.key === actionsKey
  // Sections the operator opened or closed stay so across redraws; the others follow what there is to show.
  const open = new Map(
    [...target.querySelectorAll<HTMLDetailsElement>('details.node-section[data-touched]')].map((element) => [
      element.dataset.section,
      element.open,
    ]),
  )
  const isOpen = (key: string, fallback: boolean): [boolean, boolean] => [open.get(key) ?? fallback, open.has(key)]
  const actionsSlot = keepActions
    ? (previousActions as HTMLElement)
    : h('div', { class: 'node-actions-slot', 'data-key': actionsKey }, actionsFor(context))
  const facts: [string, Node | string][] = [
    ['id', h('code', {}, node.id)],
    ['attempt', String(node.attempt)],
    ['worker calls', String(node.calls)],
    // fail_max_count 0 sets no limit.
    ['fails', spec?.failMaxCount ? `${node.failCount} of ${spec.failMaxCount}` : `${node.failCount} (no limit)`],
    ['created', time(node.createdAtMs)],
    ['updated', time(node.updatedAtMs)],
  ]
  if (node.deadlineAtMs !== undefined) facts.push(['deadline', time(node.deadlineAtMs)])
  if (node.nextAttemptAtMs !== undefined) facts.push(['looked at again', time(node.nextAttemptAtMs)])
  const mine = nodeEntries(entries, node.id)
  clear(
    target,
    h(
      'div',
      { class: 'node-head' },
      h('h2', {}, node.name, ' ', badge(node.status)),
      h(
        'button',
        { type: 'button', class: 'small link close', 'aria-label': 'close the node', onclick: context.close },
        '×',
      ),
    ),
    // A settled node's badge says it all, unless there is a why (a failure's error).
    (state.kind !== 'settled' || state.detail !== undefined) &&
      h(
        'p',
        { class: `node-state state-${state.kind}`, 'data-state': state.kind },
        h('strong', {}, state.text),
        state.sinceMs !== undefined ? ` since ${localTime(state.sinceMs).slice(11)} (${relative(state.sinceMs)})` : '',
        state.nextMs !== undefined && state.kind !== 'working' ? ` · next look ${relative(state.nextMs)}` : '',
        state.detail ? h('span', { class: 'state-detail' }, state.detail) : '',
      ),
    factList(facts, true),
    actionsSlot,
    section(
      'Input — the context it ran with',
      'input',
      ...isOpen('input', true),
      data.input ? jsonViewer(data.input, 'input') : h('p', { class: 'muted' }, 'Not started: no input yet.'),
    ),
    section(
      'Output — what its worker stored',
      'output',
      ...isOpen('output', true),
      data.output && Object.keys(data.output).length
        ? jsonViewer(data.output, 'output')
        : h('p', { class: 'muted' }, state.kind === 'settled' ? 'Nothing stored.' : 'Nothing stored yet.'),
    ),
    section(
      'Event',
      'event',
      ...isOpen('event', data.event !== undefined),
      data.event
        ? h(
            'div',
            {},
            h('p', { class: 'muted' }, `eventTs ${data.event.eventTs} (${localTime(data.event.eventTs * 1000)})`),
            jsonViewer(data.event.content, 'event content'),
          )
        : h('p', { class: 'muted' }, 'No event received.'),
    ),
    data.system
      ? section(
          'Engine notes',
          'system',
          ...isOpen('system', node.failCount > 0 || node.status === 'failed'),
          jsonViewer(data.system, 'engine notes'),
        )
      : '',
    section(`Attempts and history (${mine.length})`, 'attempts', ...isOpen('attempts', true), attemptsTable(mine)),
  )
}

export const emptyNodePanel = (target: HTMLElement): void =>
  clear(
    target,
    message(
      'info',
      'Open a node — click it in the graph or the table — to see its input, output, event, attempts and history.',
    ),
  )
