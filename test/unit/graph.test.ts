import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { definitionGraph, instanceGraph } from '../../src/api/graph.js'
import { loadDefinition } from '../../src/core/definition.js'
import type { InstanceDetail } from '../../src/core/engine.js'

const detail = (statuses: Record<string, string>): InstanceDetail => ({
  id: 'wf-1',
  workflowType: 'order',
  status: 'running',
  context: {},
  createdAtMs: 0,
  updatedAtMs: 0,
  definitionVersion: 'v',
  nodes: [
    { id: 'root', name: 'root', successors: ['a'], predecessors: [] },
    { id: 'a', name: 'Charge "card" <now>', successors: ['b', 'c'], predecessors: ['root'] },
    { id: 'b', name: 'b', successors: ['end'], predecessors: ['a'] },
    { id: 'c', name: 'c', successors: ['end'], predecessors: ['a'] },
    { id: 'end', name: 'end', successors: [], predecessors: ['b', 'c'] },
  ].map((node) => ({
    ...node,
    status: statuses[node.id] ?? 'uncreated',
    failCount: node.id === 'b' ? 2 : 0,
    attempt: 1,
    calls: 1,
  })) as InstanceDetail['nodes'],
})

describe('the Mermaid graph of an instance', () => {
  it('draws every node with its status class and every edge', () => {
    const graph = instanceGraph(detail({ root: 'completed', a: 'completed', b: 'pending', c: 'failed' }))
    expect(graph.split('\n')).toContain('flowchart TD')
    expect(graph).toContain('n1["a: Charge #quot;card#quot; #lt;now#gt;<br/>completed"]:::completed')
    expect(graph).toContain('n2["b<br/>pending<br/>fails: 2"]:::pending')
    expect(graph).toContain('n4(["end<br/>uncreated"]):::uncreated')
    for (const edge of ['n0 --> n1', 'n1 --> n2', 'n1 --> n3', 'n2 --> n4', 'n3 --> n4']) expect(graph).toContain(edge)
    for (const status of ['completed', 'pending', 'failed', 'uncreated']) {
      expect(graph).toMatch(new RegExp(`classDef ${status} fill:`))
    }
    expect(graph).not.toContain('classDef running')
  })

  it('draws a definition without statuses', () => {
    const graph = definitionGraph(loadDefinition({ id: 'flow', nodes: [{ id: 'x', next_nodes: [] }] }))
    expect(graph).toContain('n0(["root"])')
    expect(graph).toContain('n1["x"]')
    expect(graph).toContain('n0 --> n1')
    expect(graph).not.toContain('classDef')
  })
})

describe('the title and labels, whatever the ids hold', () => {
  /** Mermaid reads the lines between the `---` fences as YAML: the title must come back exactly as written. */
  const frontMatter = (graph: string): unknown => parseYaml(graph.split('---\n')[1] ?? '')

  it.each(['po-2026:', 'a: b', 'x:y', '#1', 'v.1-', "it's", '0', 'yes', '- item', '[list]', '{map}', 'a"b', 'a\\b'])(
    'writes the title of instance %j so that it reads back unchanged',
    (id) => {
      const graph = instanceGraph({ ...detail({}), id })
      expect(frontMatter(graph)).toEqual({ title: `order ${id} (running)` })
    },
  )

  it('writes a backtick in a name as an entity, so that it does not start a Markdown string', () => {
    const graph = instanceGraph({
      ...detail({}),
      nodes: detail({}).nodes.map((node) => (node.id === 'a' ? { ...node, name: '`code`' } : node)),
    })
    expect(graph).toContain('n1["a: #96;code#96;<br/>uncreated"]')
  })
})
