import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import { z } from 'zod'
import type { CallbackClaims } from '../../core/callback-token.js'
import type { CallbackArrival, CallbackGuard } from '../../core/callbacks.js'
import type { NormalisedConfig } from '../../core/definition.js'
import {
  InstanceNotFoundError,
  ItemTooLargeError,
  LockConflictError,
  StaleEventError,
  type StoreError,
  ValidationError,
} from '../../core/errors.js'
import { eventRefusal, eventWriteRefusal } from '../../core/event-rules.js'
import { historyPage } from '../../core/history.js'
import { jsonSizeBytes } from '../../core/json.js'
import { acquired, acquireRefusal, holdsLease, keepsDueTime } from '../../core/lease-rules.js'
import type { LifecycleEvent, OutboxPage } from '../../core/lifecycle-events.js'
import { type Logger, silentLogger } from '../../core/ports.js'
import {
  type AcquireOptions,
  type AcquireResult,
  type DuePage,
  type EventGuard,
  type HistoryEntry,
  type HistoryPage,
  InstanceExistsError,
  type InstanceRecord,
  type InstanceStatusView,
  type InstanceStore,
  type Lease,
  type LeaseWriter,
  type NodeEventRecord,
} from '../../core/store.js'
import { classifyDynamoDbError } from '../aws-errors.js'
import { type CatalogueEntry, IndexedCatalogue, type IndexPage, type IndexPageRequest } from '../store-catalogue.js'
import { arrivalSideKeys } from './callback-items.js'
import { callbackWrite, clearArrivals } from './callback-store.js'
import {
  archivedNodeIds,
  entriesFromItems,
  type InstanceItem,
  ItemPlanner,
  instanceItemSchema,
  instanceStatusOf,
  nextAttemptFromItem,
  parseInstanceItem,
  recordFromInstanceItem,
  recordFromItems,
  recordToItem,
  refersToSideItems,
  type SideItem,
  type StoredEvent,
  type StoredNode,
  sideItemContent,
  sideItemKeys,
  storedInstanceStatusSchema,
  storedNodesOf,
  unaccountedSideItems,
} from './item-codec.js'
import {
  createdAtOf,
  createdKey,
  DUE_PLACE_HORIZON_MS,
  DUE_SHARDS,
  definitionKey,
  INDEX,
  instanceIdOf,
  instanceKey,
  instancePk,
  SK,
} from './keys.js'
import { DynamoLeaseWriter, type WriterIo } from './lease-writer.js'
import { clearOutboxParams, OUTBOX_SHARDS, queryOutboxParams, unmarkParams } from './outbox-items.js'
import {
  acquireLeaseParams,
  clearPendingParams,
  clearTerminalDueParams,
  indexPartition,
  listQueryParams,
  markDueParams,
  putDefinitionParams,
  putEventParams,
  putInstanceParams,
  queryDueParams,
  releaseLeaseParams,
  withdrawRetriedAttemptParams,
} from './params.js'
import { PartitionItems } from './partition-items.js'
import { Wire } from './wire.js'
import { DYNAMODB_CAPACITY } from './write-layout.js'

interface AwsError {
  name?: string
  message?: string
  Item?: Record<string, AttributeValue>
  $retryable?: unknown
  $metadata?: { httpStatusCode?: number }
}

/** Tries of a clean-up's clearing whose entries another clean-up partly cleared meanwhile. */
const CLEAR_PENDING_TRIES = 3

const isConditionFailure = (error: unknown): error is AwsError =>
  (error as AwsError)?.name === 'ConditionalCheckFailedException'

/** The item returned with a failed condition is marshalled even through the document client. */
const oldItem = (error: AwsError): Record<string, unknown> | undefined =>
  error.Item ? unmarshall(error.Item) : undefined

/**
 * Turns an AWS SDK error into the engine's StoreError, or ItemTooLargeError for DynamoDB's size refusals (see
 * classifyDynamoDbError); callers never see SDK types.
 */
export const translateAwsError = (
  error: unknown,
  operation: string,
  tableName: string,
): StoreError | ItemTooLargeError => classifyDynamoDbError(error, { operation, resource: tableName })

/** Readers see the attempt `xn` names as started by the lease of `fence` (see armAttempt). */
const shownAsStarted = (record: InstanceRecord, xn: string, fence: number): boolean => {
  const node = nextAttemptFromItem(xn)?.nodeId
  return node !== undefined && record.nodes[node]?.attemptStarted?.fence === fence
}

