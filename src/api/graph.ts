import type { NodeDefinition, WorkflowDefinition } from '../core/definition.js'
import type { InstanceStatus, NodeStatus, SkipReason } from '../schemas/statuses.js'
import { DEFAULT_FAILURE_MODE, DEFAULT_TRIGGER_RULE } from '../schemas/workflow-config.js'

/** Colours per node status; nodes that never ran (`uncreated`, `skipped`) are drawn dashed. */
const STATUS_STYLES: Record<NodeStatus, string> = {
  uncreated: 'fill:#f8f9fa,stroke:#adb5bd,color:#495057,stroke-dasharray: 4 3',
  running: 'fill:#d0ebff,stroke:#1c7ed6,color:#0b3d6e',
  pending: 'fill:#fff3bf,stroke:#f08c00,color:#5c3c00',
  finishing: 'fill:#d3f9d8,stroke:#37b24d,color:#1b4332',
  completed: 'fill:#b2f2bb,stroke:#2b8a3e,color:#1b4332',
  failed: 'fill:#ffc9c9,stroke:#e03131,color:#5c0011',
  canceled: 'fill:#e9ecef,stroke:#868e96,color:#343a40',
  restarting: 'fill:#e5dbff,stroke:#7048e8,color:#2b1a66',
  skipped: 'fill:#f1f3f5,stroke:#868e96,color:#495057,stroke-dasharray: 6 4',
}

/** Longest expression shown in a note or on an edge; the definition holds the whole text. */
const EXPRESSION_PREVIEW_CHARS = 60

/**
 * Mermaid label text: quotes and markup characters become entities so any name renders safely; a backtick too, as
 * "` starts a Markdown string.
 */
