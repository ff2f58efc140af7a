import { describe, expect, it } from 'vitest'
import { deadLetterAttributes } from '../../src/adapters/dead-letter-attributes.js'
import { clampDelaySeconds, runMessageBody, uniqueRunRequests } from '../../src/adapters/run-requests.js'
import { sendDeadLetterParams } from '../../src/adapters/sqs/sqs-dead-letters.js'
import { sendMessageBatchParams, translateSqsError } from '../../src/adapters/sqs/sqs-run-queue.js'
import type { RunRequest } from '../../src/core/dispatch-ports.js'
import { StoreError, ValidationError } from '../../src/core/errors.js'
import { parseRunMessage, runMessageSchema } from '../../src/schemas/queue-messages.js'

const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/tickflow-runs'
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)

const requests = (count: number, overrides: Partial<RunRequest> = {}): RunRequest[] =>
  Array.from({ length: count }, (_, i) => ({ instanceId: `wf-${i}`, dueAtMs: T0 + i, ...overrides }))

describe('sendMessageBatchParams', () => {
  it('sends nothing for no requests', () => {
    expect(sendMessageBatchParams(QUEUE_URL, [])).toEqual([])
  })

  it('chunks 25 requests into batches of 10, 10 and 5 for the queue, in request order', () => {
    const batches = sendMessageBatchParams(QUEUE_URL, requests(25))

    expect(batches.map((batch) => batch.Entries?.length)).toEqual([10, 10, 5])
    expect(batches.every((batch) => batch.QueueUrl === QUEUE_URL)).toBe(true)
    const bodies = batches.flatMap((batch) => batch.Entries?.map((entry) => entry.MessageBody) ?? [])
    expect(bodies).toEqual(requests(25).map(runMessageBody))
  })

  it('gives every entry an Id unique within its batch and valid for SQS', () => {
    for (const batch of sendMessageBatchParams(QUEUE_URL, requests(23))) {
      const ids = batch.Entries?.map((entry) => entry.Id) ?? []
      expect(new Set(ids).size).toBe(ids.length)
      for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{1,80}$/)
    }
  })

  it.each([
    { delaySeconds: 0, expected: 0 },
    { delaySeconds: 30, expected: 30 },
    { delaySeconds: 1.2, expected: 2 },
    { delaySeconds: 0.001, expected: 1 },
    { delaySeconds: 899.5, expected: 900 },
    { delaySeconds: 900, expected: 900 },
    { delaySeconds: 901, expected: 900 },
    { delaySeconds: 86_400, expected: 900 },
    { delaySeconds: Number.POSITIVE_INFINITY, expected: 900 },
    { delaySeconds: -3, expected: 0 },
    { delaySeconds: Number.NaN, expected: 0 },
  ])('sends a delay of $delaySeconds s as DelaySeconds $expected', ({ delaySeconds, expected }) => {
    const [batch] = sendMessageBatchParams(QUEUE_URL, [{ instanceId: 'wf-1', dueAtMs: T0, delaySeconds }])

    expect(batch?.Entries?.[0]?.DelaySeconds).toBe(expected)
    expect(clampDelaySeconds(delaySeconds)).toBe(expected)
  })

  it('leaves DelaySeconds out of a request without a delay', () => {
    const [batch] = sendMessageBatchParams(QUEUE_URL, [{ instanceId: 'wf-1', dueAtMs: T0 }])

    expect(batch?.Entries?.[0]).not.toHaveProperty('DelaySeconds')
  })

  it('keeps the delay out of the body: it is a property of the send, not of the run', () => {
    const [batch] = sendMessageBatchParams(QUEUE_URL, [{ instanceId: 'wf-1', dueAtMs: T0, delaySeconds: 60 }])

    expect(JSON.parse(batch?.Entries?.[0]?.MessageBody ?? '')).toEqual({
      v: 1,
      kind: 'run',
      instanceId: 'wf-1',
      dueAtMs: T0,
    })
  })

  it('sends each (instanceId, dueAtMs) once, with the first request’s delay, before chunking', () => {
    const input: RunRequest[] = [
      ...requests(10),
      { instanceId: 'wf-3', dueAtMs: T0 + 3, delaySeconds: 120 },
      { instanceId: 'wf-0', dueAtMs: T0 },
      { instanceId: 'wf-0', dueAtMs: T0 + 1000 },
    ]

    const batches = sendMessageBatchParams(QUEUE_URL, input)

    expect(batches.map((batch) => batch.Entries?.length)).toEqual([10, 1])
    const entries = batches.flatMap((batch) => batch.Entries ?? [])
    expect(entries.map((entry) => JSON.parse(entry.MessageBody ?? '').instanceId)).toEqual([
      ...requests(10).map((request) => request.instanceId),
      'wf-0',
    ])
    expect(entries[3]).not.toHaveProperty('DelaySeconds')
    expect(uniqueRunRequests(input)).toHaveLength(11)
  })

  it('rejects a request with an invalid instance id before building anything', () => {
    const act = () => sendMessageBatchParams(QUEUE_URL, [...requests(3), { instanceId: 'no spaces', dueAtMs: T0 }])

    expect(act).toThrow(ValidationError)
    expect(act).toThrow(expect.objectContaining({ field: 'instanceId' }))
  })
})

