import type { QueryCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { z } from 'zod'
import type { InstanceChange } from '../../core/instance-change.js'
import type { LifecycleEvent } from '../../core/lifecycle-events.js'
import { lifecycleEventSchema } from '../../schemas/lifecycle-events.js'
import { dueShardFor, INDEX, instanceKey } from './keys.js'

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

export const outboxShardFor = (instanceId: string): string => dueShardFor(instanceId, OUTBOX_SHARDS)

/** An event as the set holds it: its JSON, the same text on every side. */
export const eventText = (event: LifecycleEvent): string => JSON.stringify(event)

export const outboxItemSchema = z.object({
  ob: z.set(z.string()).optional(),
  obShard: z.string().optional(),
  obAtMs: z.number().optional(),
})

/**
 * The events of an item's outbox; an empty list for a mark left without events (removed by the next clear), and
 * undefined for none. An entry that does not parse is left out (and stays: nothing clears it but a publication).
 */
export const outboxFromItem = (item: z.infer<typeof outboxItemSchema>): LifecycleEvent[] | undefined => {
  if (item.ob === undefined) return item.obShard === undefined ? undefined : []
  return [...item.ob].flatMap((text) => {
    try {
      const parsed = lifecycleEventSchema.safeParse(JSON.parse(text))
      // Kept as parsed by JSON (not reshaped), so that it prints to the very text stored.
      return parsed.success ? [JSON.parse(text) as LifecycleEvent] : []
    } catch {
      return []
    }
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
