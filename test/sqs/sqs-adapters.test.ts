import {
  CreateQueueCommand,
  type Message,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
  SQSClient,
} from '@aws-sdk/client-sqs'
import { mockClient } from 'aws-sdk-client-mock'
import { type FauxqsServer, startFauxqs } from 'fauxqs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { md5OfMessageAttributes } from '../../src/adapters/memory/local-queue.js'
import { runMessageBody } from '../../src/adapters/run-requests.js'
import { SqsDeadLetters } from '../../src/adapters/sqs/sqs-dead-letters.js'
import { SqsRunQueue } from '../../src/adapters/sqs/sqs-run-queue.js'
import type { RunRequest } from '../../src/core/dispatch-ports.js'
import { StoreError } from '../../src/core/errors.js'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' }

const requests = (count: number, prefix = 'wf'): RunRequest[] =>
  Array.from({ length: count }, (_, i) => ({ instanceId: `${prefix}-${i}`, dueAtMs: T0 + i }))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('SQS adapters against fauxqs', () => {
  let server: FauxqsServer
  let client: SQSClient
  let queueCount = 0

  beforeAll(async () => {
    server = await startFauxqs({ port: 0, logger: false })
    client = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials: CREDENTIALS })
  })

  afterAll(async () => {
    client?.destroy()
    await server?.stop()
  })

  /** A fresh queue per test, created through the SDK as a deployment would. */
  const createQueue = async (purpose: string): Promise<string> => {
    queueCount += 1
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: `tickflow-${purpose}-${queueCount}` }))
    return QueueUrl!
  }

  /** Receives until `expected` messages have arrived or `timeoutMs` passed; then checks that nothing more is there. */
  const receiveAll = async (queueUrl: string, expected: number, timeoutMs = 3000): Promise<Message[]> => {
    const messages: Message[] = []
    const deadline = Date.now() + timeoutMs
    while (messages.length < expected && Date.now() < deadline) {
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
      )
      messages.push(...Messages)
      if (Messages.length === 0) await sleep(50)
    }
    return messages
  }

  const receiveNow = async (queueUrl: string): Promise<Message[]> =>
    (await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }))).Messages ?? []

  describe('SqsRunQueue', () => {
    it('delivers 25 run requests as 25 messages carrying the encoded bodies', async () => {
      const queueUrl = await createQueue('runs')
      const runs = new SqsRunQueue({ client, queueUrl })

      const result = await runs.sendRuns(requests(25))

      expect(result).toEqual({ failed: [] })
      const messages = await receiveAll(queueUrl, 25)
      expect(messages.map((message) => message.Body).sort()).toEqual(requests(25).map(runMessageBody).sort())
      expect(await receiveNow(queueUrl)).toEqual([])
    })

    it('sends a request repeated within one call once', async () => {
      const queueUrl = await createQueue('dedupe')
      const runs = new SqsRunQueue({ client, queueUrl })

      await runs.sendRuns([...requests(3), ...requests(3)])

      expect(await receiveAll(queueUrl, 3)).toHaveLength(3)
      expect(await receiveNow(queueUrl)).toEqual([])
    })

    it('holds back a request with a 2 s delay until the delay has passed', async () => {
      const queueUrl = await createQueue('delayed')
      const runs = new SqsRunQueue({ client, queueUrl })
      const sentAt = Date.now()

      await runs.sendRuns([{ instanceId: 'wf-late', dueAtMs: T0, delaySeconds: 2 }])

      expect(await receiveNow(queueUrl)).toEqual([])
      const [message] = await receiveAll(queueUrl, 1, 5000)
      const waitedMs = Date.now() - sentAt
      expect(message?.Body).toBe(runMessageBody({ instanceId: 'wf-late', dueAtMs: T0 }))
      expect(waitedMs).toBeGreaterThanOrEqual(1900)
      expect(waitedMs).toBeLessThan(4500)
    })

    it('throws QUEUE_NOT_FOUND for a queue that does not exist, instead of reporting every request failed', async () => {
      const queueUrl = `${(await createQueue('exists')).replace(/\/[^/]+$/, '')}/tickflow-missing`
      const runs = new SqsRunQueue({ client, queueUrl })

      const error = await runs.sendRuns(requests(12)).catch((caught: unknown) => caught)

      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({ code: 'QUEUE_NOT_FOUND', retryable: false })
      expect((error as StoreError).cause).toMatchObject({ name: 'QueueDoesNotExist' })
    })

    it('reports every request failed, without throwing, when SQS cannot be reached', async () => {
      const unreachable = new SQSClient({
        endpoint: 'http://127.0.0.1:9',
        region: 'us-east-1',
        credentials: CREDENTIALS,
        maxAttempts: 1,
      })
      const runs = new SqsRunQueue({ client: unreachable, queueUrl: await createQueue('unreachable') })

      const result = await runs.sendRuns(requests(12))

      expect(result.failed).toEqual(requests(12))
      unreachable.destroy()
    })
  })

  describe('SqsDeadLetters', () => {
    it('puts the body unchanged on the dead-letter queue with reason, source and original message id', async () => {
      const dlqUrl = await createQueue('dlq')
      const deadLetters = new SqsDeadLetters({ client, queueUrl: dlqUrl })
      const body = runMessageBody({ instanceId: 'wf-dead', dueAtMs: T0 })

      await deadLetters.send({ body, reason: `instance gone: ${'x'.repeat(1200)}`, source: 'run', messageId: 'm-1' })

      const [message] = await receiveAll(dlqUrl, 1)
      expect(message?.Body).toBe(body)
      expect(message?.MessageAttributes).toEqual({
        reason: { DataType: 'String', StringValue: `instance gone: ${'x'.repeat(1000 - 15)}` },
        source: { DataType: 'String', StringValue: 'run' },
        originalMessageId: { DataType: 'String', StringValue: 'm-1' },
      })
    })

    it('computes md5OfMessageAttributes in LocalQueue as SQS does', async () => {
      const dlqUrl = await createQueue('md5')
      await new SqsDeadLetters({ client, queueUrl: dlqUrl }).send({ body: 'b', reason: 'why', source: 'where' })

      const [message] = await receiveAll(dlqUrl, 1)

      expect(message?.MD5OfMessageAttributes).toBe(md5OfMessageAttributes({ reason: 'why', source: 'where' }))
    })

    it('fails with a retryable QUEUE_NOT_FOUND for a missing dead-letter queue, so the message is retried', async () => {
      const queueUrl = `${(await createQueue('dlq-exists')).replace(/\/[^/]+$/, '')}/tickflow-missing-dlq`
      const deadLetters = new SqsDeadLetters({ client, queueUrl })

      const error = await deadLetters.send({ body: 'b', reason: 'r', source: 's' }).catch((caught: unknown) => caught)

      expect(error).toBeInstanceOf(StoreError)
      expect(error).toMatchObject({ code: 'QUEUE_NOT_FOUND', retryable: true })
    })
  })
})