/** An instance item as read: parsed, with the side items read along, its stored node records and its record. */
interface ReadItem {
  item: InstanceItem
  side: ReadonlyMap<string, Record<string, unknown>>
  nodes: Record<string, StoredNode>
  record: InstanceRecord
}

const dueCursorSchema = z.strictObject({ pk: z.string(), sk: z.string(), dueShard: z.string(), ds: z.number() })
const outboxCursorSchema = z.strictObject({ pk: z.string(), sk: z.string(), obShard: z.string(), obAtMs: z.number() })

const encodeCursor = (key: Record<string, unknown>): string => Buffer.from(JSON.stringify(key)).toString('base64url')
const decodeCursor = (cursor: string): Record<string, unknown> => {
  try {
    return outboxCursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
  } catch {
    throw new ValidationError('cursor is not an outbox-index cursor', 'cursor')
  }
}

const ignoreConditionFailure = (error: unknown): void => {
  if (!isConditionFailure(error)) throw error
}

const statusViewSchema = z.object({
  status: storedInstanceStatusSchema,
  wfType: z.string(),
  createdKey: z.string(),
})

const entrySchema = z.object({
  pk: z.string(),
  wfType: z.string(),
  businessId: z.string().optional(),
  status: storedInstanceStatusSchema,
  createdKey: z.string(),
  parkCode: z.string().optional(),
})

export interface DynamoDbStoreOptions {
  tableName: string
  /** A DynamoDBClient or an already wrapped DynamoDBDocumentClient. */
  client: DynamoDBClient | DynamoDBDocumentClient
  /** Largest number of index pages one list call reads per partition before it returns a (possibly short) page. */
  maxPagesPerList?: number
  /** Where the store says what it could not clean up (items left to their time to live). */
  logger?: Logger
  /**
   * Days after which an item of an instance's partition other than the instance item (a large payload, an event, an
   * archive) may be deleted by the table's TTL, counted from when it was written; 0 keeps them. Default 395: the
   * default retention of 30 days after an instance finishes, plus the year an instance may run (README, "Limits").
   */
  sideItemExpiryDays?: number
  /**
   * How far ahead a due time may lie and keep the instance's place in the due index (default DUE_PLACE_HORIZON_MS,
   * an hour); 0: every due time is its own place. Each tick reads every place up to now, so a table with more
   * instances polled within the horizon than a tick can page through wants it lower (README, "Limits").
   */
  duePlaceHorizonMs?: number
  /**
   * Whether the store's writes may skip the SDK's per-request machinery when the client is as the SDK made it
   * (default true; README, "The direct wire"). False sends them through the SDK always: for instrumentation that
   * patches the SDK without adding middleware (OpenTelemetry's) or that the client receives after its first write.
   */
  directWrites?: boolean
}

/** How long a running instance may go on using what it wrote: side items outlive it by the retention. */
export const INSTANCE_LIFETIME_DAYS = 365

/** Default of `sideItemExpiryDays`. */
export const SIDE_ITEM_EXPIRY_DAYS = 30 + INSTANCE_LIFETIME_DAYS

/** The side items' expiry for an engine's `retentionDays` (default 30; 0 keeps everything). */
export const sideItemExpiryDays = (retentionDays: number | undefined): number =>
  retentionDays === 0 ? 0 : (retentionDays ?? 30) + INSTANCE_LIFETIME_DAYS

/** The parts of an instance item a history read needs. */
const historyHeadSchema = instanceItemSchema.pick({ h: true, hb: true, hd: true, ha: true, createdKey: true })

/** The InstanceStore on one DynamoDB table (layout in the README). Every state change is one conditional write. */
export class DynamoDbStore extends IndexedCatalogue implements InstanceStore {
  readonly capacity = DYNAMODB_CAPACITY
  readonly tableName: string
  readonly #doc: DynamoDBDocumentClient
  /** Writes, marshalled by the store itself (see Wire). */
  readonly #wire: Wire
  readonly #sideItemExpiryDays: number
  readonly #duePlaceHorizonMs: number
  readonly #items: PartitionItems
  readonly #logger: Logger
  #writers = 0

