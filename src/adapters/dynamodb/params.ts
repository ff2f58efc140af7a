import type { PutCommandInput, QueryCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import type { InstanceChange } from '../../core/instance-change.js'
import type { InstanceStatus } from '../../core/statuses.js'
import type { AcquireOptions, CountQuery, EventGuard, HistoryEntry, Lease, NodeEventRecord } from '../../core/store.js'
import { type CataloguePartition, cataloguePartitions, type IndexPageRequest } from '../store-catalogue.js'
import { callbackParts } from './callback-items.js'
import { entryToItem, failureToItem, type InstanceItem, type ItemPlanner } from './item-codec.js'
import { dueShardFor, INDEX, instanceKey, TTL_ATTRIBUTE } from './keys.js'
import { outboxParts } from './outbox-items.js'
import type { LaidOutChange } from './write-layout.js'

/** Pure builders of DynamoDB request parameters: testable without a server. */

/** A list index beyond any history list's length: SET of it appends. */
const APPEND_INDEX = 1_000_000

const TERMINAL = { ':completed': 'completed', ':failed': 'failed', ':canceled': 'canceled' } as const
const NOT_TERMINAL = 'NOT #status IN (:completed, :failed, :canceled)'
const TERMINAL_ONLY = '#status IN (:completed, :failed, :canceled)'

export const putInstanceParams = (tableName: string, item: InstanceItem): PutCommandInput => ({
  TableName: tableName,
  Item: item,
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
    // spares the due index two writes on every poll.
    UpdateExpression:
      terminalOnly || dueBy !== undefined
        ? 'SET leaseOwner = :owner, leaseUntilMs = :until ADD fence :one'
        : 'SET leaseOwner = :owner, leaseUntilMs = :until, dueAtMs = :until, dueShard = :shard ' +
          'REMOVE parkCode, parkReason, parkAtMs ADD fence :one',
    ConditionExpression: [
      'attribute_exists(pk)',
      '(attribute_not_exists(leaseOwner) OR leaseUntilMs < :now OR leaseOwner = :owner)',
      ...(terminalOnly ? [TERMINAL_ONLY] : allowTerminal ? [] : [NOT_TERMINAL]),
      // A due pass acquires only what is due: a stale run message costs no write.
      ...(dueBy === undefined ? [] : ['dueAtMs <= :dueBy']),
    ].join(' AND '),
    ExpressionAttributeNames: allowTerminal && !terminalOnly ? undefined : { '#status': 'status' },
    ExpressionAttributeValues: {
      ':owner': owner,
      ':until': untilMs,
      ...(terminalOnly || dueBy !== undefined ? {} : { ':shard': dueShardFor(instanceId) }),
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

/** A page of one shard of the due index: what is due at or before `nowMs`, earliest first. */
export const queryDueParams = (
  tableName: string,
  shard: number,
  nowMs: number,
  limit: number,
  exclusiveStartKey: Record<string, unknown> | undefined,
): QueryCommandInput => ({
  TableName: tableName,
  IndexName: INDEX.due,
  KeyConditionExpression: 'dueShard = :shard AND dueAtMs <= :now',
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

/** Settled records and the recent history leave the instance item for one archive item written just before. */
const archiveParts = (parts: UpdateParts, laid: LaidOutChange, planner: ItemPlanner): void => {
  const out = laid.historyOut
  const archivedHistory = out && out.count > 0 && !out.drop ? { base: out.base, entries: out.entries } : undefined
  if ((laid.archive === undefined || !Object.keys(laid.archive).length) && !archivedHistory) return
  parts.values[':arc'] = [planner.archive(laid.archive ?? {}, archivedHistory)]
  parts.values[':noArc'] = []
  parts.set.push('arc = list_append(if_not_exists(arc, :noArc), :arc)')
}

const historyParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  const { values, set } = parts
  const entries = laid.history
  const out = laid.historyOut !== undefined && laid.historyOut.count > 0 ? laid.historyOut : undefined
  if (!out) {
    if (!entries.length) return
    values[':h'] = entries
    values[':noH'] = []
    set.push('h = list_append(if_not_exists(h, :noH), :h)')
    return
  }
  // Exactly the entries the holder knows leave: those an event appended since sit after them and stay. The
  // change's own entries are appended past the end (an index beyond a list's end appends), which a REMOVE of
  // other indices of the same list allows where list_append of the whole list would overlap it.
  for (let index = 0; index < out.count; index++) parts.remove.push(`h[${index}]`)
  values[':hOut'] = out.count
  values[':hBase'] = out.base
  parts.add.push('hb :hOut')
  if (out.drop) parts.add.push('hd :hOut')
  entries.forEach((entry, index) => {
    values[`:h${index}`] = entry
    set.push(`h[${APPEND_INDEX + index}] = :h${index}`)
  })
  // Counted from this base: an attempt retried after its answer was lost finds it moved and removes nothing again.
  parts.conditions.push(out.base === 0 ? '(attribute_not_exists(hb) OR hb = :hBase)' : 'hb = :hBase')
}

const nodeParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  if (laid.allNodes !== undefined) {
    // Too many nodes to name one by one within the update expression's 4 KB: the map is written whole.
    parts.values[':nodes'] = laid.allNodes
    parts.set.push('nodes = :nodes')
    return
  }
  Object.entries(laid.nodes).forEach(([nodeId, node], index) => {
    parts.names[`#n${index}`] = nodeId
    parts.values[`:n${index}`] = node
    parts.set.push(`nodes.#n${index} = :n${index}`)
  })
  Object.keys(laid.archive ?? {}).forEach((nodeId, index) => {
    parts.names[`#r${index}`] = nodeId
    parts.remove.push(`nodes.#r${index}`)
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
const attributeParts = (parts: UpdateParts, change: InstanceChange, planner: ItemPlanner, instanceId: string) => {
  /** A JSON value kept inline under `inline`, or in an item of its own referred to by `ref`: one of the two is set. */
  const inlineOrRef = (inline: string, ref: string, value: unknown): void => {
    const laid = planner.input(value)
    const [setName, other] = 'text' in laid ? [inline, ref] : [ref, inline]
    parts.values[`:${setName.replace('#', '')}`] = 'text' in laid ? laid.text : laid.ref
    parts.set.push(`${setName} = :${setName.replace('#', '')}`)
    parts.remove.push(other)
  }
  if (change.status !== undefined) {
    parts.names['#status'] = 'status'
    setOrRemove(parts, change.status, [['#status', ':status', change.status]])
  }
  if (change.input !== undefined) {
    // INPUT is a reserved word in DynamoDB expressions.
    parts.names['#input'] = 'input'
    inlineOrRef('#input', 'inr', change.input)
  }
  setOrRemove(parts, change.dueAtMs, [
    ['dueAtMs', ':due', change.dueAtMs],
    ['dueShard', ':shard', dueShardFor(instanceId)],
  ])
  if (change.release) parts.remove.push('leaseOwner', 'leaseUntilMs')
  setOrRemove(parts, change.parked, [
    ['parkCode', ':parkCode', change.parked?.code],
    ['parkReason', ':parkReason', change.parked?.reason],
    ['parkAtMs', ':parkAtMs', change.parked?.atMs],
  ])
  setOrRemove(parts, change.farWakeAtMs, [['farWakeAtMs', ':farWake', change.farWakeAtMs]])
  setOrRemove(parts, change.failure, [['failure', ':failure', change.failure && failureToItem(change.failure)]])
  if (change.priorInputs === null) parts.remove.push('pin', 'pinr')
  else if (change.priorInputs !== undefined) inlineOrRef('pin', 'pinr', change.priorInputs)
  setOrRemove(parts, change.expiresAtSeconds, [[TTL_ATTRIBUTE, ':expiresAt', change.expiresAtSeconds]])
}

/** The guards of a fenced write besides the lease: its place in the item's writes, and the budget. */
const guardParts = (parts: UpdateParts, laid: LaidOutChange): void => {
  const { values, set, conditions } = parts
  if (laid.writeSeq !== undefined) {
    // Which of the instance's writes this is: the SDK's retry of a write that landed finds the item past it.
    values[':wseqNext'] = laid.writeSeq.next
    set.push('wseq = :wseqNext')
    if (laid.writeSeq.expected === 0) conditions.push('attribute_not_exists(wseq)')
    else {
      values[':wseq'] = laid.writeSeq.expected
      conditions.push('wseq = :wseq')
    }
  }
  const { bytesDelta, bytesBase, maxBytes } = laid.change
  if (bytesDelta === undefined || bytesDelta === 0) return
  // An item stored before the total existed starts from the holder's count of it.
  values[':bytes'] = bytesDelta
  values[':bytesBase'] = bytesBase ?? 0
  set.push('bytes = if_not_exists(bytes, :bytesBase) + :bytes')
  // A write that grows the instance is refused in its own condition when events stored since the lease was taken
  // leave too little room: the size is guarded where it is written.
  if (bytesDelta > 0 && maxBytes !== undefined) {
    values[':room'] = maxBytes - bytesDelta
    conditions.push('(attribute_not_exists(bytes) OR bytes <= :room)')
  }
}

/**
 * One write of a pass or operation, fenced by the lease, as its writer laid it out. `ADD evSeq :zero` changes
 * nothing but makes UPDATED_NEW return the event counter, so the pass learns of events that arrived meanwhile for
 * free.
 */
export const writeUnderLeaseParams = (
  tableName: string,
  lease: Lease,
  laid: LaidOutChange,
  planner: ItemPlanner,
): UpdateCommandInput => {
  const { change } = laid
  const parts: UpdateParts = {
    names: {},
    values: { ':owner': lease.owner, ':fence': lease.fence, ':ua': change.updatedAtMs },
    set: ['updatedAtMs = :ua'],
    remove: [],
    add: [],
    conditions: ['leaseOwner = :owner AND fence = :fence'],
  }
  archiveParts(parts, laid, planner)
  historyParts(parts, laid)
  nodeParts(parts, laid)
  attributeParts(parts, change, planner, lease.instanceId)
  callbackParts(parts, change)
  outboxParts(parts, change, lease.instanceId)
  parts.values[':zero'] = 0
  parts.add.push('evSeq :zero')
  guardParts(parts, laid)
  const { names, values, set, remove, add, conditions } = parts
  return {
    TableName: tableName,
    Key: instanceKey(lease.instanceId),
    UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''} ADD ${add.join(', ')}`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
    ExpressionAttributeValues: values,
    ReturnValues: 'UPDATED_NEW',
    // The old item tells a lost lease from our own release retried after its answer was lost, or from the budget.
    ...(change.release || conditions.length > 1 ? { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const } : {}),
  }
}

export const releaseLeaseParams = (tableName: string, lease: Lease): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(lease.instanceId),
  UpdateExpression: 'REMOVE leaseOwner, leaseUntilMs',
  ConditionExpression: 'leaseOwner = :owner AND fence = :fence',
  ExpressionAttributeValues: { ':owner': lease.owner, ':fence': lease.fence },
})

export const putEventParams = (
  tableName: string,
  instanceId: string,
  nodeId: string,
  event: NodeEventRecord,
  nowMs: number,
  guard: EventGuard | undefined,
  planner: ItemPlanner,
  history?: HistoryEntry,
): UpdateCommandInput => {
  const values: Record<string, unknown> = {
    ':event': planner.event(nodeId, event),
    ':now': nowMs,
    ':shard': dueShardFor(instanceId),
    ':one': 1,
    ':ts': event.eventTs,
    ...TERMINAL,
  }
  const conditions = [
    'attribute_exists(pk)',
    NOT_TERMINAL,
    '(attribute_not_exists(nodes.#node) OR NOT nodes.#node.st IN (:completed, :failed, :canceled))',
    '(attribute_not_exists(events.#node) OR events.#node.ts <= :ts)',
  ]
  const add = 'evSeq :one'
  if (history) {
    values[':h'] = [entryToItem(history)]
    values[':noH'] = []
  }
  if (guard) {
    // Exact under concurrency: the event it replaces is the one its size difference was computed from, and the
    // instance has room for that difference now, in this write.
    if (guard.replaces === null) {
      conditions.push('attribute_not_exists(events.#node)')
    } else {
      values[':oldTs'] = guard.replaces.eventTs
      values[':oldRMs'] = guard.replaces.receivedAtMs
      conditions.push('events.#node.ts = :oldTs AND events.#node.rMs = :oldRMs')
    }
    if (guard.addBytes !== 0) {
      values[':bytes'] = guard.addBytes
      values[':bytesBase'] = guard.baseBytes
    }
    if (guard.addBytes > 0) {
      values[':room'] = guard.maxBytes - guard.addBytes
      conditions.push('(attribute_not_exists(bytes) OR bytes <= :room)')
    }
  }
  return {
    TableName: tableName,
    Key: instanceKey(instanceId),
    UpdateExpression:
      'SET events.#node = :event, dueAtMs = :now, dueShard = :shard' +
      (guard && guard.addBytes !== 0 ? ', bytes = if_not_exists(bytes, :bytesBase) + :bytes' : '') +
      (history ? ', h = list_append(if_not_exists(h, :noH), :h)' : '') +
      ` ADD ${add}`,
    ConditionExpression: conditions.join(' AND '),
    ExpressionAttributeNames: { '#node': nodeId, '#status': 'status' },
    ExpressionAttributeValues: values,
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  }
}

export const markDueParams = (tableName: string, instanceId: string, dueAtMs: number): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(instanceId),
  UpdateExpression: 'SET dueAtMs = :due, dueShard = :shard',
  ConditionExpression: `attribute_exists(pk) AND ${NOT_TERMINAL} AND (attribute_not_exists(dueAtMs) OR dueAtMs > :due)`,
  ExpressionAttributeNames: { '#status': 'status' },
  ExpressionAttributeValues: { ':due': dueAtMs, ':shard': dueShardFor(instanceId), ...TERMINAL },
})

/** Takes a terminal instance that nobody holds out of the due index. */
export const clearTerminalDueParams = (tableName: string, instanceId: string, nowMs: number): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(instanceId),
  UpdateExpression: 'REMOVE dueAtMs, dueShard',
  ConditionExpression:
    'attribute_exists(dueAtMs) AND #status IN (:completed, :failed, :canceled) AND ' +
    '(attribute_not_exists(leaseOwner) OR leaseUntilMs < :now)',
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
      values[`:s${index}`] = status
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
