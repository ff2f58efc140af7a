import { describe, expect, it } from 'vitest'
import { waitFromItem, waitToItem } from '../../src/adapters/dynamodb/callback-items.js'
import { type CallbackWait, callbackDeadlinePassed, callbackRefusal } from '../../src/core/callbacks.js'
import { aNode, T0 } from '../support/records.js'

/**
 * A callback wait closed by a deadline of its node or instance before its own timeout (README, "Callbacks"): both
 * stores refuse a completion from then, and the item keeps the deadline for the next write of the wait.
 */
const wait: CallbackWait = {
  call: 1,
  fence: 2,
  requestedAtMs: T0,
  timeoutAtMs: T0 + 3_600_000,
  closesAtMs: T0 + 60_000,
}

describe('a wait closed by its node or instance', () => {
  it('stores the earlier deadline as the condition’s d, and reads it back', () => {
    const item = waitToItem(wait, T0 - 5)
    expect(item.d).toBe(T0 + 60_000)
    expect(waitFromItem(item, T0 - 5)).toEqual(wait)
  })

  it('stores the timeout alone when no earlier deadline closes it', () => {
    const { closesAtMs: _, ...open } = wait
    const item = waitToItem(open, T0)
    expect(item.d).toBe(T0 + 3_600_000)
    expect(waitFromItem(item, T0)).toEqual(open)
  })

  it('refuses a completion and a heartbeat from the deadline, saying which deadline passed', () => {
    expect(callbackDeadlinePassed(wait, undefined, { nowMs: T0 + 59_999, heartbeat: false })).toBe(false)
    expect(callbackDeadlinePassed(wait, undefined, { nowMs: T0 + 60_000, heartbeat: false })).toBe(true)
    expect(callbackDeadlinePassed(wait, undefined, { nowMs: T0 + 60_000, heartbeat: true })).toBe(true)
    const record = {
      nodes: { ask: aNode({ status: 'running', attempt: 1, callback: wait }) },
      status: 'running',
    } as unknown as Parameters<typeof callbackRefusal>[0]
    const refusal = callbackRefusal(record, { nodeId: 'ask', attempt: 1, call: 1, fence: 2 } as never, 'fp', {
      nowMs: T0 + 60_000,
      heartbeat: false,
    })
    expect(refusal).toBeInstanceOf(Error)
    expect((refusal as Error).message).toMatch(/node's or instance's deadline passed/)
  })
})
