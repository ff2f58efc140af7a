import { z } from 'zod'
import { ValidationError } from '../core/errors.js'
import type { CountQuery, CountResult, InstanceCatalogue, InstanceSummary, ListPage, ListQuery } from '../core/store.js'
import type { InstanceStatus } from '../schemas/statuses.js'

/**
 * The catalogue's rules, written once for every store: the created sort key, the partitions and key range a query
 * reads, the filter on index entries, the list cursor, the merge and paging over several partitions, and the count
 * bound. A store supplies one I/O primitive, `readIndexPage` (after Powertools' BasePersistenceLayer, which leaves
 * only its record I/O to each persistence layer), so MemoryStore and DynamoDbStore cannot list, page, count or
 * refuse cursors differently.
 */

/** Creation times in a key: base 36, zero-padded to 10 digits, so that strings sort like numbers up to 10^15 ms. */
const KEY_TIME_DIGITS = 10
const MAX_KEY_MS = 10 ** 15 - 1

const keyTime = (ms: number): string => ms.toString(36).padStart(KEY_TIME_DIGITS, '0')

/** Sort key of the list indexes: creation time (10 base-36 digits, so strings sort like numbers), then id. */
export const createdKey = (createdAtMs: number, instanceId: string): string => `${keyTime(createdAtMs)}#${instanceId}`

/** The creation time a created key holds (the instance item stores it there only). */
export const createdAtOf = (key: string): number => Number.parseInt(key.slice(0, KEY_TIME_DIGITS), 36)

/**
 * Lowest and highest possible created keys for a creation-time range (inclusive). Times are clamped to what a key
 * can hold: an 11-digit bound would sort before 10-digit keys and turn the range inside out.
 */
export const createdKeyBounds = (fromMs: number | undefined, toMs: number | undefined): [string, string] => [
  `${keyTime(Math.min(Math.max(fromMs ?? 0, 0), MAX_KEY_MS))}#`,
  `${keyTime(Math.min(toMs ?? MAX_KEY_MS, MAX_KEY_MS))}#\uffff`,
]

/** One entry of a list index, in created-key order: what a summary is made of. */
export interface CatalogueEntry {
  createdKey: string
  id: string
  workflowType: string
  businessId?: string
  status: InstanceStatus
  createdAtMs: number
  /** The parked code, present while the instance is parked. */
  parkCode?: string
}

/** A partition of the list indexes: one per workflow type, or the business id's (all its types together). */
export type CataloguePartition = { by: 'type'; workflowType: string } | { by: 'business'; businessId: string }

/** Which partitions answer a list or count: the business id's when given, else one per workflow type. */
export const cataloguePartitions = (query: CountQuery): CataloguePartition[] =>
  query.businessId !== undefined
    ? [{ by: 'business', businessId: query.businessId }]
    : query.workflowTypes.map((workflowType) => ({ by: 'type', workflowType }))

/** What is left of a query once its partition and key range are chosen: a filter on each entry read. */
export interface EntryFilter {
  statuses?: readonly InstanceStatus[]
  /** Only parked entries (true) or only entries that are not parked (false). */
  parked?: boolean
  /**
   * A business id partition holds every type: it is narrowed to the type only when exactly one is asked for (with
   * several, the business id alone selects, as a type partition cannot be read per business id).
   */
  workflowType?: string
}

export const entryFilter = (query: CountQuery, partition: CataloguePartition): EntryFilter => ({
  ...(query.statuses === undefined ? {} : { statuses: query.statuses }),
  ...(query.parked === undefined ? {} : { parked: query.parked }),
  ...(partition.by === 'business' && query.workflowTypes.length === 1 && query.workflowTypes[0] !== undefined
    ? { workflowType: query.workflowTypes[0] }
    : {}),
})

