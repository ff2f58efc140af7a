import {
  type MessageAttributeValue,
  SendMessageCommand,
  type SendMessageCommandInput,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { DeadLetterSink } from '../../core/dispatch-ports.js'
import { deadLetterAttributes } from '../dead-letter-attributes.js'
import { translateSqsError } from './sqs-run-queue.js'

export interface DeadLetter {
  body: string
  reason: string
  source: string
  messageId?: string
}

/**
 * The SendMessage input of a dead letter: the body unchanged; `reason` (cut to 1000 characters), `source` and,
 * when known, `originalMessageId` as String attributes.
 */
export const sendDeadLetterParams = (queueUrl: string, message: DeadLetter): SendMessageCommandInput => {
  const attributes: Record<string, MessageAttributeValue> = {}
  for (const [name, value] of Object.entries(deadLetterAttributes(message))) {
    if (value !== undefined) attributes[name] = { DataType: 'String', StringValue: value }
  }
  return { QueueUrl: queueUrl, MessageBody: message.body, MessageAttributes: attributes }
}

export interface SqsDeadLettersOptions {
  client: SQSClient
  queueUrl: string
}

/**
 * Dead letters on an SQS queue. Every failure is a retryable StoreError (a missing queue keeps the code
 * `QUEUE_NOT_FOUND`): the caller reports the message as a batch item failure, so SQS redelivers it and, after
 * maxReceiveCount, its own redrive policy moves it to the dead-letter queue anyway. The message is never lost.
 */
export class SqsDeadLetters implements DeadLetterSink {
  readonly queueUrl: string
  readonly #client: SQSClient

  constructor(options: SqsDeadLettersOptions) {
    this.#client = options.client
    this.queueUrl = options.queueUrl
  }

  async send(message: DeadLetter): Promise<void> {
    try {
      await this.#client.send(new SendMessageCommand(sendDeadLetterParams(this.queueUrl, message)))
    } catch (error) {
      throw translateSqsError(error, 'dead letter', this.queueUrl, { retryable: true })
    }
  }
}
