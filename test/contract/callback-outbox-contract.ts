import { beforeEach, describe, expect, it } from 'vitest'
import type { CallbackClaims } from '../../src/core/callback-token.js'
import {
  type CallbackArrival,
  CallbackConflictError,
  CallbackGoneError,
  type CallbackWait,
  completionFingerprint,
} from '../../src/core/callbacks.js'
import { InstanceNotFoundError, PayloadTooLargeError } from '../../src/core/errors.js'
import type { LifecycleEvent } from '../../src/core/lifecycle-events.js'
import type { InstanceRecord, InstanceStore, Lease, LeaseWriter, NodeRecord } from '../../src/core/store.js'
import { aNode, anInstance, T0 } from '../support/records.js'

/**
 * The store contract for callbacks and the outbox (README, "Callbacks", "Lifecycle events"), run against every
 * store: the condition of a callback write and what a refused one answers; the outbox kept with the instance, its
 * index, and its removal.
 */

const LEASE_MS = 30_000

const aWait = (overrides: Partial<CallbackWait> = {}): CallbackWait => ({
  call: 1,
  fence: 1,
  requestedAtMs: T0,
  timeoutAtMs: T0 + 3_600_000,
  ...overrides,
})

/** A node waiting for the callback its first call (fence 1) asked for. */
const waiting = (overrides: Partial<NodeRecord> = {}): NodeRecord =>
  aNode({ calls: 1, callback: aWait(), nextAttemptAtMs: T0 + 3_600_000, ...overrides })

const claimsOf = (instanceId: string, overrides: Partial<CallbackClaims> = {}): CallbackClaims => ({
  instanceId,
  nodeId: 'pay',
  attempt: 1,
  call: 1,
  fence: 1,
  ...overrides,
})

const success = (output: unknown, atMs = T0 + 1000): CallbackArrival => {
  const completion = { status: 'success' as const, output: output as never }
  return { call: 1, fence: 1, completion: { ...completion, atMs, fingerprint: completionFingerprint(completion) } }
}

const heartbeat = (atMs: number): CallbackArrival => ({ call: 1, fence: 1, heartbeatAtMs: atMs })

const anEvent = (instanceId: string, n: number, timeMs = T0): LifecycleEvent => ({
  id: `${instanceId}:1.${n}`,
  detailType: 'Workflow Instance Status Change',
  detail: {
    version: 1,
    eventId: `${instanceId}:1.${n}`,
    instanceId,
    workflowType: 'orders',
    definitionVersion: 'v1',
    status: 'running',
    createdAtMs: T0,
    timeMs,
  },
})

const errorOf = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
    },
    (error: unknown) => error,
  )

const stored = async (store: InstanceStore, id: string): Promise<InstanceRecord> => {
  const record = await store.getInstance(id)
  if (!record) throw new Error(`instance '${id}' is not stored`)
  return record
}

const lease = async (store: InstanceStore, id: string, nowMs: number): Promise<Lease & { writer: LeaseWriter }> => {
  const result = await store.acquireLease(id, `owner-${nowMs}`, nowMs, nowMs + LEASE_MS)
  if (result.kind !== 'acquired') throw new Error(`expected to acquire '${id}', got ${result.kind}`)
  return { ...result.lease, writer: result.writer }
}

/** Ids of their own for each case: a store may be shared by every case of a file. */
let run = 0
const id = (name: string): string => `${name}-${run}`