/** The filter rule; a store that filters on its side (a FilterExpression) must translate exactly this. */
export const entryMatches = (entry: CatalogueEntry, filter: EntryFilter): boolean =>
  (filter.statuses === undefined || filter.statuses.includes(entry.status)) &&
  (filter.parked === undefined || filter.parked === (entry.parkCode !== undefined)) &&
  (filter.workflowType === undefined || entry.workflowType === filter.workflowType)

/** Whether an entry belongs to a partition (for a store that keeps no index of its own). */
export const inPartition = (entry: CatalogueEntry, partition: CataloguePartition): boolean =>
  partition.by === 'business'
    ? entry.businessId === partition.businessId
    : entry.workflowType === partition.workflowType

/** Created keys from `low` to `high`, both inclusive; `low > high` holds nothing. */
export interface KeyRange {
  low: string
  high: string
}

export type ListRangeQuery = CountQuery & { order: 'asc' | 'desc'; after?: string }

/** The created keys a list or count reads: the creation-time range, narrowed by the cursor (which it includes). */
export const listKeyRange = (query: ListRangeQuery): KeyRange => {
  let [low, high] = createdKeyBounds(query.createdFromMs, query.createdToMs)
  if (query.after !== undefined) {
    if (query.order === 'desc' && query.after < high) high = query.after
    if (query.order === 'asc' && query.after > low) low = query.after
  }
  return { low, high }
}

export const isEmptyRange = (range: KeyRange): boolean => range.low > range.high

/** Exactly the created keys a store issues (ASCII), so a forged cursor cannot turn a key range inside out. */
const cursorSchema = z.strictObject({
  v: z.literal(1),
  after: z.string().regex(/^[0-9a-z]{10}#[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/),
})

/** The list cursor every store issues: the created key of the last entry returned or read, versioned. */
export const encodeListCursor = (after: string): string =>
  Buffer.from(JSON.stringify({ v: 1, after }), 'utf8').toString('base64url')

/** The created key a list cursor continues after; a ValidationError naming `cursor` for anything else. */
export const decodeListCursor = (cursor: string): string => {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))).after
  } catch {
    throw new ValidationError('cursor is not a cursor this service issued', 'cursor')
  }
}

export const summaryOf = (entry: CatalogueEntry): InstanceSummary => {
  const summary: InstanceSummary = {
    id: entry.id,
    workflowType: entry.workflowType,
    status: entry.status,
    createdAtMs: entry.createdAtMs,
  }
  if (entry.businessId !== undefined) summary.businessId = entry.businessId
  if (entry.parkCode !== undefined) summary.parked = entry.parkCode
  return summary
}

/** Where a read of one partition stopped, as its store continues from it (opaque to the shared code). */
export type IndexPosition = Readonly<Record<string, unknown>>

export interface IndexPageRequest {
  partition: CataloguePartition
  range: KeyRange
  order: 'asc' | 'desc'
  filter: EntryFilter
  /** Most entries to read, matching or not: what a read costs is bounded by this. */
  limit: number
  /** Continue after this position (from the previous page's `next`). */
  next?: IndexPosition
  /** Only the number of matches is needed: `entries` may be left empty. */
  countOnly?: boolean
}

export interface IndexPage {
  /** The entries read that match the filter, in the order asked for (empty with `countOnly`). */
  entries: CatalogueEntry[]
  matched: number
  /** Entries read, matching or not. */
  read: number
  /** Present when the partition may hold more in the range: where to continue, and the last key read. */
  next?: { position: IndexPosition; lastKey: string }
}

/** How many entries one list call reads per partition page at most (DynamoDB's Query returns at most 1 MB). */
const MAX_PAGE_ENTRIES = 1000

export interface CatalogueOptions {
  /** Largest number of index pages one list call reads per partition before it returns a (possibly short) page. */
  maxPagesPerList?: number
}

/**
 * The catalogue over an ordered index: list and count written once, over `readIndexPage`. A store extends it and
 * implements that one read.
 */
export abstract class IndexedCatalogue implements InstanceCatalogue {
  readonly #maxPages: number

  protected constructor(options: CatalogueOptions = {}) {
    this.#maxPages = options.maxPagesPerList ?? 10
  }

