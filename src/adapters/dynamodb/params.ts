import type { PutCommandInput, QueryCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import type { CallbackClaims } from '../../core/callback-token.js'
import { keepsDueTime } from '../../core/lease-rules.js'
import type { AcquireOptions, CountQuery, EventGuard, HistoryEntry, Lease, NodeEventRecord } from '../../core/store.js'
import { type InstanceStatus, TERMINAL_INSTANCE_STATUSES } from '../../schemas/statuses.js'
import { type CataloguePartition, cataloguePartitions, type IndexPageRequest } from '../store-catalogue.js'
import { callbackParts, type StoredArrival } from './callback-items.js'
import {
  entryToItem,
  failureToItem,
  INSTANCE_STATUS_CODES,
  type InstanceItem,
  type ItemPlanner,
  nextAttemptToItem,
  packNode,
  packNodes,
  TERMINAL_NODE_CODES,
} from './item-codec.js'
import { dueShardFor, INDEX, instanceKey, TTL_ATTRIBUTE } from './keys.js'
import type { LaidOutChange } from './laid-out-change.js'
import { outboxParts } from './outbox-items.js'

/** Pure builders of DynamoDB request parameters: testable without a server. */

/** A list index beyond any history list's length: SET of it appends. */
const APPEND_INDEX = 1_000_000

/**
 * `<attribute> IN (:completed, …)` over `statuses`, and its values, one placeholder per status named after it: the
 * terminal lists come from the status vocabulary, and a condition carries only the values it uses (DynamoDB refuses
 * an unused one).
 */
const statusIn = (attribute: string, statuses: readonly InstanceStatus[]) => ({
  expression: `${attribute} IN (${statuses.map((status) => `:${status}`).join(', ')})`,
  values: Object.fromEntries(statuses.map((status) => [`:${status}`, INSTANCE_STATUS_CODES[status]])) as Record<
    string,
    string
  >,
})
const TERMINAL_INSTANCE = statusIn('#status', TERMINAL_INSTANCE_STATUSES)
const TERMINAL = TERMINAL_INSTANCE.values
const NOT_TERMINAL = `NOT ${TERMINAL_INSTANCE.expression}`
const TERMINAL_ONLY = TERMINAL_INSTANCE.expression

const valuesIn = (attribute: string, prefix: string, values: readonly string[]) => ({
  expression: `${attribute} IN (${values.map((_, index) => `:${prefix}${index}`).join(', ')})`,
  values: Object.fromEntries(values.map((value, index) => [`:${prefix}${index}`, value])) as Record<string, string>,
})

/**
 * The node record at `path` is stored and not settled: a map whose status is not terminal. A packed record (a string,
 * see packNode) is always a settled node's, and a path into a string is absent to a condition.
 */
const liveNode = (path: string) => {
  const terminal = valuesIn(`${path}.s`, 'tn', TERMINAL_NODE_CODES)
  return {
    expression: `(attribute_type(${path}, :map) AND NOT ${terminal.expression})`,
    values: { ...terminal.values, ':map': 'M' },
  }
}

export const putInstanceParams = (tableName: string, item: InstanceItem): PutCommandInput => ({
  TableName: tableName,
  Item: { ...item, n: packNodes(item.n) },
  ConditionExpression: 'attribute_not_exists(pk)',
  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
})

/**
 * Side items are written once under keys no other write uses (the writer's fence, a counter and 72 random bits), so
 * the put needs no condition — and stays idempotent when the SDK sends it again after its answer was lost.
 */
export const putSideItemParams = (tableName: string, item: Record<string, unknown>): PutCommandInput => ({
  TableName: tableName,
  Item: item,
})

export const acquireLeaseParams = (
  tableName: string,
  instanceId: string,
  owner: string,
  nowMs: number,
  untilMs: number,
  options: AcquireOptions = {},
): UpdateCommandInput => {
  const terminalOnly = options.terminalOnly === true
  const allowTerminal = options.allowTerminal === true || terminalOnly
  const dueBy = options.dueBy
  return {
    TableName: tableName,
    Key: instanceKey(instanceId),
    // Due by the lease end in the same write: a holder that dies anywhere is resumed by the tick. Acquiring also
    // unparks: the holder either runs it or parks it again with the reason it finds. A terminal instance is leased
    // without becoming due: it needs nothing unless the operation's own write makes it live again.
    // A due pass leases only what is due already (by now, so by the lease end too): its due time stays, which
    // spares the due index two writes on every poll. A parked instance is not due, but should a due pass find one
    // (stored so by an earlier version), it unparks it too: its release then says what the instance is.
    // A due pass records the attempt the last release named (`nx`) as started by its lease, unless an attempt
    // recorded so by an earlier lease is still there (see InstanceRecord.armNext): the poll needs no write of its own.
    UpdateExpression: terminalOnly
      ? 'SET lo = :owner, lu = :until ADD f :one'
      : dueBy !== undefined
        ? 'SET lo = :owner, lu = :until, xn = if_not_exists(xn, nx), xt = if_not_exists(xt, :now), ' +
          'xf = if_not_exists(xf, f) REMOVE parkCode, parkReason, parkAtMs ADD f :one'
        : 'SET lo = :owner, lu = :until, dueAtMs = :until, ds = :until, dueShard = :shard, nx = :noName ' +
          'REMOVE parkCode, parkReason, parkAtMs ADD f :one',
    ConditionExpression: [
      'attribute_exists(pk)',
      '(attribute_not_exists(lo) OR lu < :now OR lo = :owner)',
      ...(terminalOnly ? [TERMINAL_ONLY] : allowTerminal ? [] : [NOT_TERMINAL]),
      // A due pass acquires only what is due: a stale run message costs no write.
      ...(dueBy === undefined ? [] : ['dueAtMs <= :dueBy']),
    ].join(' AND '),
    ExpressionAttributeNames: allowTerminal && !terminalOnly ? undefined : { '#status': 'status' },
    ExpressionAttributeValues: {
      ':owner': owner,
      ':until': untilMs,
      ...(keepsDueTime(options) ? {} : { ':shard': dueShardFor(instanceId), ':noName': '' }),
      ':now': nowMs,
      ':one': 1,
      ...(allowTerminal && !terminalOnly ? {} : TERMINAL),
      ...(dueBy === undefined ? {} : { ':dueBy': dueBy }),
    },
    // The item as it was: the store derives the leased record and reports the due time and parked state before.
    ReturnValues: 'ALL_OLD',
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  }
}

/**
 * Takes back the attempt the first try of a due pass's acquisition recorded, when the SDK sent that acquisition
 * again after it landed (its retry keeps the record, made at the fence before the lease's): under the lease only.
 */
export const withdrawRetriedAttemptParams = (
  tableName: string,
  instanceId: string,
  owner: string,
  fence: number,
): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(instanceId),
  UpdateExpression: 'REMOVE xn, xt, xf',
  ConditionExpression: 'lo = :owner AND f = :fence AND xf = :fenceBefore',
  ExpressionAttributeValues: { ':owner': owner, ':fence': fence, ':fenceBefore': fence - 2 },
})

