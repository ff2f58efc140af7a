import { describe, expect, it } from 'vitest'
import { type CallbackArrival, interruptedWaitFor } from '../../src/core/callbacks.js'
import { aNode, T0 } from '../support/records.js'

/**
 * Which stored arrival is the outcome of an attempt an earlier lease left in flight (README, "Callbacks"): a
 * completion of that very call, under the fence of the lease that started it.
 */
const started = { step: 'run' as const, atMs: T0, fence: 4 }
const node = aNode({ status: 'running', calls: 3, attemptStarted: started })
const completion = { status: 'success' as const, output: { ok: true }, atMs: T0 + 500, fingerprint: 'fp' }

describe('interruptedWaitFor', () => {
  it('takes a completion of the attempt call under the fence that started it, as a wait it ended', () => {
    expect(interruptedWaitFor(node, started, { call: 3, fence: 4, completion })).toEqual({
      call: 3,
      fence: 4,
      requestedAtMs: T0,
      timeoutAtMs: T0 + 500,
    })
  })

  it.each<[string, CallbackArrival | undefined]>([
    ['nothing stored', undefined],
    ['a heartbeat alone', { call: 3, fence: 4, heartbeatAtMs: T0 + 100 }],
    ['a completion of an earlier call', { call: 2, fence: 4, completion }],
    ['a completion under another lease', { call: 3, fence: 3, completion }],
  ])('takes none for %s', (_name, arrival) => {
    expect(interruptedWaitFor(node, started, arrival)).toBeUndefined()
  })
})
