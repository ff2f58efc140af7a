import { describe, expect, it } from 'vitest'
import { ItemTooLargeError, LeaseLostError, LockConflictError } from '../../src/core/errors.js'
import { acquired, acquireRefusal, exceedsBudget, leaseWriteRefusal } from '../../src/core/lease-rules.js'
import type { AcquireOptions, InstanceRecord, Lease, NodeRecord } from '../../src/core/store.js'
import { aNode, anInstance, T0 } from '../support/records.js'

const HELD = { leaseOwner: 'other', leaseUntilMs: T0 + 10_000 }
const refusalOf = (overrides: Partial<InstanceRecord>, options: AcquireOptions = {}) => {
  const refusal = acquireRefusal(anInstance('i1', overrides), 'me', T0, options)
  return refusal instanceof Error ? refusal.name : refusal?.kind
}

describe('acquireRefusal', () => {
  it.each<[string, Partial<InstanceRecord>, AcquireOptions, string | undefined]>([
    ['a free live instance', {}, {}, undefined],
    ['a live instance whose lease expired', { leaseOwner: 'other', leaseUntilMs: T0 - 1 }, {}, undefined],
    ['a live instance the caller holds', { leaseOwner: 'me', leaseUntilMs: T0 + 10_000 }, {}, undefined],
    ['a live instance another holds', HELD, {}, 'LockConflictError'],
    ['a terminal instance another holds', { status: 'failed', ...HELD }, {}, 'terminal'],
    [
      'a terminal instance, terminal allowed, another holding it',
      { status: 'failed', ...HELD },
      { allowTerminal: true },
      'LockConflictError',
    ],
    ['a live instance another holds, terminal only', HELD, { terminalOnly: true }, 'live'],
    ['a terminal instance, terminal only', { status: 'completed' }, { terminalOnly: true }, undefined],
    ['a due pass on an instance not due yet, held by another', { dueAtMs: T0 + 1, ...HELD }, { dueBy: T0 }, 'not-due'],
    ['a due pass on an instance without a due time', {}, { dueBy: T0 }, 'not-due'],
    ['a due pass on a due instance another holds', { dueAtMs: T0, ...HELD }, { dueBy: T0 }, 'LockConflictError'],
    ['a due pass on a terminal instance', { status: 'canceled', dueAtMs: T0 }, { dueBy: T0 }, 'terminal'],
  ])('answers %s with %s', (_name, overrides, options, expected) => {
    expect(refusalOf(overrides, options)).toBe(expected)
  })

  it('tells a conflict when the lease ends, for the retry', () => {
    const refusal = acquireRefusal(anInstance('i1', HELD), 'me', T0)

    expect(refusal).toBeInstanceOf(LockConflictError)
    expect(refusal).toMatchObject({ instanceId: 'i1', leaseUntilMs: T0 + 10_000, retryAfterSeconds: 10 })
  })
})