/** A page of one shard of the due index: the places up to `nowMs` in order, keeping what is due by then. */
export const queryDueParams = (
  tableName: string,
  shard: number,
  nowMs: number,
  limit: number,
  exclusiveStartKey: Record<string, unknown> | undefined,
): QueryCommandInput => ({
  TableName: tableName,
  IndexName: INDEX.due,
  // Places up to now; of those, what is due by now (a place kept for a poll lies before its due time).
  KeyConditionExpression: 'dueShard = :shard AND ds <= :now',
  FilterExpression: 'dueAtMs <= :now',
  ExpressionAttributeValues: { ':shard': String(shard), ':now': nowMs },
  Limit: limit,
  ExclusiveStartKey: exclusiveStartKey,
})

/** An update expression being built: its actions, names, values and conditions. */
interface UpdateParts {
  names: Record<string, string>
  values: Record<string, unknown>
  set: string[]
  remove: string[]
  add: string[]
  conditions: string[]
}

/** Settled records leave the instance item for one node archive item written just before. */
const archiveParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  if (laid.archives !== undefined) {
    // The lease holder is the only writer of the list: it is written whole when archives go.
    if (laid.archives.length) {
      parts.values[':arcAll'] = laid.archives
      parts.set.push('arc = :arcAll')
    } else {
      parts.remove.push('arc')
    }
    return
  }
  if (laid.archiveKey === undefined) return
  parts.values[':arc'] = [laid.archiveKey]
  parts.values[':noArc'] = []
  parts.set.push('arc = list_append(if_not_exists(arc, :noArc), :arc)')
}

const historyParts = (parts: UpdateParts, laid: LaidOutChange, planner: ItemPlanner): void => {
  const { values, set } = parts
  const entries = laid.history
  const out =
    laid.historyOut !== undefined && (laid.historyOut.count > 0 || laid.historyOut.own) ? laid.historyOut : undefined
  if (!out) {
    if (!entries.length) return
    values[':h'] = entries
    if (laid.stored?.history) set.push('h = list_append(h, :h)')
    else {
      values[':noH'] = []
      set.push('h = list_append(if_not_exists(h, :noH), :h)')
    }
    return
  }
  // Exactly the entries the holder knows leave: those an event appended since sit after them and stay. The
  // change's own entries leave with them (`own`), or are appended past the end (an index beyond a list's end
  // appends), which a REMOVE of other indices of the same list allows where list_append of the whole would not.
  const leaving = out.own ? [...out.entries, ...entries] : out.entries
  for (let index = 0; index < out.count; index++) parts.remove.push(`h[${index}]`)
  values[':hOut'] = leaving.length
  values[':hBase'] = out.base
  parts.add.push('hb :hOut')
  if (out.drop) parts.add.push('hd :hOut')
  else if (leaving.length) {
    values[':ha'] = [planner.historyArchive(out.base, leaving)]
    values[':noHa'] = []
    set.push('ha = list_append(if_not_exists(ha, :noHa), :ha)')
  }
  if (!out.own) {
    entries.forEach((entry, index) => {
      values[`:h${index}`] = entry
      set.push(`h[${APPEND_INDEX + index}] = :h${index}`)
    })
  }
  // Counted from this base: an attempt retried after its answer was lost finds it moved and removes nothing again.
  parts.conditions.push(out.base === 0 ? '(attribute_not_exists(hb) OR hb = :hBase)' : 'hb = :hBase')
}

const nodeParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  if (laid.allNodes !== undefined) {
    // Too many nodes to name one by one within the update expression's 4 KB: the map is written whole.
    parts.values[':nodes'] = packNodes(laid.allNodes)
    parts.set.push('n = :nodes')
    return
  }
  Object.entries(laid.nodes).forEach(([nodeId, node], index) => {
    parts.names[`#n${index}`] = nodeId
    parts.values[`:n${index}`] = packNode(node)
    parts.set.push(`n.#n${index} = :n${index}`)
  })
  Object.keys(laid.archive ?? {}).forEach((nodeId, index) => {
    parts.names[`#r${index}`] = nodeId
    parts.remove.push(`n.#r${index}`)
  })
}

/** Prior inputs: each distinct input stored once under its key, never the whole map again. */
const priorInputParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  const prior = laid.priorInputs
  if (!prior) return
  if (prior.whole !== undefined) {
    parts.values[':pi'] = prior.whole
    parts.set.push('pi = :pi')
    return
  }
  Object.entries(prior.set).forEach(([key, input], index) => {
    parts.names[`#p${index}`] = key
    parts.values[`:p${index}`] = input
    parts.set.push(`pi.#p${index} = :p${index}`)
  })
  prior.remove.forEach((key, index) => {
    parts.names[`#q${index}`] = key
    parts.remove.push(`pi.#q${index}`)
  })
}

/** Items this write replaces join the pending deletions (the clean-up that deletes them takes them off). */
const pendingParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  Object.entries(laid.gc?.add ?? {}).forEach(([sk, bytes], index) => {
    parts.names[`#g${index}`] = sk
    parts.values[`:g${index}`] = bytes
    parts.set.push(`gc.#g${index} = :g${index}`)
  })
}

/** A value that is set, removed (null) or left alone (undefined), as [attribute, placeholder, stored value]s. */
const setOrRemove = (parts: UpdateParts, value: unknown, attributes: [string, string, unknown][]): void => {
  if (value === undefined) return
  for (const [attribute, placeholder, item] of attributes) {
    if (value === null) parts.remove.push(attribute)
    else {
      parts.values[placeholder] = item
      parts.set.push(`${attribute} = ${placeholder}`)
    }
  }
}

/** The instance's own attributes the change names. */
const attributeParts = (parts: UpdateParts, laid: LaidOutChange, planner: ItemPlanner, instanceId: string) => {
  const { change } = laid
  if (change.status !== undefined) {
    parts.names['#status'] = 'status'
    setOrRemove(parts, change.status, [['#status', ':status', INSTANCE_STATUS_CODES[change.status]]])
  }
  const input = laid.input ?? (change.input === undefined ? undefined : planner.input(change.input))
  if (input !== undefined) {
    // IN is a reserved word in DynamoDB expressions.
    parts.names['#in'] = 'in'
    if ('text' in input) {
      parts.values[':in'] = input.text
      parts.set.push('#in = :in')
      parts.remove.push('ik', 'ib')
    } else {
      parts.values[':ik'] = input.ref
      parts.values[':ib'] = 'bytes' in input ? input.bytes : 0
      parts.set.push('ik = :ik', 'ib = :ib')
      parts.remove.push('#in')
    }
  }
  setOrRemove(parts, change.dueAtMs, [
    ['dueAtMs', ':due', change.dueAtMs],
    // The place the writer keeps (see DUE_PLACE_HORIZON_MS), else the due time itself.
    ['ds', ':place', laid.duePlace ?? change.dueAtMs],
    ['dueShard', ':shard', dueShardFor(instanceId)],
  ])
  if (change.release) parts.remove.push('lo', 'lu')
  setOrRemove(parts, change.parked, [
    ['parkCode', ':parkCode', change.parked?.code],
    ['parkReason', ':parkReason', change.parked?.reason],
    ['parkAtMs', ':parkAtMs', change.parked?.atMs],
  ])
  setOrRemove(parts, change.farWakeAtMs, [['farWakeAtMs', ':farWake', change.farWakeAtMs]])
  setOrRemove(parts, change.failure, [['failure', ':failure', change.failure && failureToItem(change.failure)]])
  setOrRemove(parts, change.expiresAtSeconds, [[TTL_ATTRIBUTE, ':expiresAt', change.expiresAtSeconds]])
  setOrRemove(parts, change.deadlineAtMs, [['dlMs', ':deadline', change.deadlineAtMs]])
}

/** The attempt an acquisition recorded leaves the item; a release names the next one, or none. */
const nextAttemptParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  if (laid.clearArmed) parts.remove.push('xn', 'xt', 'xf')
  if (laid.nextAttempt !== undefined) {
    parts.values[':nx'] = laid.nextAttempt
    parts.set.push('nx = :nx')
  }
}

