import './style.css'
import { get, type WorkflowType } from './api-client.js'
import { clear, h } from './dom.js'
import { app, describeError, message } from './ui.js'
import { deadLettersView } from './views/dead-letters.js'
import { eventsView } from './views/events.js'
import { instanceView } from './views/instance.js'
import { instancesView } from './views/instances.js'
import { schedulesView } from './views/schedules.js'
import { typesView } from './views/types.js'

/**
 * The tickflow dashboard: one page over the HTTP API, routed by the URL's hash — `#/instances`,
 * `#/instances/ID?node=N`, `#/types`, `#/schedules`, `#/dead-letters` and `#/events` (local only) — one module per view.
 */

const root = document.getElementById('app') as HTMLElement

const nav = (): HTMLElement => {
  const links: [string, string][] = [
    ['#/instances', 'Instances'],
    ['#/types', 'Workflow types'],
    ['#/schedules', 'Schedules'],
  ]
  if (app.deadLetters) links.push(['#/dead-letters', 'Dead letters'])
  if (app.events) links.push(['#/events', 'Events'])
  return h(
    'nav',
    { class: 'top' },
    h('a', { class: 'brand', href: '#/instances' }, 'tickflow'),
    ...links.map(([href, text]) =>
      h('a', { href, class: window.location.hash.startsWith(href) ? 'active' : '' }, text),
    ),
    h('a', { href: 'docs', class: 'right' }, 'API docs'),
  )
}

const route = async (): Promise<void> => {
  app.generation += 1
  for (const stop of app.leave.splice(0)) stop()
  const hash = window.location.hash.replace(/^#/, '') || '/instances'
  const [path = '/instances', search = ''] = hash.split('?')
  const params = new URLSearchParams(search)
  document.querySelector('nav.top')?.replaceWith(nav())
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  try {
    if (parts[0] === 'instances' && parts[1]) await instanceView(root, parts[1], params)
    else if (parts[0] === 'types') await typesView(root, parts[1])
    else if (parts[0] === 'schedules') await schedulesView(root)
    else if (parts[0] === 'dead-letters') await deadLettersView(root)
    else if (parts[0] === 'events') await eventsView(root)
    else await instancesView(root, params)
  } catch (error) {
    clear(root, message('error', describeError(error)))
  }
}

const start = async (): Promise<void> => {
  const [typeList, deadLetters, events] = await Promise.all([
    get<{ items: WorkflowType[] }>('workflow-types').catch(() => ({ items: [] })),
    // The dead-letter queues are the local runtime's: the deployed API has no such route.
    get('_local/dead-letters').then(
      () => true,
      () => false,
    ),
    get('_local/events').then(
      () => true,
      () => false,
    ),
  ])
  app.types = typeList.items
  app.deadLetters = deadLetters
  app.events = events
  document.body.prepend(nav())
  window.addEventListener('hashchange', () => void route())
  await route()
}

void start()
