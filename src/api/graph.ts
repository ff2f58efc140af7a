import type { WorkflowDefinition } from '../core/definition.js'
import type { InstanceDetail } from '../core/engine.js'
import type { NodeStatus } from '../schemas/statuses.js'

/** Colours per node status; `uncreated` nodes are drawn dashed. */
const STATUS_STYLES: Record<NodeStatus, string> = {
  uncreated: 'fill:#f8f9fa,stroke:#adb5bd,color:#495057,stroke-dasharray: 4 3',
  running: 'fill:#d0ebff,stroke:#1c7ed6,color:#0b3d6e',
  pending: 'fill:#fff3bf,stroke:#f08c00,color:#5c3c00',
  finishing: 'fill:#d3f9d8,stroke:#37b24d,color:#1b4332',
  completed: 'fill:#b2f2bb,stroke:#2b8a3e,color:#1b4332',
  failed: 'fill:#ffc9c9,stroke:#e03131,color:#5c0011',
  canceled: 'fill:#e9ecef,stroke:#868e96,color:#343a40',
  restarting: 'fill:#e5dbff,stroke:#7048e8,color:#2b1a66',
}

/** Mermaid label text: quotes and markup characters become entities so any name renders safely. */
const label = (text: string): string =>
  text.replace(/[&"<>#]/g, (ch) => ({ '&': '#amp;', '"': '#quot;', '<': '#lt;', '>': '#gt;', '#': '#35;' })[ch] ?? ch)

interface GraphNode {
  id: string
  name: string
  successors: readonly string[]
  status?: NodeStatus
  note?: string
}

const render = (title: string, nodes: readonly GraphNode[]): string => {
  const key = new Map(nodes.map((node, index) => [node.id, `n${index}`]))
  const lines = ['---', `title: ${label(title)}`, '---', 'flowchart TD']
  for (const node of nodes) {
    const text = [node.name === node.id ? node.id : `${node.id}: ${node.name}`, node.status, node.note]
      .filter(Boolean)
      .map((part) => label(String(part)))
      .join('<br/>')
    const synthetic = node.id === 'root' || node.id === 'end'
    const shape = synthetic ? `(["${text}"])` : `["${text}"]`
    lines.push(`  ${key.get(node.id)}${shape}${node.status ? `:::${node.status}` : ''}`)
  }
  for (const node of nodes) {
    for (const next of node.successors) lines.push(`  ${key.get(node.id)} --> ${key.get(next)}`)
  }
  const used = new Set(nodes.map((node) => node.status).filter((status) => status !== undefined))
  for (const status of used) lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`)
  return `${lines.join('\n')}\n`
}

/** A Mermaid flowchart of an instance, each node styled by its status (paste it into any Mermaid renderer). */
export const instanceGraph = (detail: InstanceDetail): string =>
  render(
    `${detail.workflowType} ${detail.id} (${detail.status})`,
    detail.nodes.map((node) => ({
      id: node.id,
      name: node.name,
      successors: node.successors,
      status: node.status,
      ...(node.failCount > 0 ? { note: `fails: ${node.failCount}` } : {}),
    })),
  )

/** A Mermaid flowchart of a workflow definition. */
export const definitionGraph = (definition: WorkflowDefinition): string =>
  render(
    `${definition.type} (version ${definition.version})`,
    definition.nodes.map((node) => ({ id: node.id, name: node.name, successors: node.next })),
  )
