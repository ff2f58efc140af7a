import type { InstanceChange } from '../../core/instance-change.js'
import { NODE_OVERHEAD_BYTES } from '../../core/limits.js'
import {
  inlinePayloadBytes,
  nodeStatusCode,
  packNode,
  type StoredEntry,
  type StoredInput,
  type StoredNode,
  TERMINAL_NODE_CODES,
  textBytes,
} from './item-codec.js'
import { PAYLOAD_REF_BYTES } from './write-layout.js'

/** A change as the writer sends it: the engine's change, laid out over the instance's items, encoded once. */
export interface LaidOutChange {
  change: InstanceChange
  /** Encoded node records that go into the instance item, one attribute each. */
  nodes: Record<string, StoredNode>
  /** Every record the instance item keeps (instead of `nodes`): the map is written whole. */
  allNodes?: Record<string, StoredNode>
  /** Settled records leaving the instance item for one node archive item written just before. */
  archive?: Record<string, StoredNode>
  /** The sort key of that archive item. */
  archiveKey?: string
  /**
   * The instance item's whole list of node archives after this write, when the write drops archives whose every
   * record a later archive or the instance item replaced (they go with the write's deletions).
   */
  archives?: string[]
  /** The change's own history entries, encoded. */
  history: StoredEntry[]
  /**
   * The first `count` entries of the instance item's history (those the writer knows: entries appended since by
   * events sit after them and stay) leave it — for a history archive, or dropped with `drop` — and `count` is added
   * to the history base. With `own`, the change's own entries go into that archive too instead of the item.
   */
  historyOut?: { count: number; entries: StoredEntry[]; base: number; drop?: boolean; own?: boolean }
  /** Prior inputs: the whole map (when the item has none), or the keys set and removed. */
  priorInputs?: { whole?: Record<string, StoredInput>; set: Record<string, StoredInput>; remove: string[] }
  /** The new input, inline or in an item of its own (with the bytes it counts for). */
  input?: { text: string } | { ref: string; bytes: number }
  /**
   * Items this write replaces: sort key → bytes. Deleted right after it lands, and counted until the clean-up that
   * deleted them takes them off the pending deletions (see `clearPendingParams`).
   */
  gc?: { add: Record<string, number> }
  /**
   * What the writer knows the instance item holds already: a history list, a bytes total. The write appends to them
   * without `if_not_exists` (nothing removes either once written), which costs the table's CPU on every write.
   */
  stored?: { history: boolean; total: boolean }
  /** Which of the instance item's writes this is (`expected` before it, `next` after it); the writer always says. */
  writeSeq?: { expected: number; next: number }
  /**
   * The event counter (`es`) the writer knows: the write is conditioned on it and returns nothing. Undefined: it
   * returns the counter and the history instead (see writeUnderLeaseParams).
   */
  eventSeq?: number
  /** The attempt an acquisition recorded (`xn`, `xt`, `xf`) leaves the item: its node is stored, or the lease ends. */
  clearArmed?: boolean
  /** The place in the due index a write that sets the due time keeps (`ds`); undefined: the due time itself. */
  duePlace?: number
  /** The next attempt to name (`nx`): a release's, or '' for none (a release without one, a write that sets the due time). */
  nextAttempt?: string
}

/**
 * What a stored node record takes in the instance item, as the archive rule counts it. A skip is counted as stored,
 * packed (its id, its string and the map entry's byte): skips do not bring the archive write forward. Any other
 * record is counted with a record's overhead even when it is packed: counted at its packed size, settled records of
 * small outputs would stay longer in the instance item and push more of its writes past a KB (100 nodes of 100 B:
 * 2.37 WCU per node against 2.06).
 */
const SKIPPED = nodeStatusCode('skipped')

export const inlineNodeBytes = (nodeId: string, node: StoredNode): number => {
  const packed = node.s === SKIPPED ? packNode(node) : node
  if (typeof packed === 'string') return nodeId.length + textBytes(packed) + 1
  const payload = node.p !== undefined ? PAYLOAD_REF_BYTES : inlinePayloadBytes(node)
  return NODE_OVERHEAD_BYTES + nodeId.length + payload + (node.ir?.length ?? 0) + textBytes(node.le)
}

/**
 * A record that may leave the instance item for an archive: settled (terminal, no attempt in flight: it will not
 * change again unless restarted), or waiting with no attempt in flight and no
 * callback wait open — nothing but a pass changes it, and no write without the lease looks at it (a callback's
 * completion and heartbeat are conditioned on the node's record in the instance item, an event only on its absence
 * or liveness). A waiting record changes again when its node is next stepped: that write puts it back into the
 * instance item, where it wins over the archived copy.
 */
export const isQuiet = (node: StoredNode): boolean =>
  node.as === undefined && (TERMINAL_NODE_CODES.includes(node.s) || node.cw === undefined || node.cw.o !== undefined)

/**
 * The bytes a value takes in an item as DynamoDB counts them: a string its UTF-8 bytes, a number about one byte per
 * two digits plus one, a map or list 3 bytes plus one per element, and a map each element's name.
 */
export const storedValueBytes = (value: unknown): number => {
  if (typeof value === 'string') return textBytes(value)
  if (typeof value === 'number') return Math.ceil(String(Math.abs(value)).replace(/[.e+-]/g, '').length / 2) + 1
  if (typeof value === 'boolean' || value === null || value === undefined) return 1
  if (Array.isArray(value)) return value.reduce((sum: number, each) => sum + 1 + storedValueBytes(each), 3)
  let bytes = 3
  for (const [key, each] of Object.entries(value as Record<string, unknown>)) {
    if (each !== undefined) bytes += 1 + textBytes(key) + storedValueBytes(each)
  }
  return bytes
}

/** What a node record takes in the instance item's map `n` as DynamoDB counts it (packed as it is written). */
export const storedNodeBytes = (nodeId: string, node: StoredNode): number =>
  1 + textBytes(nodeId) + storedValueBytes(packNode(node))

/** The bytes an entry takes in the instance item, roughly as DynamoDB counts them. */
const storedEntryBytes = (entry: StoredEntry): number =>
  typeof entry === 'string' ? entry.length + 3 : JSON.stringify(entry).length

export const storedHistoryBytes = (entries: readonly StoredEntry[]): number =>
  entries.reduce((sum, entry) => sum + storedEntryBytes(entry), 0)
