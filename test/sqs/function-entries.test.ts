import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'
import type { APIGatewayProxyStructuredResultV2, SQSEvent } from 'aws-lambda'
import { type FauxqsServer, startFauxqs } from 'fauxqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { dynamoEndpoint } from '../support/dynamodb.js'
import { createTestTable } from '../support/harness.js'

/**
 * The Lambda entry points as deployed: each builds its runtime from the environment at cold start, against
 * DynamoDB Local and an SQS emulator, and the instance moves from the API through the events queue and the run
 * queue to completion.
 */
let server: FauxqsServer
let sqs: SQSClient
const queues: Record<string, string> = {}

beforeAll(async () => {
  server = await startFauxqs({ port: 0, logger: false })
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' }
  sqs = new SQSClient({ endpoint: server.address, region: 'us-east-1', credentials })
  for (const name of ['run', 'run-dlq', 'events', 'events-dlq']) {
    queues[name] = (await sqs.send(new CreateQueueCommand({ QueueName: `entries-${name}` }))).QueueUrl as string
  }
  const table = await createTestTable('function-entries')
  Object.assign(process.env, {
    TABLE_NAME: table.tableName,
    DYNAMODB_ENDPOINT: dynamoEndpoint(),
    SQS_ENDPOINT: server.address,
    RUN_QUEUE_URL: queues.run,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    LOG_LEVEL: 'error',
  })
})

afterAll(async () => {
  sqs?.destroy()
  await server?.stop()
})

/** Imports an entry point with the dead-letter queue it consumes for; each module reads the environment once. */
const entry = async <T>(path: string, deadLetterQueue?: string): Promise<T> => {
  if (deadLetterQueue) process.env.DEAD_LETTER_QUEUE_URL = queues[deadLetterQueue]
  return (await import(path)) as T
}

/** What Lambda's SQS event source would deliver from a queue right now. */
const receive = async (queue: string): Promise<SQSEvent> => {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queues[queue],
      MaxNumberOfMessages: 10,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  )
  for (const message of Messages) {
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queues[queue], ReceiptHandle: message.ReceiptHandle }))
  }
  return {
    Records: Messages.map((message) => ({
      messageId: message.MessageId as string,
      receiptHandle: message.ReceiptHandle as string,
      body: message.Body as string,
      attributes: {
        ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: message.Attributes?.SentTimestamp ?? '0',
        SenderId: message.Attributes?.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? '0',
      },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody as string,
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:entries-${queue}`,
      awsRegion: 'us-east-1',
    })),
  }
}

type SqsHandler = { handler: (event: SQSEvent, context?: unknown) => Promise<{ batchItemFailures: unknown[] }> }

describe('the deployed entry points', () => {
  it('carry an approval from the API through the events and run queues to completion', async () => {
    const api = await entry<{
      handler: (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>
    }>('../../functions/api.js')
    const created = await api.handler(
      apiEvent('POST', '/workflows', { body: { workflowType: 'approval', context: { requester: 'ada' } } }),
      lambdaContext(),
    )
    const { instanceId } = JSON.parse(String(created.body))
    // The review check's 60 s wake-up went to the run queue as a delayed message.
    expect((await receive('run')).Records).toHaveLength(0)

    const events = await entry<SqsHandler>('../../functions/events.js', 'events-dlq')
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.events,
        MessageBody: JSON.stringify({ instanceId, nodeId: 'review', eventTs: 1, content: { decision: 'approved' } }),
      }),
    )
    const eventBatch = await receive('events')
    expect(eventBatch.Records).toHaveLength(1)
    expect((await events.handler(eventBatch)).batchItemFailures).toEqual([])

    // The event sent a run request with no delay; the run function completes the instance.
    const runBatch = await receive('run')
    expect(runBatch.Records).toHaveLength(1)
    const run = await entry<SqsHandler>('../../functions/run.js', 'run-dlq')
    expect((await run.handler(runBatch, lambdaContext(60_000))).batchItemFailures).toEqual([])
    const detail = await api.handler(apiEvent('GET', `/workflows/${instanceId}`), lambdaContext())
    expect(JSON.parse(String(detail.body)).status).toBe('completed')

    // A scheduled tick with nothing due sends nothing.
    const tick = await entry<{ handler: (event: unknown, context: unknown) => Promise<{ due: number }> }>(
      '../../functions/tick.js',
    )
    const scheduled = {
      version: '0',
      id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2026-11-21T20:00:00Z',
      region: 'us-east-1',
      resources: ['arn:aws:events:us-east-1:123456789012:rule/tickflow-tick'],
      detail: {},
    }
    expect(await tick.handler(scheduled, lambdaContext(60_000))).toMatchObject({ due: 0, sent: 0, complete: true })
  })
})
