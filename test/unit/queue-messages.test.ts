import { describe, expect, it } from 'vitest'
import {
  encodeEventMessage,
  encodeRunMessage,
  encodeStartMessage,
  parseEventMessage,
  parseRunMessage,
  parseStartMessage,
} from '../../src/schemas/queue-messages.js'

const start = {
  schedule: 'nightly',
  workflowType: 'order',
  context: { region: 'eu' },
  businessId: 'B-1',
  scheduledTime: '2026-11-21T20:05:00Z',
}

describe('queue messages', () => {
  it('read back what they write, for every kind', () => {
    const run = encodeRunMessage({ instanceId: 'wf-1', dueAtMs: 5 })
    const started = encodeStartMessage(start)
    const event = encodeEventMessage({ workflowType: 'approval', businessId: 'PO-7', nodeId: 'review', eventTs: 3 })

    expect(run.ok && parseRunMessage(run.body)).toEqual({
      ok: true,
      message: { v: 1, kind: 'run', instanceId: 'wf-1', dueAtMs: 5 },
    })
    expect(started.ok && parseStartMessage(started.body)).toEqual({
      ok: true,
      message: { v: 1, kind: 'start', ...start },
    })
    expect(event.ok && parseEventMessage(event.body)).toEqual({
      ok: true,
      message: { v: 1, workflowType: 'approval', businessId: 'PO-7', nodeId: 'review', eventTs: 3 },
    })
  })

  it('write the fields in the schema’s order, whatever order they were given in', () => {
    const reordered = encodeStartMessage({
      scheduledTime: start.scheduledTime,
      businessId: 'B-1',
      context: start.context,
      workflowType: 'order',
      schedule: 'nightly',
    })

    expect(reordered).toEqual({
      ok: true,
      body: '{"v":1,"kind":"start","schedule":"nightly","workflowType":"order","context":{"region":"eu"},"businessId":"B-1","scheduledTime":"2026-11-21T20:05:00Z"}',
    })
  })

  it('refuse to write what no consumer would accept, naming the field', () => {
    expect(encodeStartMessage({ ...start, scheduledTime: 'tonight' })).toMatchObject({
      ok: false,
      field: 'scheduledTime',
    })
    expect(encodeEventMessage({ nodeId: 'review', eventTs: 1 })).toMatchObject({ ok: false, field: 'instanceId' })
  })

  it('say which queue a malformed body came from', () => {
    expect(parseEventMessage('{}')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^invalid event message: /),
    })
    expect(parseStartMessage('no')).toEqual({ ok: false, reason: 'invalid start message: body is not JSON' })
    expect(parseRunMessage('no')).toEqual({ ok: false, reason: 'body is not JSON' })
  })
})
