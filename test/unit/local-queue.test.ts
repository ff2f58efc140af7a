import { createHash } from 'node:crypto'
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { describe, expect, it, vi } from 'vitest'
import { LocalQueue, type LocalQueueOptions } from '../../src/adapters/memory/local-queue.js'
import { runMessageBody } from '../../src/adapters/run-requests.js'
import { ValidationError } from '../../src/core/errors.js'
import { parseRunMessage } from '../../src/schemas/queue-messages.js'

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)
const VISIBILITY_MS = 30_000

/** A queue on a fake clock that only moves when the test says so. */
const setup = (options: Partial<LocalQueueOptions> = {}) => {
  let nowMs = T0
  const now = () => nowMs
  const advance = (ms: number) => {
    nowMs += ms
  }
  const queue = new LocalQueue({ name: 'runs', visibilityTimeoutMs: VISIBILITY_MS, now, ...options })
  return { queue, now, advance }
}

/** A main queue whose messages move to `dlq` on the receive after the second. */
const withDeadLetterQueue = () => {
  let nowMs = T0
  const now = () => nowMs
  const dlq = new LocalQueue({ name: 'runs-dlq', now })
  const queue = new LocalQueue({
    name: 'runs',
    visibilityTimeoutMs: VISIBILITY_MS,
    maxReceiveCount: 2,
    deadLetter: dlq,
    now,
  })
  return {
    queue,
    dlq,
    advance: (ms: number) => {
      nowMs += ms
    },
  }
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex')

describe('LocalQueue send and receive', () => {
  it('delivers a sent message once, shaped like a Lambda SQS record', () => {
    const { queue } = setup()
    const messageId = queue.send('hello', { attributes: { origin: 'test' } })

    const records = queue.receive()

    expect(records).toEqual([
      {
        messageId,
        receiptHandle: expect.any(String),
        body: 'hello',
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: String(T0),
          SenderId: expect.any(String),
          ApproximateFirstReceiveTimestamp: String(T0),
        },
        messageAttributes: {
          origin: { stringValue: 'test', stringListValues: [], binaryListValues: [], dataType: 'String' },
        },
        md5OfBody: md5('hello'),
        md5OfMessageAttributes: expect.stringMatching(/^[0-9a-f]{32}$/),
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:local:000000000000:runs',
        awsRegion: 'local',
      },
    ])
    expect(queue.receive()).toEqual([])
  })

  it('gives each message its own id and leaves md5OfMessageAttributes out when there are no attributes', () => {
    const { queue } = setup()
    const first = queue.send('a')
    const second = queue.send('a')

    const records = queue.receive()

    expect(first).not.toBe(second)
    expect(records.map((record) => record.messageId)).toEqual([first, second])
    expect(records[0]).not.toHaveProperty('md5OfMessageAttributes')
  })

  it('returns at most `max` messages, oldest first', () => {
    const { queue } = setup()
    for (const body of ['1', '2', '3']) queue.send(body)

    expect(queue.receive(2).map((record) => record.body)).toEqual(['1', '2'])
    expect(queue.receive(2).map((record) => record.body)).toEqual(['3'])
  })

  it.each([0, 11, 1.5])('refuses to receive %s messages at once, as SQS does', (max) => {
    expect(() => setup().queue.receive(max)).toThrow(RangeError)
  })

  it.each([
    { what: 'an empty body', act: (queue: LocalQueue) => queue.send('') },
    { what: 'a delay over 900 s', act: (queue: LocalQueue) => queue.send('x', { delaySeconds: 901 }) },
    { what: 'a fractional delay', act: (queue: LocalQueue) => queue.send('x', { delaySeconds: 0.5 }) },
    { what: 'an empty attribute', act: (queue: LocalQueue) => queue.send('x', { attributes: { a: '' } }) },
  ])('rejects $what, as SQS does', ({ act }) => {
    const { queue } = setup()

    expect(() => act(queue)).toThrow(RangeError)
    expect(queue.pending()).toBe(0)
  })
})

