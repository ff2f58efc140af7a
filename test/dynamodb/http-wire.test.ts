import { createHash, createHmac } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  type AttributeValue,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb'
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { classifyDynamoDbError } from '../../src/adapters/aws-errors.js'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { HttpWire } from '../../src/adapters/dynamodb/http-wire.js'
import { Wire } from '../../src/adapters/dynamodb/wire.js'
import { localDynamoDbClientConfig } from '../../src/local/dynamodb-local.js'
import { dynamoEndpoint } from '../support/dynamodb.js'
import { answer, type Exchange, interceptRequests, refusal } from '../support/exchanges.js'
import { createTestTable, type TestTable } from '../support/harness.js'
import { anInstance } from '../support/records.js'

// DynamoDB Local keeps tables apart by access key: the local one, with a session token as a Lambda's credentials have.
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local', sessionToken: 'tickflow-session' }

let table: TestTable
const clients: DynamoDBClient[] = []
const aClient = (config: Partial<DynamoDBClientConfig> = {}) => {
  const client = new DynamoDBClient({ ...localDynamoDbClientConfig(dynamoEndpoint()), ...config })
  clients.push(client)
  return client
}

beforeAll(async () => {
  table = await createTestTable('http-wire')
})
afterAll(() => {
  for (const client of clients) client.destroy()
})

/** A request as it left the client's HTTP handler. */
type Sent = Exchange['request']

/** Captures what a client sends (and lets it through). */
const capturing = (client: DynamoDBClient): Sent[] => {
  const sent: Sent[] = []
  interceptRequests(client, (exchange, send) => {
    sent.push(exchange.request)
    return send()
  })
  return sent
}

/** Sends `input` straight through a wire of `client`, as the store does. */
const direct = async (client: DynamoDBClient, operation: 'UpdateItem' | 'PutItem', input: object) => {
  const wire = new HttpWire(client)
  const how = await wire.usable()
  if (!how) throw new Error('the client must send direct')
  return wire.send(how, operation, input)
}

/** What an error shows a caller: its class, name, message, fault, status and modelled fields. */
const shown = (error: unknown) => {
  const e = error as Error & { $fault?: string; $metadata?: { httpStatusCode?: number }; Item?: unknown }
  return {
    class: e.constructor.name,
    name: e.name,
    message: e.message,
    fault: e.$fault,
    status: e.$metadata?.httpStatusCode,
    item: e.Item,
  }
}
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a refusal')
    },
    (error: unknown) => error,
  )

const key = (id: string): Record<string, AttributeValue> => ({ pk: { S: `W#${id}` }, sk: { S: '#' } })

/**
 * Signature Version 4 computed from the request as sent, independently of the SDK's signer: what DynamoDB checks.
 * Answers whether the signature in its Authorization header is the one its method, path, signed headers and body
 * give with `secret`.
 */
