import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_LAYOUT,
  edgePath,
  type Layout,
  type LayoutInput,
  layoutGraph,
} from '../../src/dashboard/graph-layout.js'

/** Where the dashboard draws a workflow's nodes (src/dashboard/graph-layout.ts): left to right, nothing overlapping. */

const chain = (ids: string[]): LayoutInput[] =>
  ids.map((id, index) => ({ id, successors: ids[index + 1] ? [ids[index + 1] as string] : [] }))

const overlap = (layout: Layout): string[] => {
  const found: string[] = []
  for (const a of layout.nodes) {
    for (const b of layout.nodes) {
      if (a.id >= b.id) continue
      const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y
      if (!apart) found.push(`${a.id}/${b.id}`)
    }
  }
  return found
}

describe('the layout of a workflow graph', () => {
  it('draws a chain on one line, left to right, as wide as its nodes and gaps', () => {
    const layout = layoutGraph(chain(['submit', 'review', 'approve']))
    expect(layout.nodes.map((node) => node.layer)).toEqual([0, 1, 2])
    expect(new Set(layout.nodes.map((node) => node.y)).size).toBe(1)
    expect(layout.width).toBe(3 * DEFAULT_LAYOUT.nodeWidth + 2 * DEFAULT_LAYOUT.gapX)
    expect(layout.height).toBe(DEFAULT_LAYOUT.nodeHeight)
  })

  it('draws the synthetic start and end small', () => {
    const layout = layoutGraph([
      { id: 'root', successors: ['a'], small: true },
      { id: 'a', successors: ['end'] },
      { id: 'end', successors: [], small: true },
    ])
    const root = layout.nodes.find((node) => node.id === 'root')
    expect(root?.width).toBe(DEFAULT_LAYOUT.smallWidth)
    expect(root?.height).toBe(DEFAULT_LAYOUT.smallHeight)
  })

  it('puts parallel nodes in one layer, one above the other, and joins them after', () => {
    const layout = layoutGraph([
      { id: 'validate', successors: ['charge', 'reserve'] },
      { id: 'charge', successors: ['ship'] },
      { id: 'reserve', successors: ['ship'] },
      { id: 'ship', successors: [] },
    ])
    const at = Object.fromEntries(layout.nodes.map((node) => [node.id, node]))
    expect(at.charge?.layer).toBe(1)
    expect(at.reserve?.layer).toBe(1)
    expect(at.charge?.x).toBe(at.reserve?.x)
    expect(at.charge?.y).not.toBe(at.reserve?.y)
    expect(at.ship?.layer).toBe(2)
    expect(overlap(layout)).toEqual([])
  })

  it('routes an edge that skips a layer through a waypoint', () => {
    const layout = layoutGraph([
      { id: 'a', successors: ['b', 'c'] },
      { id: 'b', successors: ['c'] },
      { id: 'c', successors: [] },
    ])
    const skip = layout.edges.find((edge) => edge.from === 'a' && edge.to === 'c')
    expect(skip?.points).toHaveLength(3)
  })

  it('keeps the given order, so that the tab order follows the definition', () => {
    const ids = ['x', 'b', 'a']
    expect(layoutGraph(chain(ids)).nodes.map((node) => node.id)).toEqual(ids)
  })

  it('lays any DAG out without overlaps, every edge from its source to a later layer', () => {
    const dag = fc
      .integer({ min: 1, max: 14 })
      .chain((size) =>
        fc.tuple(
          fc.constant(size),
          fc.array(fc.tuple(fc.nat(size - 1), fc.nat(size - 1)), { maxLength: size * 2 }),
          fc.array(fc.boolean(), { minLength: size, maxLength: size }),
        ),
      )
      .map(([size, pairs, small]) => {
        const nodes: LayoutInput[] = Array.from({ length: size }, (_, index) => ({
          id: `n${index}`,
          successors: [],
          small: small[index] ?? false,
        }))
        for (const [a, b] of pairs) {
          if (a === b) continue
          const [from, to] = a < b ? [a, b] : [b, a]
          const node = nodes[from] as LayoutInput
          if (!node.successors.includes(`n${to}`)) node.successors = [...node.successors, `n${to}`]
        }
        return nodes
      })
    fc.assert(
      fc.property(dag, (nodes) => {
        const layout = layoutGraph(nodes)
        expect(overlap(layout)).toEqual([])
        const at = new Map(layout.nodes.map((node) => [node.id, node]))
        for (const node of layout.nodes) {
          expect(node.x).toBeGreaterThanOrEqual(0)
          expect(node.y).toBeGreaterThanOrEqual(0)
          expect(node.x + node.width).toBeLessThanOrEqual(layout.width + 0.001)
          expect(node.y + node.height).toBeLessThanOrEqual(layout.height + 0.001)
        }
        for (const edge of layout.edges) {
          const from = at.get(edge.from)
          const to = at.get(edge.to)
          expect((to?.layer ?? 0) > (from?.layer ?? 0)).toBe(true)
          const first = edge.points[0] as [number, number]
          const last = edge.points[edge.points.length - 1] as [number, number]
          expect(first[0]).toBeCloseTo((from?.x ?? 0) + (from?.width ?? 0))
          expect(last[0]).toBeCloseTo(to?.x ?? 0)
        }
        expect(layout.edges.length).toBe(nodes.reduce((sum, node) => sum + node.successors.length, 0))
      }),
      { numRuns: 200 },
    )
  })

  it('writes an edge as an SVG path through its points', () => {
    expect(
      edgePath([
        [0, 10],
        [40, 30],
      ]),
    ).toBe('M0,10 C20,10 20,30 40,30')
  })
})
