import type { HistoryEntry, InstanceDetail, InstanceSummary, NodeDetail, WorkflowType } from '../schemas/http-api.js'
import { isRestartable, isTerminalInstanceStatus, isTerminalNodeStatus } from '../schemas/statuses.js'

/**
 * What the dashboard reads out of an instance, a node and the history: pure functions of the API's answers (no DOM),
 * so that what a panel says is tested without a browser.
 */

type Json = Record<string, unknown>

export const isSyntheticNode = (id: string): boolean => id === 'root' || id === 'end'

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Top-level keys of a node context that the engine writes (README, "Workers"); the rest is the node's output. */
const ENGINE_KEYS = new Set(['pre_node_context', 'workflow_context', 'node_event', 'system', 'reason'])

export interface NodeData {
  /** What the node ran with: the instance input and its predecessors' outputs, as copied into it at creation. */
  input?: Json
  /** What its worker stored: the context without the engine's keys. */
  output?: Json
  event?: { eventTs: number; content: unknown }
  /** The engine's notes: `last_error`, `last_error_time`, and a deadline's `reason`. */
  system?: Json
}

export const nodeData = (node: NodeDetail): NodeData => {
  const context = node.context
  if (!context) return {}
  const data: NodeData = {}
  const input: Json = {}
  if ('workflow_context' in context) input.workflow_context = context.workflow_context
  if ('pre_node_context' in context) input.pre_node_context = context.pre_node_context
  if (Object.keys(input).length) data.input = input
  data.output = Object.fromEntries(Object.entries(context).filter(([key]) => !ENGINE_KEYS.has(key)))
  const event = context.node_event
  if (isObject(event) && typeof event.event_ts === 'number') {
    data.event = { eventTs: event.event_ts, content: event.event_content ?? null }
  }
  const system: Json = isObject(context.system) ? { ...context.system } : {}
  if (context.reason !== undefined) system.reason = context.reason
  if (Object.keys(system).length) data.system = system
  return data
}

/** The error class and message of a history error entry, the class said once (`Error: card declined`). */
export const errorText = (entry: Pick<HistoryEntry, 'errorClass' | 'message'>): string => {
  const message = entry.message ?? ''
  if (!entry.errorClass) return message
  if (message === '') return entry.errorClass
  // The engine stores the error as `Class: message`: the class is not said twice.
  return message.startsWith(`${entry.errorClass}:`) ? message : `${entry.errorClass}: ${message}`
}

const lastError = (node: NodeDetail): string | undefined => {
  const system = node.context?.system
  return isObject(system) && typeof system.last_error === 'string' ? system.last_error : undefined
}

/** Whether the node's last signal was NotReady ("not yet"), which is no failure. */
const notReady = (node: NodeDetail): boolean =>
  node.failCount === 0 || (lastError(node)?.startsWith('NotReadyError') ?? false)

export type NodeStateKind =
  | 'not-started'
  | 'restarting'
  | 'working'
  | 'waiting-check'
  | 'waiting-run'
  | 'waiting-callback'
  | 'retrying'
  | 'finishing'
  | 'settled'

export interface NodeState {
  kind: NodeStateKind
  /** A few words: what the node is doing or waiting for. */
  text: string
  /** The rest, in a sentence: why, and what will move it. */
  detail?: string
  /** Since when (ms), when known. */
  sinceMs?: number
  /** When the engine looks at it again (ms), when planned. */
  nextMs?: number
}

/** Why a node was skipped, in an operator's words. */
const SKIP_EXPLANATIONS: Record<string, string> = {
  condition_false: 'its condition (when) was false',
  not_chosen: 'the choice before it took another branch',
  upstream_skipped: 'the nodes before it were skipped',
  upstream_failed: 'a node before it failed',
  not_started: 'the instance ended before it started',
}

/** The latest history entry of this node that put it in `status`: when it entered its current state. */
const enteredAt = (entries: readonly HistoryEntry[], nodeId: string, status: string): number | undefined => {
  for (let index = entries.length - 1; index >= 0; index--) {
    const entry = entries[index] as HistoryEntry
    if (entry.kind === 'node' && entry.nodeId === nodeId) return entry.status === status ? entry.atMs : undefined
  }
  return undefined
}

/**
 * What a node is doing, in an operator's words: a waiting node says what it waits for and since when — not "next
 * attempt in 59 s", which reads like a failing retry.
 */