describe('acquired', () => {
  const parked = { code: 'WORKER_MISSING' as const, reason: 'no worker', atMs: T0 }

  it('leases, grows the fence, makes the instance due at the lease end and unparks it', () => {
    const result = acquired(anInstance('i1', { fence: 4, dueAtMs: T0 + 99, parked }), 'me', T0, T0 + 30_000)

    expect(result.lease).toEqual({ instanceId: 'i1', owner: 'me', fence: 5, untilMs: T0 + 30_000 })
    expect(result.record).toMatchObject({ fence: 5, leaseOwner: 'me', leaseUntilMs: T0 + 30_000, dueAtMs: T0 + 30_000 })
    expect(result.record).not.toHaveProperty('parked')
    expect(result.previous).toEqual({ dueAtMs: T0 + 99, parked })
  })

  it('keeps the due time and parked state for a terminal-only lease', () => {
    const result = acquired(anInstance('i1', { dueAtMs: T0, parked }), 'me', T0, T0 + 30_000, { terminalOnly: true })

    expect(result.record).toMatchObject({ dueAtMs: T0, parked })
  })

  it('keeps the due time of a due pass and unparks it, as every other acquisition does', () => {
    const result = acquired(anInstance('i1', { dueAtMs: T0, parked }), 'me', T0, T0 + 30_000, { dueBy: T0 })

    expect(result.record).toMatchObject({ dueAtMs: T0 })
    expect(result.record.parked).toBeUndefined()
  })

  describe('the attempt the instance is due for', () => {
    const polled = (node: Partial<NodeRecord> = {}) =>
      anInstance('i1', {
        fence: 7,
        dueAtMs: T0,
        nodes: { wait: aNode({ status: 'pending', calls: 3, ...node }) },
        armNext: { nodeId: 'wait', step: 'check' },
      })

    it('is recorded as started by the lease of a due pass, and counted', () => {
      const before = polled()
      const result = acquired(before, 'me', T0 + 5, T0 + 30_000, { dueBy: T0 + 5 })

      expect(result.record.nodes.wait).toMatchObject({
        calls: 4,
        attemptStarted: { step: 'check', atMs: T0 + 5, fence: 8 },
      })
      // The record acquired from is left as it was.
      expect(before.nodes.wait).not.toHaveProperty('attemptStarted')
    })

    it('is not recorded by any other acquisition', () => {
      const result = acquired(polled(), 'me', T0 + 5, T0 + 30_000)

      expect(result.record.nodes.wait).not.toHaveProperty('attemptStarted')
      expect(result.record.nodes.wait?.calls).toBe(3)
    })

    it.each<[string, Partial<NodeRecord>]>([
      ['a node that waits for another step', { status: 'running' }],
      ['a settled node', { status: 'completed' }],
      ['a node with an attempt left in flight', { attemptStarted: { step: 'check', atMs: T0 - 9, fence: 6 } }],
      [
        'a node that waits for a callback',
        { callback: { call: 3, fence: 6, requestedAtMs: T0 - 9, timeoutAtMs: T0 + 60_000 } },
      ],
    ])('is not recorded for %s', (_name, node) => {
      const before = polled(node)
      const result = acquired(before, 'me', T0 + 5, T0 + 30_000, { dueBy: T0 + 5 })

      expect(result.record.nodes.wait).toEqual(before.nodes.wait)
    })
  })
})

describe('leaseWriteRefusal and the budget', () => {
  const lease: Lease = { instanceId: 'i1', owner: 'me', fence: 3, untilMs: T0 + 30_000 }

  it('reads a releasing write whose lease is gone under the same fence as landed', () => {
    const current = anInstance('i1', { fence: 3, eventSeq: 7 })

    expect(leaseWriteRefusal(current, lease, { updatedAtMs: T0, release: true })).toEqual({ landed: { eventSeq: 7 } })
  })

  it.each<[string, InstanceRecord | undefined]>([
    ['a missing instance', undefined],
    ['a newer fence', anInstance('i1', { fence: 4, leaseOwner: 'me' })],
    ['the same fence released, for a write that does not release', anInstance('i1', { fence: 3 })],
  ])('reports a lost lease for %s', (_name, current) => {
    expect(leaseWriteRefusal(current, lease, { updatedAtMs: T0 })).toBeInstanceOf(LeaseLostError)
  })

  it('reports the budget while the lease still holds', () => {
    const current = anInstance('i1', { fence: 3, leaseOwner: 'me', storedBytes: 900 })
    const change = { updatedAtMs: T0, bytesDelta: 200, maxBytes: 1000 }

    expect(exceedsBudget(current, change)).toBe(true)
    expect(exceedsBudget(current, { ...change, bytesDelta: 100 })).toBe(false)
    expect(exceedsBudget(anInstance('i1', { fence: 3, leaseOwner: 'me' }), change)).toBe(false)
    expect(leaseWriteRefusal(current, lease, change)).toBeInstanceOf(ItemTooLargeError)
  })
})