  /** Reads a page of one partition's index entries within the range, in key order, from a position. */
  protected abstract readIndexPage(request: IndexPageRequest): Promise<IndexPage>

  /**
   * Reads each partition from the cursor on, merges them by created key and returns `limit` items. A page can be
   * short when filters reject many entries; the cursor then continues where the reading stopped.
   */
  async listInstances(query: ListQuery): Promise<ListPage> {
    const after = query.cursor === undefined ? undefined : decodeListCursor(query.cursor)
    const desc = query.order === 'desc'
    const beyond = (key: string, bound: string) => (desc ? key < bound : key > bound)
    const range = listKeyRange({ ...query, ...(after === undefined ? {} : { after }) })
    if (isEmptyRange(range)) return { items: [] }
    const streams = await Promise.all(
      cataloguePartitions(query).map((partition) => this.#collect(partition, query, range, after)),
    )
    let merged = streams
      .flatMap((stream) => stream.entries)
      .sort((a, b) => (a.createdKey < b.createdKey ? -1 : a.createdKey > b.createdKey ? 1 : 0))
    if (desc) merged.reverse()
    // A partition that stopped early has unread entries beyond its last read key: nothing past it may be returned.
    const stops = streams.map((stream) => stream.stoppedAt).filter((key): key is string => key !== undefined)
    const stop = stops.length ? stops.reduce((a, b) => (beyond(a, b) ? b : a)) : undefined
    if (stop !== undefined) merged = merged.filter((entry) => !beyond(entry.createdKey, stop))
    const page = merged.slice(0, query.limit)
    const items = page.map(summaryOf)
    const more = merged.length > query.limit || stop !== undefined
    if (!more) return { items }
    const last = page[page.length - 1]
    const cursorKey = merged.length > query.limit && last ? last.createdKey : (stop ?? last?.createdKey)
    return cursorKey === undefined ? { items } : { items, cursor: encodeListCursor(cursorKey) }
  }

  async #collect(
    partition: CataloguePartition,
    query: ListQuery,
    range: KeyRange,
    after: string | undefined,
  ): Promise<{ entries: CatalogueEntry[]; stoppedAt?: string }> {
    const entries: CatalogueEntry[] = []
    const filter = entryFilter(query, partition)
    let next: IndexPage['next']
    for (let page = 0; page < this.#maxPages; page++) {
      const result = await this.readIndexPage({
        partition,
        range,
        order: query.order,
        filter,
        limit: Math.min(MAX_PAGE_ENTRIES, query.limit + 1),
        ...(next === undefined ? {} : { next: next.position }),
      })
      // The range includes the cursor's own key (DynamoDB's BETWEEN is inclusive): that entry was returned before.
      for (const entry of result.entries) if (entry.createdKey !== after) entries.push(entry)
      next = result.next
      if (next === undefined || entries.length > query.limit) return { entries }
    }
    return next === undefined ? { entries } : { entries, stoppedAt: next.lastKey }
  }

  /**
   * One budget of `maxRead` entries read for every partition together, spent partition after partition, so that a
   * count never costs more than that; `complete: false` when it ran out before the end was seen.
   */
  async countInstances(query: CountQuery, maxRead: number): Promise<CountResult> {
    const range = listKeyRange({ ...query, order: 'asc' })
    if (isEmptyRange(range)) return { count: 0, complete: true }
    let budget = maxRead
    let count = 0
    for (const partition of cataloguePartitions(query)) {
      const filter = entryFilter(query, partition)
      let next: IndexPage['next']
      do {
        if (budget <= 0) return { count, complete: false }
        const result = await this.readIndexPage({
          partition,
          range,
          order: 'asc',
          filter,
          limit: budget,
          countOnly: true,
          ...(next === undefined ? {} : { next: next.position }),
        })
        count += result.matched
        budget -= result.read
        next = result.next
      } while (next !== undefined)
    }
    return { count, complete: true }
  }
}