/** What a fenced write adds to the counted total: its change's bytes and the items it replaces (counted until deleted). */
export const totalDelta = (laid: LaidOutChange): number =>
  (laid.change.bytesDelta ?? 0) + Object.values(laid.gc?.add ?? {}).reduce((a, b) => a + b, 0)

/** The guards of a fenced write besides the lease: its place in the item's writes, and the budget. */
const guardParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  const { values, set, conditions } = parts
  if (laid.writeSeq !== undefined) {
    // Which of the instance's writes this is: the SDK's retry of a write that landed finds the item past it.
    values[':wseqNext'] = laid.writeSeq.next
    set.push('ws = :wseqNext')
    if (laid.writeSeq.expected === 0) conditions.push('attribute_not_exists(ws)')
    else {
      values[':wseq'] = laid.writeSeq.expected
      conditions.push('ws = :wseq')
    }
  }
  const { bytesBase, maxBytes } = laid.change
  const delta = totalDelta(laid)
  if (delta === 0) return
  values[':bytes'] = delta
  const totalStored = laid.stored?.total === true
  if (totalStored) set.push('b = b + :bytes')
  else {
    // An item stored without a total starts from the holder's count of it.
    values[':bytesBase'] = bytesBase ?? 0
    set.push('b = if_not_exists(b, :bytesBase) + :bytes')
  }
  // A write that grows the instance is refused in its own condition when events stored since the lease was taken
  // leave too little room: the size is guarded where it is written. The completions it consumes leave right after
  // it (see clearArrivalsParams): while they are still stored as read, their bytes count as room.
  if (delta > 0 && maxBytes !== undefined) {
    values[':room'] = maxBytes - delta
    const consumed = Object.entries(laid.change.clearCallbacks ?? {}).filter(
      ([, arrival]) => (arrival.storedBytes ?? 0) > 0 && arrival.completion !== undefined,
    )
    // Room enough: no total yet (the holder counted it), or within the room, or within it once the consumed leave.
    const room = [...(totalStored ? [] : ['attribute_not_exists(b)']), 'b <= :room']
    if (consumed.length) {
      let freed = 0
      const stillStored = consumed.map(([nodeId, arrival], index) => {
        freed += arrival.storedBytes ?? 0
        parts.names[`#ca${index}`] = nodeId
        values[`:cac${index}`] = arrival.call
        values[`:caf${index}`] = arrival.fence
        values[`:cap${index}`] = arrival.completion?.fingerprint
        return `cb.#ca${index}.c = :cac${index} AND cb.#ca${index}.f = :caf${index} AND cb.#ca${index}.fp = :cap${index}`
      })
      values[':roomConsumed'] = maxBytes - delta + freed
      room.push(`(b <= :roomConsumed AND ${stillStored.join(' AND ')})`)
    }
    conditions.push(room.length > 1 ? `(${room.join(' OR ')})` : (room[0] as string))
  }
}

/**
 * One write of a pass or operation, fenced by the lease, as its writer laid it out. With `laid.eventSeq` it is
 * conditioned on the event counter the writer knows (`es`, which every write without the lease that appends to the
 * history or makes the instance due adds to) and returns nothing: the writer knows what it wrote, and a refusal
 * returns the item, which tells it what arrived meanwhile. Without, `ADD es :zero` changes nothing but makes
 * UPDATED_NEW return the counter and the history with it: the form a writer falls back to when events keep arriving.
 * Returning the updated attributes (the history list and the node records) costs the table's CPU on every write.
 */
export const writeUnderLeaseParams = (
  tableName: string,
  lease: Lease,
  laid: LaidOutChange,
  planner: ItemPlanner,
): UpdateCommandInput => writeUnderLeaseForms(tableName, lease, laid, planner)(laid.eventSeq)

/**
 * The write of `writeUnderLeaseParams` in either form, by the event counter it is conditioned on (undefined: the form
 * that returns it): laid out once (its side items are named once), sent again in another form after a refusal.
 */
