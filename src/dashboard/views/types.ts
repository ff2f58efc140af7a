import { clear, h } from '../dom.js'
import { graphView } from '../graph-view.js'
import { app, message, panel } from '../ui.js'

/** The registered workflow types (`#/types`, `#/types/TYPE`): each with its graph and its nodes' settings. */
export const typesView = async (root: HTMLElement, only?: string): Promise<void> => {
  const shown = only ? app.types.filter((type) => type.type === only) : app.types
  const panels = shown.map((type) =>
    panel(
      type.type,
      h(
        'p',
        {},
        `${type.name} — version `,
        h('code', {}, type.version),
        ' — ',
        h('a', { href: `#/instances?workflowType=${encodeURIComponent(type.type)}` }, 'its instances'),
      ),
      graphView(
        type.nodes.map((node) => ({ id: node.id, name: node.name, successors: node.successors })),
        { label: `graph of ${type.type}` },
      ),
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['node', 'name', 'after', 'fail max', 'max wait', 'check'].map((title) => h('th', {}, title)),
            ),
          ),
          h(
            'tbody',
            {},
            ...type.nodes.map((node) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', {}, node.id)),
                h('td', {}, node.name),
                h('td', {}, node.predecessors.join(', ')),
                h('td', { class: 'num' }, node.failMaxCount || h('span', { class: 'muted' }, 'no limit')),
                h('td', {}, node.maxWaitTimeSeconds ? `${node.maxWaitTimeSeconds} s` : '—'),
                h('td', {}, node.hasCheck ? 'polls' : ''),
              ),
            ),
          ),
        ),
      ),
    ),
  )
  clear(
    root,
    h('h1', {}, 'Workflow types'),
    ...(panels.length ? panels : [message('error', `no workflow type '${only}'`)]),
  )
}
