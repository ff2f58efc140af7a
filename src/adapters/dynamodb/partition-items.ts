import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import type { Logger } from '../../core/ports.js'
import type { SideItem } from './item-codec.js'
import { instancePk } from './keys.js'
import { putSideItemParams } from './params.js'
import type { Wire } from './wire.js'

/** BatchWriteItem takes at most 25 items per request, BatchGetItem 100. */
const BATCH_WRITE_ITEMS = 25
const BATCH_GET_ITEMS = 100
/** Tries of a batch DynamoDB left partly unprocessed (throttling), with an exponential backoff from 50 ms. */
const BATCH_TRIES = 8

const backoff = (attempt: number): Promise<void> =>
  attempt === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt))

/**
 * The items of instance partitions other than the instance item, written, read and deleted in batches, with what
 * DynamoDB leaves unprocessed sent again (a throttled batch is partly refused, not failed).
 */
export class PartitionItems {
  constructor(
    readonly doc: DynamoDBDocumentClient,
    readonly tableName: () => string,
    /** Sends a request, translating AWS errors (see DynamoDbStore). */
    readonly send: <T>(operation: string, fn: () => Promise<T>) => Promise<T>,
    /** Translates an AWS error as `send` does: a batch still unprocessed after its tries is a throttled request. */
    readonly translate: (error: unknown, operation: string) => Error,
    readonly logger: Logger,
    /** The reads of a pass, sent as the store's writes are (see Wire). */
    readonly wire: Wire,
  ) {}

  /** What a batch DynamoDB kept refusing is: the throttling error of its operation, translated like any other. */
  #unprocessed(operation: string, message: string): Error {
    return this.translate(Object.assign(new Error(message), { name: 'ThrottlingException' }), operation)
  }

  /** Writes items (before the instance item that refers to them); throws when some stay unprocessed. */
  async put(items: readonly SideItem[]): Promise<void> {
    const table = this.tableName()
    if (items.length === 1) {
      const [item] = items as [SideItem]
      await this.send('putSideItem', () => this.wire.put(putSideItemParams(table, item)))
      return
    }
    const left = await this.#writeAll(
      'putSideItems',
      items.map((item) => ({ PutRequest: { Item: item } })),
    )
    if (left.length) {
      throw this.#unprocessed('putSideItems', `${left.length} side item(s) left unprocessed after ${BATCH_TRIES} tries`)
    }
  }

  /**
   * Deletes items of a partition; returns the sort keys it could not delete (logged: their time to live removes
   * them at the latest). Never throws.
   */
  async delete(instanceId: string, sortKeys: readonly string[]): Promise<string[]> {
    if (!sortKeys.length) return []
    const pk = instancePk(instanceId)
    const requests = sortKeys.map((sk) => ({ DeleteRequest: { Key: { pk, sk } } }))
    let left: typeof requests
    try {
      left = await this.#writeAll('deleteSideItems', requests)
    } catch (error) {
      left = requests
      this.logger.log('warn', 'items to delete were not deleted; their time to live will', {
        instanceId,
        items: sortKeys.length,
        error: error instanceof Error ? error.message : String(error),
      })
      return [...sortKeys]
    }
    const failed = left.map((request) => String(request.DeleteRequest.Key.sk))
    if (failed.length) {
      this.logger.log('warn', 'items to delete were left unprocessed; their time to live will delete them', {
        instanceId,
        items: failed.length,
      })
    }
    return failed
  }

  /** Items of a partition by sort key, read consistently; the ones not stored are absent. */
  async get(instanceId: string, sortKeys: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>()
    const pk = instancePk(instanceId)
    const table = this.tableName()
    const unique = [...new Set(sortKeys)]
    for (let start = 0; start < unique.length; start += BATCH_GET_ITEMS) {
      let keys: Record<string, unknown>[] = unique.slice(start, start + BATCH_GET_ITEMS).map((sk) => ({ pk, sk }))
      for (let attempt = 0; keys.length; attempt++) {
        if (attempt >= BATCH_TRIES) {
          throw this.#unprocessed('readSideItems', `${keys.length} item(s) left unread after ${BATCH_TRIES} tries`)
        }
        await backoff(attempt)
        const batch = keys
        const result = await this.send('readSideItems', () =>
          this.wire.batchGet({ RequestItems: { [table]: { Keys: batch, ConsistentRead: true } } }),
        )
        for (const item of result.Responses?.[table] ?? []) found.set(String(item.sk), item)
        keys = result.UnprocessedKeys?.[table]?.Keys ?? []
      }
    }
    return found
  }

  /** A batch write of any size, retrying what DynamoDB leaves unprocessed; what is still left after the tries. */
  async #writeAll<R extends Record<string, unknown>>(operation: string, requests: readonly R[]): Promise<R[]> {
    const table = this.tableName()
    const left: R[] = []
    for (let start = 0; start < requests.length; start += BATCH_WRITE_ITEMS) {
      let batch = requests.slice(start, start + BATCH_WRITE_ITEMS)
      for (let attempt = 0; batch.length && attempt < BATCH_TRIES; attempt++) {
        await backoff(attempt)
        const sent = batch
        const result = await this.send(operation, () =>
          this.doc.send(new BatchWriteCommand({ RequestItems: { [table]: sent } })),
        )
        batch = (result.UnprocessedItems?.[table] ?? []) as unknown as R[]
      }
      left.push(...batch)
    }
    return left
  }
}
