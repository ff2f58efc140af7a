import { describe, expect, it } from 'vitest'
import { copyInstanceRecord } from '../../src/core/instance-change.js'
import { aNode, anInstance, T0 } from '../support/records.js'

/**
 * A pass changes its own copy of the instance field by field and keeps the record as the store gave it to roll back
 * to: every map and summary of the copy is its own; only JSON payloads, never changed in place, are shared.
 */
describe('copyInstanceRecord', () => {
  it('copies every map a pass changes, and shares the payloads', () => {
    const record = anInstance('wf-copy', {
      nodes: { ask: aNode({ status: 'running', output: { a: 1 } }) },
      events: { ask: { eventTs: 1, content: { x: 1 }, receivedAtMs: T0 } },
      callbacks: { ask: { call: 1, fence: 1, completion: { status: 'success', fingerprint: 'f', atMs: T0 } } },
      priorInputs: { k: { a: 1 } },
      failure: { reason: 'r', atMs: T0 },
    } as never)
    const copy = copyInstanceRecord(record)

    delete copy.callbacks?.ask
    delete copy.events.ask
    delete copy.priorInputs?.k
    ;(copy.nodes.ask as { status: string }).status = 'completed'
    ;(copy.failure as { reason: string }).reason = 'other'

    expect(Object.keys(record.callbacks ?? {})).toEqual(['ask'])
    expect(Object.keys(record.events)).toEqual(['ask'])
    expect(Object.keys(record.priorInputs ?? {})).toEqual(['k'])
    expect(record.nodes.ask?.status).toBe('running')
    expect(record.failure?.reason).toBe('r')
    expect(copy.nodes.ask?.output).toBe(record.nodes.ask?.output)
  })
})