describe('run messages', () => {
  it('encode to a versioned JSON body with the fields in a fixed order', () => {
    expect(runMessageBody({ instanceId: '01JH8ZK3XQ', dueAtMs: 1_767_268_800_000 })).toBe(
      '{"v":1,"kind":"run","instanceId":"01JH8ZK3XQ","dueAtMs":1767268800000}',
    )
  })

  it.each(['a', 'wf-1', '01JH8ZK3XQ7V4N2M5P6R8S9T0W', 'order:2026-01-01.batch_7', `x${'y'.repeat(127)}`])(
    'round-trip instance id %s through parseRunMessage',
    (instanceId) => {
      const parsed = parseRunMessage(runMessageBody({ instanceId, dueAtMs: T0 }))

      expect(parsed).toEqual({ ok: true, message: { v: 1, kind: 'run', instanceId, dueAtMs: T0 } })
    },
  )

  it('ignore fields they do not know, so that a producer may add one', () => {
    const parsed = parseRunMessage(JSON.stringify({ v: 1, kind: 'run', instanceId: 'wf-1', dueAtMs: 5, trace: 'x' }))

    expect(parsed).toEqual({ ok: true, message: { v: 1, kind: 'run', instanceId: 'wf-1', dueAtMs: 5 } })
  })

  it.each([
    { what: 'an empty body', body: '', reason: /not JSON/ },
    { what: 'text', body: 'run wf-1', reason: /not JSON/ },
    { what: 'JSON null', body: 'null', reason: /not a run message/ },
    { what: 'a list', body: '[1]', reason: /not a run message/ },
    { what: 'no version', body: '{"kind":"run","instanceId":"wf-1","dueAtMs":1}', reason: /v:/ },
    { what: 'a newer version', body: '{"v":2,"kind":"run","instanceId":"wf-1","dueAtMs":1}', reason: /v:/ },
    { what: 'another kind', body: '{"v":1,"kind":"start","instanceId":"wf-1","dueAtMs":1}', reason: /kind:/ },
    { what: 'no instance id', body: '{"v":1,"kind":"run","dueAtMs":1}', reason: /instanceId:/ },
    { what: 'an id with a space', body: '{"v":1,"kind":"run","instanceId":"wf 1","dueAtMs":1}', reason: /instanceId:/ },
    {
      what: 'an id starting with -',
      body: '{"v":1,"kind":"run","instanceId":"-wf","dueAtMs":1}',
      reason: /instanceId:/,
    },
    {
      what: 'an id of 129 characters',
      body: JSON.stringify({ v: 1, kind: 'run', instanceId: 'a'.repeat(129), dueAtMs: 1 }),
      reason: /instanceId:/,
    },
    { what: 'a due time as text', body: '{"v":1,"kind":"run","instanceId":"wf-1","dueAtMs":"1"}', reason: /dueAtMs:/ },
    {
      what: 'a fractional due time',
      body: '{"v":1,"kind":"run","instanceId":"wf-1","dueAtMs":1.5}',
      reason: /dueAtMs:/,
    },
    { what: 'a negative due time', body: '{"v":1,"kind":"run","instanceId":"wf-1","dueAtMs":-1}', reason: /dueAtMs:/ },
  ])('reject $what with the reason', ({ body, reason }) => {
    const parsed = parseRunMessage(body)

    expect(parsed.ok).toBe(false)
    expect(parsed.ok ? '' : parsed.reason).toMatch(reason)
  })

  it('refuse to encode what they would reject', () => {
    expect(() => runMessageBody({ instanceId: 'wf-1', dueAtMs: -1 })).toThrow(ValidationError)
    expect(() => runMessageBody({ instanceId: '', dueAtMs: 0 })).toThrow(ValidationError)
    expect(runMessageSchema.safeParse({ v: 1, kind: 'run', instanceId: 'wf-1', dueAtMs: 0 }).success).toBe(true)
  })
})

