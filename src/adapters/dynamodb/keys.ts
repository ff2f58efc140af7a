/** Key and index-attribute builders for the single-table layout (see README, "Table layout"). Pure functions. */

export const INDEX = {
  byType: 'byType',
  byBusiness: 'byBusiness',
  /** Sparse, sharded: an instance's place (`ds`, at or before its due time), projecting the due time itself. */
  due: 'duePlace',
  /** Instances with unpublished lifecycle events (sparse): the tick finds them here. */
  outbox: 'outbox',
} as const

/** The table's TTL attribute (epoch seconds), set on finished instances: see `timeToLiveSpecification`. */
export const TTL_ATTRIBUTE = 'expiresAt'

/** Number of partitions of the due index; the tick queries each one. Fixed: changing it needs a migration. */
export const DUE_SHARDS = 8

/**
 * How far ahead a due time may lie and still keep the instance's place in the due index (`ds`, at or before the due
 * time): an instance polled at shorter intervals keeps one place, so each poll changes only the due time the index
 * projects (1 WCU) instead of moving its key (2 WCU); the tick reads such an instance on each run until it is due.
 */
export const DUE_PLACE_HORIZON_MS = 3_600_000

/** Prefix of an instance's partition key. */
export const INSTANCE_PK_PREFIX = 'I#'

/**
 * Sort keys within an instance's partition (README, "Table layout"). The instance item sorts first, so one Query
 * reads it and then everything it refers to.
 */
export const SK = {
  /** The instance item: status, lease, due time, node records, small payloads; the only item the indexes see. */
  instance: '#',
  /** A node's payload (output and overrides) too large to be inline: `P#<node>#<unique>`. */
  payload: 'P#',
  /** An event's content too large to be inline: `E#<node>#<unique>`. */
  event: 'E#',
  /** An instance input or the map of prior inputs too large to be inline: `N#<unique>`. */
  input: 'N#',
  /** Settled node records moved out of the instance item together: `A#<fence>#<unique>`. */
  archive: 'A#',
  /** History entries moved out of the instance item together: `H#<fence>#<unique>`. */
  history: 'H#',
} as const

export interface ItemKey {
  pk: string
  sk: string
}

export const instancePk = (instanceId: string): string => `${INSTANCE_PK_PREFIX}${instanceId}`

/** The instance id of an instance partition key (the item does not repeat it: every byte of it is billed). */
export const instanceIdOf = (pk: string): string => pk.slice(INSTANCE_PK_PREFIX.length)

export const instanceKey = (instanceId: string): { pk: string; sk: typeof SK.instance } => ({
  pk: instancePk(instanceId),
  sk: SK.instance,
})

export const definitionKey = (workflowType: string, version: string): ItemKey => ({
  pk: `D#${workflowType}#${version}`,
  sk: SK.instance,
})

/** The list indexes' sort key and its bounds: the catalogue's one rule, shared with MemoryStore. */
export { createdAtOf, createdKey, createdKeyBounds } from '../store-catalogue.js'

/** FNV-1a over the id: spreads due instances evenly over the shards, the same on every runner. */
export const dueShardFor = (instanceId: string, shards = DUE_SHARDS): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < instanceId.length; i++) {
    hash ^= instanceId.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return String((hash >>> 0) % shards)
}
