import { type BusEvent, localEvents } from '../api-client.js'
import { badge, clear, h, time } from '../dom.js'
import { leaving } from '../ui.js'

/**
 * The local runtime's lifecycle events (`#/events`; README, "Lifecycle events"), newest first, followed as they are
 * published: a long-poll of `GET /_local/events` (the deployed API has no such route: there, events go to
 * EventBridge).
 */

const MAX_SHOWN = 200

const row = (event: BusEvent): HTMLElement =>
  h(
    'tr',
    {},
    h('td', {}, String(event.seq)),
    h('td', {}, time(event.detail.timeMs, true)),
    h('td', {}, event['detail-type'].replace(/^Workflow /, '').replace(/ Status Change$/, '')),
    h(
      'td',
      {},
      event.detail.previousStatus ? badge(event.detail.previousStatus) : '',
      ' → ',
      badge(event.detail.status),
    ),
    h(
      'td',
      {},
      h('a', { href: `#/instances/${encodeURIComponent(event.detail.instanceId)}` }, event.detail.instanceId),
      ` (${event.detail.workflowType})`,
    ),
    h('td', {}, event.detail.nodeId ?? ''),
    h(
      'td',
      { class: 'reason' },
      [event.detail.reason, event.detail.resent ? '(resent)' : ''].filter(Boolean).join(' '),
    ),
  )

/** Shows the events in `root` and keeps following them until the view is left. */
export const eventsView = async (root: HTMLElement): Promise<void> => {
  let stopped = false
  leaving()(() => {
    stopped = true
  })
  const body = h('tbody', {})
  const status = h('p', { class: 'muted' }, 'waiting for events…')
  clear(
    root,
    h('h1', {}, 'Lifecycle events (local)'),
    status,
    h(
      'table',
      { class: 'events' },
      h(
        'thead',
        {},
        h('tr', {}, ...['#', 'time', 'kind', 'status', 'instance', 'node', 'note'].map((t) => h('th', {}, t))),
      ),
      body,
    ),
  )
  const follow = async () => {
    let after = 0
    while (!stopped) {
      try {
        const page = await localEvents(after, after === 0 ? 0 : 20)
        if (stopped) return
        after = page.next
        for (const event of page.items) body.prepend(row(event))
        while (body.children.length > MAX_SHOWN) body.lastElementChild?.remove()
        clear(status, `${body.children.length} event(s) shown, newest first; following…`)
      } catch (error) {
        clear(status, `could not read the events: ${error instanceof Error ? error.message : String(error)}`)
        await new Promise((resolve) => setTimeout(resolve, 2_000))
      }
    }
  }
  void follow()
}
