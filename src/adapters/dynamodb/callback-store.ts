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
import { arrivalToItem } from './callback-items.js'
import type { ItemPlanner } from './item-codec.js'
import { putCallbackParams } from './params.js'

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
