import { clear, h, svg } from './dom.js'
import { edgePath, type LayoutInput, layoutGraph } from './graph-layout.js'
import { isSyntheticNode } from './node-facts.js'

/**
 * A workflow graph drawn with plain elements: nodes are buttons (click or Enter opens the node), edges an SVG
 * underneath; colours come from the style sheet by status class, positions are set through CSSOM. No Mermaid: its
 * renderer needs inline styles, which the page's CSP refuses, and 3.5 MB.
 */

export interface GraphNode {
  id: string
  name: string
  successors: readonly string[]
  status?: string
  /** A short extra line (`fails 2`). */
  note?: string
}

export interface GraphOptions {
  label: string
  selected?: string
  onSelect?: (nodeId: string) => void
}

const SHOW_ENDS_KEY = 'tickflow.graph.showEnds'

const showEnds = (): boolean => window.localStorage?.getItem(SHOW_ENDS_KEY) === 'true'

let markers = 0

const draw = (canvas: HTMLElement, nodes: readonly GraphNode[], options: GraphOptions, withEnds: boolean): void => {
  const shown = withEnds ? nodes : nodes.filter((node) => !isSyntheticNode(node.id))
  const inputs: LayoutInput[] = shown.map((node) => ({
    id: node.id,
    successors: node.successors,
    small: isSyntheticNode(node.id),
  }))
  const layout = layoutGraph(inputs)
  const marker = `arrow-${++markers}`
  const edges = svg(
    'svg',
    { class: 'graph-edges', width: layout.width, height: layout.height, 'aria-hidden': 'true' },
    svg(
      'defs',
      {},
      svg(
        'marker',
        { id: marker, viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto' },
        svg('path', { d: 'M0,0 L8,4 L0,8 z', class: 'graph-arrow' }),
      ),
    ),
    ...layout.edges.map((edge) =>
      svg('path', {
        d: edgePath(edge.points),
        class: 'graph-edge',
        'marker-end': `url(#${marker})`,
        'data-edge': `${edge.from}>${edge.to}`,
      }),
    ),
  )
  const byId = new Map(nodes.map((node) => [node.id, node]))
  const buttons = layout.nodes.map((placed) => {
    const node = byId.get(placed.id) as GraphNode
    const synthetic = isSyntheticNode(node.id)
    const title = [node.name === node.id ? node.id : `${node.name} (${node.id})`, node.status, node.note]
      .filter(Boolean)
      .join(' — ')
    const button = h(
      'button',
      {
        type: 'button',
        class: `gnode ${synthetic ? 'small' : ''} ${node.status ? `status-${node.status}` : 'status-none'}${options.selected === node.id ? ' selected' : ''}`,
        'data-node': node.id,
        ...(node.status ? { 'data-status': node.status } : {}),
        title,
        'aria-pressed': options.selected === node.id ? 'true' : 'false',
        onclick: () => options.onSelect?.(node.id),
      },
      synthetic
        ? h('span', { class: 'gname' }, node.id === 'root' ? 'start' : 'end')
        : h('span', { class: 'gname' }, node.name),
      synthetic
        ? ''
        : h(
            'span',
            { class: 'gmeta' },
            [node.name === node.id ? '' : node.id, node.status, node.note].filter(Boolean).join(' · '),
          ),
    )
    // Positions through CSSOM: the CSP refuses style attributes, not this.
    button.style.left = `${placed.x}px`
    button.style.top = `${placed.y}px`
    button.style.width = `${placed.width}px`
    button.style.height = `${placed.height}px`
    if (!options.onSelect) button.setAttribute('tabindex', '-1')
    return button
  })
  canvas.style.width = `${layout.width}px`
  canvas.style.height = `${layout.height}px`
  clear(canvas, edges, ...buttons)
}

/** The graph with its toolbar (show or hide the synthetic start and end). */
export const graphView = (nodes: readonly GraphNode[], options: GraphOptions): HTMLElement => {
  const canvas = h('div', { class: 'graph-canvas', role: 'group', 'aria-label': options.label })
  const toggle = h('input', { type: 'checkbox', name: 'show-ends', checked: showEnds() }) as HTMLInputElement
  toggle.addEventListener('change', () => {
    window.localStorage?.setItem(SHOW_ENDS_KEY, String(toggle.checked))
    draw(canvas, nodes, options, toggle.checked)
  })
  draw(canvas, nodes, options, toggle.checked)
  return h(
    'div',
    { class: 'graph' },
    h('div', { class: 'graph-tools' }, h('label', { class: 'inline' }, toggle, ' start and end')),
    h('div', { class: 'graph-scroll' }, canvas),
  )
}
