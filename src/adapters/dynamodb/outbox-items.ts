import type { QueryCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { z } from 'zod'
import type { InstanceChange } from '../../core/instance-change.js'
import { LIFECYCLE_DETAIL_VERSION, LifecycleDetailType, type LifecycleEvent } from '../../core/lifecycle-events.js'
import { INSTANCE_STATUSES, STORED_NODE_STATUSES } from '../../schemas/statuses.js'
import { createdAtOf, dueShardFor, INDEX, instanceIdOf, instanceKey } from './keys.js'

/**
 * The outbox on the instance item (README, "Lifecycle events"): `ob`, a string set of the unpublished events (each
 * the JSON of one event, unique by its id), written by the very write that emits them; and the sparse index
 * `outbox` (`obShard`, `obAtMs`: since when events are pending), set with the first event and removed with the
 * last, which the tick reads. A string set is what lets the two sides meet without reading: a write adds to it
 * (`ADD` creates it), a publisher deletes exactly what it published (`DELETE`), and DynamoDB removes the set when
 * it is empty.
 */

/** Shards of the outbox index: spread like the due index, read once per tick each. */
export const OUTBOX_SHARDS = 8

const outboxShardFor = (instanceId: string): string => dueShardFor(instanceId, OUTBOX_SHARDS)

/**
 * An event as the set holds it, billed by the byte like every attribute of the instance item: a short JSON array
 * of what the change says — `[id, kind, status, previous, time, nodeId, reason, attempt, failCount, optional]`, the
 * id without the instance's, kind `i` (instance) or `n` (node), the time in ms after the instance's creation (like
 * every time of the item), `optional` 1 for a failed optional node, trailing nulls left out — about 30 bytes. The rest of
 * the detail (type, business id, version, creation time) is the instance item's own, read back with it. The same
 * event always gives the same text, so the publisher can delete exactly what it published.
 */
const eventText = (event: LifecycleEvent): string => {
  const { detail } = event
  const fields: unknown[] = [
    event.id.startsWith(`${detail.instanceId}:`) ? event.id.slice(detail.instanceId.length + 1) : event.id,
    event.detailType === LifecycleDetailType.node ? 'n' : 'i',
    detail.status,
    detail.previousStatus ?? null,
    detail.timeMs - detail.createdAtMs,
    detail.nodeId ?? null,
    detail.reason ?? null,
    detail.attempt ?? null,
    detail.failCount ?? null,
    detail.optional ? 1 : null,
  ]
  while (fields[fields.length - 1] === null) fields.pop()
  return JSON.stringify(fields)
}

const STATUSES = new Set<string>([...INSTANCE_STATUSES, ...STORED_NODE_STATUSES])
const nullable = <T extends z.ZodType>(schema: T) => schema.nullable().optional()
const storedEventSchema = z
  .tuple([
    z.string(),
    z.enum(['i', 'n']),
    z.string().refine((status) => STATUSES.has(status)),
    nullable(z.string().refine((status) => STATUSES.has(status))),
    z.number(),
  ])
  .rest(z.union([z.string(), z.number(), z.null()]))

/** What an event's detail takes from its instance item. */
export interface OutboxOwner {
  pk: string
  wfType: string
  businessId?: string | undefined
  dv: string
  /** The creation time is kept only there (see `createdAtOf`). */
  createdKey: string
}

const eventFromText = (owner: OutboxOwner, text: string): LifecycleEvent | undefined => {
  const createdAtMs = createdAtOf(owner.createdKey)
  let parsed: z.infer<typeof storedEventSchema>
  try {
    parsed = storedEventSchema.parse(JSON.parse(text))
  } catch {
    return undefined
  }
  const [suffix, kind, status, previous, sinceCreatedMs, nodeId, reason, attempt, failCount, optional] = parsed
  const instanceId = instanceIdOf(owner.pk)
  const id = `${instanceId}:${suffix}`
  const detail: LifecycleEvent['detail'] = {
    version: LIFECYCLE_DETAIL_VERSION,
    eventId: id,
    instanceId,
    workflowType: owner.wfType,
    ...(owner.businessId === undefined ? {} : { businessId: owner.businessId }),
    definitionVersion: owner.dv,
    status: status as LifecycleEvent['detail']['status'],
    ...(previous ? { previousStatus: previous as LifecycleEvent['detail']['status'] } : {}),
    ...(typeof reason === 'string' ? { reason } : {}),
    ...(typeof nodeId === 'string' ? { nodeId } : {}),
    ...(typeof attempt === 'number' ? { attempt } : {}),
    ...(typeof failCount === 'number' ? { failCount } : {}),
    ...(optional === 1 ? { optional: true as const } : {}),
    createdAtMs,
    timeMs: createdAtMs + sinceCreatedMs,
  }
  return { id, detailType: kind === 'n' ? LifecycleDetailType.node : LifecycleDetailType.instance, detail }
}

export const outboxItemSchema = z.object({
  ob: z.set(z.string()).optional(),
  obShard: z.string().optional(),
  obAtMs: z.number().optional(),
})

/**
 * The events of an item's outbox; an empty list for a mark left without events (removed by the next clear), and
 * undefined for none. An entry that does not parse is left out (and stays: nothing clears it but a publication).
 */
export const outboxFromItem = (item: z.infer<typeof outboxItemSchema> & OutboxOwner): LifecycleEvent[] | undefined => {
  if (item.ob === undefined) return item.obShard === undefined ? undefined : []
  const order = (id: string): number[] => (id.split(':').pop() ?? '').split('.').map(Number)
  return [...item.ob]
    .flatMap((text) => {
      const event = eventFromText(item, text)
      return event ? [event] : []
    })
    .sort((a, b) => {
      const [fa = 0, sa = 0] = order(a.id)
      const [fb = 0, sb = 0] = order(b.id)
      return a.detail.timeMs - b.detail.timeMs || fa - fb || sa - sb
    })
}

/** The outbox attributes of a new instance item. */
export const outboxToItem = (instanceId: string, outbox: readonly LifecycleEvent[] | undefined) =>
  outbox?.length
    ? {
        ob: new Set(outbox.map(eventText)),
        obShard: outboxShardFor(instanceId),
        obAtMs: Math.min(...outbox.map((event) => event.detail.timeMs)),
      }
    : {}

interface Parts {
  values: Record<string, unknown>
  set: string[]
  add: string[]
}

/** What a fenced write adds for the events it emits: them, and the mark of the outbox index if none is there. */
export const outboxParts = (parts: Parts, change: InstanceChange, instanceId: string): void => {
  if (!change.emits?.length) return
  parts.values[':ob'] = new Set(change.emits.map(eventText))
  parts.values[':obShard'] = outboxShardFor(instanceId)
  parts.values[':obAt'] = change.updatedAtMs
  parts.add.push('ob :ob')
  parts.set.push('obShard = if_not_exists(obShard, :obShard)', 'obAtMs = if_not_exists(obAtMs, :obAt)')
}

/**
 * Removes published events. `whole`: they are all the outbox holds (`size` and each `contains` in the condition),
 * so the mark goes with them; else only they go (and a mark left on an empty set is removed by `unmarkParams`).
 */
export const clearOutboxParams = (
  tableName: string,
  instanceId: string,
  events: readonly LifecycleEvent[],
  whole: boolean,
): UpdateCommandInput => {
  const texts = events.map(eventText)
  const values: Record<string, unknown> = { ':done': new Set(texts) }
  if (!whole) {
    return {
      TableName: tableName,
      Key: instanceKey(instanceId),
      UpdateExpression: 'DELETE ob :done',
      ConditionExpression: 'attribute_exists(ob)',
      ExpressionAttributeValues: values,
      ReturnValues: 'UPDATED_NEW',
    }
  }
  values[':n'] = texts.length
  texts.forEach((text, index) => {
    values[`:e${index}`] = text
  })
  return {
    TableName: tableName,
    Key: instanceKey(instanceId),
    UpdateExpression: 'DELETE ob :done REMOVE obShard, obAtMs',
    ConditionExpression: ['size(ob) = :n', ...texts.map((_, index) => `contains(ob, :e${index})`)].join(' AND '),
    ExpressionAttributeValues: values,
  }
}

/** Removes the mark of an outbox whose events are all gone. */
export const unmarkParams = (tableName: string, instanceId: string): UpdateCommandInput => ({
  TableName: tableName,
  Key: instanceKey(instanceId),
  UpdateExpression: 'REMOVE obShard, obAtMs',
  ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(ob)',
})

/** A page of one shard of the outbox index: instances with events pending since at or before `beforeMs`. */
export const queryOutboxParams = (
  tableName: string,
  shard: number,
  beforeMs: number,
  limit: number,
  exclusiveStartKey: Record<string, unknown> | undefined,
): QueryCommandInput => ({
  TableName: tableName,
  IndexName: INDEX.outbox,
  KeyConditionExpression: 'obShard = :shard AND obAtMs <= :before',
  ExpressionAttributeValues: { ':shard': String(shard), ':before': beforeMs },
  Limit: limit,
  ExclusiveStartKey: exclusiveStartKey,
})
