import type { UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import type { CallbackClaims } from '../../core/callback-token.js'
import {
  type CallbackArrival,
  type CallbackGuard,
  callbackAccepts,
  callbackBudgetRefusal,
  callbackRefusal,
  waitsFor,
} from '../../core/callbacks.js'
import { InstanceNotFoundError, StoreError } from '../../core/errors.js'
import type { InstanceRecord } from '../../core/store.js'
import { arrivalToItem, type StoredArrival } from './callback-items.js'
import type { ItemPlanner } from './item-codec.js'
import { type ArrivalToClear, clearArrivalsParams, putCallbackParams } from './params.js'

/** What the callback write needs of the store: planners for an output's side item, the update, a whole read. */
export interface CallbackWriteIo {
  tableName: string
  planner(): ItemPlanner
  update(planner: ItemPlanner, params: UpdateCommandInput): Promise<{ landed: true } | { landed: false; old?: unknown }>
  read(instanceId: string): Promise<InstanceRecord | undefined>
}

/**
 * A callback arrival in one conditional write (`putCallbackParams`), which adds what it counts for to the instance's
 * stored bytes, held to the guard's budget. When the condition fails, the instance is read whole — a refusal is
 * rare, and the node may have been archived — and the shared rules decide: a duplicate of a stored completion is
 * answered as stored; a completion the instance has no room for is refused; an instance whose item has no `cb` map
 * yet (an arrival before the worker's write), one that is parked (a completion is kept without making it due), or
 * one whose entry for the node is a counted arrival of an earlier call, or whose wait has a heartbeat interval the
 * write did not know, is written again in that form (replacing it); anything else is the refusal — a wait whose
 * deadline passed by `nowMs` timed out.
 */
export const callbackWrite = async (
  claims: CallbackClaims,
  arrival: CallbackArrival,
  nowMs: number,
  io: CallbackWriteIo,
  guard?: CallbackGuard,
): Promise<'stored' | 'duplicate'> => {
  let form: 'entry' | 'map' = 'entry'
  let replaces: { call: number; bytes: number } | undefined
  let parked = false
  let heartbeatSeconds = guard?.heartbeatSeconds
  const at = { nowMs, heartbeat: arrival.completion === undefined }
  for (let attempt = 0; attempt < 4; attempt++) {
    const planner = io.planner()
    const stored = arrivalToItem(arrival, (text) => planner.arrivalContent(text))
    const bytes = {
      ...(replaces ? { replaces } : {}),
      ...(guard ? { maxBytes: guard.maxBytes, baseBytes: guard.baseBytes } : {}),
    }
    const params = putCallbackParams(io.tableName, claims, stored, nowMs, form, bytes, parked, heartbeatSeconds)
    const result = await io.update(planner, params)
    if (result.landed) return 'stored'
    if (result.old === undefined) throw new InstanceNotFoundError(claims.instanceId)
    const record = await io.read(claims.instanceId)
    if (!record) throw new InstanceNotFoundError(claims.instanceId)
    if (callbackAccepts(record, claims, at)) {
      const overBudget = guard && callbackBudgetRefusal(record, claims, arrival, guard)
      if (overBudget) throw overBudget
      // The condition held but for the map, the entry it replaces or the parked state: write it in the form the item
      // now asks for (another arrival may have changed it since, a restart unparked it).
      form = (result.old as { cb?: unknown }).cb === undefined ? 'map' : 'entry'
      const current = record.callbacks?.[claims.nodeId]
      replaces = current?.storedBytes ? { call: current.call, bytes: current.storedBytes } : undefined
      parked = record.parked !== undefined
      // The wait may have opened since the first read (the worker returned): its heartbeat deadline holds too.
      const node = record.nodes[claims.nodeId]
      heartbeatSeconds = node && waitsFor(node, claims) ? node.callback?.heartbeatSeconds : undefined
      continue
    }
    const refusal = callbackRefusal(record, claims, arrival.completion?.fingerprint, at)
    if (refusal === 'duplicate') return refusal
    throw refusal
  }
  throw new StoreError(`callback of node '${claims.nodeId}' not stored: its instance kept changing`, true)
}

/** How many arrivals one clearing update removes: each costs its share of the update expression (at most 4 KB). */
const ARRIVALS_PER_CLEAR = 16

/** Tries of one clearing update, each without the entries a refusal showed replaced. */
const CLEAR_ARRIVALS_TRIES = 3

/** The entry `cb` holds is the arrival read (as clearArrivalsParams conditions it). */
const storedIs = (entry: StoredArrival | undefined, arrival: ArrivalToClear): boolean =>
  entry !== undefined &&
  entry.c === arrival.call &&
  entry.f === arrival.fence &&
  entry.fp === arrival.fingerprint &&
  (arrival.fingerprint !== undefined || entry.s === undefined)

/** What clearing arrivals needs of the store: its update, answering a refusal with the item as it was. */
export interface ClearArrivalsIo {
  tableName: string
  update(
    params: UpdateCommandInput,
  ): Promise<{ landed: true } | { landed: false; old: Record<string, unknown> | undefined }>
  warn(message: string, details: Record<string, unknown>): void
}

/**
 * Removes the callback arrivals a lease holder consumed, after its write, each only while it is the arrival it read
 * (see clearArrivalsParams): a refusal shows which entries were replaced since, and the rest is tried again. Answers
 * the items of their content listed as pending deletions. An arrival left in place (an error, or tries used up) stays
 * counted and its item referred to: stale, it is cleared by a later write of its node. Never throws.
 */
export const clearArrivals = async (
  instanceId: string,
  arrivals: Readonly<Record<string, ArrivalToClear>>,
  io: ClearArrivalsIo,
): Promise<string[]> => {
  const listed: string[] = []
  const entries = Object.entries(arrivals)
  for (let start = 0; start < entries.length; start += ARRIVALS_PER_CLEAR) {
    const batch = Object.fromEntries(entries.slice(start, start + ARRIVALS_PER_CLEAR))
    const replaced = new Set<string>()
    for (let attempt = 0; attempt < CLEAR_ARRIVALS_TRIES; attempt++) {
      const params = clearArrivalsParams(io.tableName, instanceId, batch, replaced)
      if (!params) break
      let result: Awaited<ReturnType<ClearArrivalsIo['update']>>
      try {
        result = await io.update(params)
      } catch (error) {
        io.warn('consumed callback arrivals are still stored; a later write of their nodes clears them', {
          instanceId,
          nodes: Object.keys(batch),
          error: error instanceof Error ? error.message : String(error),
        })
        break
      }
      if (result.landed) {
        for (const arrival of Object.values(batch)) if (arrival.sk !== undefined) listed.push(arrival.sk)
        break
      }
      // No instance item: nothing is left to clear, its items go with it.
      if (result.old === undefined) break
      const stored = (result.old.cb ?? {}) as Record<string, StoredArrival>
      for (const [id, arrival] of Object.entries(batch)) if (!storedIs(stored[id], arrival)) replaced.add(id)
    }
  }
  return listed
}