describe('SqsRunQueue partial failures', () => {
  const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/tickflow-runs'
  const client = new SQSClient({ region: 'us-east-1', credentials: CREDENTIALS })
  const sqs = mockClient(client)
  const runs = new SqsRunQueue({ client, queueUrl: QUEUE_URL })

  afterEach(() => {
    sqs.reset()
  })

  afterAll(() => {
    sqs.restore()
    client.destroy()
  })

  const sentBatches = (): SendMessageBatchCommandInput[] =>
    sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input)

  const instanceIds = (batch: SendMessageBatchCommandInput | undefined): string[] =>
    (batch?.Entries ?? []).map((entry) => JSON.parse(entry.MessageBody ?? '').instanceId)

  /** SQS's answer when the entries with these Ids failed and the others were sent. */
  const answer = (input: SendMessageBatchCommandInput, failedIds: string[] = []): SendMessageBatchCommandOutput => ({
    $metadata: {},
    Successful: (input.Entries ?? [])
      .filter((entry) => !failedIds.includes(entry.Id!))
      .map((entry) => ({ Id: entry.Id!, MessageId: `msg-${entry.Id}`, MD5OfMessageBody: '' })),
    Failed: failedIds.map((Id) => ({ Id, SenderFault: false, Code: 'InternalError', Message: 'try again' })),
  })

  it('sends the entries SQS reports failed once more and reports nothing failed when the retry succeeds', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFakeOnce((input: SendMessageBatchCommandInput) => answer(input, ['3', '7']))
      .callsFake((input: SendMessageBatchCommandInput) => answer(input))

    const result = await runs.sendRuns(requests(10))

    expect(result).toEqual({ failed: [] })
    const batches = sentBatches()
    expect(batches).toHaveLength(2)
    expect(instanceIds(batches[1])).toEqual(['wf-3', 'wf-7'])
    expect(batches[1]?.Entries?.map((entry) => entry.MessageBody)).toEqual([
      runMessageBody({ instanceId: 'wf-3', dueAtMs: T0 + 3 }),
      runMessageBody({ instanceId: 'wf-7', dueAtMs: T0 + 7 }),
    ])
  })

  it('retries only once and returns the requests that failed twice', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      const failing = (input.Entries ?? []).filter((entry) => /"wf-[25]"/.test(entry.MessageBody ?? ''))
      return answer(
        input,
        failing.map((entry) => entry.Id!),
      )
    })

    const result = await runs.sendRuns(requests(10))

    expect(result.failed).toEqual([requests(10)[2], requests(10)[5]])
    expect(sentBatches()).toHaveLength(2)
  })

  it('marks the entries of a batch whose request threw failed, and still sends the other batches', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      if (instanceIds(input).includes('wf-12'))
        throw Object.assign(new Error('slow down'), { name: 'RequestThrottled' })
      return answer(input)
    })

    const result = await runs.sendRuns(requests(25))

    expect(result.failed).toEqual(requests(25).slice(10, 20))
    expect(sentBatches()).toHaveLength(3)
  })

  it('treats an entry SQS lists neither as sent nor as failed as failed', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({ Successful: [{ Id: '0', MessageId: 'm-0', MD5OfMessageBody: '' }], Failed: [] })
      .resolves({ Successful: [], Failed: [] })

    const result = await runs.sendRuns(requests(2))

    expect(result.failed).toEqual([requests(2)[1]])
    expect(instanceIds(sentBatches()[1])).toEqual(['wf-1'])
  })

  it('throws QUEUE_NOT_FOUND when SQS says the queue does not exist', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .rejects(new QueueDoesNotExist({ message: 'The specified queue does not exist.', $metadata: {} }))

    await expect(runs.sendRuns(requests(3))).rejects.toMatchObject({
      name: 'StoreError',
      code: 'QUEUE_NOT_FOUND',
      retryable: false,
    })
  })

  it('sends nothing for no requests', async () => {
    expect(await runs.sendRuns([])).toEqual({ failed: [] })
    expect(sentBatches()).toHaveLength(0)
  })
})
