import {
  type AttributeValue,
  BatchGetItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import type {
  BatchGetCommandInput,
  DynamoDBDocumentClient,
  GetCommandInput,
  PutCommandInput,
  QueryCommandInput,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb'
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb'
import { type DirectOperation, HttpWire } from './http-wire.js'

/** The document client's own options: an undefined value is left out, an empty string stays a string. */
const OPTIONS = { removeUndefinedValues: true, convertEmptyValues: false } as const

/**
 * Requests as the document client takes them (and answers as it gives them), marshalled here and sent as the
 * service's own requests: directly over the client's HTTP handler when the client is as the SDK made it (see
 * HttpWire), else as the service's commands through the client (same configuration, same middleware). The document
 * client's command wraps the service's command in a second middleware stack on every request; on the hot path that
 * wrapping costs the client as much CPU as the marshalling itself, for the same bytes on the wire.
 */
export class Wire {
  readonly #client: DynamoDBClient
  readonly #direct: HttpWire | undefined

  /** `direct: false` sends every write through the SDK. */
  constructor(client: DynamoDBClient | DynamoDBDocumentClient, options: { direct?: boolean } = {}) {
    // A document client shares its client's configuration and middleware stack, and sends the service's commands.
    this.#client = client as DynamoDBClient
    this.#direct = options.direct === false ? undefined : new HttpWire(client)
  }

  /** An UpdateItem; the attributes it returned, unmarshalled. */
  async update(input: UpdateCommandInput): Promise<{ Attributes?: Record<string, unknown> }> {
    const { Key, ExpressionAttributeValues, ...rest } = input
    const low = { ...rest, Key: marshall(Key, OPTIONS), ...values(ExpressionAttributeValues) }
    return attributesOf(
      await this.#send('UpdateItem', low, () => new UpdateItemCommand(low), [ExpressionAttributeValues]),
    )
  }

  /** A PutItem; the attributes it returned (ALL_OLD), unmarshalled. */
  async put(input: PutCommandInput): Promise<{ Attributes?: Record<string, unknown> }> {
    const { Item, ExpressionAttributeValues, ...rest } = input
    const low = { ...rest, Item: marshall(Item, OPTIONS), ...values(ExpressionAttributeValues) }
    return attributesOf(
      await this.#send('PutItem', low, () => new PutItemCommand(low), [Item, ExpressionAttributeValues]),
    )
  }

  /** A GetItem; the item, unmarshalled. */
  async get(input: GetCommandInput): Promise<{ Item?: Record<string, unknown> }> {
    const { Key, ...rest } = input
    const low = { ...rest, Key: marshall(Key, OPTIONS) }
    const output = (await this.#send('GetItem', low, () => new GetItemCommand(low), [Key])) as {
      Item?: Record<string, AttributeValue>
    }
    return output.Item ? { Item: unmarshall(output.Item) } : {}
  }

  /** A Query; its items and where it stopped, unmarshalled. */
  async query(input: QueryCommandInput): Promise<{
    Items?: Record<string, unknown>[]
    LastEvaluatedKey?: Record<string, unknown>
    Count?: number
    ScannedCount?: number
  }> {
    const { ExpressionAttributeValues, ExclusiveStartKey, ...rest } = input
    const low = {
      ...rest,
      ...values(ExpressionAttributeValues),
      ...(ExclusiveStartKey === undefined ? {} : { ExclusiveStartKey: marshall(ExclusiveStartKey, OPTIONS) }),
    }
    const documents = [ExpressionAttributeValues, ExclusiveStartKey]
    const output = (await this.#send('Query', low, () => new QueryCommand(low), documents)) as {
      Items?: Record<string, AttributeValue>[]
      LastEvaluatedKey?: Record<string, AttributeValue>
      Count?: number
      ScannedCount?: number
    }
    return {
      Items: (output.Items ?? []).map((item) => unmarshall(item)),
      ...(output.LastEvaluatedKey ? { LastEvaluatedKey: unmarshall(output.LastEvaluatedKey) } : {}),
      ...(output.Count === undefined ? {} : { Count: output.Count }),
      ...(output.ScannedCount === undefined ? {} : { ScannedCount: output.ScannedCount }),
    }
  }

  /** A BatchGetItem; the items found and the keys left unprocessed, per table, unmarshalled. */
  async batchGet(input: BatchGetCommandInput): Promise<{
    Responses?: Record<string, Record<string, unknown>[]>
    UnprocessedKeys?: Record<string, { Keys?: Record<string, unknown>[] }>
  }> {
    const { RequestItems, ...rest } = input
    const requests = Object.fromEntries(
      Object.entries(RequestItems ?? {}).map(([table, { Keys, ...request }]) => [
        table,
        { ...request, Keys: (Keys ?? []).map((key) => marshall(key, OPTIONS)) },
      ]),
    )
    const low = { ...rest, RequestItems: requests }
    const output = (await this.#send('BatchGetItem', low, () => new BatchGetItemCommand(low), [RequestItems])) as {
      Responses?: Record<string, Record<string, AttributeValue>[]>
      UnprocessedKeys?: Record<string, { Keys?: Record<string, AttributeValue>[] }>
    }
    return {
      Responses: Object.fromEntries(
        Object.entries(output.Responses ?? {}).map(([table, items]) => [table, items.map((item) => unmarshall(item))]),
      ),
      UnprocessedKeys: Object.fromEntries(
        Object.entries(output.UnprocessedKeys ?? {}).map(([table, { Keys, ...request }]) => [
          table,
          { ...request, Keys: (Keys ?? []).map((key) => unmarshall(key)) },
        ]),
      ),
    }
  }

  async #send(
    operation: DirectOperation,
    input: object,
    command: () => UpdateItemCommand | PutItemCommand | GetItemCommand | QueryCommand | BatchGetItemCommand,
    /** The documents the request was marshalled from: one holding bytes goes through the SDK. */
    documents: unknown[],
  ): Promise<Record<string, unknown>> {
    // Binary values are the SDK's to encode (base64 in the body, bytes in the answer); the store writes none.
    const direct = await this.#direct?.usable()
    if (this.#direct && direct && !documents.some(holdsBinary)) return this.#direct.send(direct, operation, input)
    return (await this.#client.send(command() as UpdateItemCommand)) as unknown as Record<string, unknown>
  }
}

/** Whether a document holds bytes anywhere (a Buffer or typed array, or a set of them). */
const holdsBinary = (value: unknown): boolean => {
  if (value === null || typeof value !== 'object') return false
  if (ArrayBuffer.isView(value)) return true
  if (value instanceof Set) return [...value].some(holdsBinary)
  if (Array.isArray(value)) return value.some(holdsBinary)
  for (const key in value) if (holdsBinary((value as Record<string, unknown>)[key])) return true
  return false
}

const values = (raw: Record<string, unknown> | undefined) =>
  raw === undefined ? {} : { ExpressionAttributeValues: marshall(raw, OPTIONS) }

const attributesOf = (output: { Attributes?: Record<string, AttributeValue> | undefined }) =>
  output.Attributes ? { Attributes: unmarshall(output.Attributes) } : {}
