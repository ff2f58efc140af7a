import { describe, expect, it } from 'vitest'

import { parse as parseYaml } from 'yaml'
import { definitionGraph, type InstanceGraphInput, type InstanceGraphNode, instanceGraph } from '../../src/api/graph.js'

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

const approvalFlow = () =>
  loadDefinition({
    id: 'approval-flow',
    on_failure: 'isolate',
    timeout_seconds: 3600,
    nodes: [
      {
        id: 'review',
        next_nodes: ['approve', 'reject', 'escalate'],
        choice: [
          { when: '$output.decision = "approve"', next: 'approve' },
          { when: '$output.amount > 10000', next: 'escalate' },
          { when: '$output.decision = "reject"', next: 'reject' },
          { default: 'escalate' },
        ],
      },
      { id: 'approve', next_nodes: ['notify'], when: '$input.amount < 5000', run_timeout_seconds: 30 },
      { id: 'reject', next_nodes: ['notify'], optional: true },
      { id: 'escalate', next_nodes: ['notify'], timeout_seconds: 86_400 },
      { id: 'notify', next_nodes: [], trigger: 'all_done' },
    ],
  })

const lineOf = (graph: string, prefix: string): string | undefined =>
  graph.split('\n').find((line) => line.trimStart().startsWith(prefix))

describe('the Mermaid graph of a definition with conditions and choices', () => {
  it('notes each condition and rule on its node', () => {
    const graph = definitionGraph(approvalFlow())
    expect(lineOf(graph, 'n2[')).toBe('  n2["approve<br/>when: $input.amount #lt; 5000<br/>run timeout: 30 s"]')
    expect(lineOf(graph, 'n3[')).toBe('  n3["reject<br/>optional"]')
    expect(lineOf(graph, 'n4[')).toBe('  n4["escalate<br/>timeout: 86400 s"]')
    expect(lineOf(graph, 'n5[')).toBe('  n5["notify<br/>trigger: all_done"]')
  })

  it('labels each choice edge with its numbered rules and the default', () => {
    const graph = definitionGraph(approvalFlow())
    expect(graph).toContain('  n1 -->|"1: $output.decision = #quot;approve#quot;"| n2')
    expect(graph).toContain('  n1 -->|"3: $output.decision = #quot;reject#quot;"| n3')
    expect(graph).toContain('  n1 -->|"2: $output.amount #gt; 10000 / default"| n4')
    // Edges outside a choice carry no label.
    expect(graph).toContain('  n2 --> n5')
  })

  it('says when a choice takes no branch by default', () => {
    const definition = loadDefinition({
      id: 'flow',
      nodes: [
        { id: 'a', next_nodes: ['b'], choice: [{ when: '$output.go', next: 'b' }, { default: null }] },
        { id: 'b', next_nodes: [] },
      ],
    })
    expect(lineOf(definitionGraph(definition), 'n1[')).toBe('  n1["a<br/>choice default: no branch"]')
  })

  it('names the workflow rules in the title', () => {
    expect(definitionGraph(approvalFlow())).toMatch(
      /^title: "approval-flow \(version \w+, on_failure: isolate, timeout: 3600 s\)"$/m,
    )
  })

  it('cuts a long expression to a one-line preview', () => {
    const long = `$input.customer.segment in ["gold", "platinum"]\n  and $input.amount > 1000 and $input.country = "NL"`
    const definition = loadDefinition({ id: 'flow', nodes: [{ id: 'a', next_nodes: [], when: long }] })
    const line = lineOf(definitionGraph(definition), 'n1[') ?? ''
    expect(line).toContain('when: $input.customer.segment in [#quot;gold#quot;, #quot;platinum#quot;] and $input.…')
    expect(line).not.toContain('\n')
  })
})

