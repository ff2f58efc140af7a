import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import { z } from 'zod'
import type { NormalisedConfig } from '../../core/definition.js'
import {
  InstanceNotFoundError,
  type ItemTooLargeError,
  LeaseLostError,
  LockConflictError,
  StaleEventError,
  type StoreError,
  ValidationError,
} from '../../core/errors.js'
import { eventRefusal, guardRefusal, isSameEvent } from '../../core/event-rules.js'
import { budgetRefusal } from '../../core/lease-rules.js'
import { INSTANCE_STATUSES, isTerminalInstanceStatus } from '../../core/statuses.js'
import {
  type AcquireOptions,
  type AcquireResult,
  type DuePage,
  type EventGuard,
  type InstanceChange,
  InstanceExistsError,
  type InstanceRecord,
  type InstanceStatusView,
  type InstanceStore,
  type Lease,
  type NodeEventRecord,
} from '../../core/store.js'
import { classifyDynamoDbError } from '../aws-errors.js'
import { type CatalogueEntry, IndexedCatalogue, type IndexPage, type IndexPageRequest } from '../store-catalogue.js'
import { recordFromItem, recordToItem } from './item-codec.js'
import { createdKey, DUE_SHARDS, definitionKey, INDEX, instanceKey } from './keys.js'
import {
  acquireLeaseParams,
  clearTerminalDueParams,
  indexPartition,
  listQueryParams,
  markDueParams,
  putDefinitionParams,
  putEventParams,
  putInstanceParams,
  queryDueParams,
  releaseLeaseParams,
  writeUnderLeaseParams,
} from './params.js'

interface AwsError {
  name?: string
  message?: string
  Item?: Record<string, AttributeValue>
  $retryable?: unknown
  $metadata?: { httpStatusCode?: number }
}

const isConditionFailure = (error: unknown): error is AwsError =>
  (error as AwsError)?.name === 'ConditionalCheckFailedException'

/** The item returned with a failed condition is marshalled even through the document client. */
const oldItem = (error: AwsError): Record<string, unknown> | undefined =>
  error.Item ? unmarshall(error.Item) : undefined

/**
 * Turns an AWS SDK error into the engine's StoreError, or ItemTooLargeError for DynamoDB's size refusals (see
 * classifyDynamoDbError); callers never see SDK types.
 */
export const translateAwsError = (
  error: unknown,
  operation: string,
  tableName: string,
): StoreError | ItemTooLargeError => classifyDynamoDbError(error, { operation, resource: tableName })

const dueCursorSchema = z.strictObject({ pk: z.string(), dueShard: z.string(), dueAtMs: z.number() })

const statusViewSchema = z.object({
  status: z.enum(INSTANCE_STATUSES),
  wfType: z.string(),
  createdAtMs: z.number(),
})

const entrySchema = z.object({
  id: z.string(),
  wfType: z.string(),
  businessId: z.string().optional(),
  status: z.enum(INSTANCE_STATUSES),
  createdAtMs: z.number(),
  createdKey: z.string(),
  parkCode: z.string().optional(),
})

export interface DynamoDbStoreOptions {
  tableName: string
  /** A DynamoDBClient or an already wrapped DynamoDBDocumentClient. */
  client: DynamoDBClient | DynamoDBDocumentClient
  /** Largest number of index pages one list call reads per partition before it returns a (possibly short) page. */
  maxPagesPerList?: number
}

/** The InstanceStore on one DynamoDB table (layout in the README). Every state change is one conditional write. */
export class DynamoDbStore extends IndexedCatalogue implements InstanceStore {
  readonly tableName: string
  readonly #doc: DynamoDBDocumentClient

  constructor(options: DynamoDbStoreOptions) {
    super(options.maxPagesPerList === undefined ? {} : { maxPagesPerList: options.maxPagesPerList })
    this.tableName = options.tableName
    this.#doc =
      options.client instanceof DynamoDBDocumentClient
        ? options.client
        : DynamoDBDocumentClient.from(options.client, {
            marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
          })
  }