export const describeCallbackOutboxContract = (name: string, makeStore: () => Promise<InstanceStore>): void => {
  describe(`${name}: callbacks`, () => {
    let store: InstanceStore
    beforeEach(async () => {
      store = await makeStore()
      run += 1
    })

    it('stores a completion for the open wait its token names, makes the instance due and counts it as an event', async () => {
      await store.createInstance(anInstance(id('cb-1'), { nodes: { pay: waiting() }, dueAtMs: T0 + 3_600_000 }))

      expect(await store.putCallback(claimsOf(id('cb-1')), success({ paid: 12 }), T0 + 1000)).toBe('stored')

      const record = await stored(store, id('cb-1'))
      expect(record.callbacks?.pay?.completion).toMatchObject({ status: 'success', output: { paid: 12 } })
      expect(record.dueAtMs).toBe(T0 + 1000)
      expect(record.eventSeq).toBe(1)
    })

    it('stores a heartbeat without making the instance due', async () => {
      await store.createInstance(anInstance(id('cb-2'), { nodes: { pay: waiting() }, dueAtMs: T0 + 3_600_000 }))

      expect(await store.putCallback(claimsOf(id('cb-2')), heartbeat(T0 + 5000), T0 + 5000)).toBe('stored')

      const record = await stored(store, id('cb-2'))
      expect(record.callbacks?.pay).toEqual({ call: 1, fence: 1, heartbeatAtMs: T0 + 5000 })
      expect(record.dueAtMs).toBe(T0 + 3_600_000)
      expect(record.eventSeq).toBe(0)
    })

    it('keeps a completion that arrives while the attempt that asked for it is still in flight', async () => {
      const inFlight = aNode({ calls: 1, attemptStarted: { step: 'run', atMs: T0, fence: 1 } })
      await store.createInstance(anInstance(id('cb-3'), { nodes: { pay: inFlight }, fence: 1 }))

      expect(await store.putCallback(claimsOf(id('cb-3')), success('early'), T0 + 10)).toBe('stored')

      expect((await stored(store, id('cb-3'))).callbacks?.pay?.completion?.status).toBe('success')
    })

    it('answers the same completion again as a duplicate, and a different one as a conflict', async () => {
      await store.createInstance(anInstance(id('cb-4'), { nodes: { pay: waiting() } }))
      await store.putCallback(claimsOf(id('cb-4')), success({ paid: 12 }), T0 + 1000)

      expect(await store.putCallback(claimsOf(id('cb-4')), success({ paid: 12 }, T0 + 2000), T0 + 2000)).toBe(
        'duplicate',
      )
      expect(await errorOf(store.putCallback(claimsOf(id('cb-4')), success({ paid: 13 }), T0 + 2000))).toBeInstanceOf(
        CallbackConflictError,
      )
      expect(await errorOf(store.putCallback(claimsOf(id('cb-4')), heartbeat(T0 + 3000), T0 + 3000))).toBeInstanceOf(
        CallbackGoneError,
      )
      expect((await stored(store, id('cb-4'))).callbacks?.pay?.completion).toMatchObject({ output: { paid: 12 } })
    })

    it.each([
      ['an older call of the node', waiting({ calls: 2, callback: aWait({ call: 2 }) })],
      ['a wait that timed out', waiting({ callback: aWait({ outcome: 'timeout' }) })],
      ['a node that completed', waiting({ status: 'completed', callback: aWait({ outcome: 'success' }) })],
      ['another attempt (a restart)', waiting({ attempt: 2 })],
      ['a node that asked for nothing', aNode({ calls: 1 })],
    ])('refuses a token of %s as gone, storing nothing', async (_, node) => {
      await store.createInstance(anInstance(id('cb-5'), { nodes: { pay: node } }))

      expect(await errorOf(store.putCallback(claimsOf(id('cb-5')), success(1), T0 + 1000))).toBeInstanceOf(
        CallbackGoneError,
      )
      expect((await stored(store, id('cb-5'))).callbacks).toBeUndefined()
    })

    it('refuses a token of a finished instance as gone, and of an unknown one as not found', async () => {
      await store.createInstance(anInstance(id('cb-6'), { status: 'canceled', nodes: { pay: waiting() } }))

      expect(await errorOf(store.putCallback(claimsOf(id('cb-6')), success(1), T0))).toBeInstanceOf(CallbackGoneError)
      expect(await errorOf(store.putCallback(claimsOf(id('cb-none')), success(1), T0))).toBeInstanceOf(
        InstanceNotFoundError,
      )
    })

    it('answers the completion the pass applied as a duplicate, and another as gone', async () => {
      const done = success({ paid: 12 })
      const fingerprint = done.completion?.fingerprint as string
      const node = aNode({ status: 'completed', calls: 1, callback: aWait({ outcome: 'success', fingerprint }) })
      await store.createInstance(anInstance(id('cb-7'), { nodes: { pay: node } }))

      expect(await store.putCallback(claimsOf(id('cb-7')), done, T0 + 5000)).toBe('duplicate')
      expect(await errorOf(store.putCallback(claimsOf(id('cb-7')), success(0), T0))).toBeInstanceOf(CallbackGoneError)
    })

    it("refuses a completion or heartbeat once the wait's timeout has passed by the writer's clock, as timed out", async () => {
      await store.createInstance(anInstance(id('cb-t1'), { nodes: { pay: waiting() }, dueAtMs: T0 + 3_600_000 }))
      const timeout = T0 + 3_600_000

      const late = await errorOf(store.putCallback(claimsOf(id('cb-t1')), success(1, timeout), timeout))
      expect(late).toBeInstanceOf(CallbackGoneError)
      expect((late as Error).message).toMatch(/timed out/)
      expect(await errorOf(store.putCallback(claimsOf(id('cb-t1')), heartbeat(timeout), timeout))).toBeInstanceOf(
        CallbackGoneError,
      )
      expect((await stored(store, id('cb-t1'))).callbacks).toBeUndefined()
      // A millisecond earlier, it is stored.
      expect(await store.putCallback(claimsOf(id('cb-t1')), success(1, timeout - 1), timeout - 1)).toBe('stored')
    })

    it('holds a completion to the heartbeat deadline, which a heartbeat stored for the wait moves on', async () => {
      const beating = waiting({ callback: aWait({ heartbeatSeconds: 60 }), nextAttemptAtMs: T0 + 60_000 })
      await store.createInstance(anInstance(id('cb-t2'), { nodes: { pay: beating }, dueAtMs: T0 + 60_000 }))
      const guard = (record: InstanceRecord) => ({
        maxBytes: 1_000_000,
        baseBytes: record.storedBytes ?? 0,
        heartbeatSeconds: 60,
      })
      const record = await stored(store, id('cb-t2'))

      const silent = await errorOf(
        store.putCallback(claimsOf(id('cb-t2')), success(1, T0 + 60_000), T0 + 60_000, guard(record)),
      )
      expect(silent).toBeInstanceOf(CallbackGoneError)
      expect((silent as Error).message).toMatch(/timed out/)
      // Written without knowing the interval (the writer's read found no wait yet), it is refused as well.
      expect(
        await errorOf(store.putCallback(claimsOf(id('cb-t2')), success(1, T0 + 60_000), T0 + 60_000)),
      ).toBeInstanceOf(CallbackGoneError)

      // A heartbeat is held to the timeout alone (its write reads nothing); stored, it keeps the wait alive.
      expect(await store.putCallback(claimsOf(id('cb-t2')), heartbeat(T0 + 60_000), T0 + 60_000)).toBe('stored')
      expect(
        await store.putCallback(claimsOf(id('cb-t2')), success(1, T0 + 119_999), T0 + 119_999, guard(record)),
      ).toBe('stored')
    })

    it('stores a completion written without knowing the heartbeat interval once it is read', async () => {
      const beating = waiting({ callback: aWait({ heartbeatSeconds: 60 }), nextAttemptAtMs: T0 + 60_000 })
      await store.createInstance(anInstance(id('cb-t3'), { nodes: { pay: beating }, dueAtMs: T0 + 60_000 }))
      const { storedBytes } = await stored(store, id('cb-t3'))
      const guard = { maxBytes: 1_000_000, baseBytes: storedBytes ?? 0 }

      expect(await store.putCallback(claimsOf(id('cb-t3')), success(1, T0 + 30_000), T0 + 30_000, guard)).toBe('stored')
    })

    it('keeps an output over 1 KB, and removes what the lease holder consumed in its write', async () => {
      await store.createInstance(anInstance(id('cb-8'), { nodes: { pay: waiting() } }))
      const large = { blob: 'x'.repeat(3000) }
      await store.putCallback(claimsOf(id('cb-8')), success(large), T0 + 1000)
      expect((await stored(store, id('cb-8'))).callbacks?.pay?.completion).toMatchObject({ output: large })

      const held = await lease(store, id('cb-8'), T0 + 2000)
      const seen = (await stored(store, id('cb-8'))).callbacks?.pay as CallbackArrival
      const node = aNode({ status: 'completed', calls: 1, callback: aWait({ outcome: 'success' }) })
      await held.writer.write({ updatedAtMs: T0 + 2000, nodes: { pay: node }, clearCallbacks: { pay: seen } })

      expect((await stored(store, id('cb-8'))).callbacks).toBeUndefined()
    })

    it('takes the arrival of a wait the lease holder opened after consuming an earlier one', async () => {
      await store.createInstance(anInstance(id('cb-9'), { nodes: { pay: waiting() } }))
      await store.putCallback(claimsOf(id('cb-9')), heartbeat(T0 + 10), T0 + 10)
      const held = await lease(store, id('cb-9'), T0 + 100)
      const seen = (await stored(store, id('cb-9'))).callbacks?.pay as CallbackArrival
      await held.writer.write({
        updatedAtMs: T0 + 100,
        nodes: { pay: waiting({ calls: 2, callback: aWait({ call: 2, fence: held.fence }) }) },
        clearCallbacks: { pay: seen },
      })

      const claims = claimsOf(id('cb-9'), { call: 2, fence: held.fence })
      expect(await store.putCallback(claims, { call: 2, fence: held.fence, heartbeatAtMs: T0 + 200 }, T0 + 200)).toBe(
        'stored',
      )
      expect((await stored(store, id('cb-9'))).callbacks?.pay).toMatchObject({ call: 2, heartbeatAtMs: T0 + 200 })
    })
  })

  describe(`${name}: callbacks and the instance's budget`, () => {
    let store: InstanceStore
    beforeEach(async () => {
      store = await makeStore()
      run += 1
    })

    const counted = (arrival: CallbackArrival, storedBytes: number): CallbackArrival => ({ ...arrival, storedBytes })

    it('counts a completion in the stored bytes, and refuses one the budget has no room for, storing nothing', async () => {
      await store.createInstance(anInstance(id('cbb-1'), { nodes: { pay: waiting() }, dueAtMs: T0 + 3_600_000 }))
      const before = (await stored(store, id('cbb-1'))).storedBytes as number
      const arrival = counted(success({ blob: 'x'.repeat(3000) }), 3100)

      const refused = await errorOf(
        store.putCallback(claimsOf(id('cbb-1')), arrival, T0 + 1000, { maxBytes: before + 3099, baseBytes: before }),
      )

      expect(refused).toBeInstanceOf(PayloadTooLargeError)
      expect(refused).toMatchObject({ httpStatus: 413, details: { field: 'output' } })
      const untouched = await stored(store, id('cbb-1'))
      expect(untouched.callbacks).toBeUndefined()
      expect(untouched.storedBytes).toBe(before)
      expect(untouched.dueAtMs).toBe(T0 + 3_600_000)

      const guard = { maxBytes: before + 3100, baseBytes: before }
      expect(await store.putCallback(claimsOf(id('cbb-1')), arrival, T0 + 1000, guard)).toBe('stored')
      const record = await stored(store, id('cbb-1'))
      expect(record.storedBytes).toBe(before + 3100)
      expect(record.callbacks?.pay?.storedBytes).toBe(3100)
      // The same completion again is a duplicate, counted once.
      expect(await store.putCallback(claimsOf(id('cbb-1')), arrival, T0 + 2000, guard)).toBe('duplicate')
      expect((await stored(store, id('cbb-1'))).storedBytes).toBe(before + 3100)
    })

    it('keeps, counted, an arrival stored after the one a write clears was read, and deletes neither content', async () => {
      await store.createInstance(anInstance(id('cbb-3'), { nodes: { pay: aNode({ calls: 1, callback: aWait() }) } }))
      const before = (await stored(store, id('cbb-3'))).storedBytes as number
      const guard = { maxBytes: before + 100_000, baseBytes: before }
      // The first call's completion, read by the lease holder; the node's next call is in flight under its lease.
      await store.putCallback(
        claimsOf(id('cbb-3')),
        counted(success({ first: 'f'.repeat(2000) }), 2100),
        T0 + 10,
        guard,
      )
      const held = await lease(store, id('cbb-3'), T0 + 100)
      const seen = (await stored(store, id('cbb-3'))).callbacks?.pay as CallbackArrival
      await held.writer.write({
        updatedAtMs: T0 + 100,
        nodes: {
          pay: aNode({
            calls: 2,
            callback: aWait({ outcome: 'timeout' }),
            attemptStarted: { step: 'run', fence: held.fence, atMs: T0 + 100 },
          }),
        },
      })
      // The next call's completion arrives early, replacing the first (and taking its bytes off)…
      const claims = claimsOf(id('cbb-3'), { call: 2, fence: held.fence })
      const second = { ...counted(success({ second: 's'.repeat(2000) }), 2200), call: 2, fence: held.fence }
      expect(await store.putCallback(claims, second, T0 + 200, guard)).toBe('stored')
      // …and a write that clears the first, as it read it, leaves the second.
      await held.writer.write({ updatedAtMs: T0 + 300, clearCallbacks: { pay: seen } })

      const record = await stored(store, id('cbb-3'))
      expect(record.callbacks?.pay).toMatchObject({ call: 2, storedBytes: 2200 })
      expect(record.callbacks?.pay?.completion).toMatchObject({ output: { second: 's'.repeat(2000) } })
      expect(record.storedBytes).toBe(before + 2200)

      // Cleared as read, it goes with its bytes.
      await held.writer.write({
        updatedAtMs: T0 + 400,
        clearCallbacks: { pay: record.callbacks?.pay as CallbackArrival },
      })
      const cleared = await stored(store, id('cbb-3'))
      expect(cleared.callbacks).toBeUndefined()
      expect(cleared.storedBytes).toBe(before)
    })

    it('takes off the bytes of an arrival of an earlier call that a new one replaces', async () => {
      await store.createInstance(anInstance(id('cbb-2'), { nodes: { pay: aNode({ calls: 1, callback: aWait() }) } }))
      const before = (await stored(store, id('cbb-2'))).storedBytes as number
      const guard = { maxBytes: before + 10_000, baseBytes: before }
      // The first call's completion arrives; its node is retried (the pass that would clear it has not yet).
      await store.putCallback(claimsOf(id('cbb-2')), counted(success('first'), 700), T0 + 10, guard)
      const held = await lease(store, id('cbb-2'), T0 + 100)
      await held.writer.write({
        updatedAtMs: T0 + 100,
        nodes: { pay: waiting({ calls: 2, callback: aWait({ call: 2, fence: held.fence }) }) },
      })
      expect((await stored(store, id('cbb-2'))).storedBytes).toBe(before + 700)

      const claims = claimsOf(id('cbb-2'), { call: 2, fence: held.fence })
      const second = { ...counted(success('second'), 400), call: 2, fence: held.fence }
      expect(await store.putCallback(claims, second, T0 + 200, guard)).toBe('stored')

      const record = await stored(store, id('cbb-2'))
      expect(record.callbacks?.pay).toMatchObject({ call: 2, storedBytes: 400 })
      expect(record.storedBytes).toBe(before + 400)
    })
  })

  describe(`${name}: the outbox`, () => {
    let store: InstanceStore
    beforeEach(async () => {
      store = await makeStore()
      run += 1
    })

    const indexed = async (beforeMs: number): Promise<{ instanceId: string; sinceMs: number }[]> => {
      const found: { instanceId: string; sinceMs: number }[] = []
      for (let shard = 0; shard < store.outboxShards; shard++) {
        const { items } = await store.queryOutbox(shard, beforeMs, 100)
        found.push(...items.filter((item) => item.instanceId.endsWith(`-${run}`)))
      }
      return found
    }

    it('keeps the events a new instance is created with, and lists it in the outbox index since then', async () => {
      await store.createInstance(anInstance(id('ob-1'), { outbox: [anEvent(id('ob-1'), 0, T0)] }))

      expect((await stored(store, id('ob-1'))).outbox).toEqual([anEvent(id('ob-1'), 0, T0)])
      expect(await indexed(T0)).toEqual([{ instanceId: id('ob-1'), sinceMs: T0 }])
      expect(await indexed(T0 - 1)).toEqual([])
    })

    it('adds the events a write emits, and keeps the index since the oldest', async () => {
      await store.createInstance(anInstance(id('ob-2'), { outbox: [anEvent(id('ob-2'), 0, T0)] }))
      const held = await lease(store, id('ob-2'), T0 + 10)
      await held.writer.write({ updatedAtMs: T0 + 10, emits: [anEvent(id('ob-2'), 1, T0 + 10)] })

      const ids = (await stored(store, id('ob-2'))).outbox?.map((event) => event.id).sort()
      expect(ids).toEqual([`${id('ob-2')}:1.0`, `${id('ob-2')}:1.1`])
      expect(await indexed(T0 + 10)).toEqual([{ instanceId: id('ob-2'), sinceMs: T0 }])
    })

    it('removes published events; the instance leaves the index with the last one', async () => {
      const events = [anEvent(id('ob-3'), 0), anEvent(id('ob-3'), 1), anEvent(id('ob-3'), 2)]
      await store.createInstance(anInstance(id('ob-3'), { outbox: events }))

      await store.clearOutbox(id('ob-3'), [events[1] as LifecycleEvent])
      expect((await stored(store, id('ob-3'))).outbox?.map((event) => event.id).sort()).toEqual([
        `${id('ob-3')}:1.0`,
        `${id('ob-3')}:1.2`,
      ])
      expect((await indexed(T0)).map((item) => item.instanceId)).toEqual([id('ob-3')])

      await store.clearOutbox(id('ob-3'), [events[0] as LifecycleEvent, events[2] as LifecycleEvent])
      expect((await stored(store, id('ob-3'))).outbox ?? []).toEqual([])
      expect(await indexed(T0 + 60_000)).toEqual([])
    })

    it('clears all of an outbox in one go, and takes a clear of what is gone already', async () => {
      const events = [anEvent(id('ob-4'), 0), anEvent(id('ob-4'), 1)]
      await store.createInstance(anInstance(id('ob-4'), { outbox: events }))

      await store.clearOutbox(id('ob-4'), events)
      await store.clearOutbox(id('ob-4'), events)

      expect((await stored(store, id('ob-4'))).outbox ?? []).toEqual([])
      expect(await indexed(T0 + 60_000)).toEqual([])
    })

    it('shows the outbox to an acquisition that is refused, so that it can be published', async () => {
      await store.createInstance(anInstance(id('ob-5'), { status: 'completed', outbox: [anEvent(id('ob-5'), 0)] }))

      const result = await store.acquireLease(id('ob-5'), 'owner', T0, T0 + LEASE_MS)

      expect(result.kind).toBe('terminal')
      expect(result.record.outbox).toEqual([anEvent(id('ob-5'), 0)])
    })
  })
}