export const writeUnderLeaseForms = (
  tableName: string,
  lease: Lease,
  laid: LaidOutChange,
  planner: ItemPlanner,
): ((eventSeq: number | undefined) => UpdateCommandInput) => {
  const { change } = laid
  const parts: UpdateParts = {
    names: {},
    values: { ':owner': lease.owner, ':fence': lease.fence, ':ua': change.updatedAtMs - planner.baseMs },
    set: ['ua = :ua'],
    remove: [],
    add: [],
    conditions: ['lo = :owner AND f = :fence'],
  }
  archiveParts(parts, laid)
  historyParts(parts, laid, planner)
  nodeParts(parts, laid)
  priorInputParts(parts, laid)
  pendingParts(parts, laid)
  attributeParts(parts, laid, planner, lease.instanceId)
  callbackParts(parts, laid.change)
  outboxParts(parts, laid.change, lease.instanceId)
  nextAttemptParts(parts, laid)
  guardParts(parts, laid)
  const { names } = parts
  return (eventSeq) => {
    const known = eventSeq !== undefined
    const values = { ...parts.values, ...(known ? { ':es': eventSeq } : { ':zero': 0 }) }
    const conditions = known ? [...parts.conditions, 'es = :es'] : parts.conditions
    const add = known ? parts.add : [...parts.add, 'es :zero']
    const { set, remove } = parts
    return {
      TableName: tableName,
      Key: instanceKey(lease.instanceId),
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}${add.length ? ` ADD ${add.join(', ')}` : ''}`,
      ConditionExpression: conditions.join(' AND '),
      ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
      ExpressionAttributeValues: values,
      ...(known ? {} : { ReturnValues: 'UPDATED_NEW' as const }),
      // The old item tells a lost lease from our own release retried after its answer was lost, or from the budget.
      ...(change.release || conditions.length > 1 ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
    }
  }
}

/**
 * Takes deleted items off the pending deletions, and their bytes off the counted total, in one update that needs no
 * lease: conditioned on each entry still being there, so that entries another clean-up took off already are not
 * subtracted twice (its refusal returns the item, to try again with the entries left). `counted: false`: the item
 * has no total to subtract from.
 */
export const clearPendingParams = (
  tableName: string,
  instanceId: string,
  entries: Readonly<Record<string, number>>,
  counted = true,
): UpdateCommandInput => {
  const names: Record<string, string> = {}
  const remove: string[] = []
  const conditions: string[] = []
  let freed = 0
  Object.entries(entries).forEach(([sk, bytes], index) => {
    names[`#c${index}`] = sk
    remove.push(`gc.#c${index}`)
    conditions.push(`attribute_exists(gc.#c${index})`)
    freed += bytes
  })
  const subtract = counted && freed !== 0
  if (subtract) conditions.push('attribute_exists(b)')
  return {
    TableName: tableName,
    Key: instanceKey(instanceId),
    UpdateExpression: `${subtract ? 'SET b = b - :freed ' : ''}REMOVE ${remove.join(', ')}`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: names,
    ...(subtract ? { ExpressionAttributeValues: { ':freed': freed } } : {}),
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  }
}

/** A callback arrival a lease holder consumed, as it read it: what identifies it, its bytes, its content's item. */
export interface ArrivalToClear {
  call: number
  fence: number
  /** Its completion's fingerprint; undefined: a heartbeat, with no completion. */
  fingerprint?: string | undefined
  /** What it counts for in the instance's stored bytes. */
  bytes: number
  /** The item its content is in, if it is not inline. */
  sk?: string | undefined
}

/**
 * Removes consumed callback arrivals from `cb` after the write that consumed them, without the lease, and takes their
 * bytes off the counted total: conditioned on each entry still being the arrival the holder read (call, fence and
 * completion), so that a later arrival that replaced one — the next attempt's early completion — is never removed,
 * nor its bytes taken off twice (the write that replaced it took the old ones off). Their content's items join the
 * pending deletions in the same update, to be deleted once nothing refers to them; `replaced`: nodes whose entry is
 * no longer the one read — only their content's item is listed (nothing refers to it any more). A refusal returns
 * the item, to try again with the entries that changed moved to `replaced`.
 */
export const clearArrivalsParams = (
  tableName: string,
  instanceId: string,
  arrivals: Readonly<Record<string, ArrivalToClear>>,
  replaced: ReadonlySet<string> = new Set(),
): UpdateCommandInput | undefined => {
  const names: Record<string, string> = {}
  const values: Record<string, unknown> = {}
  const set: string[] = []
  const remove: string[] = []
  const conditions: string[] = []
  let freed = 0
  Object.entries(arrivals).forEach(([nodeId, arrival], index) => {
    if (arrival.sk !== undefined) {
      names[`#g${index}`] = arrival.sk
      values[':zero'] = 0
      set.push(`gc.#g${index} = :zero`)
    }
    if (replaced.has(nodeId)) return
    names[`#a${index}`] = nodeId
    values[`:c${index}`] = arrival.call
    values[`:f${index}`] = arrival.fence
    const entry = `cb.#a${index}`
    let completion = `attribute_not_exists(${entry}.s)`
    if (arrival.fingerprint !== undefined) {
      values[`:p${index}`] = arrival.fingerprint
      completion = `${entry}.fp = :p${index}`
    }
    conditions.push(`${entry}.c = :c${index} AND ${entry}.f = :f${index} AND ${completion}`)
    remove.push(entry)
    freed += arrival.bytes
  })
  if (freed !== 0) {
    values[':freed'] = freed
    set.push('b = b - :freed')
  }
  if (!set.length && !remove.length) return undefined
  const update = [set.length ? `SET ${set.join(', ')}` : '', remove.length ? `REMOVE ${remove.join(', ')}` : '']
  return {
    TableName: tableName,
    Key: instanceKey(instanceId),
    UpdateExpression: update.filter(Boolean).join(' '),
    ConditionExpression: ['attribute_exists(pk)', ...conditions].join(' AND '),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  }
}

/** Clears the lease; `attemptNotMade`: and the attempt its acquisition recorded, which the holder did not make. */
export const releaseLeaseParams = (tableName: string, lease: Lease, attemptNotMade = false): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(lease.instanceId),
  UpdateExpression: attemptNotMade ? 'REMOVE lo, lu, xn, xt, xf' : 'REMOVE lo, lu',
  ConditionExpression: 'lo = :owner AND f = :fence',
  ExpressionAttributeValues: { ':owner': lease.owner, ':fence': lease.fence },
})

