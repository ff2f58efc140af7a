/** Key and index-attribute builders for the single-table layout (see README, "Table layout"). Pure functions. */

export const INDEX = {
  byType: 'byType',
  byBusiness: 'byBusiness',
  due: 'due',
} as const

/** The table's TTL attribute (epoch seconds), set on finished instances: see `timeToLiveSpecification`. */
export const TTL_ATTRIBUTE = 'expiresAt'

/** Number of partitions of the due index; the tick queries each one. Fixed: changing it needs a migration. */
export const DUE_SHARDS = 8

export const instanceKey = (instanceId: string): { pk: string } => ({ pk: `I#${instanceId}` })

export const definitionKey = (workflowType: string, version: string): { pk: string } => ({
  pk: `D#${workflowType}#${version}`,
})

const MS_DIGITS = 15
const MAX_KEY_MS = 10 ** MS_DIGITS - 1

/** Sort key of the list indexes: creation time (zero-padded ms, so strings sort like numbers), then id. */
export const createdKey = (createdAtMs: number, instanceId: string): string =>
  `${String(createdAtMs).padStart(MS_DIGITS, '0')}#${instanceId}`

/**
 * Lowest and highest possible created keys for a creation-time range (inclusive). Times are clamped to what a key
 * can hold: a 16-digit bound would sort before 15-digit keys and turn the range inside out.
 */
export const createdKeyBounds = (fromMs: number | undefined, toMs: number | undefined): [string, string] => [
  `${String(Math.min(fromMs ?? 0, MAX_KEY_MS)).padStart(MS_DIGITS, '0')}#`,
  `${String(Math.min(toMs ?? MAX_KEY_MS, MAX_KEY_MS)).padStart(MS_DIGITS, '0')}#\uffff`,
]

/** FNV-1a over the id: spreads due instances evenly over the shards, the same on every runner. */
export const dueShardFor = (instanceId: string, shards = DUE_SHARDS): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < instanceId.length; i++) {
    hash ^= instanceId.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return String((hash >>> 0) % shards)
}