describe('LocalQueue delays', () => {
  it('keeps a delayed message invisible until its delay has passed', () => {
    const { queue, advance } = setup()
    queue.send('later', { delaySeconds: 2 })

    expect(queue.receive()).toEqual([])
    advance(1999)
    expect(queue.receive()).toEqual([])
    advance(1)
    expect(queue.receive().map((record) => record.body)).toEqual(['later'])
  })

  it('delivers an undelayed message sent after a delayed one first', () => {
    const { queue } = setup()
    queue.send('later', { delaySeconds: 5 })
    queue.send('now')

    expect(queue.receive().map((record) => record.body)).toEqual(['now'])
    expect(queue.pending()).toBe(2)
  })
})

describe('LocalQueue visibility timeout', () => {
  it('hides a received message until the timeout, then delivers it again with a higher receive count', () => {
    const { queue, advance } = setup()
    queue.send('work')
    const [first] = queue.receive()
    advance(VISIBILITY_MS - 1)

    expect(queue.receive()).toEqual([])

    advance(1)
    const [second] = queue.receive()
    expect(second?.messageId).toBe(first?.messageId)
    expect(second?.attributes.ApproximateReceiveCount).toBe('2')
    expect(second?.attributes.ApproximateFirstReceiveTimestamp).toBe(String(T0))
    expect(second?.receiptHandle).not.toBe(first?.receiptHandle)
  })

  it('shows in flight and delayed messages in messages() with the time they become visible', () => {
    const { queue, advance } = setup()
    queue.send('a')
    queue.send('b', { delaySeconds: 10, attributes: { k: 'v' } })
    queue.receive()
    advance(1000)

    expect(queue.messages()).toEqual([
      {
        messageId: expect.any(String),
        body: 'a',
        attributes: {},
        receiveCount: 1,
        sentAtMs: T0,
        visibleAtMs: T0 + VISIBILITY_MS,
        inFlight: true,
      },
      {
        messageId: expect.any(String),
        body: 'b',
        attributes: { k: 'v' },
        receiveCount: 0,
        sentAtMs: T0,
        visibleAtMs: T0 + 10_000,
        inFlight: false,
      },
    ])
  })

  it('uses a 30 s visibility timeout by default, as SQS does', () => {
    let nowMs = T0
    const queue = new LocalQueue({ name: 'default', now: () => nowMs })
    queue.send('x')
    queue.receive()
    nowMs += 29_999
    expect(queue.receive()).toEqual([])
    nowMs += 1
    expect(queue.receive()).toHaveLength(1)
  })
})

describe('LocalQueue delete', () => {
  it('removes a message with its receipt handle, so it is not delivered again', () => {
    const { queue, advance } = setup()
    queue.send('done')
    const [record] = queue.receive()

    expect(queue.delete(record!.receiptHandle)).toBe(true)
    advance(VISIBILITY_MS)
    expect(queue.receive()).toEqual([])
    expect(queue.pending()).toBe(0)
  })

  it('ignores an unknown handle and one superseded by a later receive', () => {
    const { queue, advance } = setup()
    queue.send('work')
    const [first] = queue.receive()
    advance(VISIBILITY_MS)
    queue.receive()

    expect(queue.delete('no-such-handle')).toBe(false)
    expect(queue.delete(first!.receiptHandle)).toBe(false)
    expect(queue.pending()).toBe(1)
  })

  it('counts visible, delayed and in-flight messages as pending', () => {
    const { queue } = setup()
    queue.send('visible')
    queue.send('delayed', { delaySeconds: 60 })
    queue.send('in flight')
    queue.receive(1)
    queue.receive(1)

    expect(queue.pending()).toBe(3)
  })
})