/** What an event write replaces: an event kept in an item of its own, deleted right after, counted until then. */
interface EventReplacement {
  sk: string
  bytes: number
}

export const putEventParams = (
  tableName: string,
  instanceId: string,
  nodeId: string,
  event: NodeEventRecord,
  nowMs: number,
  guard: EventGuard | undefined,
  planner: ItemPlanner,
  history?: HistoryEntry,
  replaced?: EventReplacement,
  /** The bytes the event's content counts for (kept with an event stored in an item of its own). */
  contentBytes = 0,
  /**
   * The instance is parked (as the writer read it, and the write's condition says): the event is kept without
   * making it due, for the pass after a restart; else it makes the instance due at once.
   */
  parked = false,
): UpdateCommandInput => {
  const live = liveNode('n.#node')
  const values: Record<string, unknown> = {
    ':event': planner.event(nodeId, event, contentBytes),
    ':one': 1,
    ':ts': event.eventTs,
    ...TERMINAL,
    ...live.values,
  }
  const conditions = [
    'attribute_exists(pk)',
    NOT_TERMINAL,
    `(attribute_not_exists(n.#node) OR ${live.expression})`,
    '(attribute_not_exists(e.#node) OR e.#node.t <= :ts)',
    parked ? 'attribute_exists(parkCode)' : 'attribute_not_exists(parkCode)',
  ]
  const set = ['e.#node = :event']
  if (!parked) {
    // The pass the event makes due calls its node's check: its acquisition records that attempt (see armAttempt).
    values[':nx'] = nextAttemptToItem({ nodeId, step: 'check' })
    values[':now'] = nowMs
    values[':shard'] = dueShardFor(instanceId)
    set.push('dueAtMs = :now', 'ds = :now', 'dueShard = :shard', 'nx = :nx')
  }
  const names: Record<string, string> = { '#node': nodeId, '#status': 'status' }
  if (history) {
    values[':h'] = [entryToItem(history, planner.baseMs)]
    values[':noH'] = []
    set.push('h = list_append(if_not_exists(h, :noH), :h)')
  }
  let added = guard?.addBytes ?? 0
  if (replaced) {
    // The replaced event's item stays counted until it is deleted (right after this write).
    names['#gone'] = replaced.sk
    values[':gone'] = replaced.bytes
    set.push('gc.#gone = :gone')
    added += replaced.bytes
  }
  if (guard) {
    // Exact under concurrency: the event it replaces is the one its size difference was computed from, and the
    // instance has room for that difference now, in this write.
    if (guard.replaces === null) {
      conditions.push('attribute_not_exists(e.#node)')
    } else {
      values[':oldTs'] = guard.replaces.eventTs
      values[':oldR'] = guard.replaces.receivedAtMs - planner.baseMs
      conditions.push('e.#node.t = :oldTs AND e.#node.r = :oldR')
    }
    if (added > 0) {
      values[':room'] = guard.maxBytes - added
      conditions.push('(attribute_not_exists(b) OR b <= :room)')
    }
  }
  if (added !== 0) {
    // An item stored without a total starts from the writer's count of it.
    values[':bytes'] = added
    values[':bytesBase'] = guard?.baseBytes ?? 0
    set.push('b = if_not_exists(b, :bytesBase) + :bytes')
  }
  return {
    TableName: tableName,
    Key: instanceKey(instanceId),
    UpdateExpression: `SET ${set.join(', ')} ADD es :one`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  }
}

export const markDueParams = (tableName: string, instanceId: string, dueAtMs: number): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(instanceId),
  // Due for something else than the attempt a release named: the name goes (see InstanceRecord.armNext).
  UpdateExpression: 'SET dueAtMs = :due, ds = :due, dueShard = :shard, nx = :noName',
  // A parked instance is not due until someone acts (a restart).
  ConditionExpression:
    `attribute_exists(pk) AND ${NOT_TERMINAL} AND attribute_not_exists(parkCode) AND ` +
    '(attribute_not_exists(dueAtMs) OR dueAtMs > :due)',
  ExpressionAttributeNames: { '#status': 'status' },
  ExpressionAttributeValues: { ':due': dueAtMs, ':shard': dueShardFor(instanceId), ':noName': '', ...TERMINAL },
})

/** Takes a terminal instance that nobody holds out of the due index. */
export const clearTerminalDueParams = (tableName: string, instanceId: string, nowMs: number): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(instanceId),
  UpdateExpression: 'REMOVE dueAtMs, ds, dueShard',
  ConditionExpression: `attribute_exists(dueAtMs) AND ${TERMINAL_ONLY} AND (attribute_not_exists(lo) OR lu < :now)`,
  ExpressionAttributeNames: { '#status': 'status' },
  ExpressionAttributeValues: { ':now': nowMs, ...TERMINAL },
})

export interface ListPartition {
  index: string
  keyName: string
  keyValue: string
}

