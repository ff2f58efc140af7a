import { type AttributeValue, type DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import type { DynamoDBDocumentClient, PutCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb'

/** The document client's own options: an undefined value is left out, an empty string stays a string. */
const OPTIONS = { removeUndefinedValues: true, convertEmptyValues: false } as const

/**
 * Writes as the document client takes them, marshalled here and sent as the service's own commands through the same
 * client (same configuration, same middleware). The document client's command wraps the service's command in a
 * second middleware stack on every request; on the hot path that wrapping costs the client as much CPU as the
 * marshalling itself, for the same bytes on the wire.
 */
export class Wire {
  readonly #client: DynamoDBClient

  constructor(client: DynamoDBClient | DynamoDBDocumentClient) {
    // A document client shares its client's configuration and middleware stack, and sends the service's commands.
    this.#client = client as DynamoDBClient
  }

  /** An UpdateItem; the attributes it returned, unmarshalled. */
  async update(input: UpdateCommandInput): Promise<{ Attributes?: Record<string, unknown> }> {
    const { Key, ExpressionAttributeValues, ...rest } = input
    const command = new UpdateItemCommand({
      ...rest,
      Key: marshall(Key, OPTIONS),
      ...values(ExpressionAttributeValues),
    })
    return attributesOf(await this.#client.send(command))
  }

  /** A PutItem; the attributes it returned (ALL_OLD), unmarshalled. */
  async put(input: PutCommandInput): Promise<{ Attributes?: Record<string, unknown> }> {
    const { Item, ExpressionAttributeValues, ...rest } = input
    const command = new PutItemCommand({ ...rest, Item: marshall(Item, OPTIONS), ...values(ExpressionAttributeValues) })
    return attributesOf(await this.#client.send(command))
  }
}

const values = (raw: Record<string, unknown> | undefined) =>
  raw === undefined ? {} : { ExpressionAttributeValues: marshall(raw, OPTIONS) }

const attributesOf = (output: { Attributes?: Record<string, AttributeValue> | undefined }) =>
  output.Attributes ? { Attributes: unmarshall(output.Attributes) } : {}