const label = (text: string): string =>
  text.replace(
    /[&"<>#`]/g,
    (ch) => ({ '&': '#amp;', '"': '#quot;', '<': '#lt;', '>': '#gt;', '#': '#35;', '`': '#96;' })[ch] ?? ch,
  )

/**
 * The title goes into the YAML front matter: written as a double-quoted scalar (JSON's string syntax is YAML's), so
 * that an id with `: `, ` #` or a quote reads back as written instead of breaking the graph.
 */
const yamlString = (text: string): string => JSON.stringify(text)

/** An expression on one line, cut to a preview. */
const preview = (source: string): string => {
  const line = source.replace(/\s+/g, ' ').trim()
  return line.length > EXPRESSION_PREVIEW_CHARS ? `${line.slice(0, EXPRESSION_PREVIEW_CHARS - 1)}…` : line
}

/** What the graph shows of an instance's node. `NodeDetail` of the engine is one. */
export interface InstanceGraphNode {
  readonly id: string
  readonly name: string
  readonly successors: readonly string[]
  readonly status: NodeStatus
  readonly failCount: number
  /** Why a `skipped` node was skipped. */
  readonly skipReason?: SkipReason
  /** For a node with a choice that was made: the successor it took (`null`: none). */
  readonly chosen?: string | null
  /** An optional node: its failure is shown as `failed_optional`. */
  readonly optional?: boolean
}

/** What the graph shows of an instance. `InstanceDetail` of the engine is one. */
export interface InstanceGraphInput {
  readonly id: string
  readonly workflowType: string
  readonly status: InstanceStatus
  readonly nodes: readonly InstanceGraphNode[]
}

interface GraphEdge {
  readonly to: string
  readonly label?: string
  /** Drawn thick when a choice took it, dotted when it did not; plain when nothing was decided. */
  readonly taken?: boolean
}

interface GraphNode {
  readonly id: string
  readonly name: string
  readonly edges: readonly GraphEdge[]
  readonly status?: NodeStatus
  readonly lines: readonly string[]
}

const ARROWS = { plain: '-->', taken: '==>', notTaken: '-.->' } as const

const render = (title: string, nodes: readonly GraphNode[]): string => {
  const key = new Map(nodes.map((node, index) => [node.id, `n${index}`]))
  const lines = ['---', `title: ${yamlString(title)}`, '---', 'flowchart TD']
  for (const node of nodes) {
    const text = [node.name === node.id ? node.id : `${node.id}: ${node.name}`, ...node.lines]
      .map((part) => label(part))
      .join('<br/>')
    const synthetic = node.id === 'root' || node.id === 'end'
    const shape = synthetic ? `(["${text}"])` : `["${text}"]`
    lines.push(`  ${key.get(node.id)}${shape}${node.status ? `:::${node.status}` : ''}`)
  }
  for (const node of nodes) {
    for (const edge of node.edges) {
      const arrow = edge.taken === undefined ? ARROWS.plain : edge.taken ? ARROWS.taken : ARROWS.notTaken
      const text = edge.label === undefined ? '' : `|"${label(edge.label)}"|`
      lines.push(`  ${key.get(node.id)} ${arrow}${text} ${key.get(edge.to)}`)
    }
  }
  const used = new Set(nodes.map((node) => node.status).filter((status) => status !== undefined))
  for (const status of used) lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`)
  return `${lines.join('\n')}\n`
}

/** The rules a node carries, one note each: its condition, join rule, optional failure and deadlines. */
const ruleNotes = (node: NodeDefinition | undefined): string[] => {
  if (!node) return []
  const notes: string[] = []
  if (node.when) notes.push(`when: ${preview(node.when.source)}`)
  if (node.trigger !== DEFAULT_TRIGGER_RULE) notes.push(`trigger: ${node.trigger}`)
  if (node.optional) notes.push('optional')
  if (node.runTimeoutSeconds !== undefined) notes.push(`run timeout: ${node.runTimeoutSeconds} s`)
  if (node.timeoutSeconds !== undefined) notes.push(`timeout: ${node.timeoutSeconds} s`)
  if (node.choice?.default === null) notes.push('choice default: no branch')
  return notes
}

/**
 * Edge labels of a choice: each target lists its rules by number (the first true rule wins, so the order matters) and
 * `default`. Edges of a node without a choice carry no label.
 */
const choiceLabels = (node: NodeDefinition | undefined): Map<string, string> => {
  const labels = new Map<string, string[]>()
  node?.choice?.rules.forEach((rule, index) => {
    labels.set(rule.next, [...(labels.get(rule.next) ?? []), `${index + 1}: ${preview(rule.when.source)}`])
  })
  const fallback = node?.choice?.default
  if (fallback) labels.set(fallback, [...(labels.get(fallback) ?? []), 'default'])
  return new Map([...labels].map(([target, parts]) => [target, parts.join(' / ')]))
}

/**
 * Whether a choice took the edge to `target`: the recorded choice when the node has one; otherwise a target skipped
 * as `not_chosen` was not taken, and any other decided target was. Undefined while nothing is decided.
 */
const takenEdge = (
  node: InstanceGraphNode,
  target: InstanceGraphNode | undefined,
  hasChoice: boolean,
): boolean | undefined => {
  if (node.chosen !== undefined) return node.chosen === target?.id
  if (!hasChoice || node.status !== 'completed' || !target) return undefined
  if (target.status === 'skipped') return target.skipReason !== 'not_chosen'
  return target.status === 'uncreated' ? undefined : true
}

const statusLine = (node: InstanceGraphNode): string => {
  if (node.status === 'skipped' && node.skipReason) return `skipped: ${node.skipReason}`
  // A display label, not a status: the node is `failed`, and its successors counted it as done.
  return node.status === 'failed' && node.optional ? 'failed_optional' : node.status
}

/**
 * A Mermaid flowchart of an instance, each node styled by its status, skipped nodes dashed with their reason and the
 * edges a choice took drawn thick (paste it into any Mermaid renderer). With the instance's definition, the nodes
 * also show their conditions and rules, and choice edges their rules.
 */
export const instanceGraph = (detail: InstanceGraphInput, definition?: WorkflowDefinition): string => {
  const byId = new Map(detail.nodes.map((node) => [node.id, node]))
  return render(
    `${detail.workflowType} ${detail.id} (${detail.status})`,
    detail.nodes.map((node) => {
      const rules = definition?.byId.get(node.id)
      const labels = choiceLabels(rules)
      const hasChoice = rules?.choice !== undefined || node.chosen !== undefined
      return {
        id: node.id,
        name: node.name,
        status: node.status,
        lines: [statusLine(node), ...(node.failCount > 0 ? [`fails: ${node.failCount}`] : []), ...ruleNotes(rules)],
        edges: node.successors.map((to) => {
          const taken = takenEdge(node, byId.get(to), hasChoice)
          const text = labels.get(to)
          return { to, ...(text !== undefined ? { label: text } : {}), ...(taken !== undefined ? { taken } : {}) }
        }),
      }
    }),
  )
}

/** The workflow's own rules, for the title of its graph. */
const workflowNotes = (definition: WorkflowDefinition): string => {
  const notes = [`version ${definition.version}`]
  if (definition.onFailure !== DEFAULT_FAILURE_MODE) notes.push(`on_failure: ${definition.onFailure}`)
  if (definition.timeoutSeconds !== undefined) notes.push(`timeout: ${definition.timeoutSeconds} s`)
  return notes.join(', ')
}

/** A Mermaid flowchart of a workflow definition, with its conditions, choices and rules. */
export const definitionGraph = (definition: WorkflowDefinition): string =>
  render(
    `${definition.type} (${workflowNotes(definition)})`,
    definition.nodes.map((node) => {
      const labels = choiceLabels(node)
      return {
        id: node.id,
        name: node.name,
        lines: ruleNotes(node),
        edges: node.next.map((to) => {
          const text = labels.get(to)
          return { to, ...(text !== undefined ? { label: text } : {}) }
        }),
      }
    }),
  )
