import type { SQSRecord } from 'aws-lambda'

/** One SQS record as Lambda hands it to a consumer: `body` as sent, receive count and queue as given. */
export const sqsRecord = (
  body: string,
  options: { messageId?: string; receiveCount?: number; queue?: string } = {},
): SQSRecord => ({
  messageId: options.messageId ?? 'm-1',
  receiptHandle: `rh-${options.messageId ?? 'm-1'}`,
  body,
  attributes: {
    ApproximateReceiveCount: String(options.receiveCount ?? 1),
    SentTimestamp: '0',
    SenderId: 'AIDAEXAMPLE',
    ApproximateFirstReceiveTimestamp: '0',
  },
  messageAttributes: {},
  md5OfBody: '',
  eventSource: 'aws:sqs',
  eventSourceARN: `arn:aws:sqs:eu-west-1:123456789012:${options.queue ?? 'run'}`,
  awsRegion: 'eu-west-1',
})

/** The body of a run message for a due pass over `instanceId`. */
export const runMessageBody = (instanceId: string, dueAtMs = 0): string =>
  JSON.stringify({ v: 1, kind: 'run', instanceId, dueAtMs })