describe('LocalQueue redrive to a dead-letter queue', () => {
  it('delivers a message maxReceiveCount times, then moves it to the dead-letter queue with the reason', () => {
    const { queue, dlq, advance } = withDeadLetterQueue()
    const messageId = queue.send('poison', { attributes: { origin: 'test' } })

    expect(queue.receive()).toHaveLength(1)
    advance(VISIBILITY_MS)
    expect(queue.receive()).toHaveLength(1)
    advance(VISIBILITY_MS)
    expect(queue.receive()).toEqual([])

    expect(queue.pending()).toBe(0)
    const [moved] = dlq.receive()
    expect(moved).toMatchObject({
      messageId,
      body: 'poison',
      eventSourceARN: 'arn:aws:sqs:local:000000000000:runs-dlq',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(T0),
        DeadLetterQueueSourceArn: 'arn:aws:sqs:local:000000000000:runs',
      },
    })
    expect(moved?.messageAttributes).toEqual({
      origin: expect.objectContaining({ stringValue: 'test' }),
      reason: expect.objectContaining({ stringValue: 'maxReceiveCount exceeded', dataType: 'String' }),
      source: expect.objectContaining({ stringValue: 'runs' }),
    })
  })

  it('moves the message on the receive after the last allowed one and still returns other messages', () => {
    const { queue, dlq, advance } = withDeadLetterQueue()
    queue.send('poison')
    queue.receive()
    advance(VISIBILITY_MS)
    queue.receive()
    advance(VISIBILITY_MS)
    queue.send('fresh')

    expect(queue.receive().map((record) => record.body)).toEqual(['fresh'])
    expect(dlq.messages().map((message) => message.body)).toEqual(['poison'])
  })

  it('does not move a message that was deleted in time', () => {
    const { queue, dlq, advance } = withDeadLetterQueue()
    queue.send('ok')
    queue.receive()
    advance(VISIBILITY_MS)
    const [last] = queue.receive()
    queue.delete(last!.receiptHandle)
    advance(VISIBILITY_MS)

    expect(queue.receive()).toEqual([])
    expect(dlq.pending()).toBe(0)
  })

  it.each([
    { what: 'maxReceiveCount without a dead-letter queue', options: { maxReceiveCount: 3 } },
    { what: 'a dead-letter queue without maxReceiveCount', options: { deadLetter: new LocalQueue({ name: 'd' }) } },
    {
      what: 'maxReceiveCount 0',
      options: { maxReceiveCount: 0, deadLetter: new LocalQueue({ name: 'd' }) },
    },
    { what: 'a name SQS would reject', options: { name: 'runs queue' } },
  ])('refuses $what', ({ options }) => {
    expect(() => new LocalQueue({ name: 'runs', ...options })).toThrow(RangeError)
  })
})

describe('LocalQueue as the run queue', () => {
  it('sends each unique run request as an encoded run message, with its delay rounded up', async () => {
    const { queue, advance } = setup()

    const result = await queue.sendRuns([
      { instanceId: 'wf-1', dueAtMs: T0 },
      { instanceId: 'wf-2', dueAtMs: T0 + 1500, delaySeconds: 1.5 },
      { instanceId: 'wf-1', dueAtMs: T0 },
    ])

    expect(result).toEqual({ failed: [] })
    expect(queue.messages().map((message) => [message.body, message.visibleAtMs])).toEqual([
      [runMessageBody({ instanceId: 'wf-1', dueAtMs: T0 }), T0],
      [runMessageBody({ instanceId: 'wf-2', dueAtMs: T0 + 1500 }), T0 + 2000],
    ])
    advance(2000)
    const parsed = queue.receive().map((record) => parseRunMessage(record.body))
    expect(parsed).toEqual([
      { ok: true, message: { v: 1, kind: 'run', instanceId: 'wf-1', dueAtMs: T0 } },
      { ok: true, message: { v: 1, kind: 'run', instanceId: 'wf-2', dueAtMs: T0 + 1500 } },
    ])
  })

  it('sends nothing when a request is invalid', async () => {
    const { queue } = setup()

    await expect(
      queue.sendRuns([
        { instanceId: 'wf-1', dueAtMs: T0 },
        { instanceId: 'bad id', dueAtMs: T0 },
      ]),
    ).rejects.toThrow(ValidationError)
    expect(queue.pending()).toBe(0)
  })
})

describe('LocalQueue as a dead-letter sink', () => {
  it('stores the body unchanged with reason, source and original message id attributes', async () => {
    const { queue } = setup({ name: 'runs-dlq' })

    await queue.send({ body: '{"v":9}', reason: 'r'.repeat(1200), source: 'run-handler', messageId: 'm-1' })

    expect(queue.messages()).toEqual([
      expect.objectContaining({
        body: '{"v":9}',
        attributes: { reason: 'r'.repeat(1000), source: 'run-handler', originalMessageId: 'm-1' },
      }),
    ])
  })

  it('rejects (rather than throws) what it cannot store', async () => {
    const { queue } = setup()

    await expect(queue.send({ body: '', reason: 'r', source: 's' })).rejects.toThrow(RangeError)
  })
})

