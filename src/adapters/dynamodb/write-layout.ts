import type { StoreCapacity } from '../../core/limits.js'

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
 * instance item refers to, so each node's share of the instance item is bounded: 200 × (1,024 + 512 + record +
 * arrival) + the instance's own attributes, an arrival's content (output, or error and cause) inline only up to
 * INLINE_ARRIVAL_BYTES (at most about 230 bytes with its fields). Below 400 KB whatever every node is at:
 * a leased write that would leave more than SPILL_AT_BYTES of records moves inline payloads out (README, "Bounded by
 * construction").
 */
export const INLINE_PAYLOAD_BYTES = 1024
export const INLINE_EVENT_BYTES = 512
export const INLINE_INPUT_BYTES = 1024
export const INLINE_ARRIVAL_BYTES = 128

/**
 * A leased write leaves at most this much of node records and history in the instance item (as DynamoDB counts
 * them): past it, the write moves the inline payloads of the records it keeps there into payload items of their
 * own, largest first, until the item is back under it. The writes without the lease add at most, per node, its
 * event inline (content up to INLINE_EVENT_BYTES with its id and fields: about 0.55 KB) and its callback arrival
 * (content up to INLINE_ARRIVAL_BYTES with its fields: about 0.23 KB), each replacing the node's own; for the 200
 * nodes a definition has at most, 200 × 0.78 KB = 156 KB with 25-character ids (about 172 KB with 64-character
 * ones, the longest). 200 KB + 156 KB = 356 KB, leaving 44 KB below DynamoDB's 400 KB (28 KB with the longest ids)
 * for the instance's own attributes (about 1 KB, an input inline up to 1 KB, prior inputs) and the history entries
 * events append. A small instance never comes near it, and its writes are unchanged.
 */
export const SPILL_AT_BYTES = 200 * 1024

/** What a reference to a payload stored out of line costs in the instance item (its key and hash). */
export const PAYLOAD_REF_BYTES = 48

/**
 * Settled node records are moved out of the instance item, all together, once they take this many bytes there: a
 * small workflow never pays for an archive item, a large one keeps an instance item of about this size plus its
 * running nodes, so the cost of a node step does not grow with the nodes finished before it.
 */
export const ARCHIVE_AT_BYTES = 2048

/**
 * The node archives an instance keeps at most after an archive move (every acquisition reads them all): a move takes
 * along the current records of the smallest ones beyond this, and of any that mostly holds replaced copies.
 */
export const MAX_ARCHIVES = 8

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

/**
 * A write's own history entries beyond this many bytes (or HISTORY_MOVE_OWN_MAX entries) leave the instance item in
 * the write itself, with the recent ones, for a history archive: one write recording 200 interrupted attempts must
 * not carry 200 entries onto an instance item already at its largest.
 */
export const HISTORY_OWN_INLINE_BYTES = 2048

/**
 * How often a write under the lease is sent again, conditioned on the event counter its refusal showed, when events
 * arrived since the lease last knew the item (see writeUnderLeaseParams); then once in the form that needs no counter.
 */
export const EVENT_REFUSALS_MAX = 2