const signatureHolds = (sent: Sent, secret: string): boolean => {
  const authorization = sent.headers.authorization ?? ''
  const match =
    /Credential=[^/]+\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=(\w+)/.exec(
      authorization,
    )
  if (!match) return false
  const [, day, region, service, signedHeaders, signature] = match as unknown as string[]
  const names = (signedHeaders as string).split(';')
  const header = (name: string) => Object.entries(sent.headers).find(([n]) => n.toLowerCase() === name)?.[1] ?? ''
  const bodyHash = createHash('sha256').update(sent.body).digest('hex')
  const canonical = [
    sent.method,
    sent.path,
    '',
    ...names.map((name) => `${name}:${header(name).trim()}`),
    '',
    names.join(';'),
    bodyHash,
  ].join('\n')
  const amzDate = header('x-amz-date')
  const scope = `${day}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n')
  const hmac = (k: Buffer | string, data: string) => createHmac('sha256', k).update(data).digest()
  const signing = hmac(
    hmac(hmac(hmac(`AWS4${secret}`, day as string), region as string), service as string),
    'aws4_request',
  )
  return createHmac('sha256', signing).update(toSign).digest('hex') === signature
}

describe('the direct wire (HttpWire)', () => {
  it('sends direct from a client as the SDK made it, and through the SDK from one with middleware of its own', async () => {
    const plain = aClient()
    expect(await new HttpWire(plain).usable()).toBeDefined()

    const withMiddleware = aClient()
    const seen: string[] = []
    withMiddleware.middlewareStack.add(
      (next, context) => async (args) => {
        seen.push(String(context.commandName))
        return next(args)
      },
      { step: 'initialize', name: 'watch' },
    )
    expect(await new HttpWire(withMiddleware).usable()).toBeUndefined()
    // The store's writes then pass through the middleware.
    await new Wire(withMiddleware).put({ TableName: table.tableName, Item: { pk: 'W#mw', sk: '#', v: 1 } })
    expect(seen).toEqual(['PutItemCommand'])

    // An adaptive retry strategy is the SDK's to run.
    expect(await new HttpWire(aClient({ retryMode: 'adaptive' })).usable()).toBeUndefined()
  })

  it("sends where the SDK sends: its endpoint, one configured for the service, or the region's", async () => {
    const local = new URL(dynamoEndpoint())
    expect((await new HttpWire(aClient()).usable())?.endpoint.host).toBe(local.host)
    const saved = process.env.AWS_ENDPOINT_URL_DYNAMODB
    process.env.AWS_ENDPOINT_URL_DYNAMODB = dynamoEndpoint()
    try {
      const { endpoint: _endpoint, ...noEndpoint } = localDynamoDbClientConfig(dynamoEndpoint())
      const configured = new DynamoDBClient(noEndpoint)
      clients.push(configured)
      expect((await new HttpWire(configured).usable())?.endpoint.host).toBe(local.host)
      await direct(configured, 'PutItem', { TableName: table.tableName, Item: key('configured') })
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB
      else process.env.AWS_ENDPOINT_URL_DYNAMODB = saved
    }
    const regional = new DynamoDBClient({ region: 'eu-west-1', credentials: CREDENTIALS })
    clients.push(regional)
    expect((await new HttpWire(regional).usable())?.endpoint).toMatchObject({
      protocol: 'https:',
      host: 'dynamodb.eu-west-1.amazonaws.com',
      path: '/',
    })
    const fips = new DynamoDBClient({ region: 'us-east-1', useFipsEndpoint: true, credentials: CREDENTIALS })
    clients.push(fips)
    expect((await new HttpWire(fips).usable())?.endpoint.host).toBe('dynamodb-fips.us-east-1.amazonaws.com')
  })

  it('asks again after a configuration it could not resolve, instead of keeping the failure', async () => {
    const client = aClient()
    const config = client.config as unknown as { region: () => Promise<string> }
    const region = config.region
    let fails = 1
    config.region = async () => {
      if (fails-- > 0) throw new Error('Region is missing')
      return region()
    }
    const wire = new HttpWire(client)
    await expect(wire.usable()).rejects.toThrow('Region is missing')
    expect((await wire.usable())?.endpoint.host).toBe(new URL(dynamoEndpoint()).host)
  })

  it("the store's writes go direct: no SDK invocation header on its requests", async () => {
    const client = aClient()
    const sent = capturing(client)
    const store = new DynamoDbStore({ tableName: table.tableName, client })
    await store.createInstance(anInstance('wire-direct'))
    const put = sent.find((request) => request.headers['x-amz-target'] === 'DynamoDB_20120810.PutItem')
    expect(put).toBeDefined()
    expect(Object.keys(put?.headers ?? {})).not.toContain('amz-sdk-invocation-id')

    // The SDK's own requests carry it: the header tells the two ways apart.
    const sdk = aClient()
    const viaSdk = capturing(sdk)
    sdk.middlewareStack.add((next) => (args) => next(args), { step: 'initialize', name: 'own' })
    await new DynamoDbStore({ tableName: table.tableName, client: sdk }).createInstance(anInstance('wire-sdk'))
    expect(Object.keys(viaSdk[0]?.headers ?? {})).toContain('amz-sdk-invocation-id')

    // directWrites: false sends through the SDK from a plain client too.
    const told = aClient()
    const viaTold = capturing(told)
    await new DynamoDbStore({ tableName: table.tableName, client: told, directWrites: false }).createInstance(
      anInstance('wire-told'),
    )
    expect(Object.keys(viaTold[0]?.headers ?? {})).toContain('amz-sdk-invocation-id')
  })

  it('sends the body the SDK sends, signed as DynamoDB checks it, with the session token', async () => {
    const config = { credentials: CREDENTIALS }
    const sdk = aClient(config)
    const wired = aClient(config)
    const viaSdk = capturing(sdk)
    const viaWire = capturing(wired)
    const input: UpdateItemCommandInput = {
      TableName: table.tableName,
      Key: key('signed'),
      UpdateExpression: 'SET v = :v, n.#a = :m',
      ExpressionAttributeNames: { '#a': 'a' },
      ExpressionAttributeValues: { ':v': { N: '1' }, ':m': { M: { s: { S: 'ü ✓' }, l: { L: [{ BOOL: true }] } } } },
      ConditionExpression: 'attribute_not_exists(pk) OR attribute_exists(pk)',
    }
    await sdk.send(new PutItemCommand({ TableName: table.tableName, Item: { ...key('signed'), n: { M: {} } } }))
    await sdk.send(new UpdateItemCommand(input))
    await direct(wired, 'UpdateItem', input)
    const fromSdk = viaSdk.at(-1) as Sent
    const fromWire = viaWire.at(-1) as Sent

    expect(JSON.parse(fromWire.body)).toEqual(JSON.parse(fromSdk.body))
    for (const name of ['host', 'content-type', 'x-amz-target', 'x-amz-security-token']) {
      expect(fromWire.headers[name], name).toBe(fromSdk.headers[name])
    }
    expect(fromWire.path).toBe(fromSdk.path)
    expect(fromWire.headers['content-length']).toBe(String(Buffer.byteLength(fromWire.body)))
    const scope = (sent: Sent) => /Credential=([^,]+)/.exec(sent.headers.authorization ?? '')?.[1]
    expect(scope(fromWire)).toBe(scope(fromSdk))
    expect(fromWire.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-security-token/)
    // The independent check holds for both, and fails for a wrong secret or a changed body.
    expect(signatureHolds(fromSdk, CREDENTIALS.secretAccessKey)).toBe(true)
    expect(signatureHolds(fromWire, CREDENTIALS.secretAccessKey)).toBe(true)
    expect(signatureHolds(fromWire, 'another-secret')).toBe(false)
    expect(signatureHolds({ ...fromWire, body: `${fromWire.body} ` }, CREDENTIALS.secretAccessKey)).toBe(false)
  })

  it('answers what the SDK answers', async () => {
    const sdk = aClient()
    const wired = aClient()
    const strip = ({ $metadata: _m, ...rest }: Record<string, unknown>) => rest
    const asRecord = (output: object) => output as Record<string, unknown>
    // A put over an item, through each: the same old item back (but for its key).
    for (const id of ['put-sdk', 'put-wire']) {
      await sdk.send(new PutItemCommand({ TableName: table.tableName, Item: { ...key(id), v: { N: '0' } } }))
    }
    const item = { v: { N: '1' }, s: { SS: ['a', 'b'] }, m: { M: { x: { NULL: true } } } }
    const put = (id: string) => ({
      TableName: table.tableName,
      Item: { ...key(id), ...item },
      ReturnValues: 'ALL_OLD' as const,
    })
    const putViaSdk = strip(asRecord(await sdk.send(new PutItemCommand(put('put-sdk')))))
    const putViaWire = strip(await direct(wired, 'PutItem', put('put-wire')))
    expect(putViaWire).toEqual({ Attributes: { ...key('put-wire'), v: { N: '0' } } })
    expect(putViaSdk).toEqual({ Attributes: { ...key('put-sdk'), v: { N: '0' } } })
    // Two items alike but for their key, one changed through the SDK, the other direct: the answers match.
    const withoutKey = (answer: Record<string, unknown>) => {
      const attributes = answer.Attributes as Record<string, unknown> | undefined
      if (!attributes) return answer
      const { pk: _pk, ...rest } = attributes
      return { ...answer, Attributes: rest }
    }
    for (const returnValues of ['ALL_NEW', 'UPDATED_NEW', 'ALL_OLD', 'UPDATED_OLD', 'NONE'] as const) {
      const update = (id: string) => ({
        TableName: table.tableName,
        Key: key(id),
        UpdateExpression: 'SET v = :v ADD c :one',
        ExpressionAttributeValues: { ':v': { S: 'changed' }, ':one': { N: '1' } },
        ReturnValues: returnValues,
      })
      for (const id of [`sdk-${returnValues}`, `wire-${returnValues}`]) {
        await sdk.send(new PutItemCommand({ TableName: table.tableName, Item: { ...key(id), v: { S: 'was' } } }))
      }
      const viaSdk = withoutKey(strip(asRecord(await sdk.send(new UpdateItemCommand(update(`sdk-${returnValues}`))))))
      const viaWire = withoutKey(strip(await direct(wired, 'UpdateItem', update(`wire-${returnValues}`))))
      expect(viaWire, returnValues).toEqual(viaSdk)
      if (returnValues !== 'NONE') expect(viaWire.Attributes, returnValues).toBeDefined()
    }
    const metadata = (
      await direct(wired, 'UpdateItem', {
        TableName: table.tableName,
        Key: key('meta'),
        UpdateExpression: 'SET v = :v',
        ExpressionAttributeValues: { ':v': { N: '1' } },
      })
    ).$metadata as Record<string, unknown>
    expect(metadata).toMatchObject({ httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 })
    expect(typeof metadata.requestId).toBe('string')
  })

  it('refuses as the SDK refuses: the same class, name, message, fault, status and modelled fields', async () => {
    const sdk = aClient()
    const wired = aClient()
    await sdk.send(new PutItemCommand({ TableName: table.tableName, Item: { ...key('refused'), v: { N: '1' } } }))
    const cases: Record<string, { operation: 'UpdateItem' | 'PutItem'; input: Record<string, unknown> }> = {
      'a failed condition, with the item': {
        operation: 'UpdateItem',
        input: {
          TableName: table.tableName,
          Key: key('refused'),
          UpdateExpression: 'SET v = :v',
          ConditionExpression: 'v = :other',
          ExpressionAttributeValues: { ':v': { N: '2' }, ':other': { N: '9' } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      'a value the expression names but the request lacks': {
        operation: 'UpdateItem',
        input: { TableName: table.tableName, Key: key('refused'), UpdateExpression: 'SET v = :v' },
      },
      'a table that does not exist': {
        operation: 'PutItem',
        input: { TableName: `${table.tableName}-missing`, Item: key('refused') },
      },
      'an item over 400 KB': {
        operation: 'PutItem',
        input: { TableName: table.tableName, Item: { ...key('big'), pad: { S: 'x'.repeat(410 * 1024) } } },
      },
    }
    for (const [what, { operation, input }] of Object.entries(cases)) {
      const fromSdk = shown(
        await failure(
          operation === 'PutItem'
            ? sdk.send(new PutItemCommand(input as never))
            : sdk.send(new UpdateItemCommand(input as never)),
        ),
      )
      const fromWire = shown(await failure(direct(wired, operation, input)))
      expect(fromWire, what).toEqual(fromSdk)
      expect(fromWire.status, what).toBe(400)
    }
    const condition = shown(
      await failure(direct(wired, 'UpdateItem', cases['a failed condition, with the item']?.input ?? {})),
    )
    expect(condition).toMatchObject({
      class: 'ConditionalCheckFailedException',
      item: { ...key('refused'), v: { N: '1' } },
    })
  })

  it("retries what the SDK retries, with the client's own strategy and attempts", async () => {
    const client = aClient({ maxAttempts: 3 })
    const answers: string[] = []
    let refuseNext: Array<() => ReturnType<typeof refusal>> = []
    interceptRequests(client, async (exchange, send) => {
      const refuse = refuseNext.shift()
      answers.push(refuse ? 'refused' : exchange.commandName)
      if (refuse) return refuse()
      return send()
    })
    const update = (v: string) => ({
      TableName: table.tableName,
      Key: key('retried'),
      UpdateExpression: 'SET v = :v',
      ExpressionAttributeValues: { ':v': { S: v } },
    })

    // Throttled, then a 500: the third attempt lands.
    refuseNext = [
      () => refusal(400, 'ProvisionedThroughputExceededException', 'slow down'),
      () => refusal(500, 'InternalServerError', 'oops'),
    ]
    const landed = await direct(client, 'UpdateItem', update('a'))
    expect((landed.$metadata as { attempts: number }).attempts).toBe(3)
    // The strategy's waits are counted, as the SDK counts them.
    expect((landed.$metadata as { totalRetryDelay: number }).totalRetryDelay).toBeGreaterThan(0)
    expect(answers).toEqual(['refused', 'refused', 'UpdateItemCommand'])

    // Three refusals: the client's three attempts are spent, and the last refusal is thrown, counted.
    answers.length = 0
    refuseNext = Array.from({ length: 3 }, () => () => refusal(400, 'ThrottlingException', 'slow down'))
    const spent = (await failure(direct(client, 'UpdateItem', update('b')))) as Error & {
      $metadata: { attempts: number }
    }
    expect(spent.name).toBe('ThrottlingException')
    expect(spent.$metadata.attempts).toBe(3)
    expect(answers).toHaveLength(3)

    // A refusal of the request itself is not sent again.
    answers.length = 0
    refuseNext = [() => refusal(400, 'ValidationException', 'bad request')]
    const refused = (await failure(direct(client, 'UpdateItem', update('c')))) as Error & {
      $metadata: { attempts: number }
    }
    expect(refused.name).toBe('ValidationException')
    expect(refused.$metadata.attempts).toBe(1)
    expect(answers).toEqual(['refused'])

    // A connection reset is sent again; an error of any other kind is not.
    answers.length = 0
    refuseNext = [
      () => {
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
      },
    ]
    await direct(client, 'UpdateItem', update('d'))
    expect(answers).toEqual(['refused', 'UpdateItemCommand'])
    answers.length = 0
    refuseNext = [
      () => {
        throw new Error('the runner is gone')
      },
    ]
    await expect(direct(client, 'UpdateItem', update('e'))).rejects.toThrow('the runner is gone')
    expect(answers).toEqual(['refused'])
  })

  it('corrects a skewed clock as the SDK does, from the refusal, and sends the write again', async () => {
    // A server ten minutes ahead: a request signed more than five minutes away from its time is refused.
    const skew = 10 * 60_000
    const serve = (client: DynamoDBClient, log: string[]) =>
      interceptRequests(client, async (exchange, send) => {
        const serverTime = Date.now() + skew
        const date = new Date(serverTime).toUTCString()
        const stamp = exchange.request.headers['x-amz-date'] ?? ''
        const signedAt = Date.parse(
          `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}Z`,
        )
        if (Math.abs(serverTime - signedAt) > 5 * 60_000) {
          log.push('refused')
          return refusal(400, 'InvalidSignatureException', `Signature expired: ${stamp} is now earlier than ...`, {
            date,
          })
        }
        log.push('sent')
        const answered = await send()
        answered.response.headers.date = date
        return answered
      })
    const update = (id: string) => ({
      TableName: table.tableName,
      Key: key(id),
      UpdateExpression: 'SET v = :v',
      ExpressionAttributeValues: { ':v': { N: '1' } },
    })
    const sdk = aClient()
    const wired = aClient()
    const viaSdk: string[] = []
    const viaWire: string[] = []
    serve(sdk, viaSdk)
    serve(wired, viaWire)
    const fromSdk = await sdk.send(new UpdateItemCommand(update('skew-sdk')))
    const fromWire = await direct(wired, 'UpdateItem', update('skew-wire'))
    expect(fromSdk.$metadata.attempts).toBe(2)
    expect((fromWire.$metadata as { attempts: number }).attempts).toBe(2)
    expect(viaWire).toEqual(viaSdk)
    expect(viaWire).toEqual(['refused', 'sent'])
    const offset = (client: DynamoDBClient) =>
      (client.config as unknown as { systemClockOffset: number }).systemClockOffset
    expect(Math.abs(offset(wired) - skew)).toBeLessThan(5_000)
    // The next write is signed with the corrected clock at once.
    await direct(wired, 'UpdateItem', update('skew-wire'))
    expect(viaWire).toEqual(['refused', 'sent', 'sent'])
  })

  it('signs for the region and service the endpoint names, as the SDK does', async () => {
    // `region: 'local'` without an endpoint: the SDK's rules send to localhost:8000 and sign as us-east-1.
    const scopes: string[] = []
    const answering = (client: DynamoDBClient) =>
      interceptRequests(client, async ({ request }) => {
        scopes.push(/Credential=[^/]+\/\d{8}\/([^,]+)/.exec(request.headers.authorization ?? '')?.[1] ?? '')
        return answer(200, '{}')
      })
    const local = { region: 'local', credentials: CREDENTIALS }
    const sdk = new DynamoDBClient(local)
    const wired = new DynamoDBClient(local)
    clients.push(sdk, wired)
    answering(sdk)
    answering(wired)
    const put = { TableName: table.tableName, Item: key('local-region') }
    await sdk.send(new PutItemCommand(put))
    await direct(wired, 'PutItem', put)
    expect(scopes).toEqual(['us-east-1/dynamodb/aws4_request', 'us-east-1/dynamodb/aws4_request'])
    expect((await new HttpWire(wired).usable())?.endpoint.host).toBe('localhost:8000')
  })

  it('posts to the path the SDK posts to when the endpoint has one', async () => {
    const endpoint = `${dynamoEndpoint()}/ddb`
    const paths: string[] = []
    const pathOf = (client: DynamoDBClient) =>
      interceptRequests(client, async ({ request }) => {
        paths.push(request.path)
        return answer(200, '{}')
      })
    const sdk = aClient({ endpoint })
    const wired = aClient({ endpoint })
    pathOf(sdk)
    pathOf(wired)
    await sdk.send(new PutItemCommand({ TableName: table.tableName, Item: key('path') }))
    await direct(wired, 'PutItem', { TableName: table.tableName, Item: key('path') })
    expect(paths).toEqual(['/ddb/', '/ddb/'])
  })

  it("reads an error's type where the SDK reads it: the body's type or code, else the header", async () => {
    const answers: Array<() => ReturnType<typeof answer>> = []
    const serving = (client: DynamoDBClient) =>
      interceptRequests(client, async (_exchange, send) => (answers.shift() ?? send)())
    const sdk = aClient({ maxAttempts: 1 })
    const wired = aClient({ maxAttempts: 1 })
    serving(sdk)
    serving(wired)
    const put = { TableName: table.tableName, Item: key('error-types') }
    const cases = {
      'the type in the header only, with a suffix': () =>
        answer(400, '', { 'x-amzn-errortype': 'ThrottlingException:http://internal.amazon.com/coral/' }),
      'a type with a suffix': () =>
        answer(
          400,
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#UnrecognizedClientException:http://x',
            message: 'who',
          }),
        ),
      'a capitalised code': () => answer(400, JSON.stringify({ Code: 'AccessDeniedException', Message: 'no' })),
      'an empty 500': () => answer(500, ''),
    }
    for (const [what, respond] of Object.entries(cases)) {
      answers.push(respond)
      const fromSdk = shown(await failure(sdk.send(new PutItemCommand(put))))
      answers.push(respond)
      const fromWire = shown(await failure(direct(wired, 'PutItem', put)))
      expect(
        { name: fromWire.name, message: fromWire.message, status: fromWire.status, fault: fromWire.fault },
        what,
      ).toEqual({
        name: fromSdk.name,
        message: fromSdk.message,
        status: fromSdk.status,
        fault: fromSdk.fault,
      })
    }
    // Named in the header only, a throttling is retried and lands.
    const retrying = aClient({ maxAttempts: 2 })
    serving(retrying)
    answers.push(cases['the type in the header only, with a suffix'])
    const landed = await direct(retrying, 'PutItem', put)
    expect((landed.$metadata as { attempts: number }).attempts).toBe(2)
  })

  it("leaves binary values and a logger of the caller's own to the SDK", async () => {
    const client = aClient()
    const sent = capturing(client)
    await new Wire(client).put({
      TableName: table.tableName,
      Item: { pk: 'W#binary', sk: '#', bin: Buffer.from([1, 2, 3]) },
    })
    expect(Object.keys(sent.at(-1)?.headers ?? {})).toContain('amz-sdk-invocation-id')
    const stored = await client.send(
      new GetItemCommand({
        TableName: table.tableName,
        Key: { pk: { S: 'W#binary' }, sk: { S: '#' } },
        ConsistentRead: true,
      }),
    )
    expect([...(stored.Item?.bin?.B ?? [])]).toEqual([1, 2, 3])
    const logged = aClient({ logger: { debug() {}, info() {}, warn() {}, error() {} } })
    expect(await new HttpWire(logged).usable()).toBeUndefined()
  })

  it("reads what the document client reads: an item, a query's pages, a batch", async () => {
    const client = aClient()
    const sent = capturing(client)
    const doc = DynamoDBDocumentClient.from(aClient(), { marshallOptions: { removeUndefinedValues: true } })
    const wire = new Wire(client)
    const pk = 'W#reads'
    for (let i = 0; i < 5; i++) {
      await wire.put({
        TableName: table.tableName,
        Item: { pk, sk: `s${i}`, n: i, m: { list: [1, 'two', { three: true }], empty: '' }, set: new Set(['a', 'b']) },
      })
    }
    const get = { TableName: table.tableName, Key: { pk, sk: 's1' }, ConsistentRead: true }
    expect(await wire.get(get)).toEqual({ Item: (await doc.send(new GetCommand(get))).Item })
    expect(await wire.get({ ...get, Key: { pk, sk: 'missing' } })).toEqual({})
    const projected = { ...get, ProjectionExpression: 'm.#l', ExpressionAttributeNames: { '#l': 'list' } }
    expect((await wire.get(projected)).Item).toEqual((await doc.send(new GetCommand(projected))).Item)

    // Page by page, two items a page, from where the last page stopped.
    const query = (start?: Record<string, unknown>) => ({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk AND sk >= :from',
      ExpressionAttributeValues: { ':pk': pk, ':from': 's1' },
      Limit: 2,
      ConsistentRead: true,
      ...(start ? { ExclusiveStartKey: start } : {}),
    })
    let viaWire: Record<string, unknown> | undefined
    let viaDoc: Record<string, unknown> | undefined
    const pages: number[] = []
    do {
      const fromWire = await wire.query(query(viaWire))
      const fromDoc = await doc.send(new QueryCommand(query(viaDoc)))
      expect(fromWire.Items).toEqual(fromDoc.Items)
      expect(fromWire.LastEvaluatedKey).toEqual(fromDoc.LastEvaluatedKey)
      expect(fromWire.Count).toBe(fromDoc.Count)
      pages.push(fromWire.Items?.length ?? 0)
      viaWire = fromWire.LastEvaluatedKey
      viaDoc = fromDoc.LastEvaluatedKey
    } while (viaWire)
    expect(pages.reduce((a, b) => a + b, 0)).toBe(4)

    const keys = [0, 2, 4, 9].map((i) => ({ pk, sk: `s${i}` }))
    const batch = { RequestItems: { [table.tableName]: { Keys: keys, ConsistentRead: true } } }
    const fromWire = await wire.batchGet(batch)
    const fromDoc = await doc.send(new BatchGetCommand(batch))
    const bySk = (items: Record<string, unknown>[] | undefined) =>
      [...(items ?? [])].sort((a, b) => String(a.sk).localeCompare(String(b.sk)))
    expect(bySk(fromWire.Responses?.[table.tableName])).toEqual(bySk(fromDoc.Responses?.[table.tableName]))
    expect(fromWire.Responses?.[table.tableName]).toHaveLength(3)
    expect(fromWire.UnprocessedKeys?.[table.tableName]?.Keys ?? []).toEqual([])

    // All of it went direct.
    const targets = sent.map((request) => request.headers['x-amz-target'])
    expect(targets).toEqual(
      expect.arrayContaining([
        'DynamoDB_20120810.GetItem',
        'DynamoDB_20120810.Query',
        'DynamoDB_20120810.BatchGetItem',
      ]),
    )
    expect(sent.filter((request) => request.headers['amz-sdk-invocation-id'] !== undefined)).toEqual([])
  })
})

describe('the direct wire, to answers a proxy or a broken connection gives', () => {
  const put = () => ({ TableName: table.tableName, Item: key('odd-answers') })

  /** A client that answers its requests with `answers` first (each once, in order), then with DynamoDB's. */
  const served = (answers: Array<() => ReturnType<typeof answer>>, config: Partial<DynamoDBClientConfig> = {}) => {
    const client = aClient(config)
    const sentAt: number[] = []
    interceptRequests(client, async (_exchange, send) => {
      sentAt.push(Date.now())
      return (answers.shift() ?? send)()
    })
    return { client, sentAt }
  }

  it("waits as long as the answer's retry-after hint asks before sending again, as the SDK does", async () => {
    const hints: Record<string, Record<string, string>> = {
      'retry-after, in seconds': { 'retry-after': '1' },
      'x-amz-retry-after, in milliseconds': { 'x-amz-retry-after': '600' },
    }
    for (const [what, headers] of Object.entries(hints)) {
      const hint = headers['retry-after'] ? 1000 : 600
      const unavailable = () => answer(503, '', headers)
      const sdk = served([unavailable])
      const wired = served([unavailable])
      // Both ways at once: the test waits the hint once.
      const [fromSdk, fromWire] = await Promise.all([
        sdk.client.send(new PutItemCommand(put())),
        direct(wired.client, 'PutItem', put()),
      ])
      const waited = (sentAt: number[]) => (sentAt[1] ?? 0) - (sentAt[0] ?? 0)
      expect(fromSdk.$metadata.attempts, what).toBe(2)
      expect((fromWire.$metadata as { attempts: number }).attempts, what).toBe(2)
      // A timer may fire a millisecond before its time is counted.
      expect(waited(sdk.sentAt), what).toBeGreaterThanOrEqual(hint - 10)
      expect(waited(wired.sentAt), what).toBeGreaterThanOrEqual(hint - 10)
      // The strategy counts the delay left until the hint's time when it decides, which a loaded machine makes some
      // milliseconds after the answer (the SDK's count shrinks the same way): the waits above are what the hint asks.
      const counted = (fromWire.$metadata as { totalRetryDelay: number }).totalRetryDelay
      expect(counted, what).toBeGreaterThan(hint / 2)
      expect(counted, what).toBeLessThanOrEqual(hint)
    }
  })

  /** An error as the store sees it: what it shows, its request id and attempts, and how the store classifies it. */
  const judged = (error: unknown) => {
    const e = error as { $metadata?: { requestId?: string; attempts?: number } }
    const stored = classifyDynamoDbError(error, { operation: 'PutItem', resource: table.tableName })
    return {
      ...shown(error),
      requestId: e.$metadata?.requestId,
      attempts: e.$metadata?.attempts,
      retryable: stored.retryable,
      code: (stored as { code?: string }).code,
    }
  }

  /** A 200 whose connection is reset halfway through its body. */
  const resetMidBody = () => ({
    response: {
      statusCode: 200,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'injected' },
      body: new Readable({
        read() {
          this.push(Buffer.from('{"Attri'))
          this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))
        },
      }),
    },
  })

  it('throws a 2xx it cannot read as the SDK throws it: with the status and request id, not as unanswered', async () => {
    const cases: Record<string, Array<() => ReturnType<typeof answer>>> = {
      'an HTML page': [
        () => answer(200, '<html><body>Welcome to the portal</body></html>', { 'content-type': 'text/html' }),
      ],
      'a truncated body': [() => answer(200, '{"Attributes":{"pk":')],
      // A reset is sent again (three attempts), and the last is thrown.
      'a connection reset mid-body': [resetMidBody, resetMidBody, resetMidBody] as never,
    }
    for (const [what, answers] of Object.entries(cases)) {
      const sdk = served([...answers], { maxAttempts: 3 })
      const wired = served([...answers], { maxAttempts: 3 })
      const fromSdk = judged(await failure(sdk.client.send(new PutItemCommand(put()))))
      const fromWire = judged(await failure(direct(wired.client, 'PutItem', put())))
      expect(fromWire, what).toEqual(fromSdk)
      expect(fromWire, what).toMatchObject({
        status: 200,
        requestId: 'injected',
        retryable: false,
        code: 'STORE_ERROR',
      })
    }
  })

  it('answers a 2xx whose JSON is not an object as the SDK does: no output fields', async () => {
    const strip = ({ $metadata: _m, ...rest }: Record<string, unknown>) => rest
    for (const body of ['null', '123', 'true', '[1,2]']) {
      const sdk = served([() => answer(200, body)])
      const wired = served([() => answer(200, body)])
      const fromSdk = strip((await sdk.client.send(new PutItemCommand(put()))) as unknown as Record<string, unknown>)
      const fromWire = await direct(wired.client, 'PutItem', put())
      expect(strip(fromWire), body).toEqual(fromSdk)
      expect(strip(fromWire), body).toEqual({})
      expect(fromWire.$metadata, body).toMatchObject({ httpStatusCode: 200, attempts: 1 })
    }
  })

  it("throws a refusal whose body is not JSON as the SDK throws it: the body's fault, whatever the header names", async () => {
    const html = '<html><body><h1>502 Bad Gateway</h1></body></html>'
    const cases: Record<string, () => ReturnType<typeof answer>> = {
      "a proxy's HTML 502": () => answer(502, html, { 'content-type': 'text/html' }),
      'a text 413': () => answer(413, 'Request Entity Too Large', { 'content-type': 'text/plain' }),
      // The header names an error the SDK would retry, but the body cannot be read: sent once.
      'a throttling named in the header over HTML': () =>
        answer(400, html, { 'content-type': 'text/html', 'x-amzn-errortype': 'ThrottlingException' }),
      // Not a failed condition: the store acts on those, and this answer does not say it.
      'a failed condition named in the header over HTML': () =>
        answer(400, html, { 'content-type': 'text/html', 'x-amzn-errortype': 'ConditionalCheckFailedException' }),
      'a body of null': () => answer(400, 'null'),
      'a body of a number': () => answer(400, '123'),
    }
    for (const [what, respond] of Object.entries(cases)) {
      const sdk = served([respond, respond, respond], { maxAttempts: 3 })
      const wired = served([respond, respond, respond], { maxAttempts: 3 })
      const fromSdk = judged(await failure(sdk.client.send(new PutItemCommand(put()))))
      const fromWire = judged(await failure(direct(wired.client, 'PutItem', put())))
      expect(fromWire, what).toEqual(fromSdk)
      expect(wired.sentAt.length, what).toBe(sdk.sentAt.length)
      if (what.includes('null') || what.includes('number')) expect(fromWire.name, what).toBe('Unknown')
      else expect(fromWire.class, what).toBe('SyntaxError')
    }
  })

  it('throws what an HTTP handler rejects with as an Error, as the SDK does, its message and code kept', async () => {
    const cases: Record<string, unknown> = {
      'a string': 'the pool is closed',
      'a plain object with a code and a message': { code: 'ECONNRESET', message: 'socket hang up' },
      'a plain object with a code only': { code: 'ECONNRESET' },
    }
    for (const [what, thrown] of Object.entries(cases)) {
      const reject = (() => Promise.reject(thrown)) as unknown as () => ReturnType<typeof answer>
      const sdk = served([reject, reject, reject], { maxAttempts: 3 })
      const wired = served([reject, reject, reject], { maxAttempts: 3 })
      const sdkError = await failure(sdk.client.send(new PutItemCommand(put())))
      const wireError = await failure(direct(wired.client, 'PutItem', put()))
      expect(wireError, what).toBeInstanceOf(Error)
      expect(judged(wireError), what).toEqual(judged(sdkError))
      expect((wireError as { code?: string }).code, what).toBe((sdkError as { code?: string }).code)
      // A reset is sent again; the store takes the last for a request that got no answer.
      expect(wired.sentAt.length, what).toBe(sdk.sentAt.length)
      expect(judged(wireError), what).toMatchObject({ retryable: true, code: 'STORE_UNAVAILABLE' })
    }
  })
})
