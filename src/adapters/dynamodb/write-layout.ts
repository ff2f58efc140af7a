import type { InstanceChange } from '../../core/instance-change.js'
import { NODE_OVERHEAD_BYTES, type StoreCapacity } from '../../core/limits.js'
import { isTerminalNodeStatus } from '../../core/statuses.js'
import type { StoredEntry, StoredNode } from './item-codec.js'

/**
 * The item layout of an instance's partition (README, "Table layout") and every DynamoDB limit it answers to: what
 * the instance item holds inline, what moves to items of its own, when settled records and history leave the
 * instance item, and when a write names its nodes one by one or writes the map whole. The engine's core knows none
 * of it: it hands the store's lease writer a change in its own terms (see `lease-writer.ts`).
 */

/** DynamoDB's item limit: 400 KB, counted as 1,024 bytes per KB. */
export const DYNAMODB_ITEM_BYTES = 400 * 1024

/**
 * The largest payload (a node's output and overrides, an input, an event's content) the store accepts: each one is
 * stored in an item of its own when it is not small, and that item also holds its keys and attribute names.
 */
export const MAX_PAYLOAD_BYTES = 350 * 1024

/**
 * The largest instance budget the store accepts: what one instance may store over all its items. A whole instance
 * is read by one Query (paged at 1 MB), so the budget bounds what a `get` or a resumed pass reads.
 */
export const MAX_INSTANCE_BYTES = 64 * 1024 * 1024

/** What the DynamoDB store can hold of one instance (the engine's limits must stay within it). */
export const DYNAMODB_CAPACITY: StoreCapacity = {
  maxPayloadBytes: MAX_PAYLOAD_BYTES,
  maxInstanceBytes: MAX_INSTANCE_BYTES,
  payloadHeldBy: `(350 KiB): a payload is stored in one DynamoDB item of at most ${DYNAMODB_ITEM_BYTES} bytes with its keys`,
  instanceReadBy: '(64 MiB), what one instance read may return',
}

/**
 * Payloads up to these sizes are kept inline in the instance item, larger ones in items of their own that the
 * instance item refers to. With at most 200 nodes, every node record at its largest inline size and an inline event
 * per node, the instance item stays below 400 KB by construction: 200 × (1,024 + 512 + record) + the instance's own
 * attributes.
 */
export const INLINE_PAYLOAD_BYTES = 1024
export const INLINE_EVENT_BYTES = 512
export const INLINE_INPUT_BYTES = 1024

/** What a reference to a payload stored out of line costs in the instance item (its key and hash). */
export const PAYLOAD_REF_BYTES = 48

/**
 * Settled node records are moved out of the instance item, all together, once they take this many bytes there: a
 * small workflow never pays for an archive item, a large one keeps an instance item of about this size plus its
 * running nodes, so the cost of a node step does not grow with the nodes finished before it.
 */
export const ARCHIVE_AT_BYTES = 2048

/**
 * More changed nodes than this in one write and the whole node map is written instead: one `nodes.#n = :n` per
 * node would pass DynamoDB's 4 KB update-expression limit near 200 nodes, the most a definition may have.
 */
export const MAX_NODES_ONE_BY_ONE = 40

/**
 * The recent history entries leave the instance item with the settled node records, or on their own once they take
 * this many bytes there: the instance item stays small whatever the instance's history.
 */
export const HISTORY_ARCHIVE_AT_BYTES = 2048

/**
 * What one write that moves history may carry, within DynamoDB's 4 KB update expression: it names each entry it
 * removes (`h[12]`) and each of its own it appends (`h[1000000] = :h0`), next to up to 40 node records. A write with
 * more entries of its own appends them as one list and moves nothing; a later write moves them.
 */
export const HISTORY_MOVE_MAX = 100
export const HISTORY_MOVE_OWN_MAX = 40

/** A change as the writer sends it: the engine's change, laid out over the instance's items, encoded once. */
export interface LaidOutChange {
  change: InstanceChange
  /** Encoded node records that go into the instance item, one attribute each. */
  nodes: Record<string, StoredNode>
  /** Every record the instance item keeps (instead of `nodes`): the map is written whole. */
  allNodes?: Record<string, StoredNode>
  /** Settled records leaving the instance item for one archive item written just before. */
  archive?: Record<string, StoredNode>
  /** The change's own history entries, encoded. */
  history: StoredEntry[]
  /**
   * The first `count` entries of the instance item's history (those the writer knows: entries appended since by
   * events sit after them and stay) leave it — for the archive item, or dropped with `drop` — and `count` is added
   * to the history base.
   */
  historyOut?: { count: number; entries: StoredEntry[]; base: number; drop?: boolean }
  /** Which of the instance item's writes this is (`expected` before it, `next` after it); the writer always says. */
  writeSeq?: { expected: number; next: number }
}

const textBytes = (text: string | undefined): number => (text === undefined ? 0 : Buffer.byteLength(text, 'utf8'))

/**
 * What a skipped node's record takes in the instance item (its status, time and reason code, no payload): counted as
 * such, skips do not bring the archive write forward.
 */
const SKIPPED_NODE_BYTES = 40

/** What a stored node record takes in the instance item, as the archive rule counts it. */
export const inlineNodeBytes = (nodeId: string, node: StoredNode): number => {
  if (node.st === 'skipped' && node.o === undefined && node.pr === undefined) return SKIPPED_NODE_BYTES + nodeId.length
  const payload =
    node.pr !== undefined ? PAYLOAD_REF_BYTES : textBytes(node.o ?? '{}') + textBytes(node.wc) + textBytes(node.pc)
  return NODE_OVERHEAD_BYTES + nodeId.length + payload + (node.ir?.length ?? 0)
}

/** A record that will not change again unless restarted: terminal, with no attempt in flight. */
export const isSettled = (node: StoredNode): boolean => isTerminalNodeStatus(node.st) && node.as === undefined

/** The bytes an entry takes in the instance item, roughly as DynamoDB counts them. */
export const storedEntryBytes = (entry: StoredEntry): number =>
  typeof entry === 'string' ? entry.length + 3 : JSON.stringify(entry).length

export const storedHistoryBytes = (entries: readonly StoredEntry[]): number =>
  entries.reduce((sum, entry) => sum + storedEntryBytes(entry), 0)