export const nodeState = (
  detail: InstanceDetail,
  node: NodeDetail,
  entries: readonly HistoryEntry[],
  hasCheck: boolean,
): NodeState => {
  const since = enteredAt(entries, node.id, node.status) ?? node.updatedAtMs ?? node.createdAtMs
  const timed = (state: NodeState): NodeState => {
    if (since !== undefined && state.sinceMs === undefined) state.sinceMs = since
    if (node.nextAttemptAtMs !== undefined && state.nextMs === undefined) state.nextMs = node.nextAttemptAtMs
    return state
  }
  const event = nodeData(node).event
  const eventNote = event ? `an event arrived (eventTs ${event.eventTs})` : 'no event received yet'
  switch (node.status) {
    case 'uncreated': {
      const before = node.predecessors.filter((id) => !isSyntheticNode(id))
      return {
        kind: 'not-started',
        text: 'not started',
        ...(before.length
          ? { detail: `it starts once ${before.join(', ')} ${before.length > 1 ? 'have' : 'has'} completed` }
          : {}),
      }
    }
    case 'restarting':
      return timed({
        kind: 'restarting',
        text: 'restarting',
        detail: 'it runs again once the nodes before it have completed',
      })
    case 'finishing':
      return timed({
        kind: 'finishing',
        text: 'finishing',
        detail: 'it completed; the nodes after it are being started',
      })
    case 'completed':
      return {
        kind: 'settled',
        text: 'completed',
        ...(node.chosen !== undefined ? { detail: `its choice took ${node.chosen ?? 'no branch'}` } : {}),
      }
    case 'canceled':
      return { kind: 'settled', text: node.status }
    case 'skipped':
      return {
        kind: 'settled',
        text: `skipped: ${node.skipReason ?? '?'}`,
        detail: SKIP_EXPLANATIONS[node.skipReason ?? ''] ?? 'it will not run',
      }
    case 'failed': {
      const reason = node.context?.reason
      const why = typeof reason === 'string' ? reason : lastError(node)
      // An optional node's failure counts as done: the nodes after it go on.
      const text = node.optional ? 'failed (optional)' : 'failed'
      return { kind: 'settled', text, ...(why ? { detail: why } : {}) }
    }
  }
  if (isTerminalInstanceStatus(detail.status)) {
    return { kind: 'settled', text: 'stopped', detail: `the instance is ${detail.status}` }
  }
  if (node.waiting) {
    // Neither retried nor polled: a third party completes it with its token, or the wait times out.
    const heartbeat = node.waiting.heartbeatDeadlineMs
    const closes = node.waiting.closesAtMs
    return timed({
      kind: 'waiting-callback',
      text: node.waiting.reason,
      detail:
        (closes === undefined
          ? `it completes when its token is used; it fails (a failed attempt) at ${new Date(node.waiting.timeoutAtMs).toISOString()}`
          : `it completes when its token is used until ${new Date(closes).toISOString()}, when the deadline of its node or instance passes`) +
        (heartbeat === undefined ? '' : `, or without a heartbeat by ${new Date(heartbeat).toISOString()}`),
      sinceMs: node.waiting.sinceMs,
    })
  }
  if (node.attemptStartedAtMs !== undefined) {
    return {
      kind: 'working',
      text: 'worker running',
      detail: `its ${node.attemptStep ?? 'run'} step is being executed`,
      sinceMs: node.attemptStartedAtMs,
    }
  }
  if (!notReady(node)) {
    return timed({
      kind: 'retrying',
      text: 'retrying after a failure',
      detail: `${node.failCount} failure${node.failCount === 1 ? '' : 's'} so far; the last: ${lastError(node) ?? '?'}`,
    })
  }
  if (node.status === 'pending') {
    return timed({
      kind: 'waiting-check',
      text: hasCheck ? 'waiting for its check' : 'waiting',
      detail: `${hasCheck ? 'its check said "not yet": it is polled again at the next look, and at once when an event arrives' : 'its next step runs at the next look'}; ${eventNote}`,
    })
  }
  if (node.calls === 0) return timed({ kind: 'waiting-run', text: 'about to run' })
  return timed({
    kind: 'waiting-run',
    text: 'waiting (run not ready)',
    detail: `its run said "not yet": it is tried again at the next look, and at once when an event arrives; ${eventNote}`,
  })
}

export interface NodeActions {
  /** `now`: a started, unfinished node; `early`: not started yet, the event is kept for it; undefined: refused. */
  event?: 'now' | 'early'
  /** Whether a restart of the node is accepted, and whether it needs `force` (the instance is terminal). */
  restart?: { force: boolean }
}

/** The actions the API would accept on a node now (see the engine's event and restart rules). */
export const nodeActions = (detail: InstanceDetail, node: NodeDetail): NodeActions => {
  if (isSyntheticNode(node.id)) return {}
  const actions: NodeActions = {}
  if (!isTerminalInstanceStatus(detail.status) && !isTerminalNodeStatus(node.status)) {
    actions.event = node.status === 'uncreated' ? 'early' : 'now'
  }
  if (node.status !== 'uncreated') actions.restart = { force: isTerminalInstanceStatus(detail.status) }
  return actions
}

export interface InstanceActions {
  cancel: boolean
  restart: boolean
}

export const instanceActions = (detail: Pick<InstanceDetail, 'status'> & { parked?: unknown }): InstanceActions => ({
  cancel: !isTerminalInstanceStatus(detail.status),
  restart: isRestartable(detail),
})

/**
 * The selected instances a bulk cancel and a bulk restart act on: those whose own page offers the action (a summary
 * carries the park code alone, which is enough).
 */
