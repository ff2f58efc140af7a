import { isTerminalInstanceStatus, isTerminalNodeStatus } from '../schemas/statuses.js'
import { LAST_ERROR_CHARS } from './limits.js'
import type { HistoryEntry, HistoryPage, InstanceRecord, NodeRecord } from './store.js'
import { errorMessage } from './worker-signals.js'

/**
 * The rules of an instance's history, shared by both stores and the lease holder (README, "History"): entries
 * travel in the writes the engine makes anyway; how a store keeps them is its own (see the store's writer).
 */

/** An error's message is cut to this many characters in its entry. */
export const HISTORY_MESSAGE_CHARS = 300

/**
 * The most entries an instance keeps besides its latest ones: beyond, the oldest of the latest entries are dropped
 * (and counted as dropped): the first entries and the latest ones stay, whatever happens between.
 */
export const MAX_HISTORY_ENTRIES = 1000

/** A message as an entry keeps it. */
export const entryMessage = (message: string): string =>
  message.length > HISTORY_MESSAGE_CHARS ? `${message.slice(0, HISTORY_MESSAGE_CHARS - 1)}…` : message

/**
 * Keeps an error on its node's record (`system.last_error` and its time): the text every reader shows, whoever
 * recorded it — a pass, or a restart counting an attempt an earlier lease left in flight.
 */
export const noteNodeError = (record: NodeRecord, error: unknown, nowMs: number): string => {
  const lastError = errorMessage(error).slice(0, LAST_ERROR_CHARS)
  record.lastError = lastError
  record.lastErrorAtSeconds = Math.floor(nowMs / 1000)
  return lastError
}

/** The history entry of an error counted against a node (`lastError` as `noteNodeError` kept it). */
export const nodeErrorEntry = (
  nodeId: string,
  record: NodeRecord,
  error: unknown,
  lastError: string,
  atMs: number,
): HistoryEntry & { errorClass: string } => ({
  atMs,
  kind: 'error',
  nodeId,
  attempt: record.attempt,
  errorClass: error instanceof Error ? error.name : typeof error,
  message: entryMessage(lastError),
})

/**
 * The entries a change of node records and status makes, from what is stored before it: a node entry for each
 * status change (with the attempt, the duration since the node's creation once it settles, and a skipped node's
 * reason as its code), and a finished
 * entry when the instance becomes terminal.
 */
export const changeEntries = (
  nowMs: number,
  before: { nodes: Readonly<Record<string, NodeRecord['status']>>; status: InstanceRecord['status'] },
  after: { nodes?: Readonly<Record<string, NodeRecord>>; status?: InstanceRecord['status'] },
): HistoryEntry[] => {
  const entries: HistoryEntry[] = []
  for (const [nodeId, node] of Object.entries(after.nodes ?? {})) {
    if (before.nodes[nodeId] === node.status) continue
    const entry: HistoryEntry = { atMs: nowMs, kind: 'node', nodeId, status: node.status, attempt: node.attempt }
    // A skipped node never ran: it has a reason instead of a duration.
    if (node.status === 'skipped') {
      if (node.skipReason !== undefined) entry.code = node.skipReason
    } else if (isTerminalNodeStatus(node.status)) {
      entry.durationMs = Math.max(0, node.updatedAtMs - node.createdAtMs)
    }
    entries.push(entry)
  }
  if (after.status !== undefined && after.status !== before.status && isTerminalInstanceStatus(after.status)) {
    entries.push({ atMs: nowMs, kind: 'finished', status: after.status })
  }
  return entries
}

/** All kept entries of an instance, oldest first, each with its seq. */
export interface HistorySource {
  /** Runs of entries, each with the seq of its first entry, in any order. */
  runs: readonly { base: number; entries: readonly HistoryEntry[] }[]
  dropped: number
}

/**
 * A page of the history: entries after `afterSeq`, oldest first. An event replaced by a later event of the same
 * node before a pass saw it (the later entry names it in `replacesTs`) is marked superseded.
 */
export const historyPage = (source: HistorySource, query: { afterSeq?: number; limit: number }): HistoryPage => {
  const all: HistoryEntry[] = []
  for (const run of [...source.runs].sort((a, b) => a.base - b.base)) {
    run.entries.forEach((entry, index) => {
      all.push({ ...entry, seq: run.base + index })
    })
  }
  const replaced = new Set<string>()
  for (const entry of all) {
    if (entry.kind === 'event' && entry.replacesTs !== undefined)
      replaced.add(`${entry.nodeId}\u0000${entry.replacesTs}`)
  }
  for (let index = 0; index < all.length; index++) {
    const entry = all[index] as HistoryEntry
    if (entry.kind !== 'event' || !replaced.has(`${entry.nodeId}\u0000${entry.eventTs}`)) continue
    // The replacement is a later event entry of the same node naming this one.
    const later = all
      .slice(index + 1)
      .some((other) => other.kind === 'event' && other.nodeId === entry.nodeId && other.replacesTs === entry.eventTs)
    if (later) entry.superseded = true
  }
  const after = query.afterSeq
  const rest = after === undefined ? all : all.filter((entry) => (entry.seq as number) > after)
  const entries = rest.slice(0, query.limit)
  const last = entries[entries.length - 1]
  return rest.length > query.limit && last
    ? { entries, nextAfterSeq: last.seq as number, dropped: source.dropped }
    : { entries, dropped: source.dropped }
}