/** The index that holds a catalogue partition: byType per workflow type, byBusiness per business id. */
export const indexPartition = (partition: CataloguePartition): ListPartition =>
  partition.by === 'business'
    ? { index: INDEX.byBusiness, keyName: 'businessId', keyValue: partition.businessId }
    : { index: INDEX.byType, keyName: 'wfType', keyValue: partition.workflowType }

/** Which index partitions answer a list or count (the rule is the shared one: `cataloguePartitions`). */
export const listPartitions = (query: CountQuery): ListPartition[] => cataloguePartitions(query).map(indexPartition)

/**
 * A query of one list partition, newest first (`desc`) or oldest first, within a created-key range (BETWEEN is
 * inclusive and key attributes cannot be filtered, so the shared catalogue drops the cursor's own entry), with the
 * shared entry filter (`entryMatches`) translated into a FilterExpression. `Limit` bounds the entries read before
 * the filter, which is what a read costs.
 */
export const listQueryParams = (
  tableName: string,
  partition: ListPartition,
  request: Pick<IndexPageRequest, 'range' | 'order' | 'filter' | 'limit' | 'countOnly'>,
  exclusiveStartKey: Record<string, unknown> | undefined,
): QueryCommandInput => {
  const { range, filter } = request
  const names: Record<string, string> = { '#pk': partition.keyName, '#sk': 'createdKey' }
  const values: Record<string, unknown> = { ':pk': partition.keyValue, ':low': range.low, ':high': range.high }
  const filters: string[] = []
  if (filter.statuses !== undefined) {
    names['#status'] = 'status'
    const placeholders = filter.statuses.map((status: InstanceStatus, index: number) => {
      values[`:s${index}`] = INSTANCE_STATUS_CODES[status]
      return `:s${index}`
    })
    filters.push(`#status IN (${placeholders.join(', ')})`)
  }
  if (filter.parked !== undefined)
    filters.push(filter.parked ? 'attribute_exists(parkCode)' : 'attribute_not_exists(parkCode)')
  if (filter.workflowType !== undefined) {
    names['#type'] = 'wfType'
    values[':type'] = filter.workflowType
    filters.push('#type = :type')
  }
  return {
    TableName: tableName,
    IndexName: partition.index,
    KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :low AND :high',
    FilterExpression: filters.length ? filters.join(' AND ') : undefined,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ScanIndexForward: request.order === 'asc',
    Limit: request.limit,
    ExclusiveStartKey: exclusiveStartKey,
    ...(request.countOnly ? { Select: 'COUNT' as const } : {}),
  }
}

export const putDefinitionParams = (
  tableName: string,
  key: { pk: string },
  workflowType: string,
  version: string,
  configJson: string,
): PutCommandInput => ({
  TableName: tableName,
  Item: { ...key, defType: workflowType, version, config: configJson },
  ConditionExpression: 'attribute_not_exists(pk)',
})

/**
 * `<attribute> IN (:v0, …)` over `values`, with its placeholders (prefixed, so that two lists in one condition do
 * not share a name).
 */
/** A number the item leaves out when it has its default (`at` 1, `c` 1): the condition accepts the absent attribute. */
const storedNumberIs = (path: string, placeholder: string, value: number, defaultValue: number): string =>
  value === defaultValue ? `(attribute_not_exists(${path}) OR ${path} = ${placeholder})` : `${path} = ${placeholder}`

/**
 * The one write of a callback arrival, conditioned as `callbackAccepts` says (README, "Callbacks"): the instance and
 * node live, the token names the node's open wait whose deadlines have not passed by `nowMs` — or its attempt in
 * flight (no deadline yet): the lease of the token's fence still
 * the last one taken, the node's attempt stored as started, at the token's call —, no completion stored for that
 * call. `form` `entry` sets the node's entry of `cb`; `map` creates `cb` with it, for an item that has none yet.
 */
