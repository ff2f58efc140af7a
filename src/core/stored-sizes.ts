import type { InstanceChange } from './instance-change.js'
import { jsonSizeBytes } from './json.js'
import {
  failureStoredBytes,
  instanceStoredBytes,
  nodeBytesAround,
  nodeStoredBytes,
  priorInputsStoredBytes,
} from './limits.js'
import type { InstanceRecord, NodeRecord } from './store.js'

/**
 * The sizes of what a lease holder writes, as stored (see `instanceStoredBytes`): each write's `bytesDelta` is
 * computed from them. The holder is the only writer of nodes, input, failure and prior inputs, so these stay exact;
 * events (written without the lease) only ever add to the stored total, which the store keeps and conditions on.
 */
export class StoredSizes {
  /** Each node's stored bytes (see nodeStoredBytes), measured once per stored version. */
  readonly nodes = new Map<string, number>()
  /** The nodes of the change `delta` last measured, for `apply` (each payload is sized once). */
  #measured = new Map<string, number>()
  /** What each stored callback arrival counts for (see callbackArrivalBytes), by node: freed when a write consumes it. */
  readonly arrivals = new Map<string, number>()
  input: number
  failure: number
  prior: number
  /** The stored total as last known (events that arrived since are not in it). */
  total: number

  /** The record these sizes are of: a payload it has not read counts for the bytes the store said. */
  readonly #record: InstanceRecord

  constructor(record: InstanceRecord) {
    this.#record = record
    for (const [id, node] of Object.entries(record.nodes)) this.nodes.set(id, this.#nodeBytes(id, node))
    for (const [id, arrival] of Object.entries(record.callbacks ?? {})) this.arrivals.set(id, arrival.storedBytes ?? 0)
    this.input = record.unread?.input ?? jsonSizeBytes(record.input)
    this.failure = failureStoredBytes(record.failure)
    this.prior = priorInputsStoredBytes(record.priorInputs, record.unread?.priorInputs)
    this.total = record.storedBytes ?? instanceStoredBytes(record)
  }

  #nodeBytes(id: string, node: NodeRecord): number {
    const unread = this.#record.unread?.nodes[id]
    return unread === undefined ? nodeStoredBytes(id, node) : nodeBytesAround(id, node, unread)
  }

  /** A record about to be written: a skipped one is built whole (no payload kept), so its bytes are its own. */
  #writtenBytes(id: string, node: NodeRecord): number {
    return node.status === 'skipped' ? nodeStoredBytes(id, node) : this.#nodeBytes(id, node)
  }

  /** What `change` adds to the stored total. */
  delta(change: InstanceChange): number {
    this.#measured = new Map()
    let delta = 0
    for (const [id, node] of Object.entries(change.nodes ?? {})) {
      const bytes = this.#writtenBytes(id, node)
      this.#measured.set(id, bytes)
      delta += bytes - (this.nodes.get(id) ?? 0)
    }
    if (change.input !== undefined) delta += jsonSizeBytes(change.input) - this.input
    if (change.failure !== undefined) delta += failureStoredBytes(change.failure ?? undefined) - this.failure
    if (change.priorInputs !== undefined) delta += priorInputsStoredBytes(change.priorInputs ?? undefined) - this.prior
    // The arrivals it clears are not in it: the store takes their bytes off as it removes them (see clearCallbacks).
    return delta
  }

  /** The change just measured by `delta` landed. */
  apply(change: InstanceChange, delta: number): void {
    for (const [id, bytes] of this.#measured) this.nodes.set(id, bytes)
    if (change.input !== undefined) this.input = jsonSizeBytes(change.input)
    if (change.failure !== undefined) this.failure = failureStoredBytes(change.failure ?? undefined)
    if (change.priorInputs !== undefined) this.prior = priorInputsStoredBytes(change.priorInputs ?? undefined)
    this.total += delta
    // Cleared, or replaced by a later arrival whose write took them off: either way they count no longer.
    for (const id of Object.keys(change.clearCallbacks ?? {})) {
      this.total -= this.arrivals.get(id) ?? 0
      this.arrivals.delete(id)
    }
  }

  /** What the instance would store with `nodes` replaced, as far as these sizes know. */
  with(nodes: Readonly<Record<string, NodeRecord>>): number {
    let total = this.total
    for (const [id, node] of Object.entries(nodes)) total += this.#writtenBytes(id, node) - (this.nodes.get(id) ?? 0)
    return total
  }
}
