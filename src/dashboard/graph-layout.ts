/**
 * Where the nodes of a workflow graph go: a layered drawing, left to right, of a DAG of a few to a few dozen nodes.
 * Layers by longest path from the sources, an invisible waypoint wherever an edge skips a layer, a few barycentre
 * sweeps to uncross edges, then coordinates. Pure (no DOM), so that it is tested without a browser and the page can
 * draw with plain elements and no inline styles (the dashboard's CSP allows none).
 */

export interface LayoutInput {
  id: string
  successors: readonly string[]
  /** Drawn small: the synthetic `root` and `end`. */
  small?: boolean
}

export interface LayoutOptions {
  nodeWidth: number
  nodeHeight: number
  smallWidth: number
  smallHeight: number
  /** Between layers. */
  gapX: number
  /** Between nodes of a layer. */
  gapY: number
}

export interface PlacedNode {
  id: string
  /** Top-left corner. */
  x: number
  y: number
  width: number
  height: number
  layer: number
}

export interface PlacedEdge {
  from: string
  to: string
  /** From the source's right side to the target's left side, through the waypoints of the layers it crosses. */
  points: [number, number][]
}

export interface Layout {
  width: number
  height: number
  nodes: PlacedNode[]
  edges: PlacedEdge[]
}

export const DEFAULT_LAYOUT: LayoutOptions = {
  nodeWidth: 168,
  nodeHeight: 50,
  smallWidth: 44,
  smallHeight: 22,
  gapX: 40,
  gapY: 14,
}

interface Slot {
  key: string
  node?: LayoutInput
  layer: number
  order: number
  height: number
  width: number
}

/** Longest-path layers; nodes on a cycle (never in a valid definition) are put after everything else. */
const layersOf = (nodes: readonly LayoutInput[], known: Set<string>): Map<string, number> => {
  const indegree = new Map(nodes.map((node) => [node.id, 0]))
  for (const node of nodes) {
    for (const next of node.successors) if (known.has(next)) indegree.set(next, (indegree.get(next) ?? 0) + 1)
  }
  const layer = new Map<string, number>()
  const queue = nodes.filter((node) => indegree.get(node.id) === 0).map((node) => node.id)
  for (const id of queue) layer.set(id, 0)
  const byId = new Map(nodes.map((node) => [node.id, node]))
  while (queue.length > 0) {
    const id = queue.shift() as string
    for (const next of byId.get(id)?.successors ?? []) {
      if (!known.has(next)) continue
      layer.set(next, Math.max(layer.get(next) ?? 0, (layer.get(id) ?? 0) + 1))
      const left = (indegree.get(next) ?? 1) - 1
      indegree.set(next, left)
      if (left === 0) queue.push(next)
    }
  }
  const deepest = Math.max(-1, ...layer.values())
  for (const node of nodes) if (!layer.has(node.id)) layer.set(node.id, deepest + 1)
  return layer
}

