import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb'
import { describe, expect, it } from 'vitest'
import { Wire } from '../../src/adapters/dynamodb/wire.js'

/** A client that never sends: each request's body is captured as it would go out, then refused. */
const capturingClient = () => {
  const client = new DynamoDBClient({
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:9',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 1,
  })
  const bodies: string[] = []
  client.middlewareStack.add(
    () => async (args) => {
      const body = (args.request as { body?: unknown }).body
      // The SDK's body is bytes that warn when read as a string: decode them.
      bodies.push(body instanceof Uint8Array ? new TextDecoder().decode(body) : String(body))
      throw new Error('captured')
    },
    { step: 'finalizeRequest', name: 'capture' },
  )
  return { client, bodies }
}

const update = {
  TableName: 't',
  Key: { pk: 'I#1', sk: '#' },
  UpdateExpression: 'SET n.#a = :a, h = list_append(if_not_exists(h, :noH), :h), e = :e ADD es :zero',
  ConditionExpression: 'lo = :owner AND f = :fence',
  ExpressionAttributeNames: { '#a': 'step1' },
  ExpressionAttributeValues: {
    ':a': { s: 'c', o: { nested: [1, 'two', { three: true, gone: undefined }], empty: '' }, n: null },
    ':noH': [],
    ':h': ['R|1|step1'],
    ':e': {},
    ':zero': 0,
    ':owner': 'runner-1',
    ':fence': 3,
  },
  ReturnValues: 'UPDATED_NEW' as const,
  ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
}

const put = {
  TableName: 't',
  Item: { pk: 'I#1', sk: '#', n: { step1: 'p' }, h: [], gone: undefined, big: 12.5, text: '' },
  ConditionExpression: 'attribute_not_exists(pk)',
  ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
}

describe('the store marshals its writes itself', () => {
  it('sends an update and a put byte for byte as the document client with the store’s options sends them', async () => {
    const { client, bodies } = capturingClient()
    const doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
    })
    const wire = new Wire(doc)
    await expect(doc.send(new UpdateCommand(update))).rejects.toThrow('captured')
    await expect(wire.update(update)).rejects.toThrow('captured')
    await expect(doc.send(new PutCommand(put))).rejects.toThrow('captured')
    await expect(wire.put(put)).rejects.toThrow('captured')
    expect(bodies).toHaveLength(4)
    expect(JSON.parse(bodies[1] as string)).toEqual(JSON.parse(bodies[0] as string))
    expect(JSON.parse(bodies[3] as string)).toEqual(JSON.parse(bodies[2] as string))
    // What it sends is DynamoDB's own form: undefined values left out, an empty string kept.
    const sent = JSON.parse(bodies[1] as string)
    expect(sent.ExpressionAttributeValues[':a'].M.o.M.nested.L[2].M).toEqual({ three: { BOOL: true } })
    expect(sent.ExpressionAttributeValues[':a'].M.o.M.empty).toEqual({ S: '' })
    expect(JSON.parse(bodies[3] as string).Item.gone).toBeUndefined()
  })

  it('also takes a client that is not wrapped in a document client', async () => {
    const { client, bodies } = capturingClient()
    await expect(new Wire(client).update(update)).rejects.toThrow('captured')
    expect(JSON.parse(bodies[0] as string).Key).toEqual({ pk: { S: 'I#1' }, sk: { S: '#' } })
  })
})