  constructor(options: DynamoDbStoreOptions) {
    super(options.maxPagesPerList === undefined ? {} : { maxPagesPerList: options.maxPagesPerList })
    this.tableName = options.tableName
    this.#doc =
      options.client instanceof DynamoDBDocumentClient
        ? options.client
        : DynamoDBDocumentClient.from(options.client, {
            marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
          })
    this.#wire = new Wire(options.client, { direct: options.directWrites ?? true })
    this.#sideItemExpiryDays = options.sideItemExpiryDays ?? SIDE_ITEM_EXPIRY_DAYS
    this.#duePlaceHorizonMs = options.duePlaceHorizonMs ?? DUE_PLACE_HORIZON_MS
    this.#logger = options.logger ?? silentLogger
    this.#items = new PartitionItems(
      this.#doc,
      () => this.tableName,
      (operation, fn) => this.#send(operation, fn),
      (error, operation) => translateAwsError(error, operation, this.tableName),
      this.#logger,
      this.#wire,
    )
  }

  #planner(instanceId: string, baseMs: number, nowMs: number, fence: number): ItemPlanner {
    const expiresAt =
      this.#sideItemExpiryDays > 0 ? Math.floor(nowMs / 1000) + this.#sideItemExpiryDays * 86_400 : undefined
    this.#writers = (this.#writers + 1) % 1_000_000
    return new ItemPlanner(instanceId, baseMs, expiresAt, `${String(fence).padStart(10, '0')}.${this.#writers}`)
  }

  /**
   * Runs a write whose side items are written first. A refusal deletes them again (retrying what DynamoDB leaves
   * unprocessed; what stays is logged and expires) — unless the instance item as the refusal returned it refers to
   * one of them: then an earlier attempt of this very write landed (the SDK sent it again after its answer was
   * lost) and they are what the instance holds.
   */
  async #withSideItems<T>(planner: ItemPlanner, write: () => Promise<T>): Promise<T> {
    const written = planner.sideItems
    if (written.length) await this.#items.put(written)
    try {
      return await write()
    } catch (error) {
      const refused = isConditionFailure(error) || error instanceof ItemTooLargeError
      if (written.length && refused && !this.#refersToAny(error, written)) {
        const instanceId = instanceIdOf(String((written[0] as SideItem).pk))
        await this.#items.delete(
          instanceId,
          written.map((item) => item.sk),
        )
      }
      throw error
    }
  }

  #refersToAny(error: unknown, items: readonly SideItem[]): boolean {
    const old = isConditionFailure(error) ? oldItem(error) : undefined
    if (old === undefined || old.sk !== SK.instance) return false
    const parsed = instanceItemSchema.safeParse(old)
    if (!parsed.success) return false
    const referred = new Set(sideItemKeys(parsed.data))
    return items.some((item) => referred.has(item.sk))
  }

  /** Every item of an instance's partition, the instance item first (one Query, paged at 1 MB). */
  async #readPartition(instanceId: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = []
    let startKey: Record<string, unknown> | undefined
    do {
      const result = await this.#send('readInstance', () =>
        this.#wire.query({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': instancePk(instanceId) },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      )
      items.push(...(result.Items ?? []))
      startKey = result.LastEvaluatedKey
    } while (startKey)
    return items
  }

  /**
   * The record of an instance item. `lazy`: with its node archive items only (the statuses of settled nodes), and
   * everything else that lives in items of its own left unread, to be read by key when needed; otherwise with the
   * whole partition. Side items are immutable, so an instance item read earlier (an acquisition's old image) still
   * finds its own.
   */
  async #read(
    raw: Record<string, unknown>,
    lazy: boolean,
    /** The partition's other items, when a takeover's sweep read them already: the lazy read takes its own from them. */
    partition?: ReadonlyMap<string, Record<string, unknown>>,
  ): Promise<ReadItem> {
    const item: InstanceItem = parseInstanceItem(raw)
    const instanceId = instanceIdOf(item.pk)
    let side = new Map<string, Record<string, unknown>>()
    if (lazy) {
      // A callback output over 1 KB is read with the instance item: a pass consumes it as soon as it sees it.
      const eager = [...(item.arc ?? []), ...arrivalSideKeys(item.cb)]
      if (eager.length && partition) {
        for (const sk of eager) {
          const found = partition.get(sk)
          if (found) side.set(sk, found)
        }
      } else if (eager.length) side = await this.#items.get(instanceId, eager)
    } else if (refersToSideItems(item)) {
      for (const found of await this.#readPartition(instanceId)) {
        if (found.sk !== SK.instance) side.set(String(found.sk), found)
      }
    }
    // The stored records once: the record is decoded from them, and a lease's writer starts from them.
    const nodes = storedNodesOf(item, side, { partial: lazy })
    return { item, side, nodes, record: recordFromInstanceItem(item, side, { lazy, stored: nodes }) }
  }

  /** What a lease's writer needs of the store: planners, its conditional update, reads and deletes, its release. */
  readonly #io: WriterIo = {
    tableName: () => this.tableName,
    planner: (instanceId, baseMs, nowMs, fence) => this.#planner(instanceId, baseMs, nowMs, fence),
    update: async (planner, params) => {
      try {
        const result = await this.#withSideItems(planner, () =>
          this.#send('writeUnderLease', () => this.#wire.update(params)),
        )
        return { attributes: result.Attributes ?? {} }
      } catch (error) {
        if (!isConditionFailure(error)) throw error
        return { refused: oldItem(error) }
      }
    },
    getItems: (instanceId, sortKeys) => this.#items.get(instanceId, sortKeys),
    deleteItems: (instanceId, sortKeys) => this.#items.delete(instanceId, sortKeys),
    clearPending: (instanceId, entries) => this.#clearPending(instanceId, entries),
    clearArrivals: (instanceId, arrivals) =>
      clearArrivals(instanceId, arrivals, {
        tableName: this.tableName,
        update: async (params) => {
          try {
            await this.#send('clearArrivals', () => this.#wire.update(params))
            return { landed: true }
          } catch (error) {
            if (!isConditionFailure(error)) throw error
            return { landed: false, old: oldItem(error) }
          }
        },
        warn: (message, details) => this.#logger.log('warn', message, details),
      }),
    releaseLease: (lease, attemptNotMade) => this.#releaseLease(lease, attemptNotMade),
  }

  /**
   * `acquisition`: the options of the acquisition that took the lease (none for a create). A due pass's recorded the
   * attempt the item named (see acquireLeaseParams); one that does not keep the due time placed the instance at the
   * lease end.
   */
  #writer(lease: Lease, found: ReadItem, acquisition?: AcquireOptions): LeaseWriter {
    const { item } = found
    return new DynamoLeaseWriter(lease, this.#io, {
      item,
      duePlace: acquisition && !keepsDueTime(acquisition) ? lease.untilMs : item.ds,
      duePlaceHorizonMs: this.#duePlaceHorizonMs,
      nodes: found.nodes,
      unread: Object.keys(found.record.unread?.nodes ?? {}),
      archives: archivedNodeIds(item, found.side),
      armed:
        item.xn !== undefined
          ? { text: item.xn, own: false, shown: shownAsStarted(found.record, item.xn, (item.xf ?? item.f - 1) + 1) }
          : acquisition?.dueBy === undefined
            ? undefined
            : { text: item.nx ?? '', own: true, shown: true },
    })
  }

  /**
   * Takes deleted items off an instance's pending deletions and their bytes off its total (see clearPendingParams).
   * A refusal returns the item: the entries another clean-up took off already are dropped, and the rest tried again.
   * The sort keys it could not clear (logged; a later lease's first write tries again). Never throws.
   */
  async #clearPending(instanceId: string, entries: Readonly<Record<string, number>>): Promise<string[]> {
    let left: Record<string, number> = { ...entries }
    let counted = true
    for (let attempt = 0; attempt < CLEAR_PENDING_TRIES && Object.keys(left).length; attempt++) {
      try {
        await this.#send('clearPending', () =>
          this.#wire.update(clearPendingParams(this.tableName, instanceId, left, counted)),
        )
        return []
      } catch (error) {
        if (!isConditionFailure(error)) {
          this.#logger.log('warn', 'deleted items are still counted; a later write will clear them', {
            instanceId,
            items: Object.keys(left).length,
            error: error instanceof Error ? error.message : String(error),
          })
          return Object.keys(left)
        }
        const old = oldItem(error)
        // No instance item: nothing counts them.
        if (old === undefined) return []
        const listed = (old.gc ?? {}) as Record<string, unknown>
        left = Object.fromEntries(Object.entries(left).filter(([sk]) => listed[sk] !== undefined))
        counted = old.b !== undefined
      }
    }
    return Object.keys(left)
  }

  async #send<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (isConditionFailure(error)) throw error
      throw translateAwsError(error, operation, this.tableName)
    }
  }

  async createInstance(record: InstanceRecord, history: readonly HistoryEntry[] = []): Promise<void> {
    const planner = this.#planner(record.id, record.createdAtMs, record.createdAtMs, record.fence)
    const item = recordToItem(record, planner, history)
    const existing = await this.#put(planner, item)
    if (existing) throw new InstanceExistsError((await this.#read(existing, false)).record)
  }

  async createLeased(
    record: InstanceRecord,
    lease: Lease,
    history: readonly HistoryEntry[] = [],
  ): Promise<LeaseWriter> {
    const planner = this.#planner(record.id, record.createdAtMs, record.createdAtMs, lease.fence)
    const leased = { ...record, leaseOwner: lease.owner, leaseUntilMs: lease.untilMs, fence: lease.fence }
    const item = recordToItem(leased, planner, history)
    const existing = await this.#put(planner, item)
    if (existing) {
      const found = await this.#read(existing, true)
      // This very put, sent again by the SDK after its answer was lost: the instance is ours, under this lease.
      if (!holdsLease(found.record, lease)) throw new InstanceExistsError((await this.#read(existing, false)).record)
      return this.#writer(lease, found)
    }
    return this.#writer(lease, { item, side: new Map(), nodes: item.n, record: leased })
  }

  /** Puts a new instance item after its side items; the item in the way when the id is taken. */
  async #put(planner: ItemPlanner, item: InstanceItem): Promise<Record<string, unknown> | undefined> {
    try {
      await this.#withSideItems(planner, () =>
        this.#send('createInstance', () => this.#wire.put(putInstanceParams(this.tableName, item))),
      )
      return undefined
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const existing = oldItem(error)
      if (!existing) throw translateAwsError(error, 'createInstance', this.tableName)
      return existing
    }
  }

  /**
   * The acquisition's own write returns the instance item (ALL_OLD, no read units); its node archives are read by
   * key, and whatever else lives in items of its own is left for the lease to read when it needs it.
   */
  async acquireLease(
    instanceId: string,
    owner: string,
    nowMs: number,
    untilMs: number,
    options: AcquireOptions = {},
  ): Promise<AcquireResult> {
    try {
      const result = await this.#send('acquireLease', () =>
        this.#wire.update(acquireLeaseParams(this.tableName, instanceId, owner, nowMs, untilMs, options)),
      )
      let old = result.Attributes ?? {}
      if (options.dueBy !== undefined && old.lo === owner && old.xn !== undefined && old.xf === Number(old.f) - 1) {
        // This very acquisition, sent again by the SDK after its first try landed: that try recorded the attempt at
        // the fence before this one. It is withdrawn, and the pass records its attempt with a write of its own.
        const fence = Number(old.f) + 1
        await this.#send('acquireLease', () =>
          this.#wire.update(withdrawRetriedAttemptParams(this.tableName, instanceId, owner, fence)),
        ).catch((error: unknown) => (isConditionFailure(error) ? undefined : Promise.reject(error)))
        const { xn: _xn, xt: _xt, xf: _xf, nx: _nx, ...rest } = old
        old = { ...rest, nx: '' }
      }
      // A lease taken over from a holder that never released it: what that holder put without the write that would
      // refer to it landing goes now (README, "Items nobody refers to").
      const swept = old.lo !== undefined && old.lo !== owner ? await this.#sweepOrphans(instanceId, old) : undefined
      const found = await this.#read(old, true, swept)
      const grant = acquired(found.record, owner, nowMs, untilMs, options)
      return { ...grant, writer: this.#writer(grant.lease, found, options) }
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const item = oldItem(error)
      if (!item) throw new InstanceNotFoundError(instanceId)
      // The lease, due time and status decide, and a refusal reports only those: no item of the partition is read.
      const state = recordFromItems(item, new Map(), { partial: true })
      const refusal = acquireRefusal(state, owner, nowMs, options)
      if (refusal instanceof Error) throw refusal
      if (refusal) return refusal
      throw new LockConflictError(instanceId, state.leaseUntilMs, nowMs)
    }
  }

  /**
   * Deletes the side items a lease's holder put and no landed write refers to: it died between the put and the write
   * (or its write was refused and it died before deleting them). `old`: the instance item as the acquisition that
   * took the lease over found it, which no write of an earlier lease can change any more. Only items made under a
   * lease up to that item's fence go: a writer without a lease (an event, a callback arrival) may be between its put
   * and its write right now. Never throws: what it could not delete is logged, and a later takeover or the time to
   * live removes it. Answers the partition's other items it read (undefined when it read none), for the lease's read.
   */
  async #sweepOrphans(
    instanceId: string,
    old: Record<string, unknown>,
  ): Promise<ReadonlyMap<string, Record<string, unknown>> | undefined> {
    try {
      const items = await this.#readPartition(instanceId)
      const parsed = instanceItemSchema.safeParse(old)
      if (!parsed.success) return undefined
      const item = parsed.data
      const side = new Map<string, Record<string, unknown>>()
      for (const found of items) if (found.sk !== SK.instance) side.set(String(found.sk), found)
      const orphans = unaccountedSideItems(item, side)
        .filter(({ fence }) => fence !== undefined && fence > 0 && fence <= item.f)
        .map(({ sk }) => sk)
      if (!orphans.length) return side
      const failed = await this.#items.delete(instanceId, orphans)
      this.#logger.log('info', 'deleted the items a stopped lease holder left unreferenced', {
        instanceId,
        items: orphans.length - failed.length,
        left: failed.length,
      })
      return side
    } catch (error) {
      this.#logger.log('warn', 'the items a stopped lease holder left were not swept; a later takeover will', {
        instanceId,
        error: error instanceof Error ? error.message : String(error),
      })
      return undefined
    }
  }

  async #releaseLease(lease: Lease, attemptNotMade = false): Promise<void> {
    try {
      await this.#send('releaseLease', () =>
        this.#wire.update(releaseLeaseParams(this.tableName, lease, attemptNotMade)),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  /**
   * One conditional write. The event it replaces, when kept in an item of its own, is deleted right after (listed as
   * pending deletion and counted until then); reading which item that is costs a small read, which also tells
   * whether the instance is parked (the write is conditioned on it: a parked instance keeps the event without
   * becoming due). An instance parked or unparked between the two is read again.
   */
  async putEvent(
    instanceId: string,
    nodeId: string,
    event: NodeEventRecord,
    nowMs: number,
    guard?: EventGuard,
    history?: HistoryEntry,
  ): Promise<'due' | 'parked'> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.#send('putEvent', () =>
        this.#wire.get({
          TableName: this.tableName,
          Key: instanceKey(instanceId),
          ProjectionExpression: 'createdKey, parkCode, e.#node',
          ExpressionAttributeNames: { '#node': nodeId },
          ConsistentRead: true,
        }),
      )
      if (!head.Item) throw new InstanceNotFoundError(instanceId)
      const base = createdAtOf(String(head.Item.createdKey))
      const parked = head.Item.parkCode !== undefined
      const stored = (head.Item.e as Record<string, StoredEvent> | undefined)?.[nodeId]
      const replaced = stored?.k === undefined ? undefined : { sk: stored.k, bytes: stored.b ?? 0 }
      const planner = this.#planner(instanceId, base, nowMs, 0)
      const contentBytes = jsonSizeBytes(event.content)
      const params = putEventParams(
        this.tableName,
        instanceId,
        nodeId,
        event,
        nowMs,
        guard,
        planner,
        history,
        replaced,
        contentBytes,
        parked,
      )
      try {
        await this.#withSideItems(planner, () => this.#send('putEvent', () => this.#wire.update(params)))
      } catch (error) {
        if (!isConditionFailure(error)) throw error
        const item = oldItem(error)
        if (!item) throw new InstanceNotFoundError(instanceId)
        const landedAs = item.parkCode === undefined ? 'due' : 'parked'
        // Our own write, retried by the SDK after its answer was lost, and since acted on by a pass. (An event in
        // an item of its own is ours when its key is: the key is unique to this write.)
        const sent = (params.ExpressionAttributeValues as { ':event': StoredEvent })[':event']
        const parsed = parseInstanceItem(item)
        if (sent.k !== undefined && parsed.e[nodeId]?.k === sent.k) return landedAs
        // The statuses and event times decide the refusal: the payloads of side items are not needed for it.
        const record = recordFromInstanceItem(parsed, new Map(), { partial: true })
        const refusal = eventWriteRefusal(record, nodeId, event, guard)
        if (refusal === 'landed' && sent.k === undefined) return landedAs
        // Parked or unparked since the read: the other form of the write.
        if ((item.parkCode !== undefined) !== parked && !eventRefusal(record, nodeId, event) && attempt < 4) continue
        throw refusal === 'landed' ? new StaleEventError(instanceId, nodeId, event.eventTs, event.eventTs) : refusal
      }
      if (replaced) {
        // Deleted, then counted no longer; a failed delete leaves it pending, for the next lease's first write.
        const failed = await this.#items.delete(instanceId, [replaced.sk])
        if (!failed.length) await this.#clearPending(instanceId, { [replaced.sk]: replaced.bytes })
      }
      return parked ? 'parked' : 'due'
    }
  }

  putCallback(
    claims: CallbackClaims,
    arrival: CallbackArrival,
    nowMs: number,
    guard?: CallbackGuard,
  ): Promise<'stored' | 'duplicate'> {
    return callbackWrite(
      claims,
      arrival,
      nowMs,
      {
        tableName: this.tableName,
        // An arrival's times are absolute (it is written without reading the item): the planner needs no base.
        planner: () => this.#planner(claims.instanceId, 0, nowMs, 0),
        update: async (planner, params) => {
          try {
            await this.#withSideItems(planner, () => this.#send('putCallback', () => this.#wire.update(params)))
            return { landed: true }
          } catch (error) {
            if (!isConditionFailure(error)) throw error
            return { landed: false, old: oldItem(error) }
          }
        },
        read: (instanceId) => this.getInstance(instanceId),
      },
      guard,
    )
  }

  /**
   * Removes published events from the outbox: with the index mark when they are all it holds (one request), else
   * exactly them, and the mark after them once the set is empty.
   */
  async clearOutbox(instanceId: string, events: readonly LifecycleEvent[]): Promise<void> {
    const update = (params: ReturnType<typeof clearOutboxParams>) =>
      this.#send('clearOutbox', () => this.#wire.update(params))
    const unmark = () => update(unmarkParams(this.tableName, instanceId)).catch(ignoreConditionFailure)
    if (events.length === 0) return void (await unmark())
    if (events.length <= 50) {
      try {
        await update(clearOutboxParams(this.tableName, instanceId, events, true))
        return
      } catch (error) {
        if (!isConditionFailure(error)) throw error
      }
    }
    let emptied = false
    for (let start = 0; start < events.length; start += 50) {
      const result = await update(
        clearOutboxParams(this.tableName, instanceId, events.slice(start, start + 50), false),
      ).catch((error: unknown) => (isConditionFailure(error) ? { Attributes: undefined } : Promise.reject(error)))
      emptied = result.Attributes?.ob === undefined
    }
    if (emptied) await unmark()
  }

  readonly outboxShards = OUTBOX_SHARDS

  async queryOutbox(shard: number, beforeMs: number, limit: number, cursor?: string): Promise<OutboxPage> {
    const startKey = cursor === undefined ? undefined : decodeCursor(cursor)
    const result = await this.#send('queryOutbox', () =>
      this.#wire.query(queryOutboxParams(this.tableName, shard, beforeMs, limit, startKey)),
    )
    const items = (result.Items ?? []).map((item) => ({
      instanceId: instanceIdOf(String(item.pk)),
      sinceMs: Number(item.obAtMs),
    }))
    return result.LastEvaluatedKey ? { items, cursor: encodeCursor(result.LastEvaluatedKey) } : { items }
  }

  async markDue(instanceId: string, dueAtMs: number): Promise<void> {
    try {
      await this.#send('markDue', () => this.#wire.update(markDueParams(this.tableName, instanceId, dueAtMs)))
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  async clearTerminalDue(instanceId: string, nowMs: number): Promise<void> {
    try {
      await this.#send('clearTerminalDue', () =>
        this.#wire.update(clearTerminalDueParams(this.tableName, instanceId, nowMs)),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  /** The instance item's recent entries, then its history archives by key (never the payloads). */
  async readHistory(instanceId: string, query: { afterSeq?: number; limit: number }): Promise<HistoryPage | undefined> {
    const result = await this.#send('readHistory', () =>
      this.#wire.get({
        TableName: this.tableName,
        Key: instanceKey(instanceId),
        ProjectionExpression: 'h, hb, hd, ha, createdKey',
        ConsistentRead: true,
      }),
    )
    if (!result.Item) return undefined
    const head = historyHeadSchema.parse(result.Item)
    const base = createdAtOf(head.createdKey)
    const archives = await this.#items.get(instanceId, head.ha ?? [])
    const runs = [...archives.values()].flatMap((raw) => {
      const parsed = sideItemContent.historyArchive(raw)
      if (!parsed.success || !parsed.data.h.length) return []
      return [{ base: parsed.data.hb, entries: entriesFromItems(parsed.data.h, base) }]
    })
    runs.push({ base: head.hb ?? 0, entries: entriesFromItems(head.h ?? [], base) })
    return historyPage({ runs, dropped: head.hd ?? 0 }, query)
  }

  readonly dueShards = DUE_SHARDS

  async queryDue(shard: number, nowMs: number, limit: number, cursor?: string): Promise<DuePage> {
    let startKey: Record<string, unknown> | undefined
    if (cursor !== undefined) {
      try {
        startKey = dueCursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
      } catch {
        throw new ValidationError('cursor is not a due-index cursor', 'cursor')
      }
    }
    const result = await this.#send('queryDue', () =>
      this.#wire.query(queryDueParams(this.tableName, shard, nowMs, limit, startKey)),
    )
    const items = (result.Items ?? []).map((item) => ({
      instanceId: instanceIdOf(String(item.pk)),
      dueAtMs: Number(item.dueAtMs),
    }))
    return result.LastEvaluatedKey
      ? { items, cursor: Buffer.from(JSON.stringify(result.LastEvaluatedKey)).toString('base64url') }
      : { items }
  }

  /**
   * One Query of the instance's partition: the instance item and every item it refers to. `lazy`: the instance item
   * and its node archives, by key, with the rest left unread.
   */
  async getInstance(instanceId: string, options: { lazy?: boolean } = {}): Promise<InstanceRecord | undefined> {
    if (options.lazy) {
      const result = await this.#send('readInstance', () =>
        this.#wire.get({ TableName: this.tableName, Key: instanceKey(instanceId), ConsistentRead: true }),
      )
      return result.Item ? (await this.#read(result.Item, true)).record : undefined
    }
    const items = await this.#readPartition(instanceId)
    const [first] = items
    if (first === undefined || first.sk !== SK.instance) return undefined
    const side = new Map<string, Record<string, unknown>>()
    for (const item of items.slice(1)) side.set(String(item.sk), item)
    return recordFromItems(first, side)
  }

  /**
   * The status without the item's bulk. DynamoDB bills a projected GetItem for the whole item's size, so only the
   * first read is one (eventually consistent: half price); with `known`, the status is read from the instance's
   * `byType` index entry, a few dozen bytes: 0.5 read units however large the instance.
   */
  async getInstanceStatus(instanceId: string, known?: InstanceStatusView): Promise<InstanceStatusView | undefined> {
    if (known !== undefined) {
      const result = await this.#send('getInstanceStatus', () =>
        this.#wire.query({
          TableName: this.tableName,
          IndexName: INDEX.byType,
          KeyConditionExpression: 'wfType = :type AND createdKey = :created',
          ExpressionAttributeValues: {
            ':type': known.workflowType,
            ':created': createdKey(known.createdAtMs, instanceId),
          },
          ProjectionExpression: '#status',
          ExpressionAttributeNames: { '#status': 'status' },
        }),
      )
      const entry = result.Items?.[0]
      if (entry !== undefined)
        return { ...known, status: instanceStatusOf(statusViewSchema.shape.status.parse(entry.status)) }
    }
    const result = await this.#send('getInstanceStatus', () =>
      this.#wire.get({
        TableName: this.tableName,
        Key: instanceKey(instanceId),
        ProjectionExpression: '#status, wfType, createdKey',
        ExpressionAttributeNames: { '#status': 'status' },
      }),
    )
    if (!result.Item) return undefined
    const item = statusViewSchema.parse(result.Item)
    return {
      status: instanceStatusOf(item.status),
      workflowType: item.wfType,
      createdAtMs: createdAtOf(item.createdKey),
    }
  }

  /** The catalogue's one read (list and count are the shared ones): a Query of one list index partition. */
  protected async readIndexPage(request: IndexPageRequest): Promise<IndexPage> {
    const params = listQueryParams(
      this.tableName,
      indexPartition(request.partition),
      request,
      request.next === undefined ? undefined : { ...request.next },
    )
    const operation = request.countOnly ? 'countInstances' : 'listInstances'
    const result = await this.#send(operation, () => this.#wire.query(params))
    const entries = (result.Items ?? []).map((raw): CatalogueEntry => {
      // Index entries carry the table's keys: the instance id is the partition key's.
      const { pk, wfType, parkCode, businessId, status, ...entry } = entrySchema.parse(raw)
      return {
        ...entry,
        status: instanceStatusOf(status),
        createdAtMs: createdAtOf(entry.createdKey),
        id: instanceIdOf(pk),
        workflowType: wfType,
        ...(businessId === undefined ? {} : { businessId }),
        ...(parkCode === undefined ? {} : { parkCode }),
      }
    })
    const next = result.LastEvaluatedKey
    return {
      entries,
      matched: result.Count ?? entries.length,
      read: result.ScannedCount ?? entries.length,
      ...(next === undefined ? {} : { next: { position: next, lastKey: String(next.createdKey) } }),
    }
  }

  async putDefinition(workflowType: string, version: string, config: NormalisedConfig): Promise<void> {
    try {
      await this.#send('putDefinition', () =>
        this.#wire.put(
          putDefinitionParams(
            this.tableName,
            definitionKey(workflowType, version),
            workflowType,
            version,
            JSON.stringify(config),
          ),
        ),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  async getDefinition(workflowType: string, version: string): Promise<NormalisedConfig | undefined> {
    const result = await this.#send('getDefinition', () =>
      this.#wire.get({ TableName: this.tableName, Key: definitionKey(workflowType, version) }),
    )
    const config = result.Item?.config
    return typeof config === 'string' ? (JSON.parse(config) as NormalisedConfig) : undefined
  }
}