describe('the Mermaid graph of an instance with skipped nodes and choices', () => {
  const instance = (
    status: InstanceDetail['status'],
    nodes: Record<string, { status: string; skipReason?: string; chosen?: string | null }>,
  ): InstanceGraphInput => ({
    id: 'wf-9',
    workflowType: 'approval-flow',
    status,
    nodes: approvalFlow().nodes.map((node) => ({
      id: node.id,
      name: node.name,
      successors: node.next,
      failCount: 0,
      ...({ status: 'uncreated', ...nodes[node.id] } as Pick<InstanceGraphNode, 'status' | 'skipReason' | 'chosen'>),
    })),
  })

  it('draws a skipped node dashed, with its reason', () => {
    const graph = instanceGraph(
      instance('completed', {
        root: { status: 'completed' },
        review: { status: 'completed', chosen: 'reject' },
        approve: { status: 'skipped', skipReason: 'not_chosen' },
        escalate: { status: 'skipped', skipReason: 'not_chosen' },
        reject: { status: 'completed' },
        notify: { status: 'completed' },
        end: { status: 'completed' },
      }),
    )
    expect(lineOf(graph, 'n2[')).toBe('  n2["approve<br/>skipped: not_chosen"]:::skipped')
    expect(graph).toMatch(/classDef skipped .*stroke-dasharray/)
  })

  it('draws the edge a choice took thick and the others dotted', () => {
    const graph = instanceGraph(
      instance('running', {
        root: { status: 'completed' },
        review: { status: 'completed', chosen: 'reject' },
        approve: { status: 'skipped', skipReason: 'not_chosen' },
        escalate: { status: 'skipped', skipReason: 'not_chosen' },
        reject: { status: 'running' },
      }),
      approvalFlow(),
    )
    expect(graph).toContain('  n1 ==>|"3: $output.decision = #quot;reject#quot;"| n3')
    expect(graph).toContain('  n1 -.->|"1: $output.decision = #quot;approve#quot;"| n2')
    expect(graph).toContain('  n1 -.->|"2: $output.amount #gt; 10000 / default"| n4')
    expect(graph).toContain('  n0 --> n1')
  })

  it('tells the taken edge from the skipped targets when the choice itself is not recorded', () => {
    const graph = instanceGraph(
      instance('running', {
        root: { status: 'completed' },
        review: { status: 'completed' },
        approve: { status: 'skipped', skipReason: 'not_chosen' },
        escalate: { status: 'pending' },
        reject: { status: 'skipped', skipReason: 'not_chosen' },
      }),
      approvalFlow(),
    )
    expect(graph).toMatch(/ {2}n1 ==>\|"[^"]*default"\| n4/)
    expect(graph).toMatch(/ {2}n1 -\.->\|"1: [^"]*"\| n2/)
    expect(graph).toMatch(/ {2}n1 -\.->\|"3: [^"]*"\| n3/)
  })

  it('draws plain edges while a choice is still undecided', () => {
    const graph = instanceGraph(
      instance('running', { root: { status: 'completed' }, review: { status: 'running' } }),
      approvalFlow(),
    )
    expect(graph).not.toContain('==>')
    expect(graph).not.toContain('-.->')
  })

  it('shows the conditions of the definition on an instance', () => {
    const graph = instanceGraph(
      instance('running', { approve: { status: 'skipped', skipReason: 'condition_false' } }),
      approvalFlow(),
    )
    expect(lineOf(graph, 'n2[')).toBe(
      '  n2["approve<br/>skipped: condition_false<br/>when: $input.amount #lt; 5000<br/>run timeout: 30 s"]:::skipped',
    )
  })

  it('names a timed-out instance in its title', () => {
    const graph = instanceGraph(
      instance('timed_out', {
        root: { status: 'completed' },
        review: { status: 'canceled' },
        approve: { status: 'skipped', skipReason: 'not_started' },
      }),
    )
    expect(lineOf(graph, 'title:')).toBe('title: "approval-flow wf-9 (timed_out)"')
    expect(lineOf(graph, 'n2[')).toBe('  n2["approve<br/>skipped: not_started"]:::skipped')
  })
})

describe('quoting in the Mermaid graph', () => {
  it.each([
    ['an id ending in a colon', 'order:42:'],
    ['an id with a quote-like character', 'a"b'],
    ['an id with a hash', 'run#1'],
  ])('quotes the title whatever %s holds', (_, id) => {
    const graph = instanceGraph({ ...detail({}), id })
    const title = lineOf(graph, 'title:') ?? ''
    expect(JSON.parse(title.slice('title: '.length))).toBe(`order ${id} (running)`)
  })

  it('quotes every node label and edge label', () => {
    const graph = definitionGraph(approvalFlow())
    const body = graph.split('\n').slice(4).filter(Boolean)
    for (const line of body.filter((l) => /^ {2}n\d+[[(]/.test(l))) expect(line).toMatch(/^ {2}n\d+\(?\["[^"]*"\]\)?$/)
    for (const line of body.filter((l) => l.includes('|'))) expect(line).toMatch(/\|"[^"]*"\|/)
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
