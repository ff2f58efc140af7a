import type { UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import type { CallbackClaims } from '../../core/callback-token.js'
import { type CallbackArrival, callbackAccepts, callbackRefusal } from '../../core/callbacks.js'
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
 * A callback arrival in one conditional write (`putCallbackParams`). When the condition fails, the instance is read
 * whole — a refusal is rare, and the node may have been archived — and the shared rules decide: a duplicate of a
 * stored completion is answered as stored; an instance whose item has no `cb` map yet (an arrival before the
 * worker's write) is written again with the map; anything else is the refusal.
 */
export const callbackWrite = async (
  claims: CallbackClaims,
  arrival: CallbackArrival,
  nowMs: number,
  io: CallbackWriteIo,
): Promise<'stored' | 'duplicate'> => {
  let form: 'entry' | 'map' = 'entry'
  for (let attempt = 0; attempt < 4; attempt++) {
    const planner = io.planner()
    const stored = arrivalToItem(arrival, (value) => planner.input(value))
    const result = await io.update(planner, putCallbackParams(io.tableName, claims, stored, nowMs, form))
    if (result.landed) return 'stored'
    if (result.old === undefined) throw new InstanceNotFoundError(claims.instanceId)
    const record = await io.read(claims.instanceId)
    if (!record) throw new InstanceNotFoundError(claims.instanceId)
    if (callbackAccepts(record, claims)) {
      // The condition held but for the map: write it in the other form (another arrival may have made it since).
      form = (result.old as { cb?: unknown }).cb === undefined ? 'map' : 'entry'
      continue
    }
    const refusal = callbackRefusal(record, claims, arrival.completion?.fingerprint)
    if (refusal === 'duplicate') return refusal
    throw refusal
  }
  throw new StoreError(`callback of node '${claims.nodeId}' not stored: its instance kept changing`, true)
}
