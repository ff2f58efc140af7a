import { type AttributeValue, type DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import type { DynamoDBDocumentClient, PutCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb'
import { type DirectOperation, HttpWire } from './http-wire.js'

/** The document client's own options: an undefined value is left out, an empty string stays a string. */
const OPTIONS = { removeUndefinedValues: true, convertEmptyValues: false } as const

/**
 * Writes as the document client takes them, marshalled here and sent as the service's own requests: directly over
 * the client's HTTP handler when the client is as the SDK made it (see HttpWire), else as the service's commands
 * through the client (same configuration, same middleware). The document client's command wraps the service's
 * command in a second middleware stack on every request; on the hot path that wrapping costs the client as much CPU
 * as the marshalling itself, for the same bytes on the wire.
 */
export class Wire {
  readonly #client: DynamoDBClient
  readonly #direct: HttpWire

  constructor(client: DynamoDBClient | DynamoDBDocumentClient) {
    // A document client shares its client's configuration and middleware stack, and sends the service's commands.
    this.#client = client as DynamoDBClient
    this.#direct = new HttpWire(client)
  }

  /** An UpdateItem; the attributes it returned, unmarshalled. */
  async update(input: UpdateCommandInput): Promise<{ Attributes?: Record<string, unknown> }> {
    const { Key, ExpressionAttributeValues, ...rest } = input
    const low = { ...rest, Key: marshall(Key, OPTIONS), ...values(ExpressionAttributeValues) }
    return attributesOf(await this.#send('UpdateItem', low, () => new UpdateItemCommand(low)))
  }

  /** A PutItem; the attributes it returned (ALL_OLD), unmarshalled. */
  async put(input: PutCommandInput): Promise<{ Attributes?: Record<string, unknown> }> {
    const { Item, ExpressionAttributeValues, ...rest } = input
    const low = { ...rest, Item: marshall(Item, OPTIONS), ...values(ExpressionAttributeValues) }
    return attributesOf(await this.#send('PutItem', low, () => new PutItemCommand(low)))
  }

  async #send(
    operation: DirectOperation,
    input: object,
    command: () => UpdateItemCommand | PutItemCommand,
  ): Promise<{ Attributes?: Record<string, AttributeValue> | undefined }> {
    const direct = await this.#direct.usable()
    if (direct) return this.#direct.send(direct, operation, input)
    return this.#client.send(command() as UpdateItemCommand)
  }
}

const values = (raw: Record<string, unknown> | undefined) =>
  raw === undefined ? {} : { ExpressionAttributeValues: marshall(raw, OPTIONS) }

const attributesOf = (output: { Attributes?: Record<string, AttributeValue> | undefined }) =>
  output.Attributes ? { Attributes: unmarshall(output.Attributes) } : {}