  async #send<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      if (isConditionFailure(error)) throw error
      throw translateAwsError(error, operation, this.tableName)
    }
  }

  async createInstance(record: InstanceRecord, lease?: Lease): Promise<void> {
    const item = recordToItem(
      lease ? { ...record, leaseOwner: lease.owner, leaseUntilMs: lease.untilMs, fence: lease.fence } : record,
    )
    try {
      await this.#send('createInstance', () => this.#doc.send(new PutCommand(putInstanceParams(this.tableName, item))))
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const existing = oldItem(error)
      if (!existing) throw translateAwsError(error, 'createInstance', this.tableName)
      throw new InstanceExistsError(recordFromItem(existing))
    }
  }

  async acquireLease(
    instanceId: string,
    owner: string,
    nowMs: number,
    untilMs: number,
    options: AcquireOptions = {},
  ): Promise<AcquireResult> {
    const allowTerminal = options.allowTerminal === true || options.terminalOnly === true
    try {
      const result = await this.#send('acquireLease', () =>
        this.#doc.send(
          new UpdateCommand(acquireLeaseParams(this.tableName, instanceId, owner, nowMs, untilMs, options)),
        ),
      )
      const before = recordFromItem(result.Attributes)
      const { parked, ...rest } = before
      const record: InstanceRecord =
        options.terminalOnly || options.dueBy !== undefined
          ? { ...before, leaseOwner: owner, leaseUntilMs: untilMs }
          : { ...rest, leaseOwner: owner, leaseUntilMs: untilMs, dueAtMs: untilMs }
      record.fence = before.fence + 1
      const previous = {
        ...(before.dueAtMs === undefined ? {} : { dueAtMs: before.dueAtMs }),
        ...(parked === undefined ? {} : { parked }),
      }
      return { kind: 'acquired', lease: { instanceId, owner, fence: record.fence, untilMs }, record, previous }
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const item = oldItem(error)
      if (!item) throw new InstanceNotFoundError(instanceId)
      const record = recordFromItem(item)
      if (!allowTerminal && isTerminalInstanceStatus(record.status)) return { kind: 'terminal', record }
      if (options.terminalOnly && !isTerminalInstanceStatus(record.status)) return { kind: 'live', record }
      if (options.dueBy !== undefined && (record.dueAtMs === undefined || record.dueAtMs > options.dueBy)) {
        return { kind: 'not-due', record }
      }
      throw new LockConflictError(instanceId, record.leaseUntilMs, nowMs)
    }
  }

  async writeUnderLease(lease: Lease, change: InstanceChange): Promise<{ eventSeq: number }> {
    try {
      const result = await this.#send('writeUnderLease', () =>
        this.#doc.send(new UpdateCommand(writeUnderLeaseParams(this.tableName, lease, change))),
      )
      return { eventSeq: Number(result.Attributes?.evSeq ?? 0) }
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const old = oldItem(error)
      // Released under our own fence: only this write does that, so an earlier attempt of it landed.
      if (change.release && old && Number(old.fence) === lease.fence && old.leaseOwner === undefined) {
        return { eventSeq: Number(old.evSeq ?? 0) }
      }
      // Still our lease: the budget condition refused it (events stored since took the room).
      if (old && Number(old.fence) === lease.fence && old.leaseOwner === lease.owner) {
        const stored = Number(old.bytes ?? 0)
        throw budgetRefusal(stored + (change.bytesDelta ?? 0), change.maxBytes ?? 0)
      }
      throw new LeaseLostError(lease.instanceId, lease.fence)
    }
  }

  async releaseLease(lease: Lease): Promise<void> {
    try {
      await this.#send('releaseLease', () =>
        this.#doc.send(new UpdateCommand(releaseLeaseParams(this.tableName, lease))),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  async putEvent(
    instanceId: string,
    nodeId: string,
    event: NodeEventRecord,
    nowMs: number,
    guard?: EventGuard,
  ): Promise<void> {
    try {
      await this.#send('putEvent', () =>
        this.#doc.send(new UpdateCommand(putEventParams(this.tableName, instanceId, nodeId, event, nowMs, guard))),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
      const item = oldItem(error)
      if (!item) throw new InstanceNotFoundError(instanceId)
      const record = recordFromItem(item)
      // Our own write, retried by the SDK after its answer was lost, and since acted on by a pass.
      if (isSameEvent(record.events[nodeId], event)) return
      const refusal = eventRefusal(record, nodeId, event)
      if (refusal) throw refusal
      if (guard) throw guardRefusal(record, nodeId, guard)
      throw new StaleEventError(instanceId, nodeId, event.eventTs, event.eventTs)
    }
  }

  async markDue(instanceId: string, dueAtMs: number): Promise<void> {
    try {
      await this.#send('markDue', () =>
        this.#doc.send(new UpdateCommand(markDueParams(this.tableName, instanceId, dueAtMs))),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  async clearTerminalDue(instanceId: string, nowMs: number): Promise<void> {
    try {
      await this.#send('clearTerminalDue', () =>
        this.#doc.send(new UpdateCommand(clearTerminalDueParams(this.tableName, instanceId, nowMs))),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  readonly dueShards = DUE_SHARDS

  async queryDue(shard: number, nowMs: number, limit: number, cursor?: string): Promise<DuePage> {
    let startKey: Record<string, unknown> | undefined
    if (cursor !== undefined) {
      try {
        startKey = dueCursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
      } catch {
        throw new ValidationError('cursor is not a due-index cursor', 'cursor')
      }
    }
    const result = await this.#send('queryDue', () =>
      this.#doc.send(new QueryCommand(queryDueParams(this.tableName, shard, nowMs, limit, startKey))),
    )
    const items = (result.Items ?? []).map((item) => ({
      instanceId: String(item.pk).slice(instanceKey('').pk.length),
      dueAtMs: Number(item.dueAtMs),
    }))
    return result.LastEvaluatedKey
      ? { items, cursor: Buffer.from(JSON.stringify(result.LastEvaluatedKey)).toString('base64url') }
      : { items }
  }

  async getInstance(instanceId: string): Promise<InstanceRecord | undefined> {
    const result = await this.#send('getInstance', () =>
      this.#doc.send(new GetCommand({ TableName: this.tableName, Key: instanceKey(instanceId), ConsistentRead: true })),
    )
    return result.Item ? recordFromItem(result.Item) : undefined
  }

  /**
   * The status without the item's bulk. DynamoDB bills a projected GetItem for the whole item's size, so only the
   * first read is one (eventually consistent: half price); with `known`, the status is read from the instance's
   * `byType` index entry, a few dozen bytes: 0.5 read units however large the instance.
   */
  async getInstanceStatus(instanceId: string, known?: InstanceStatusView): Promise<InstanceStatusView | undefined> {
    if (known !== undefined) {
      const result = await this.#send('getInstanceStatus', () =>
        this.#doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: INDEX.byType,
            KeyConditionExpression: 'wfType = :type AND createdKey = :created',
            ExpressionAttributeValues: {
              ':type': known.workflowType,
              ':created': createdKey(known.createdAtMs, instanceId),
            },
            ProjectionExpression: '#status',
            ExpressionAttributeNames: { '#status': 'status' },
          }),
        ),
      )
      const entry = result.Items?.[0]
      if (entry !== undefined) return { ...known, status: statusViewSchema.shape.status.parse(entry.status) }
    }
    const result = await this.#send('getInstanceStatus', () =>
      this.#doc.send(
        new GetCommand({
          TableName: this.tableName,
          Key: instanceKey(instanceId),
          ProjectionExpression: '#status, wfType, createdAtMs',
          ExpressionAttributeNames: { '#status': 'status' },
        }),
      ),
    )
    if (!result.Item) return undefined
    const item = statusViewSchema.parse(result.Item)
    return { status: item.status, workflowType: item.wfType, createdAtMs: item.createdAtMs }
  }

  /** The catalogue's one read (list and count are the shared ones): a Query of one list index partition. */
  protected async readIndexPage(request: IndexPageRequest): Promise<IndexPage> {
    const params = listQueryParams(
      this.tableName,
      indexPartition(request.partition),
      request,
      request.next === undefined ? undefined : { ...request.next },
    )
    const operation = request.countOnly ? 'countInstances' : 'listInstances'
    const result = await this.#send(operation, () => this.#doc.send(new QueryCommand(params)))
    const entries = (result.Items ?? []).map((raw): CatalogueEntry => {
      const { wfType, parkCode, businessId, ...entry } = entrySchema.parse(raw)
      return {
        ...entry,
        workflowType: wfType,
        ...(businessId === undefined ? {} : { businessId }),
        ...(parkCode === undefined ? {} : { parkCode }),
      }
    })
    const next = result.LastEvaluatedKey
    return {
      entries,
      matched: result.Count ?? entries.length,
      read: result.ScannedCount ?? entries.length,
      ...(next === undefined ? {} : { next: { position: next, lastKey: String(next.createdKey) } }),
    }
  }

  async putDefinition(workflowType: string, version: string, config: NormalisedConfig): Promise<void> {
    try {
      await this.#send('putDefinition', () =>
        this.#doc.send(
          new PutCommand(
            putDefinitionParams(
              this.tableName,
              definitionKey(workflowType, version),
              workflowType,
              version,
              JSON.stringify(config),
            ),
          ),
        ),
      )
    } catch (error) {
      if (!isConditionFailure(error)) throw error
    }
  }

  async getDefinition(workflowType: string, version: string): Promise<NormalisedConfig | undefined> {
    const result = await this.#send('getDefinition', () =>
      this.#doc.send(new GetCommand({ TableName: this.tableName, Key: definitionKey(workflowType, version) })),
    )
    const config = result.Item?.config
    return typeof config === 'string' ? (JSON.parse(config) as NormalisedConfig) : undefined
  }
}