export const putCallbackParams = (
  tableName: string,
  claims: CallbackClaims,
  stored: StoredArrival,
  nowMs: number,
  form: 'entry' | 'map',
  /**
   * The stored bytes it adds and how it is held to the budget: an arrival that replaces one of an earlier call that
   * counts bytes (`replaces`) is conditioned on it and takes its bytes off; any other may replace only one that
   * counts none.
   */
  bytes: { replaces?: { call: number; bytes: number }; maxBytes?: number; baseBytes?: number } = {},
  /** The instance is parked (the write's condition says so): a completion is kept without making it due. */
  parked = false,
  /**
   * The heartbeat interval of the open wait as the writer read it (see CallbackGuard.heartbeatSeconds): a completion
   * is held to the heartbeat deadline with it, and to a wait without one otherwise. A heartbeat is held to the
   * timeout alone.
   */
  heartbeatSeconds?: number,
): UpdateCommandInput => {
  const live = liveNode('n.#n')
  const values: Record<string, unknown> = {
    ...TERMINAL,
    ...live.values,
    ':now': nowMs,
    ':call': claims.call,
    ':fence': claims.fence,
    ':attempt': claims.attempt,
    // The attempt in flight as the lease's acquisition recorded it (see acquireLeaseParams): the node's record
    // counts the calls before it.
    ':armedRun': nextAttemptToItem({ nodeId: claims.nodeId, step: 'run' }),
    ':armedCheck': nextAttemptToItem({ nodeId: claims.nodeId, step: 'check' }),
    ':fenceBefore': claims.fence - 1,
    ':callBefore': claims.call - 1,
  }
  // The open wait's deadlines by this write's clock (see callbackDeadlinePassed): its timeout `d` and, for a
  // completion, its heartbeat deadline — `hd` as the lease holder stored it, or a heartbeat stored since for the call.
  // A wait stored without them (before they were) is held to neither.
  let deadlines = '(attribute_not_exists(n.#n.cw.d) OR n.#n.cw.d > :now)'
  if (stored.s !== undefined && heartbeatSeconds === undefined) deadlines += ' AND attribute_not_exists(n.#n.cw.hs)'
  else if (stored.s !== undefined) {
    values[':hs'] = heartbeatSeconds
    values[':beatAfter'] = nowMs - (heartbeatSeconds as number) * 1000
    deadlines +=
      ' AND n.#n.cw.hs = :hs AND (attribute_not_exists(n.#n.cw.hd) OR n.#n.cw.hd > :now OR ' +
      '(cb.#n.c = :call AND cb.#n.f = :fence AND cb.#n.hb > :beatAfter))'
  }
  // The attempt this lease's acquisition recorded for the node (see acquireLeaseParams), still unwritten.
  const armed = 'f = :fence AND xf = :fenceBefore AND xn IN (:armedRun, :armedCheck)'
  const conditions = [
    'attribute_exists(pk)',
    NOT_TERMINAL,
    `((${live.expression} AND ${storedNumberIs('n.#n.#at', ':attempt', claims.attempt, 1)} AND ` +
      `((n.#n.cw.c = :call AND n.#n.cw.f = :fence AND attribute_not_exists(n.#n.cw.o) AND ${deadlines}) OR ` +
      `(f = :fence AND attribute_exists(n.#n.#as) AND ${storedNumberIs('n.#n.c', ':call', claims.call, 1)}) OR ` +
      `(${armed} AND attribute_not_exists(n.#n.#as) AND ` +
      `${storedNumberIs('n.#n.c', ':callBefore', claims.call - 1, 1)}))) OR ` +
      // A waiting record archived (README, "Table layout"): a token of this lease's fence for the node can only come
      // from the attempt its acquisition recorded — this lease calls the node there first, and its first write
      // stores the node back in the instance item, which ends this branch (and the recorded attempt with it).
      `(attribute_not_exists(n.#n) AND ${armed}))`,
    form === 'entry' ? 'attribute_exists(cb)' : 'attribute_not_exists(cb)',
    '(attribute_not_exists(cb.#n) OR cb.#n.c <> :call OR attribute_not_exists(cb.#n.s))',
  ]
  const set = [form === 'entry' ? 'cb.#n = :arrival' : 'cb = :arrivals']
  if (form === 'entry') values[':arrival'] = stored
  else values[':arrivals'] = { [claims.nodeId]: stored }
  const replaced = bytes.replaces
  if (form === 'entry' && replaced) {
    values[':oldCall'] = replaced.call
    values[':oldBytes'] = replaced.bytes
    conditions.push('cb.#n.c = :oldCall AND cb.#n.b = :oldBytes')
  } else if (form === 'entry') {
    conditions.push('(attribute_not_exists(cb.#n) OR attribute_not_exists(cb.#n.b))')
  }
  const added = (stored.b ?? 0) - (form === 'entry' ? (replaced?.bytes ?? 0) : 0)
  if (added > 0 && bytes.maxBytes !== undefined) {
    // Exact under concurrency, as an event's: the instance has room for the arrival now, in this write.
    values[':room'] = bytes.maxBytes - added
    conditions.push('(attribute_not_exists(b) OR b <= :room)')
  }
  if (added !== 0) {
    values[':bytes'] = added
    values[':bytesBase'] = bytes.baseBytes ?? 0
    set.push('b = if_not_exists(b, :bytesBase) + :bytes')
  }
  let add = ''
  if (stored.s !== undefined) {
    // A completion counts as an event: a running pass notices it, and the instance is due at once — for the
    // completion, not for the attempt a release named. A parked instance keeps it for the pass after a restart.
    if (parked) conditions.push('attribute_exists(parkCode)')
    else {
      conditions.push('attribute_not_exists(parkCode)')
      set.push('dueAtMs = :now', 'ds = :now', 'dueShard = :shard', 'nx = :noName')
      values[':noName'] = ''
      values[':shard'] = dueShardFor(claims.instanceId)
    }
    values[':one'] = 1
    add = ' ADD es :one'
  }
  return {
    TableName: tableName,
    Key: instanceKey(claims.instanceId),
    UpdateExpression: `SET ${set.join(', ')}${add}`,
    ConditionExpression: conditions.join(' AND '),
    // AT and AS are reserved words of DynamoDB expressions.
    ExpressionAttributeNames: { '#n': claims.nodeId, '#status': 'status', '#as': 'as', '#at': 'at' },
    ExpressionAttributeValues: values,
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  }
}
