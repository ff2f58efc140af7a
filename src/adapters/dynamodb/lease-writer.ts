import type { UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { MAX_HISTORY_ENTRIES } from '../../core/history.js'
import type { InstanceChange } from '../../core/instance-change.js'
import { leaseWriteRefusal } from '../../core/lease-rules.js'
import type { HistoryEntry, Lease, LeaseWriter, NodeRecord, WriteResult } from '../../core/store.js'
import {
  entryToItem,
  type InstanceItem,
  type ItemPlanner,
  instanceItemSchema,
  recordFromItems,
  type StoredEntry,
  type StoredNode,
} from './item-codec.js'
import { writeUnderLeaseParams } from './params.js'
import {
  ARCHIVE_AT_BYTES,
  HISTORY_ARCHIVE_AT_BYTES,
  HISTORY_MOVE_MAX,
  HISTORY_MOVE_OWN_MAX,
  inlineNodeBytes,
  isSettled,
  type LaidOutChange,
  MAX_NODES_ONE_BY_ONE,
  storedHistoryBytes,
} from './write-layout.js'

/** What the writer needs of the store: a planner for a write's side items, and the write itself. */
export interface WriterIo {
  tableName(): string
  planner(instanceId: string, nowMs: number, fence: number): ItemPlanner
  /**
   * Sends an update whose side items are written first: the attributes it returned, or, when its condition failed,
   * the instance item as it was (undefined when there is none).
   */
  update(
    planner: ItemPlanner,
    params: UpdateCommandInput,
  ): Promise<{ attributes: Record<string, unknown> } | { refused: Record<string, unknown> | undefined }>
  /** Clears the lease if it is still ours. */
  releaseLease(lease: Lease): Promise<void>
}

/** What the instance item held, as the lease found it (or as its creating put wrote it). */
export interface WriterStart {
  item: InstanceItem
  /** Every node's stored record, the archived ones included (for a payload that did not change). */
  nodes: Record<string, StoredNode>
}

/**
 * The writes of one lease on the DynamoDB layout: it knows what the instance item holds (which records, which
 * history entries, which write it is at) and lays each change out accordingly — see `write-layout.ts` for the
 * rules. Each change is encoded once; what landed is kept as encoded.
 */
export class DynamoLeaseWriter implements LeaseWriter {
  /** The records in the instance item, as stored. */
  readonly #hot = new Map<string, StoredNode>()
  /** Every record as last stored (archived ones included), for payloads that did not change. */
  readonly #known = new Map<string, StoredNode>()
  /** What each record in the instance item takes there (see `inlineNodeBytes`). */
  readonly #inline = new Map<string, number>()
  #writeSeq: number
  /** The first entries of the instance item's history, as this lease knows them; events append after them. */
  #history: StoredEntry[]
  #historyBase: number
  #historyDropped: number

  constructor(
    readonly lease: Lease,
    readonly io: WriterIo,
    start: WriterStart,
  ) {
    for (const [id, node] of Object.entries(start.nodes)) this.#known.set(id, node)
    for (const [id, node] of Object.entries(start.item.nodes)) this.#keepHot(id, node)
    this.#writeSeq = start.item.wseq ?? 0
    this.#history = [...(start.item.h ?? [])]
    this.#historyBase = start.item.hb ?? 0
    this.#historyDropped = start.item.hd ?? 0
  }

  #keepHot(id: string, node: StoredNode): void {
    this.#hot.set(id, node)
    this.#known.set(id, node)
    this.#inline.set(id, inlineNodeBytes(id, node))
  }

  async write(change: InstanceChange): Promise<WriteResult> {
    const planner = this.io.planner(this.lease.instanceId, change.updatedAtMs, this.lease.fence)
    const laid = this.layOut(change, planner)
    const params = writeUnderLeaseParams(this.io.tableName(), this.lease, laid, planner)
    const result = await this.io.update(planner, params)
    if ('attributes' in result) {
      this.#landed(laid, laid.historyOut ? undefined : (result.attributes.h as StoredEntry[] | undefined))
      return { eventSeq: Number(result.attributes.evSeq ?? 0) }
    }
    const landed = this.#refusal(result.refused, laid)
    this.#landed(laid, undefined)
    // The item as the refusal returned it is the whole truth, history included.
    if (landed.history) this.#history = landed.history
    return { eventSeq: landed.eventSeq }
  }

  abandon(): Promise<void> {
    return this.io.releaseLease(this.lease)
  }

  /** The change laid out over the instance's items, as this lease knows them. */
  layOut(change: InstanceChange, planner: ItemPlanner): LaidOutChange {
    const nodes: Record<string, StoredNode> = {}
    for (const [id, node] of Object.entries(change.nodes ?? {})) {
      nodes[id] = planner.node(id, node as NodeRecord, this.#known.get(id))
    }
    const laid: LaidOutChange = {
      change,
      nodes,
      history: (change.history ?? []).map(entryToItem),
      writeSeq: { expected: this.#writeSeq, next: this.#writeSeq + 1 },
    }
    this.#archived(laid)
    const moved = Object.keys(laid.nodes).length + Object.keys(laid.archive ?? {}).length
    if (moved > MAX_NODES_ONE_BY_ONE) {
      const all: Record<string, StoredNode> = Object.fromEntries(this.#hot)
      Object.assign(all, laid.nodes)
      for (const id of Object.keys(laid.archive ?? {})) delete all[id]
      laid.allNodes = all
    }
    this.#historyLaidOut(laid)
    return laid
  }

  /**
   * Once the settled records in the instance item take ARCHIVE_AT_BYTES there, they move, all together, into one
   * archive item in the same write.
   */
  #archived(laid: LaidOutChange): void {
    const settled: [string, StoredNode][] = []
    let settledBytes = 0
    for (const id of new Set([...this.#hot.keys(), ...Object.keys(laid.nodes)])) {
      const node = laid.nodes[id] ?? (this.#hot.get(id) as StoredNode)
      if (!isSettled(node)) continue
      settled.push([id, node])
      settledBytes += laid.nodes[id] ? inlineNodeBytes(id, node) : (this.#inline.get(id) ?? 0)
    }
    if (settledBytes < ARCHIVE_AT_BYTES) return
    laid.archive = Object.fromEntries(settled)
    for (const [id] of settled) delete laid.nodes[id]
  }

  /**
   * Moves the recent history out of the instance item with the settled records, or on its own once it takes
   * HISTORY_ARCHIVE_AT_BYTES there; beyond MAX_HISTORY_ENTRIES archived, it is dropped instead.
   */
  #historyLaidOut(laid: LaidOutChange): void {
    const known = this.#history
    if (!known.length || laid.history.length > HISTORY_MOVE_OWN_MAX) return
    const archiving = laid.archive !== undefined && Object.keys(laid.archive).length > 0
    if (!archiving && storedHistoryBytes(known) < HISTORY_ARCHIVE_AT_BYTES) return
    const moved = known.slice(0, HISTORY_MOVE_MAX)
    const archived = this.#historyBase - this.#historyDropped
    const drop = archived + moved.length > MAX_HISTORY_ENTRIES
    laid.historyOut = { count: moved.length, entries: moved, base: this.#historyBase, ...(drop ? { drop: true } : {}) }
  }

  /**
   * What a landed write leaves in the instance item; `history`, the item's whole history list when the write
   * returned it. A write that moved entries returns only the paths it set, so the writer keeps what it knows is
   * the list's beginning: the entries it did not move (its own were appended after any an event added meanwhile).
   */
  #landed(laid: LaidOutChange, history: StoredEntry[] | undefined): void {
    for (const [id, node] of Object.entries(laid.nodes)) this.#keepHot(id, node)
    for (const [id, node] of Object.entries(laid.archive ?? {})) {
      this.#hot.delete(id)
      this.#inline.delete(id)
      this.#known.set(id, node)
    }
    this.#writeSeq += 1
    const out = laid.historyOut
    if (out) {
      this.#history = this.#history.slice(out.count)
      this.#historyBase += out.count
      if (out.drop) this.#historyDropped += out.count
    } else if (history) {
      this.#history = history
    }
  }

  /**
   * What a write whose condition failed means, from the instance item as it was: `landed` when the item is at this
   * write's own count under this lease (still held, or released by this write), or shows this write's own history
   * move — an earlier attempt of it, retried by the SDK after its answer was lost, landed —; else the shared
   * refusal (a lost lease, or the budget).
   */
  #refusal(
    old: Record<string, unknown> | undefined,
    laid: LaidOutChange,
  ): { eventSeq: number; history?: StoredEntry[] } {
    const parsed = old === undefined ? undefined : instanceItemSchema.safeParse(old)
    const item = parsed?.success ? parsed.data : undefined
    const lease = this.lease
    if (item) {
      const held = item.leaseOwner === lease.owner && item.fence === lease.fence
      const releasedByThis = laid.change.release === true && item.leaseOwner === undefined && item.fence === lease.fence
      const atNext = (item.wseq ?? 0) === this.#writeSeq + 1
      const moveLanded =
        laid.historyOut !== undefined && (item.hb ?? 0) === laid.historyOut.base + laid.historyOut.count
      if ((atNext && (held || releasedByThis)) || (held && moveLanded)) {
        return { eventSeq: item.evSeq, history: item.h ?? [] }
      }
    }
    const current = old === undefined ? undefined : recordFromItems(old, new Map(), { partial: true })
    const refusal = leaseWriteRefusal(current, lease, laid.change)
    if ('landed' in refusal) return refusal.landed
    throw refusal
  }
}

/** Entries of a new instance as its item stores them. */
export const storedHistory = (history: readonly HistoryEntry[]): StoredEntry[] => history.map(entryToItem)
