import type { UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { StoreError } from '../../core/errors.js'
import { MAX_HISTORY_ENTRIES } from '../../core/history.js'
import type { InstanceChange } from '../../core/instance-change.js'
import type { JsonObject } from '../../core/json.js'
import { jsonSizeBytes } from '../../core/json.js'
import { leaseWriteRefusal } from '../../core/lease-rules.js'
import type { Lease, LeaseWriter, NodeRecord, PartsRead, PartsWanted, WriteResult } from '../../core/store.js'
import { arrivalSideKey } from './callback-items.js'
import {
  continuesBatch,
  entriesToItems,
  type InstanceItem,
  type ItemPlanner,
  inlinePayloadBytes,
  instanceItemSchema,
  nextAttemptFromItem,
  nextAttemptToItem,
  payloadRefOf,
  recordFromItems,
  type StoredEntry,
  type StoredEvent,
  type StoredInput,
  type StoredNode,
  sideItemContent,
} from './item-codec.js'
import { createdAtOf, DUE_PLACE_HORIZON_MS, SK } from './keys.js'
import { inlineNodeBytes, isQuiet, type LaidOutChange, storedHistoryBytes, storedNodeBytes } from './laid-out-change.js'
import { type ArrivalToClear, totalDelta, writeUnderLeaseForms } from './params.js'
import {
  ARCHIVE_AT_BYTES,
  EVENT_REFUSALS_MAX,
  HISTORY_ARCHIVE_AT_BYTES,
  HISTORY_MOVE_MAX,
  HISTORY_MOVE_OWN_MAX,
  HISTORY_OWN_INLINE_BYTES,
  MAX_ARCHIVES,
  MAX_NODES_ONE_BY_ONE,
  PAYLOAD_REF_BYTES,
  SPILL_AT_BYTES,
} from './write-layout.js'

/** What the writer needs of the store: planners, its conditional update, reads and deletes by key, its release. */
export interface WriterIo {
  tableName(): string
  planner(instanceId: string, baseMs: number, nowMs: number, fence: number): ItemPlanner
  /**
   * Sends an update whose side items are written first: the attributes it returned, or, when its condition failed,
   * the instance item as it was (undefined when there is none).
   */
  update(
    planner: ItemPlanner,
    params: UpdateCommandInput,
  ): Promise<{ attributes: Record<string, unknown> } | { refused: Record<string, unknown> | undefined }>
  /** Items of the partition by sort key (missing ones are absent from the answer). */
  getItems(instanceId: string, sortKeys: readonly string[]): Promise<Map<string, Record<string, unknown>>>
  /** Deletes items of the partition; the sort keys it could not delete. */
  deleteItems(instanceId: string, sortKeys: readonly string[]): Promise<string[]>
  /**
   * Takes deleted items off the instance's pending deletions and their bytes off its total (no lease needed; see
   * `clearPendingParams`); the sort keys it could not clear (those another clean-up cleared count as cleared).
   */
  clearPending(instanceId: string, entries: Readonly<Record<string, number>>): Promise<string[]>
  /**
   * Removes consumed callback arrivals, each only while it is the one read (no lease needed; see
   * `clearArrivalsParams`); the items of their content it listed as pending deletions.
   */
  clearArrivals(instanceId: string, arrivals: Readonly<Record<string, ArrivalToClear>>): Promise<string[]>
  /** Clears the lease if it is still ours. */
  /** `attemptNotMade`: the attempt this lease's acquisition recorded goes too. */
  releaseLease(lease: Lease, attemptNotMade: boolean): Promise<void>
}

/** What the instance item held, as the lease found it (or as its creating put wrote it). */
export interface WriterStart {
  item: InstanceItem
  /** Every node's stored record, the archived ones included (for a payload that did not change). */
  nodes: Record<string, StoredNode>
  /** Nodes whose payload was handed out unread (their records in the engine carry placeholders). */
  unread: Iterable<string>
  /** The node archives the instance item lists, in its order, with the nodes each holds (unknown: not read). */
  archives: readonly (readonly [string, readonly string[] | undefined])[]
  /**
   * The attempt recorded by an acquisition (`xn`) that the item holds after this lease's acquisition: its text, ''
   * when the acquisition had none to record, whether this lease's acquisition recorded it (else an earlier one did,
   * whose holder stopped), and whether readers see it as a started attempt (see armAttempt); undefined when the item
   * holds none.
   */
  armed?: { text: string; own: boolean; shown: boolean } | undefined
  /** The instance's place in the due index (`ds`) after the acquisition or the create; undefined: none. */
  duePlace?: number | undefined
  /** How far ahead a due time may lie and keep that place (DUE_PLACE_HORIZON_MS unless the store says otherwise). */
  duePlaceHorizonMs?: number
}

/**
 * The writes of one lease on the DynamoDB layout: it knows what the instance item holds (which records, entries,
 * inputs, pending deletions, which write it is at) and lays each change out accordingly — see `write-layout.ts`.
 * Each change is encoded once; what landed is kept as encoded. What a write replaces is deleted right after it
 * lands, then taken off the pending deletions and the counted total: a deleted item is counted no longer.
 */
export class DynamoLeaseWriter implements LeaseWriter {
  readonly #instanceId: string
  readonly #baseMs: number
  /** The records in the instance item, as stored. */
  readonly #hot = new Map<string, StoredNode>()
  /** Every record as last stored (archived ones included), for payloads that did not change. */
  readonly #known = new Map<string, StoredNode>()
  /** What each record in the instance item takes there (see `inlineNodeBytes`). */
  readonly #inline = new Map<string, number>()
  /** Nodes whose payload the engine has not read: a change of their record keeps the stored payload. */
  readonly #unread: Set<string>
  readonly #events: Record<string, StoredEvent>
  #inputKey: string | undefined
  #inputBytes: number | undefined
  /** Prior inputs as stored (undefined: the item has none). */
  #prior: Record<string, StoredInput> | undefined
  /** Pending deletions deleted already whose clearing failed: the next clean-up clears them. */
  #deleted = new Map<string, number>()
  /** Pending deletions not yet deleted (left by a writer that stopped, or whose delete failed). */
  #pending = new Map<string, number>()
  #writeSeq: number
  /** The instance item's event counter as this lease last knew it (see LaidOutChange.eventSeq). */
  #eventSeq: number
  /** `#history` is the item's whole history list, not only its first entries. */
  #historyExact = true
  /**
   * The first entries of the instance item's history, as this lease knows them; events append after them. All of
   * them while `#historyExact`.
   */
  #history: StoredEntry[]
  #historyBase: number
  #historyDropped: number
  /** The instance item holds a history list, and a bytes total: once written, neither is ever removed. */
  #historyStored: boolean
  #totalStored: boolean
  /** The node archives the instance item lists, in order, with the nodes each holds (undefined: not known). */
  #archives: [string, ReadonlySet<string> | undefined][]
  /** Callback arrivals' contents in items of their own, by node: deleted with the arrival a write consumes. */
  readonly #arrivalOutputs = new Map<string, string>()
  /** The node of the attempt an acquisition recorded ('' for none) while the item holds it (see WriterStart). */
  #armed: { node: string; own: boolean; shown: boolean } | undefined
  /**
   * The instance's place in the due index as this lease last wrote or found it. An event or a completed callback
   * meanwhile may have moved it to their time; a write that sets the due time writes the place again, so either is
   * at or before the due time it goes with.
   */
  #duePlace: number | undefined
  readonly #duePlaceHorizonMs: number

  constructor(
    readonly lease: Lease,
    readonly io: WriterIo,
    start: WriterStart,
  ) {
    const { item } = start
    this.#instanceId = lease.instanceId
    this.#baseMs = createdAtOf(item.createdKey)
    for (const [id, node] of Object.entries(start.nodes)) this.#known.set(id, node)
    for (const [id, node] of Object.entries(item.n)) this.#keepHot(id, node)
    this.#unread = new Set(start.unread)
    this.#archives = start.archives.map(([sk, ids]) => [sk, ids && new Set(ids)])
    this.#events = item.e
    this.#inputKey = item.ik
    this.#inputBytes = item.ib
    this.#prior = item.pi
    for (const [sk, bytes] of Object.entries(item.gc ?? {})) this.#pending.set(sk, bytes)
    this.#writeSeq = item.ws ?? 0
    this.#eventSeq = item.es
    this.#history = [...(item.h ?? [])]
    this.#historyBase = item.hb ?? 0
    this.#historyDropped = item.hd ?? 0
    this.#historyStored = item.h !== undefined
    this.#totalStored = item.b !== undefined
    this.#duePlace = start.duePlace
    this.#duePlaceHorizonMs = start.duePlaceHorizonMs ?? DUE_PLACE_HORIZON_MS
    this.#armed = start.armed && {
      node: nextAttemptFromItem(start.armed.text)?.nodeId ?? '',
      own: start.armed.own,
      shown: start.armed.shown,
    }
    for (const [id, arrival] of Object.entries(item.cb ?? {})) {
      const sk = arrivalSideKey(arrival)
      if (sk !== undefined) this.#arrivalOutputs.set(id, sk)
    }
  }

  #keepHot(id: string, node: StoredNode): void {
    this.#hot.set(id, node)
    this.#known.set(id, node)
    this.#inline.set(id, inlineNodeBytes(id, node))
  }

  async write(change: InstanceChange): Promise<WriteResult> {
    // Pending deletions a stopped writer left (or whose delete failed): deleted and cleared first.
    if (this.#pending.size || this.#deleted.size) await this.#cleanUp()
    const planner = this.io.planner(this.#instanceId, this.#baseMs, change.updatedAtMs, this.lease.fence)
    const laid = this.layOut(change, planner)
    const form = writeUnderLeaseForms(this.io.tableName(), this.lease, laid, planner)
    let eventSeq = laid.eventSeq
    let result = await this.io.update(planner, form(eventSeq))
    let refused: { eventSeq: number; history?: StoredEntry[] } | undefined
    for (let again = 0; !('attributes' in result); again++) {
      const refusal = this.#refusal(result.refused, laid, eventSeq)
      if ('landed' in refusal) {
        refused = refusal.landed
        break
      }
      // Events arrived since this lease last knew the item: the refusal shows what they added, after what it knew
      // (the write's history move stays as laid out). The same write again, its side items too (the refusal deleted
      // them); while events keep arriving, in the form that learns of them as it lands.
      this.#history = refusal.arrived.history
      this.#historyExact = true
      this.#eventSeq = refusal.arrived.eventSeq
      eventSeq = again < EVENT_REFUSALS_MAX ? refusal.arrived.eventSeq : undefined
      result = await this.io.update(planner, form(eventSeq))
    }
    if (refused) {
      this.#landed(laid, undefined)
      // The item as the refusal returned it is the whole truth, history included.
      if (refused.history) this.#history = refused.history
      this.#historyExact = refused.history !== undefined
      this.#eventSeq = refused.eventSeq
    } else if (eventSeq !== undefined) {
      // Nothing arrived since: the history is what this lease knew, less what the write moved, plus its own entries.
      this.#landed(laid, undefined)
      if (!laid.historyOut?.own) this.#history = [...this.#history, ...laid.history]
    } else if ('attributes' in result) {
      const history = laid.historyOut ? undefined : (result.attributes.h as StoredEntry[] | undefined)
      this.#landed(laid, history)
      // Returned whole, or else known only as far as it goes (a write that appends no entry returns none).
      this.#historyExact = history !== undefined
      this.#eventSeq = Number(result.attributes.es ?? 0)
    }
    // What this write replaced goes now; a failed delete or clearing leaves it pending, for a later write to retry.
    for (const [sk, bytes] of Object.entries(laid.gc?.add ?? {})) this.#pending.set(sk, bytes)
    await this.#clearArrivals(change)
    if (this.#pending.size) await this.#cleanUp()
    return { eventSeq: this.#eventSeq }
  }

  /**
   * The callback arrivals the change consumed leave `cb` once it has landed, each only if it is still the one read
   * (a write of its own, only when there are some: see clearArrivalsParams); their content's items are deleted then.
   */
  async #clearArrivals(change: InstanceChange): Promise<void> {
    const cleared = Object.entries(change.clearCallbacks ?? {})
    if (!cleared.length) return
    const arrivals: Record<string, ArrivalToClear> = {}
    for (const [id, arrival] of cleared) {
      arrivals[id] = {
        call: arrival.call,
        fence: arrival.fence,
        fingerprint: arrival.completion?.fingerprint,
        bytes: arrival.storedBytes ?? 0,
        sk: this.#arrivalOutputs.get(id),
      }
      this.#arrivalOutputs.delete(id)
    }
    for (const sk of await this.io.clearArrivals(this.#instanceId, arrivals)) this.#pending.set(sk, 0)
  }

  /**
   * Deletes the pending deletions, then takes those deleted off the instance item (a write of its own: only a write
   * that replaced something pays for it). Clearing in the next fenced write instead would leave the last write's
   * replaced items counted for as long as the instance waits, or for ever once it is finished.
   */
  async #cleanUp(): Promise<void> {
    if (this.#pending.size) {
      const failed = new Set(await this.io.deleteItems(this.#instanceId, [...this.#pending.keys()]))
      for (const [sk, bytes] of this.#pending) {
        if (failed.has(sk)) continue
        this.#pending.delete(sk)
        this.#deleted.set(sk, bytes)
      }
    }
    if (!this.#deleted.size) return
    const left = new Set(await this.io.clearPending(this.#instanceId, Object.fromEntries(this.#deleted)))
    for (const sk of [...this.#deleted.keys()]) if (!left.has(sk)) this.#deleted.delete(sk)
  }

  abandon(options: { attemptsNotMade?: boolean } = {}): Promise<void> {
    return this.io.releaseLease(this.lease, options.attemptsNotMade === true && this.#armed?.own === true)
  }

  async read(parts: PartsWanted): Promise<PartsRead> {
    const keys = new Map<string, (raw: Record<string, unknown>, read: PartsRead) => void>()
    for (const id of parts.nodes) {
      const ref = this.#known.get(id) && payloadRefOf(this.#known.get(id) as StoredNode)
      if (ref) keys.set(ref.sk, (raw, read) => (read.nodes[id] = sideItemContent.payload(raw)))
    }
    for (const id of parts.events) {
      const sk = this.#events[id]?.k
      if (sk !== undefined) keys.set(sk, (raw, read) => (read.events[id] = sideItemContent.event(raw)))
    }
    if (parts.input && this.#inputKey !== undefined) {
      keys.set(this.#inputKey, (raw, read) => (read.input = sideItemContent.input(raw)))
    }
    for (const key of parts.priorInputs) {
      const sk = this.#prior?.[key]?.k
      if (sk !== undefined) keys.set(sk, (raw, read) => (read.priorInputs[key] = sideItemContent.input(raw)))
    }
    const read: PartsRead = { nodes: {}, events: {}, priorInputs: {} }
    const found = await this.io.getItems(this.#instanceId, [...keys.keys()])
    for (const [sk, apply] of keys) {
      const raw = found.get(sk)
      if (raw === undefined) {
        // An event is replaced without the lease, its item deleted: the instance is due for the new one, which the
        // next pass reads. Any other item goes only under the lease: its absence is a fault.
        if (sk.startsWith(SK.event)) {
          throw new StoreError(`the event in '${sk}' was replaced since the instance was read: run it again`, true, {
            code: 'EVENT_REPLACED',
          })
        }
        throw new Error(`the instance item refers to '${sk}', which is not stored`)
      }
      apply(raw, read)
    }
    for (const id of Object.keys(read.nodes)) this.#unread.delete(id)
    return read
  }

  /** The change laid out over the instance's items, as this lease knows them. */
  layOut(change: InstanceChange, planner: ItemPlanner): LaidOutChange {
    const gc: Record<string, number> = {}
    const nodes: Record<string, StoredNode> = {}
    for (const [id, node] of Object.entries(change.nodes ?? {})) {
      const known = this.#known.get(id)
      // A skipped record is built whole (no output, no context): its payload is its own to give, read or not.
      const keep = this.#unread.has(id) && (node as NodeRecord).status !== 'skipped'
      nodes[id] = planner.node(id, node as NodeRecord, known, keep)
      const before = known && payloadRefOf(known)
      if (before && before.sk !== payloadRefOf(nodes[id] as StoredNode)?.sk) gc[before.sk] = before.bytes
    }
    const laid: LaidOutChange = {
      change,
      nodes,
      history: entriesToItems(change.history ?? [], this.#baseMs),
      writeSeq: { expected: this.#writeSeq, next: this.#writeSeq + 1 },
      stored: { history: this.#historyStored, total: this.#totalStored },
      // Conditioned on the event counter while this lease knows the history whole: then it knows what it writes.
      ...(this.#historyExact ? { eventSeq: this.#eventSeq } : {}),
    }
    this.#archived(laid)
    if (laid.archive !== undefined && Object.keys(laid.archive).length) laid.archiveKey = planner.archive(laid.archive)
    this.#archivesReplaced(laid, gc)
    this.#historyLaidOut(laid)
    this.#spilled(laid, gc, planner)
    const moved = Object.keys(laid.nodes).length + Object.keys(laid.archive ?? {}).length
    if (moved > MAX_NODES_ONE_BY_ONE) {
      const all: Record<string, StoredNode> = Object.fromEntries(this.#hot)
      Object.assign(all, laid.nodes)
      for (const id of Object.keys(laid.archive ?? {})) delete all[id]
      laid.allNodes = all
    }
    this.#inputsLaidOut(laid, gc, planner)
    this.#attemptsLaidOut(laid)
    this.#placeLaidOut(laid)
    if (Object.keys(gc).length) laid.gc = { add: gc }
    return laid
  }

  /**
   * A write that sets a due time at most the horizon (DUE_PLACE_HORIZON_MS by default) ahead keeps the instance's place in the due index when
   * that is at or before the due time (a poll moves only the due time the index projects: 1 WCU instead of 2 for its
   * key); otherwise the place is the due time itself, and the tick reads nothing of the instance until then.
   */
  #placeLaidOut(laid: LaidOutChange): void {
    const due = laid.change.dueAtMs
    if (typeof due !== 'number') return
    const place = this.#duePlace
    if (place !== undefined && place <= due && due - laid.change.updatedAtMs <= this.#duePlaceHorizonMs) {
      laid.duePlace = place
    }
  }

  /**
   * The attempt an acquisition recorded leaves the item with the first write that stores its node (which then
   * holds it, or its outcome, wherever the layout puts the record); one this lease's acquisition recorded, at the
   * latest with the release, unless the pass made it without storing its node (the release parks: the next lease
   * counts it); at once when there was none, or when no reader sees it as an attempt. One an earlier lease recorded
   * and readers see stays until its node is stored (its holder stopped: the next pass counts it). A write of the
   * whole node map that does not store the node keeps it (the map holds the node as stored, without it).
   *
   * A release names the attempt its due time is for, or removes the name (an event may have named another since
   * the lease was taken); any other write that sets the due time removes it.
   */
  #attemptsLaidOut(laid: LaidOutChange): void {
    const { change } = laid
    const armed = this.#armed
    if (
      armed &&
      (armed.node === '' ||
        change.nodes?.[armed.node] ||
        (armed.own ? change.release && !change.recordedAttemptMade : !armed.shown))
    ) {
      laid.clearArmed = true
    }
    if (change.release) laid.nextAttempt = change.armNext ? nextAttemptToItem(change.armNext) : ''
    else if (change.dueAtMs !== undefined) laid.nextAttempt = ''
  }

  /** The input and the prior inputs: written only where they changed, what they replace deleted. */
  #inputsLaidOut(laid: LaidOutChange, gc: Record<string, number>, planner: ItemPlanner): void {
    const { change } = laid
    if (change.input !== undefined) {
      if (this.#inputKey !== undefined) gc[this.#inputKey] = this.#inputBytes ?? 0
      const input = planner.input(change.input)
      laid.input = 'text' in input ? input : { ref: input.ref, bytes: jsonSizeBytes(change.input) }
    }
    if (change.priorInputs === undefined) return
    const wanted: Record<string, JsonObject> = change.priorInputs ?? {}
    const stored = this.#prior ?? {}
    const set: Record<string, StoredInput> = {}
    for (const [key, value] of Object.entries(wanted)) {
      if (stored[key] === undefined) set[key] = planner.priorInput(value, jsonSizeBytes(value))
    }
    const remove = Object.keys(stored).filter((key) => wanted[key] === undefined)
    for (const key of remove) {
      const gone = stored[key]
      if (gone?.k !== undefined) gc[gone.k] = gone.b ?? 0
    }
    if (!Object.keys(set).length && !remove.length) return
    laid.priorInputs = this.#prior === undefined ? { whole: set, set: {}, remove: [] } : { set, remove }
  }

  /**
   * Once the quiet records in the instance item — settled, or waiting with nothing in flight (see `isQuiet`) — take
   * ARCHIVE_AT_BYTES there, they move, all together, into one archive item in the same write: a node step in a wide
   * instance writes an instance item of about that size, not one that holds every waiting node's record.
   */
  #archived(laid: LaidOutChange): void {
    const quiet: [string, StoredNode][] = []
    let quietBytes = 0
    for (const id of new Set([...this.#hot.keys(), ...Object.keys(laid.nodes)])) {
      const node = laid.nodes[id] ?? (this.#hot.get(id) as StoredNode)
      if (!isQuiet(node)) continue
      quiet.push([id, node])
      quietBytes += laid.nodes[id] ? inlineNodeBytes(id, node) : (this.#inline.get(id) ?? 0)
    }
    if (quietBytes < ARCHIVE_AT_BYTES) return
    laid.archive = Object.fromEntries(quiet)
    for (const [id] of quiet) delete laid.nodes[id]
    this.#folded(laid.archive, new Set([...this.#hot.keys(), ...Object.keys(laid.nodes)]))
  }

  /**
   * A write that would leave more than SPILL_AT_BYTES of node records and history in the instance item moves the
   * inline payloads of the records it keeps there into payload items of their own, largest first, until it is under
   * that bound: whatever the writes without the lease add next (an event and a callback arrival per node) then fits
   * in DynamoDB's 400 KB. The records keep their content, behind a reference like any large payload; a payload
   * item the record referred to before is kept when it holds the same content. A small instance never comes near it.
   */
  #spilled(laid: LaidOutChange, gc: Record<string, number>, planner: ItemPlanner): void {
    const kept = new Map(this.#hot)
    for (const [id, node] of Object.entries(laid.nodes)) kept.set(id, node)
    for (const id of Object.keys(laid.archive ?? {})) kept.delete(id)
    const out = laid.historyOut
    const history = out ? this.#history.slice(out.count) : this.#history
    let bytes = storedHistoryBytes(history) + (out?.own ? 0 : storedHistoryBytes(laid.history))
    // Most writes are far from the bound: the sizes the archive rule keeps (within a few bytes of a record's) say so
    // without packing every record the item keeps, on every write.
    let estimate = bytes
    for (const [id, node] of kept) estimate += laid.nodes[id] ? inlineNodeBytes(id, node) : (this.#inline.get(id) ?? 0)
    if (estimate * 2 <= SPILL_AT_BYTES) return
    for (const [id, node] of kept) bytes += storedNodeBytes(id, node)
    if (bytes <= SPILL_AT_BYTES) return
    const inline = [...kept]
      .filter(([, node]) => node.p === undefined && inlinePayloadBytes(node) > PAYLOAD_REF_BYTES)
      .sort(([, a], [, b]) => inlinePayloadBytes(b) - inlinePayloadBytes(a))
    for (const [id, node] of inline) {
      if (bytes <= SPILL_AT_BYTES) break
      const spilled = planner.spill(id, node, this.#known.get(id))
      // The item the record referred to before holds this content still: it stays, not replaced.
      const ref = payloadRefOf(spilled) as { sk: string }
      delete gc[ref.sk]
      bytes += storedNodeBytes(id, spilled) - storedNodeBytes(id, node)
      laid.nodes[id] = spilled
    }
  }

  /**
   * An archive move also takes along the records still current in earlier archives that mostly hold copies later
   * writes replaced (a node of a wide instance stepped again goes back into the instance item and its archived
   * copy stays behind), and in the smallest ones beyond MAX_ARCHIVES: those archives then go (`#archivesReplaced`),
   * so what an acquisition reads — every archive — stays about what the records take, however the nodes are stepped.
   * `archive`: the records moving now; `inItem`: the nodes whose records the instance item holds.
   */
  #folded(archive: Record<string, StoredNode>, inItem: ReadonlySet<string>): void {
    const later = new Set(Object.keys(archive))
    const current: { ids: ReadonlySet<string>; live: string[] }[] = []
    for (let i = this.#archives.length - 1; i >= 0; i--) {
      const [, ids] = this.#archives[i] as [string, ReadonlySet<string> | undefined]
      if (ids === undefined) continue
      const live = [...ids].filter((id) => !later.has(id) && !inItem.has(id))
      current.push({ ids, live })
      for (const id of ids) later.add(id)
    }
    const kept = current.filter(({ ids, live }) => live.length > 0 && live.length * 2 > ids.size)
    const folding = current.filter((entry) => !kept.includes(entry))
    kept.sort((a, b) => a.live.length - b.live.length)
    while (kept.length + 1 > MAX_ARCHIVES) folding.push(kept.shift() as (typeof kept)[number])
    for (const { live } of folding) {
      for (const id of live) {
        const node = this.#known.get(id)
        if (node !== undefined) archive[id] = node
      }
    }
  }

  /**
   * Archives whose every record this write leaves replaced — by a later archive, or by the record in the instance
   * item, which wins over any archived copy — go: a node restarted again and again leaves no trail of archives that
   * every acquisition would read. Their items are deleted with the write's other replaced items (counted at 0: the
   * instance counts each node's record once, where it wins).
   */
  #archivesReplaced(laid: LaidOutChange, gc: Record<string, number>): void {
    if (!this.#archives.length) return
    const inItem = new Set([...this.#hot.keys(), ...Object.keys(laid.nodes)])
    const later = new Set(Object.keys(laid.archive ?? {}))
    for (const id of later) inItem.delete(id)
    const replaced = new Set<string>()
    for (let i = this.#archives.length - 1; i >= 0; i--) {
      const [sk, ids] = this.#archives[i] as [string, ReadonlySet<string> | undefined]
      if (ids === undefined) continue
      if ([...ids].every((id) => inItem.has(id) || later.has(id))) replaced.add(sk)
      for (const id of ids) later.add(id)
    }
    if (!replaced.size) return
    for (const sk of replaced) gc[sk] = 0
    laid.archives = this.#archives.map(([sk]) => sk).filter((sk) => !replaced.has(sk))
    if (laid.archiveKey !== undefined) laid.archives.push(laid.archiveKey)
  }

  /**
   * Moves the recent history out of the instance item with the settled records, or on its own once it takes
   * HISTORY_ARCHIVE_AT_BYTES there, or when the write's own entries are too many to go in (they go along); beyond
   * MAX_HISTORY_ENTRIES kept, it is dropped instead.
   */
  #historyLaidOut(laid: LaidOutChange): void {
    const known = this.#history
    const own =
      laid.history.length > HISTORY_MOVE_OWN_MAX || storedHistoryBytes(laid.history) > HISTORY_OWN_INLINE_BYTES
    if (!own) {
      if (!known.length) return
      const archiving = laid.archive !== undefined && Object.keys(laid.archive).length > 0
      if (!archiving && storedHistoryBytes(known) < HISTORY_ARCHIVE_AT_BYTES) return
    }
    // With its own entries along, a write moves every entry it knows (they come first); else at most a batch.
    const moved = own ? known : known.slice(0, batchStartsAt(known, HISTORY_MOVE_MAX))
    const leaving = moved.length + (own ? laid.history.length : 0)
    const archived = this.#historyBase - this.#historyDropped
    const drop = archived + leaving > MAX_HISTORY_ENTRIES
    laid.historyOut = {
      count: moved.length,
      entries: moved,
      base: this.#historyBase,
      ...(drop ? { drop: true } : {}),
      ...(own ? { own: true } : {}),
    }
  }

  /**
   * What a landed write leaves in the instance item; `history`, the item's whole history list when the write
   * returned it. A write that moved entries returns only the paths it set, so the writer keeps what it knows is the
   * list's beginning: the entries it did not move (its own were appended after any an event added meanwhile).
   */
  #landed(laid: LaidOutChange, history: StoredEntry[] | undefined): void {
    for (const [id, node] of Object.entries(laid.nodes)) this.#keepHot(id, node)
    for (const [id, node] of Object.entries(laid.archive ?? {})) {
      this.#hot.delete(id)
      this.#inline.delete(id)
      this.#known.set(id, node)
    }
    if (laid.archives !== undefined) {
      const kept = new Set(laid.archives)
      this.#archives = this.#archives.filter(([sk]) => kept.has(sk))
    }
    if (laid.archiveKey !== undefined) this.#archives.push([laid.archiveKey, new Set(Object.keys(laid.archive ?? {}))])
    this.#writeSeq += 1
    // Its entries appended to the item's history (not moved with the others into an archive) make the list if there
    // was none; a change to the total makes the total.
    if (laid.history.length && !laid.historyOut?.own) this.#historyStored = true
    if (totalDelta(laid) !== 0) this.#totalStored = true
    const due = laid.change.dueAtMs
    if (due !== undefined) this.#duePlace = due === null ? undefined : (laid.duePlace ?? due)
    if (laid.clearArmed) this.#armed = undefined
    if (laid.input !== undefined) {
      this.#inputKey = 'ref' in laid.input ? laid.input.ref : undefined
      this.#inputBytes = 'ref' in laid.input ? laid.input.bytes : undefined
    }
    if (laid.priorInputs) {
      const next = { ...(laid.priorInputs.whole ?? this.#prior ?? {}), ...laid.priorInputs.set }
      for (const key of laid.priorInputs.remove) delete next[key]
      this.#prior = next
    }
    const out = laid.historyOut
    if (out) {
      const leaving = out.count + (out.own ? laid.history.length : 0)
      this.#history = this.#history.slice(out.count)
      this.#historyBase += leaving
      if (out.drop) this.#historyDropped += leaving
    } else if (history) {
      this.#history = history
    }
  }

  /**
   * What a write whose condition failed means, from the instance item as it was: `landed` when the item is at this
   * write's own count under this lease (still held, or released by this write), or shows this write's own history
   * move — an earlier attempt of it, retried by the SDK after its answer was lost, landed —; `arrived` when the
   * lease is still held at the write it expected and a write conditioned on the event counter (`eventSeq`) finds
   * events this lease has not seen (refused for them alone, or for them and the budget: the write sent again is
   * judged by the budget again); else the shared refusal (a lost lease, or the budget), thrown.
   */
  #refusal(
    old: Record<string, unknown> | undefined,
    laid: LaidOutChange,
    eventSeq: number | undefined,
  ):
    | { landed: { eventSeq: number; history?: StoredEntry[] } }
    | { arrived: { eventSeq: number; history: StoredEntry[] } } {
    const parsed = old === undefined ? undefined : instanceItemSchema.safeParse(old)
    const item = parsed?.success ? parsed.data : undefined
    const lease = this.lease
    if (item) {
      const held = item.lo === lease.owner && item.f === lease.fence
      const releasedByThis = laid.change.release === true && item.lo === undefined && item.f === lease.fence
      const writes = item.ws ?? 0
      const out = laid.historyOut
      const moveLanded =
        out !== undefined && (item.hb ?? 0) === out.base + out.count + (out.own ? laid.history.length : 0)
      const seen = { eventSeq: item.es, history: item.h ?? [] }
      if ((writes === this.#writeSeq + 1 && (held || releasedByThis)) || (held && moveLanded)) return { landed: seen }
      if (held && writes === this.#writeSeq && eventSeq !== undefined && item.es !== eventSeq) return { arrived: seen }
    }
    const current = old === undefined ? undefined : recordFromItems(old, new Map(), { partial: true })
    const refusal = leaseWriteRefusal(current, lease, laid.change)
    if ('landed' in refusal) return refusal
    throw refusal
  }
}

/**
 * Where a move of at most `max` of `known` entries may end: at the start of a write's batch, so that no entry that
 * leaves its time to the one before it is parted from it (the first entry of a list never does). Past `max` only when
 * the first batch alone is longer.
 */
export const batchStartsAt = (known: readonly StoredEntry[], max: number): number => {
  if (known.length <= max) return known.length
  let end = max
  while (end > 0 && continuesBatch(known[end] as StoredEntry)) end--
  if (end > 0) return end
  end = max
  while (end < known.length && continuesBatch(known[end] as StoredEntry)) end++
  return end
}