describe('LocalQueue.deliver', () => {
  const threeMessages = () => {
    const context = setup()
    const ids = ['a', 'b', 'c'].map((body) => context.queue.send(body))
    return { ...context, ids }
  }

  it('hands one batch to the handler as an SQS event and deletes every record of a void response', async () => {
    const { queue } = threeMessages()
    const handler = vi.fn(async (_event: SQSEvent): Promise<void> => {})

    const result = await queue.deliver(handler)

    expect(result).toEqual({ delivered: 3, failed: 0 })
    expect(handler).toHaveBeenCalledTimes(1)
    const event = handler.mock.calls[0]![0]
    expect(event.Records.map((record) => record.body)).toEqual(['a', 'b', 'c'])
    expect(event.Records.every((record) => record.eventSource === 'aws:sqs')).toBe(true)
    expect(queue.pending()).toBe(0)
  })

  it('deletes the records the handler did not list in batchItemFailures and keeps the others', async () => {
    const { queue, ids, advance } = threeMessages()

    const result = await queue.deliver(async () => ({ batchItemFailures: [{ itemIdentifier: ids[1]! }] }))

    expect(result).toEqual({ delivered: 2, failed: 1 })
    expect(queue.messages()).toEqual([expect.objectContaining({ messageId: ids[1], body: 'b', inFlight: true })])
    advance(VISIBILITY_MS)
    expect(queue.receive()).toEqual([
      expect.objectContaining({ body: 'b', attributes: expect.objectContaining({ ApproximateReceiveCount: '2' }) }),
    ])
  })

  it('treats an empty batchItemFailures list as success', async () => {
    const { queue } = threeMessages()

    expect(await queue.deliver(async () => ({ batchItemFailures: [] }))).toEqual({ delivered: 3, failed: 0 })
    expect(queue.pending()).toBe(0)
  })

  it('deletes nothing when the handler throws, and delivers the batch again after the visibility timeout', async () => {
    const { queue, advance } = threeMessages()
    const boom = new Error('handler crashed')

    const result = await queue.deliver(async () => {
      throw boom
    })

    expect(result).toEqual({ delivered: 0, failed: 3, error: boom })
    expect(queue.pending()).toBe(3)
    expect(queue.receive()).toEqual([])
    advance(VISIBILITY_MS)
    expect(await queue.deliver(async () => {})).toEqual({ delivered: 3, failed: 0 })
  })

  it('fails the whole batch when batchItemFailures names a message not in it, as Lambda does', async () => {
    const { queue } = threeMessages()
    const response: SQSBatchResponse = { batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] }

    const result = await queue.deliver(async () => response)

    expect(result).toMatchObject({ delivered: 0, failed: 3, error: expect.any(Error) })
    expect(queue.pending()).toBe(3)
  })

  it('does not call the handler when no message is visible', async () => {
    const { queue } = setup()
    queue.send('later', { delaySeconds: 60 })
    const handler = vi.fn(async () => {})

    expect(await queue.deliver(handler)).toEqual({ delivered: 0, failed: 0 })
    expect(handler).not.toHaveBeenCalled()
  })

  it('delivers at most ten messages per batch', async () => {
    const { queue } = setup()
    for (let i = 0; i < 12; i++) queue.send(`m${i}`)
    const sizes: number[] = []

    await queue.deliver(async (event) => {
      sizes.push(event.Records.length)
    })
    await queue.deliver(async (event) => {
      sizes.push(event.Records.length)
    })

    expect(sizes).toEqual([10, 2])
  })

  it('moves a message that always fails to the dead-letter queue after maxReceiveCount deliveries', async () => {
    const { queue, dlq, advance } = withDeadLetterQueue()
    queue.send('poison')
    const failing = async (event: SQSEvent): Promise<SQSBatchResponse> => ({
      batchItemFailures: event.Records.map((record) => ({ itemIdentifier: record.messageId })),
    })

    expect(await queue.deliver(failing)).toEqual({ delivered: 0, failed: 1 })
    advance(VISIBILITY_MS)
    expect(await queue.deliver(failing)).toEqual({ delivered: 0, failed: 1 })
    advance(VISIBILITY_MS)
    expect(await queue.deliver(failing)).toEqual({ delivered: 0, failed: 0 })

    expect(dlq.messages()).toEqual([
      expect.objectContaining({ body: 'poison', attributes: { reason: 'maxReceiveCount exceeded', source: 'runs' } }),
    ])
  })
})