describe('dead letters', () => {
  it('keep the body unchanged and carry reason, source and the original message id as String attributes', () => {
    const body = '{"v":1,"kind":"run","instanceId":"wf-1","dueAtMs":1}'

    expect(
      sendDeadLetterParams(QUEUE_URL, { body, reason: 'instance is gone', source: 'run-handler', messageId: 'm-1' }),
    ).toEqual({
      QueueUrl: QUEUE_URL,
      MessageBody: body,
      MessageAttributes: {
        reason: { DataType: 'String', StringValue: 'instance is gone' },
        source: { DataType: 'String', StringValue: 'run-handler' },
        originalMessageId: { DataType: 'String', StringValue: 'm-1' },
      },
    })
  })

  it('have no originalMessageId attribute when none is given', () => {
    const params = sendDeadLetterParams(QUEUE_URL, { body: 'x', reason: 'r', source: 's' })

    expect(Object.keys(params.MessageAttributes ?? {})).toEqual(['reason', 'source'])
  })

  it('cut the reason to 1000 characters', () => {
    const attributes = deadLetterAttributes({ reason: `${'e'.repeat(999)}xyz`, source: 's' })

    expect(attributes.reason).toBe(`${'e'.repeat(999)}x`)
  })

  it('never cut a character in half, which SQS would reject', () => {
    const attributes = deadLetterAttributes({ reason: `${'e'.repeat(999)}😀tail`, source: 's' })

    expect(attributes.reason).toBe('e'.repeat(999))
  })

  it('replace characters SQS does not accept and never send an empty attribute', () => {
    expect(deadLetterAttributes({ reason: 'bad\u0000byte\u0007', source: '', messageId: '' })).toEqual({
      reason: 'bad\uFFFDbyte\uFFFD',
      source: 'unknown',
    })
    expect(deadLetterAttributes({ reason: '', source: 'run-handler' }).reason).toBe('unspecified')
  })
})

describe('translateSqsError', () => {
  const awsError = (name: string, httpStatusCode?: number, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      ...(httpStatusCode === undefined ? {} : { $metadata: { httpStatusCode } }),
      ...extra,
    })

  it('names a missing queue QUEUE_NOT_FOUND, not retryable, with the cause', () => {
    const cause = awsError('QueueDoesNotExist', 400)
    const error = translateSqsError(cause, 'sendRuns', QUEUE_URL)

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'QUEUE_NOT_FOUND', retryable: false, cause })
    expect(error.message).toContain(QUEUE_URL)
  })

  it('recognises a missing queue by its query-protocol code too', () => {
    const error = translateSqsError(
      awsError('SQSServiceException', 400, { Code: 'AWS.SimpleQueueService.NonExistentQueue' }),
      'x',
      QUEUE_URL,
    )

    expect(error.code).toBe('QUEUE_NOT_FOUND')
  })

  it('names denied access QUEUE_MISCONFIGURED, not retryable', () => {
    expect(translateSqsError(awsError('AccessDenied', 403), 'x', QUEUE_URL)).toMatchObject({
      code: 'QUEUE_MISCONFIGURED',
      retryable: false,
    })
  })

  it.each([
    { what: 'throttling', error: awsError('RequestThrottled', 400) },
    { what: 'a server error', error: awsError('InternalError', 500) },
    { what: 'an unknown 503', error: awsError('SomethingNew', 503) },
    { what: 'a refused connection', error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) },
  ])('makes $what retryable', ({ error }) => {
    expect(translateSqsError(error, 'x', QUEUE_URL)).toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true })
  })

  it('does not retry a rejected request', () => {
    expect(translateSqsError(awsError('InvalidMessageContents', 400), 'x', QUEUE_URL).retryable).toBe(false)
  })

  it('lets the caller force retryable and keeps the specific code', () => {
    expect(translateSqsError(awsError('QueueDoesNotExist', 400), 'x', QUEUE_URL, { retryable: true })).toMatchObject({
      code: 'QUEUE_NOT_FOUND',
      retryable: true,
    })
  })
})