export const layoutGraph = (nodes: readonly LayoutInput[], options: LayoutOptions = DEFAULT_LAYOUT): Layout => {
  const known = new Set(nodes.map((node) => node.id))
  const layerOf = layersOf(nodes, known)
  const layerCount = Math.max(0, ...layerOf.values()) + 1
  const layers: Slot[][] = Array.from({ length: layerCount }, () => [])
  const slotOf = new Map<string, Slot>()
  for (const node of nodes) {
    const layer = layerOf.get(node.id) ?? 0
    const slot: Slot = {
      key: node.id,
      node,
      layer,
      order: 0,
      width: node.small ? options.smallWidth : options.nodeWidth,
      height: node.small ? options.smallHeight : options.nodeHeight,
    }
    layers[layer]?.push(slot)
    slotOf.set(node.id, slot)
  }
  // Every edge as a chain of one-layer steps: waypoints take a thin slot in each layer it crosses.
  const chains: { from: string; to: string; keys: string[] }[] = []
  for (const node of nodes) {
    for (const next of node.successors) {
      if (!known.has(next)) continue
      const from = layerOf.get(node.id) ?? 0
      const to = layerOf.get(next) ?? 0
      const keys = [node.id]
      for (let layer = from + 1; layer < to; layer++) {
        const key = `${node.id}\u0000${next}\u0000${layer}`
        const slot: Slot = { key, layer, order: 0, width: 0, height: 2 }
        layers[layer]?.push(slot)
        slotOf.set(key, slot)
        keys.push(key)
      }
      keys.push(next)
      chains.push({ from: node.id, to: next, keys })
    }
  }
  const up = new Map<string, string[]>()
  const down = new Map<string, string[]>()
  for (const { keys } of chains) {
    for (let index = 1; index < keys.length; index++) {
      const a = keys[index - 1] as string
      const b = keys[index] as string
      down.set(a, [...(down.get(a) ?? []), b])
      up.set(b, [...(up.get(b) ?? []), a])
    }
  }
  const renumber = (layer: Slot[]) => {
    layer.forEach((slot, index) => {
      slot.order = index
    })
  }
  layers.forEach(renumber)
  const barycentre = (slot: Slot, neighbours: Map<string, string[]>): number | undefined => {
    const positions = (neighbours.get(slot.key) ?? []).map((key) => slotOf.get(key)?.order ?? 0)
    return positions.length ? positions.reduce((sum, value) => sum + value, 0) / positions.length : undefined
  }
  const sweep = (layer: Slot[], neighbours: Map<string, string[]>) => {
    const keyed = layer.map((slot) => ({ slot, at: barycentre(slot, neighbours) ?? slot.order }))
    keyed.sort((a, b) => a.at - b.at || a.slot.order - b.slot.order)
    keyed.forEach(({ slot }, index) => {
      slot.order = index
    })
    layer.sort((a, b) => a.order - b.order)
  }
  for (let round = 0; round < 4; round++) {
    for (let index = 1; index < layers.length; index++) sweep(layers[index] as Slot[], up)
    for (let index = layers.length - 2; index >= 0; index--) sweep(layers[index] as Slot[], down)
  }
  // Coordinates: each layer as wide as its widest node, stacked and centred on the tallest layer.
  const columnWidth = layers.map((layer) => Math.max(0, ...layer.map((slot) => slot.width)))
  const columnHeight = layers.map(
    (layer) => layer.reduce((sum, slot) => sum + slot.height, 0) + Math.max(0, layer.length - 1) * options.gapY,
  )
  const height = Math.max(options.smallHeight, ...columnHeight)
  const x: number[] = []
  let cursor = 0
  columnWidth.forEach((width, index) => {
    x[index] = cursor
    cursor += width + (width === 0 ? options.gapX / 2 : options.gapX)
  })
  const width = Math.max(0, cursor - options.gapX)
  const centre = new Map<string, [number, number]>()
  const placed: PlacedNode[] = []
  layers.forEach((layer, index) => {
    let y = (height - (columnHeight[index] ?? 0)) / 2
    for (const slot of layer) {
      const left = (x[index] ?? 0) + ((columnWidth[index] ?? 0) - slot.width) / 2
      centre.set(slot.key, [left + slot.width / 2, y + slot.height / 2])
      if (slot.node) {
        placed.push({ id: slot.key, x: left, y, width: slot.width, height: slot.height, layer: index })
      }
      y += slot.height + options.gapY
    }
  })
  const edges = chains.map(({ from, to, keys }): PlacedEdge => {
    const points = keys.map((key): [number, number] => centre.get(key) ?? [0, 0])
    const source = slotOf.get(from) as Slot
    const target = slotOf.get(to) as Slot
    const first = points[0] as [number, number]
    const last = points[points.length - 1] as [number, number]
    points[0] = [first[0] + source.width / 2, first[1]]
    points[points.length - 1] = [last[0] - target.width / 2, last[1]]
    return { from, to, points }
  })
  // In the nodes' given order, so that the page's tab order follows the definition.
  const index = new Map(nodes.map((node, position) => [node.id, position]))
  placed.sort((a, b) => (index.get(a.id) ?? 0) - (index.get(b.id) ?? 0))
  return { width, height, nodes: placed, edges }
}

/** An SVG path through the points: horizontal tangents at each point, so that edges leave and enter sideways. */
export const edgePath = (points: readonly [number, number][]): string => {
  const [first, ...rest] = points
  if (!first) return ''
  let path = `M${first[0]},${first[1]}`
  let previous = first
  for (const point of rest) {
    const middle = (previous[0] + point[0]) / 2
    path += ` C${middle},${previous[1]} ${middle},${point[1]} ${point[0]},${point[1]}`
    previous = point
  }
  return path
}