export const bulkTargets = <T extends Pick<InstanceSummary, 'status' | 'parked'>>(
  chosen: readonly T[],
): { cancel: T[]; restart: T[] } => ({
  cancel: chosen.filter((item) => instanceActions(item).cancel),
  restart: chosen.filter((item) => instanceActions(item).restart),
})

export type EventContent =
  | { state: 'stored'; content: unknown }
  | { state: 'superseded' }
  | { state: 'replaced'; byEventTs: number }
  | { state: 'unknown' }

/**
 * The content of a history event entry. The history keeps no contents; the node keeps its latest event: an entry
 * with the same eventTs shows it, an older one says it was replaced.
 */
export const eventContent = (entry: HistoryEntry, detail: InstanceDetail): EventContent => {
  if (entry.superseded) return { state: 'superseded' }
  const node = detail.nodes.find((candidate) => candidate.id === entry.nodeId)
  const event = node ? nodeData(node).event : undefined
  if (!event || entry.eventTs === undefined) return { state: 'unknown' }
  if (event.eventTs === entry.eventTs) return { state: 'stored', content: event.content }
  return event.eventTs > entry.eventTs ? { state: 'replaced', byEventTs: event.eventTs } : { state: 'unknown' }
}

/** The history entries about one node: its status changes, events, errors and restarts. */
export const nodeEntries = (entries: readonly HistoryEntry[], nodeId: string): HistoryEntry[] =>
  entries.filter((entry) => entry.nodeId === nodeId)

export interface Segment {
  status: string
  fromMs: number
  toMs: number
}

export interface WaterfallRow {
  nodeId: string
  segments: Segment[]
  marks: { kind: 'event' | 'error' | 'restart'; atMs: number; text: string }[]
}

export interface Waterfall {
  startMs: number
  endMs: number
  rows: WaterfallRow[]
}

const SETTLED = new Set(['completed', 'failed', 'canceled', 'skipped', 'uncreated'])

/**
 * The nodes over time, from the history: each node's statuses as segments from one change to the next (a settled
 * status ends its segment), with its events, errors and restarts as marks; from the instance's creation to its end
 * (its last entry when terminal) or `nowMs`.
 */
export const waterfall = (
  detail: InstanceDetail,
  entries: readonly HistoryEntry[],
  nodeIds: readonly string[],
  nowMs: number,
): Waterfall => {
  const startMs = Math.min(detail.createdAtMs, ...entries.map((entry) => entry.atMs))
  const lastMs = Math.max(startMs, ...entries.map((entry) => entry.atMs))
  const endMs = isTerminalInstanceStatus(detail.status) ? Math.max(lastMs, detail.updatedAtMs) : Math.max(lastMs, nowMs)
  const rows = nodeIds.map((nodeId): WaterfallRow => {
    const segments: Segment[] = []
    const marks: WaterfallRow['marks'] = []
    let open: Segment | undefined
    for (const entry of entries) {
      if (entry.nodeId !== nodeId) continue
      if (entry.kind === 'node' && entry.status !== undefined) {
        if (open) open.toMs = entry.atMs
        open = undefined
        if (!SETTLED.has(entry.status)) {
          open = { status: entry.status, fromMs: entry.atMs, toMs: endMs }
          segments.push(open)
        } else {
          segments.push({ status: entry.status, fromMs: entry.atMs, toMs: entry.atMs })
        }
      } else if (entry.kind === 'event') {
        marks.push({ kind: 'event', atMs: entry.atMs, text: `event (eventTs ${entry.eventTs ?? '?'})` })
      } else if (entry.kind === 'error') {
        marks.push({ kind: 'error', atMs: entry.atMs, text: errorText(entry) })
      } else if (entry.kind === 'restart') {
        marks.push({ kind: 'restart', atMs: entry.atMs, text: 'restart' })
      }
    }
    return { nodeId, segments, marks }
  })
  return { startMs, endMs, rows }
}

/** Whether a workflow type's node has a `check` (it polls), from `GET /workflow-types`. */
export const hasCheck = (types: readonly WorkflowType[], workflowType: string, nodeId: string): boolean =>
  types.find((type) => type.type === workflowType)?.nodes.find((node) => node.id === nodeId)?.hasCheck ?? false

/** When an instance ended (its last change, once terminal), or undefined while it runs. */
export const endedAtMs = (detail: Pick<InstanceDetail, 'status' | 'updatedAtMs'>): number | undefined =>
  isTerminalInstanceStatus(detail.status) ? detail.updatedAtMs : undefined

/**
 * How long a node took, for the nodes table: from its creation to its last change once the node settled (skipped
 * included), else to the end of the instance, or to `nowMs` while it runs; undefined for a node not created.
 */
export const nodeTookMs = (
  detail: Pick<InstanceDetail, 'status' | 'updatedAtMs'>,
  node: Pick<NodeDetail, 'status' | 'createdAtMs' | 'updatedAtMs'>,
  nowMs: number,
): number | undefined => {
  if (node.createdAtMs === undefined) return undefined
  const settled = isTerminalNodeStatus(node.status) ? node.updatedAtMs : undefined
  return (settled ?? endedAtMs(detail) ?? nowMs) - node.createdAtMs
}
