import { beforeEach, describe, expect, it } from 'vitest'
import type { NormalisedConfig } from '../../src/core/definition.js'
import {
  IllegalStateError,
  InstanceNotFoundError,
  ItemTooLargeError,
  LeaseLostError,
  LockConflictError,
  PayloadTooLargeError,
  StaleEventError,
  ValidationError,
} from '../../src/core/errors.js'
import { stateOf } from '../../src/core/lease-rules.js'
import { instanceStoredBytes } from '../../src/core/limits.js'
import {
  type CountQuery,
  EventReplacedError,
  InstanceExistsError,
  type InstanceRecord,
  type InstanceStore,
  type InstanceSummary,
  type Lease,
  type LeaseWriter,
  type ListPage,
  type ListQuery,
  type NodeEventRecord,
  type NodeRecord,
} from '../../src/core/store.js'
import {
  INSTANCE_STATUSES,
  type InstanceStatus,
  isTerminalInstanceStatus,
  isTerminalNodeStatus,
  STORED_NODE_STATUSES,
  type StoredNodeStatus,
} from '../../src/schemas/statuses.js'
import { aNode, anInstance, T0 } from '../support/records.js'

const SECOND = 1000
const LEASE_MS = 30 * SECOND

// From the status vocabulary, so that a new status is covered where it belongs (timed_out, skipped).
const TERMINAL_STATUSES: InstanceStatus[] = INSTANCE_STATUSES.filter(isTerminalInstanceStatus)
const LIVE_STATUSES: InstanceStatus[] = INSTANCE_STATUSES.filter((status) => !isTerminalInstanceStatus(status))
const TERMINAL_NODE_STATUSES: StoredNodeStatus[] = STORED_NODE_STATUSES.filter(isTerminalNodeStatus)
const LIVE_NODE_STATUSES: StoredNodeStatus[] = STORED_NODE_STATUSES.filter((status) => !isTerminalNodeStatus(status))

const anEvent = (eventTs: number, content: NodeEventRecord['content'] = { ok: true }): NodeEventRecord => ({
  eventTs,
  content,
  receivedAtMs: T0,
})

/** The settled rejection of `promise`; fails the test when it resolves. */
const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
    },
    (error: unknown) => error,
  )

/** A lease taken for the test, with the writer the store handed out with it. */
type Held = Lease & { writer: LeaseWriter }

const acquired = async (store: InstanceStore, id: string, owner: string, nowMs: number): Promise<Held> => {
  const result = await store.acquireLease(id, owner, nowMs, nowMs + LEASE_MS)
  if (result.kind !== 'acquired') throw new Error(`expected to acquire '${id}', got ${result.kind}`)
  return { ...result.lease, writer: result.writer }
}

const stored = async (store: InstanceStore, id: string): Promise<InstanceRecord> => {
  const record = await store.getInstance(id)
  if (!record) throw new Error(`instance '${id}' is not stored`)
  return record
}

const MAX_PAGES = 200

/** Follows cursors to the end, keeping each page so that paging itself can be checked. */
export const allPages = async (store: InstanceStore, query: ListQuery): Promise<ListPage[]> => {
  const pages: ListPage[] = []
  let cursor: string | undefined
  do {
    const page = await store.listInstances(cursor === undefined ? query : { ...query, cursor })
    pages.push(page)
    cursor = page.cursor
    if (pages.length > MAX_PAGES) throw new Error(`paging did not end after ${MAX_PAGES} pages`)
  } while (cursor !== undefined)
  return pages
}

const listIds = async (store: InstanceStore, query: ListQuery): Promise<string[]> =>
  (await allPages(store, query)).flatMap((page) => page.items.map((item) => item.id))

const ALL_TYPES = ['orders', 'billing', 'shipping']

/**
 * A small population for the filter rules. a08 and b08 share a creation time, so ties are broken by id. Rows are
 * created out of order so that insertion order cannot pass for creation order.
 */
const LIST_FIXTURE: [id: string, type: string, businessId: string | undefined, InstanceStatus, seconds: number][] = [
  ['a05', 'billing', 'cust-2', 'init', 5],
  ['a01', 'orders', 'cust-1', 'running', 1],
  ['a09', 'billing', undefined, 'failed', 9],
  ['b08', 'billing', 'cust-1', 'running', 8],
  ['a03', 'orders', 'cust-2', 'failed', 3],
  ['a07', 'shipping', 'cust-1', 'canceled', 7],
  ['a02', 'billing', 'cust-1', 'completed', 2],
  ['a08', 'orders', undefined, 'running', 8],
  ['a04', 'shipping', undefined, 'running', 4],
  ['a06', 'orders', 'cust-1', 'completed', 6],
]

const seedListFixture = async (store: InstanceStore): Promise<void> => {
  for (const [id, workflowType, businessId, status, seconds] of LIST_FIXTURE) {
    await store.createInstance(
      anInstance(id, {
        workflowType,
        status,
        createdAtMs: T0 + seconds * SECOND,
        ...(businessId === undefined ? {} : { businessId }),
      }),
    )
  }
}

/** Filter rules and the ids they select, newest first. */
const FILTER_CASES: { rule: string; query: CountQuery; newestFirst: string[] }[] = [
  { rule: 'one workflow type', query: { workflowTypes: ['orders'] }, newestFirst: ['a08', 'a06', 'a03', 'a01'] },
  {
    rule: 'several workflow types, merged by creation time then id',
    query: { workflowTypes: ['orders', 'billing'] },
    newestFirst: ['a09', 'b08', 'a08', 'a06', 'a05', 'a03', 'a02', 'a01'],
  },
  {
    rule: 'one status',
    query: { workflowTypes: ALL_TYPES, statuses: ['running'] },
    newestFirst: ['b08', 'a08', 'a04', 'a01'],
  },
  {
    rule: 'several statuses',
    query: { workflowTypes: ALL_TYPES, statuses: ['completed', 'canceled'] },
    newestFirst: ['a07', 'a06', 'a02'],
  },
  {
    rule: 'a business id across types',
    query: { workflowTypes: ALL_TYPES, businessId: 'cust-1' },
    newestFirst: ['b08', 'a07', 'a06', 'a02', 'a01'],
  },
  {
    rule: 'a business id and a single workflow type',
    query: { workflowTypes: ['orders'], businessId: 'cust-1' },
    newestFirst: ['a06', 'a01'],
  },
  {
    rule: 'a business id, a single workflow type and a status',
    query: { workflowTypes: ['billing'], businessId: 'cust-1', statuses: ['running'] },
    newestFirst: ['b08'],
  },
  {
    rule: 'a creation range, both ends inclusive',
    query: { workflowTypes: ALL_TYPES, createdFromMs: T0 + 3 * SECOND, createdToMs: T0 + 6 * SECOND },
    newestFirst: ['a06', 'a05', 'a04', 'a03'],
  },
  {
    rule: 'a lower creation bound only',
    query: { workflowTypes: ALL_TYPES, createdFromMs: T0 + 8 * SECOND },
    newestFirst: ['a09', 'b08', 'a08'],
  },
  {
    rule: 'an upper creation bound only',
    query: { workflowTypes: ALL_TYPES, createdToMs: T0 + 2 * SECOND },
    newestFirst: ['a02', 'a01'],
  },
  {
    rule: 'a business id and a creation range',
    query: { workflowTypes: ALL_TYPES, businessId: 'cust-2', createdFromMs: T0 + 4 * SECOND },
    newestFirst: ['a05'],
  },
  { rule: 'an unknown workflow type', query: { workflowTypes: ['unknown'] }, newestFirst: [] },
  {
    rule: 'a status no instance of the type has',
    query: { workflowTypes: ['orders'], statuses: ['init'] },
    newestFirst: [],
  },
]

const PAGING_TYPES = ['alpha', 'beta', 'gamma']
const PAGING_STATUSES: InstanceStatus[] = ['running', 'completed', 'init', 'failed']
const PAGING_SIZE = 23

/** Creation times are a permutation of 1..23 s, so every instance has its own time and creation order is mixed. */
const pagingRow = (n: number) => ({
  id: `p${String(n).padStart(2, '0')}`,
  workflowType: PAGING_TYPES[n % PAGING_TYPES.length] as string,
  status: PAGING_STATUSES[n % PAGING_STATUSES.length] as InstanceStatus,
  businessId: n % 2 === 0 ? 'even' : 'odd',
  createdAtMs: T0 + (((n * 7) % PAGING_SIZE) + 1) * SECOND,
})
const PAGING_ROWS = Array.from({ length: PAGING_SIZE }, (_, n) => pagingRow(n))

const PAGING_CASES: { rule: string; query: CountQuery; keep: (row: (typeof PAGING_ROWS)[number]) => boolean }[] = [
  { rule: 'all three types', query: { workflowTypes: PAGING_TYPES }, keep: () => true },
  {
    rule: 'a status filter',
    query: { workflowTypes: PAGING_TYPES, statuses: ['running', 'failed'] },
    keep: (row) => row.status === 'running' || row.status === 'failed',
  },
  {
    rule: 'a business id',
    query: { workflowTypes: PAGING_TYPES, businessId: 'even' },
    keep: (row) => row.businessId === 'even',
  },
  {
    rule: 'a creation range',
    query: { workflowTypes: PAGING_TYPES, createdFromMs: T0 + 4 * SECOND, createdToMs: T0 + 19 * SECOND },
    keep: (row) => row.createdAtMs >= T0 + 4 * SECOND && row.createdAtMs <= T0 + 19 * SECOND,
  },
]

const aConfig = (name: string): NormalisedConfig => ({
  id: 'orders',
  name,
  nodes: [
    { id: 'charge', next_nodes: ['ship'], fail_max_count: 3 },
    { id: 'ship', next_nodes: [] },
  ],
})

/**
 * The behaviour every InstanceStore must have. The engine's correctness under concurrency rests on these rules, so
 * each implementation runs this suite against a fresh, empty store per test (`options` as the store takes them).
 */
export const describeStoreContract = (
  name: string,
  makeStore: (options?: { maxPagesPerList?: number }) => Promise<InstanceStore>,
) =>
  describe(`${name} honours the InstanceStore contract`, () => {
    let store: InstanceStore

    beforeEach(async () => {
      store = await makeStore()
    })

    describe('createInstance and getInstance', () => {
      it('returns exactly the record that was created, with nodes, events and optional fields', async () => {
        const record = anInstance('full', {
          businessId: 'order-4711',
          status: 'running',
          input: { amount: 12.5, items: ['a', 'b'], nested: { ok: true, none: null } },
          createdAtMs: T0,
          updatedAtMs: T0 + 5 * SECOND,
          definitionVersion: '00abcdef123456',
          nodes: {
            charge: aNode({
              status: 'pending',
              failCount: 2,
              attempt: 3,
              waits: 4,
              nextAttemptAtMs: T0 + 60 * SECOND,
              seenEventTs: 1_767_268_800,
              seenEventAtMs: T0 + 3 * SECOND,
              output: { charged: 12.5, receipt: { id: 'r-1' } },
              workflowContext: { amount: 13 },
              preNodeContext: { root: {} },
              resetOnRestart: true,
            }),
            ship: aNode({ status: 'completed', createdAtMs: T0 + SECOND, updatedAtMs: T0 + 2 * SECOND }),
          },
          events: {
            charge: { eventTs: 1_767_268_800, content: { paid: true }, receivedAtMs: T0 + 3 * SECOND },
            ship: { eventTs: 1, content: null, receivedAtMs: T0 + 4 * SECOND },
          },
          eventSeq: 2,
          fence: 7,
          leaseOwner: 'runner-1',
          leaseUntilMs: T0 + LEASE_MS,
          dueAtMs: T0 + 60 * SECOND,
          requestHash: 'sha256:abc',
        })

        await store.createInstance(record)

        // Plus what it stores, as the engine counts it: the start of the running total every write adds to.
        expect(await store.getInstance('full')).toStrictEqual({ ...record, storedBytes: instanceStoredBytes(record) })
      })

      it('returns a minimal record without inventing optional fields', async () => {
        const record = anInstance('minimal')

        await store.createInstance(record)

        expect(await store.getInstance('minimal')).toStrictEqual({
          ...record,
          storedBytes: instanceStoredBytes(record),
        })
      })

      it('returns undefined for an id that was never created', async () => {
        expect(await store.getInstance('nobody')).toBeUndefined()
      })

      it('refuses a taken id with InstanceExistsError carrying the stored record, and keeps that record', async () => {
        const first = anInstance('dup', { input: { n: 1 }, requestHash: 'first' })
        await store.createInstance(first)

        const error = await rejectionOf(store.createInstance(anInstance('dup', { input: { n: 2 } })))

        expect(error).toBeInstanceOf(InstanceExistsError)
        const stored = { ...first, storedBytes: instanceStoredBytes(first) }
        expect((error as InstanceExistsError).existing).toStrictEqual(stored)
        expect(await store.getInstance('dup')).toStrictEqual(stored)
      })

      it('creates the instance already leased when given a lease', async () => {
        const lease: Lease = { instanceId: 'leased', owner: 'creator', fence: 1, untilMs: T0 + LEASE_MS }

        const writer = await store.createLeased(anInstance('leased'), lease)

        expect(await stored(store, 'leased')).toMatchObject({
          leaseOwner: 'creator',
          fence: 1,
          leaseUntilMs: lease.untilMs,
        })
        await expect(writer.write({ updatedAtMs: T0 + 1, status: 'running' })).resolves.toEqual({
          eventSeq: 0,
        })
        await expect(store.acquireLease('leased', 'other', T0 + 1, T0 + LEASE_MS)).rejects.toBeInstanceOf(
          LockConflictError,
        )
      })
    })

    describe('getInstanceStatus', () => {
      it('reads the status, type and creation time, and nothing for an unknown id', async () => {
        await store.createInstance(anInstance('watched', { status: 'init', createdAtMs: T0 + 7 }))
        expect(await store.getInstanceStatus('watched')).toEqual({
          status: 'init',
          workflowType: 'orders',
          createdAtMs: T0 + 7,
        })
        expect(await store.getInstanceStatus('no-such-instance')).toBeUndefined()
      })

      it('follows status changes when given the view it read before', async () => {
        await store.createInstance(anInstance('followed', { status: 'init' }))
        const first = await store.getInstanceStatus('followed')
        const lease = await acquired(store, 'followed', 'owner-a', T0)
        await lease.writer.write({ updatedAtMs: T0 + SECOND, status: 'completed', release: true })
        expect(await store.getInstanceStatus('followed', first)).toEqual({
          status: 'completed',
          workflowType: 'orders',
          createdAtMs: T0,
        })
      })
    })

    describe('acquireLease', () => {
      it('throws InstanceNotFoundError for an unknown id and creates nothing', async () => {
        const error = await rejectionOf(store.acquireLease('ghost', 'runner', T0, T0 + LEASE_MS))

        expect(error).toBeInstanceOf(InstanceNotFoundError)
        expect(error).toMatchObject({ instanceId: 'ghost' })
        expect(await store.getInstance('ghost')).toBeUndefined()
      })

      it.each(LIVE_STATUSES)(
        'acquires a free %s instance and returns the record read with the lease',
        async (status) => {
          await store.createInstance(anInstance('i1', { status, fence: 4, dueAtMs: T0 - SECOND }))

          const result = await store.acquireLease('i1', 'runner-a', T0, T0 + LEASE_MS)

          const lease = { instanceId: 'i1', owner: 'runner-a', fence: 5, untilMs: T0 + LEASE_MS }
          const { writer, ...granted } = result.kind === 'acquired' ? result : { ...result, writer: undefined }
          expect(granted).toStrictEqual({
            kind: 'acquired',
            lease,
            record: await stored(store, 'i1'),
            previous: { dueAtMs: T0 - SECOND },
          })
          // The writes of this lease come with it.
          expect(writer?.lease).toStrictEqual(lease)
          // Due by the lease end: a holder that dies is resumed by the tick once the lease has run out.
          expect(result.record).toMatchObject({
            status,
            fence: 5,
            leaseOwner: 'runner-a',
            leaseUntilMs: T0 + LEASE_MS,
            dueAtMs: T0 + LEASE_MS,
          })
        },
      )

      it('keeps the due time of a due pass: due by now, it is due by the lease end', async () => {
        await store.createInstance(anInstance('i1', { dueAtMs: T0 - SECOND }))

        const result = await store.acquireLease('i1', 'runner-a', T0, T0 + LEASE_MS, { dueBy: T0 })

        expect(result.kind).toBe('acquired')
        expect((await stored(store, 'i1')).dueAtMs).toBe(T0 - SECOND)
      })

      describe('the attempt a release named', () => {
        const NEXT = T0 + 60 * SECOND
        const pending = aNode({ status: 'pending', calls: 1, nextAttemptAtMs: NEXT })
        /** `wait` polled: its release named the next check of `named`, due a minute later. */
        const released = async (
          named = 'wait',
          nodes: Record<string, NodeRecord> = { wait: pending, other: pending },
        ) => {
          await store.createInstance(anInstance('i1', { nodes }))
          const lease = await acquired(store, 'i1', 'runner', T0)
          await lease.writer.write({
            updatedAtMs: T0 + 1,
            release: true,
            dueAtMs: NEXT,
            armNext: { nodeId: named, step: 'check' },
          })
        }
        const duePass = async (owner: string, nowMs: number) => {
          const result = await store.acquireLease('i1', owner, nowMs, nowMs + LEASE_MS, { dueBy: nowMs })
          if (result.kind !== 'acquired') throw new Error(`expected to acquire, got ${result.kind}`)
          return result
        }

        it('is recorded as started, and counted, by the acquisition of a due pass, for every reader', async () => {
          await released()

          const result = await duePass('poller', NEXT)

          const started = { step: 'check', atMs: NEXT, fence: result.lease.fence }
          expect(result.record.nodes.wait).toMatchObject({ calls: 2, attemptStarted: started })
          expect((await stored(store, 'i1')).nodes.wait).toMatchObject({ calls: 2, attemptStarted: started })
        })

        it('is not recorded by any other acquisition', async () => {
          await released()

          const result = await store.acquireLease('i1', 'operator', NEXT, NEXT + LEASE_MS)

          expect(result.kind === 'acquired' && result.record.nodes.wait).toEqual(pending)
          expect((await stored(store, 'i1')).nodes.wait).toEqual(pending)
        })

        it('leaves with the write that stores its node, and is named no more after a release without it', async () => {
          await released()
          const result = await duePass('poller', NEXT)
          const outcome = aNode({ ...pending, calls: 2, waits: 1, nextAttemptAtMs: NEXT + 60 * SECOND })

          await result.writer.write({ updatedAtMs: NEXT + 1, nodes: { wait: outcome } })
          expect((await stored(store, 'i1')).nodes.wait).toEqual(outcome)
          await result.writer.write({ updatedAtMs: NEXT + 2, release: true, dueAtMs: NEXT + 60 * SECOND })

          const next = await duePass('poller-2', NEXT + 60 * SECOND)
          expect(next.record.nodes.wait).toEqual(outcome)
        })

        it("is the check of an event's node, for the pass the event makes due", async () => {
          await store.createInstance(anInstance('i1', { nodes: { wait: pending, other: pending } }))
          await store.putEvent('i1', 'other', anEvent(1), T0 + 5)

          const result = await duePass('poller', T0 + 5)

          expect(result.record.nodes.wait).toEqual(pending)
          expect(result.record.nodes.other).toMatchObject({ calls: 2, attemptStarted: { step: 'check', atMs: T0 + 5 } })
        })

        it('is withdrawn by a lease given up without making it, and kept by one that made it', async () => {
          await released()
          const withdrawn = await duePass('gave-up', NEXT)
          await withdrawn.writer.abandon({ attemptsNotMade: true })
          expect((await stored(store, 'i1')).nodes.wait).toEqual(pending)

          const made = await duePass('made-it', NEXT + 1)
          await made.writer.abandon({ attemptsNotMade: false })
          expect((await stored(store, 'i1')).nodes.wait).toMatchObject({
            calls: 2,
            attemptStarted: { step: 'check', atMs: NEXT + 1, fence: made.lease.fence },
          })
        })

        it('is not recorded while one a dead runner recorded is kept, whatever is named since', async () => {
          await released()
          const dead = await duePass('dead', NEXT)
          await store.putEvent('i1', 'other', anEvent(1), NEXT + 1)

          const next = await duePass('next', NEXT + LEASE_MS + 1)

          expect(next.record.nodes.wait?.attemptStarted?.fence).toBe(dead.lease.fence)
          expect(next.record.nodes.other).toEqual(pending)
        })

        it('is named no more once the due time is set for something else', async () => {
          await released()
          await store.markDue('i1', T0 + 10)
          const early = await duePass('early', T0 + 10)
          expect(early.record.nodes.wait).toEqual(pending)
          await early.writer.write({
            updatedAtMs: T0 + 11,
            release: true,
            dueAtMs: NEXT,
            armNext: { nodeId: 'wait', step: 'check' },
          })

          // An operation's acquisition makes it due by its lease end; its holder stops without a write.
          await store.acquireLease('i1', 'operator', T0 + 20, T0 + 20 + LEASE_MS)
          const after = await duePass('poller', T0 + 21 + LEASE_MS)
          expect(after.record.nodes.wait).toEqual(pending)
        })

        it('is the one the release names, whatever an event named while the lease was held', async () => {
          await released()
          const held = await duePass('poller', NEXT)
          await store.putEvent('i1', 'other', anEvent(1), NEXT + 1)
          const polled = aNode({ ...pending, calls: 2, waits: 1, nextAttemptAtMs: NEXT + 60 * SECOND })
          await held.writer.write({
            updatedAtMs: NEXT + 2,
            release: true,
            nodes: { wait: polled },
            dueAtMs: NEXT + 60 * SECOND,
            armNext: { nodeId: 'wait', step: 'check' },
          })

          const next = await duePass('poller-2', NEXT + 60 * SECOND)
          expect(next.record.nodes.wait).toMatchObject({ calls: 3, attemptStarted: { step: 'check' } })
          expect(next.record.nodes.other).toEqual(pending)
        })

        it('stays recorded when the lease that made it releases without storing its node', async () => {
          await released()
          const made = await duePass('poller', NEXT)
          const parked = { code: 'ITEM_TOO_LARGE' as const, reason: 'refused', atMs: NEXT + 1 }

          await made.writer.write({ updatedAtMs: NEXT + 1, release: true, parked, recordedAttemptMade: true })

          expect((await stored(store, 'i1')).nodes.wait).toMatchObject({
            calls: 2,
            attemptStarted: { step: 'check', fence: made.lease.fence },
          })
        })

        it('is recorded again once what a dead runner recorded, that nobody sees as started, is gone', async () => {
          // A node that does not exist (an event for a node not started names it so): nothing is recorded for it.
          await released('ghost', { wait: pending })
          await duePass('dead', NEXT)
          const next = await duePass('next', NEXT + LEASE_MS + 1)
          await next.writer.write({
            updatedAtMs: NEXT + LEASE_MS + 2,
            release: true,
            dueAtMs: NEXT + LEASE_MS + 10,
            armNext: { nodeId: 'wait', step: 'check' },
          })

          const last = await duePass('last', NEXT + LEASE_MS + 10)
          expect(last.record.nodes.wait).toMatchObject({ calls: 2, attemptStarted: { step: 'check' } })
        })

        it('stays recorded by a lease that ended without a write, for the next holder to count', async () => {
          await released()
          const dead = await duePass('dead', NEXT)

          const next = await duePass('next', NEXT + LEASE_MS + 1)

          expect(next.record.nodes.wait).toMatchObject({
            calls: 2,
            attemptStarted: { step: 'check', atMs: NEXT, fence: dead.lease.fence },
          })
          expect(next.lease.fence).toBe(dead.lease.fence + 1)
        })
      })

      it('unparks the instance it acquires and reports what it was parked for', async () => {
        const parked = { code: 'WORKER_MISSING' as const, reason: "no worker for 'b'", atMs: T0 - SECOND }
        await store.createInstance(anInstance('i1', { parked }))

        const result = await store.acquireLease('i1', 'runner-a', T0, T0 + LEASE_MS)

        expect(result.kind === 'acquired' && result.previous).toEqual({ parked })
        expect(await stored(store, 'i1')).not.toHaveProperty('parked')
      })

      it('unparks an instance a due pass acquires, should it find one parked and due', async () => {
        const parked = { code: 'WORKER_MISSING' as const, reason: "no worker for 'b'", atMs: T0 - SECOND }
        await store.createInstance(anInstance('i1', { parked, dueAtMs: T0 }))

        const result = await store.acquireLease('i1', 'runner-a', T0, T0 + LEASE_MS, { dueBy: T0 })

        expect(result.kind === 'acquired' && result.previous).toEqual({ dueAtMs: T0, parked })
        expect(result.kind === 'acquired' && result.record).not.toHaveProperty('parked')
        expect(await stored(store, 'i1')).not.toHaveProperty('parked')
      })

      it('takes a terminal instance left in the due index out of it, unless a live lease holds it', async () => {
        await store.createInstance(anInstance('done', { status: 'completed', dueAtMs: T0 }))
        await store.createInstance(anInstance('held', { status: 'failed', dueAtMs: T0 }))
        await store.createInstance(anInstance('live', { status: 'running', dueAtMs: T0 }))
        await store.acquireLease('held', 'op', T0, T0 + LEASE_MS, { allowTerminal: true })

        for (const id of ['done', 'held', 'live']) await store.clearTerminalDue(id, T0 + 1)

        expect((await stored(store, 'done')).dueAtMs).toBeUndefined()
        expect((await stored(store, 'held')).dueAtMs).toBe(T0 + LEASE_MS)
        expect((await stored(store, 'live')).dueAtMs).toBe(T0)
      })

      it('increments the fence on every acquisition', async () => {
        await store.createInstance(anInstance('i1'))

        const fences: number[] = []
        for (const [index, owner] of ['a', 'b', 'c'].entries()) {
          const lease = await acquired(store, 'i1', owner, T0 + index * SECOND)
          fences.push(lease.fence)
          await lease.writer.abandon()
        }

        expect(fences).toEqual([1, 2, 3])
        expect((await stored(store, 'i1')).fence).toBe(3)
      })

      it.each([
        { when: 'well before it ends', nowMs: T0 + SECOND },
        { when: 'at the very millisecond it ends', nowMs: T0 + LEASE_MS },
      ])('refuses a live lease of another owner ($when) with LockConflictError', async ({ nowMs }) => {
        await store.createInstance(anInstance('i1'))
        await acquired(store, 'i1', 'holder', T0)
        const before = await stored(store, 'i1')

        const error = await rejectionOf(store.acquireLease('i1', 'intruder', nowMs, nowMs + LEASE_MS))

        expect(error).toBeInstanceOf(LockConflictError)
        expect(error).toMatchObject({ instanceId: 'i1', leaseUntilMs: T0 + LEASE_MS })
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it('takes over a lease that has expired and grows the fence', async () => {
        await store.createInstance(anInstance('i1'))
        const old = await acquired(store, 'i1', 'holder', T0)
        const later = old.untilMs + 1

        const result = await store.acquireLease('i1', 'successor', later, later + LEASE_MS)

        expect(result.kind).toBe('acquired')
        expect(result.kind === 'acquired' && result.lease.fence).toBeGreaterThan(old.fence)
        expect(await stored(store, 'i1')).toMatchObject({
          leaseOwner: 'successor',
          leaseUntilMs: later + LEASE_MS,
          fence: old.fence + 1,
        })
      })

      it('lets the owner of a live lease acquire it again, with a new fence and end', async () => {
        await store.createInstance(anInstance('i1'))
        const first = await acquired(store, 'i1', 'runner', T0)

        const again = await store.acquireLease('i1', 'runner', T0 + SECOND, T0 + SECOND + LEASE_MS)

        expect(again).toMatchObject({
          kind: 'acquired',
          lease: { owner: 'runner', fence: first.fence + 1, untilMs: T0 + SECOND + LEASE_MS },
        })
      })

      it.each(TERMINAL_STATUSES)('reports a %s instance as terminal and leaves it untouched', async (status) => {
        await store.createInstance(anInstance('done', { status, fence: 3 }))
        const before = await stored(store, 'done')

        const result = await store.acquireLease('done', 'runner', T0, T0 + LEASE_MS)

        // A refusal reports the instance's state (status, lease, due time), not its contents.
        expect(result).toStrictEqual({ kind: 'terminal', record: stateOf(before) })
        expect(await store.getInstance('done')).toStrictEqual(before)
      })

      it.each(TERMINAL_STATUSES)('acquires a %s instance when terminal instances are allowed', async (status) => {
        await store.createInstance(anInstance('done', { status, fence: 3 }))

        const result = await store.acquireLease('done', 'restarter', T0, T0 + LEASE_MS, { allowTerminal: true })

        expect(result).toMatchObject({ kind: 'acquired', lease: { owner: 'restarter', fence: 4 }, record: { status } })
        expect(await stored(store, 'done')).toMatchObject({ fence: 4, leaseOwner: 'restarter' })
      })
    })

    describe('acquireLease under contention', () => {
      it('lets exactly one of several simultaneous runners acquire a free instance', async () => {
        await store.createInstance(anInstance('i1'))
        const owners = ['r1', 'r2', 'r3', 'r4', 'r5']

        const results = await Promise.allSettled(
          owners.map((owner) => store.acquireLease('i1', owner, T0, T0 + LEASE_MS)),
        )

        const winners = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
        const losers = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []))
        expect(winners).toHaveLength(1)
        expect(losers).toHaveLength(owners.length - 1)
        for (const loser of losers) expect(loser).toBeInstanceOf(LockConflictError)
        const winner = winners[0]
        expect(await stored(store, 'i1')).toMatchObject({
          fence: 1,
          leaseOwner: winner?.kind === 'acquired' ? winner.lease.owner : 'none',
        })
      })

      it('does not let allowTerminal override the live lease of another owner', async () => {
        await store.createInstance(anInstance('i1', { status: 'failed' }))
        await store.acquireLease('i1', 'restarter', T0, T0 + LEASE_MS, { allowTerminal: true })

        const error = await rejectionOf(
          store.acquireLease('i1', 'other', T0 + 1, T0 + 1 + LEASE_MS, { allowTerminal: true }),
        )

        expect(error).toBeInstanceOf(LockConflictError)
        expect((await stored(store, 'i1')).leaseOwner).toBe('restarter')
      })

      it('answers live, not a conflict, when a terminal-only lease finds a live instance that another holds', async () => {
        await store.createInstance(anInstance('i1', { status: 'running' }))
        await acquired(store, 'i1', 'runner', T0)
        const before = await stored(store, 'i1')

        const result = await store.acquireLease('i1', 'restarter', T0 + 1, T0 + 1 + LEASE_MS, { terminalOnly: true })

        expect(result.kind).toBe('live')
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })
    })

    describe('a lease writer', () => {
      it('stores node records whole, leaving nodes it does not name as they are', async () => {
        const untouched = aNode({ status: 'completed', output: { kept: true } })
        await store.createInstance(
          anInstance('i1', {
            nodes: {
              charge: aNode({ status: 'pending', waits: 2, nextAttemptAtMs: T0 + 9 * SECOND, output: { try: 1 } }),
              untouched,
            },
          }),
        )
        const lease = await acquired(store, 'i1', 'runner', T0)
        const charge = aNode({ status: 'completed', updatedAtMs: T0 + SECOND, output: { receipt: 'r-1' } })
        const ship = aNode({ status: 'running', createdAtMs: T0 + SECOND, updatedAtMs: T0 + SECOND })

        await lease.writer.write({ updatedAtMs: T0 + SECOND, nodes: { charge, ship } })

        const after = await stored(store, 'i1')
        expect(after.nodes).toStrictEqual({ charge, untouched, ship })
        expect(after.updatedAtMs).toBe(T0 + SECOND)
      })

      it('keeps what control flow decided: skip reasons, choices (none included) and the deadline', async () => {
        await store.createInstance(anInstance('i1', { deadlineAtMs: T0 + 60 * SECOND }))
        const lease = await acquired(store, 'i1', 'runner', T0)
        const skipped = aNode({ status: 'skipped', skipReason: 'condition_false' })
        const decided = aNode({ status: 'completed', chosen: 'approve', output: { decision: 'yes' } })
        const decidedNone = aNode({ status: 'completed', chosen: null })

        await lease.writer.write({ updatedAtMs: T0 + 1, nodes: { skipped, decided, decidedNone } })
        const afterNodes = await stored(store, 'i1')
        await lease.writer.write({ updatedAtMs: T0 + 2, deadlineAtMs: T0 + 90 * SECOND })
        const moved = (await stored(store, 'i1')).deadlineAtMs
        await lease.writer.write({ updatedAtMs: T0 + 3, deadlineAtMs: null })

        expect(afterNodes.nodes).toStrictEqual({ skipped, decided, decidedNone })
        expect(afterNodes.deadlineAtMs).toBe(T0 + 60 * SECOND)
        expect(moved).toBe(T0 + 90 * SECOND)
        expect((await stored(store, 'i1')).deadlineAtMs).toBeUndefined()
      })

      it('changes status and input only when given, and keeps the lease unless released', async () => {
        await store.createInstance(anInstance('i1', { status: 'init', input: { a: 1 } }))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await lease.writer.write({ updatedAtMs: T0 + 1, status: 'running' })
        const afterStatus = await stored(store, 'i1')
        await lease.writer.write({ updatedAtMs: T0 + 2, input: { a: 2, b: [true] } })
        const afterInput = await stored(store, 'i1')

        expect(afterStatus).toMatchObject({ status: 'running', input: { a: 1 }, leaseOwner: 'runner' })
        expect(afterInput).toMatchObject({ status: 'running', input: { a: 2, b: [true] }, leaseOwner: 'runner' })
        expect(afterInput.fence).toBe(lease.fence)
      })

      it.each([
        { change: 'a time sets it', before: undefined, dueAtMs: T0 + 5 * SECOND, expected: T0 + 5 * SECOND },
        { change: 'a time replaces an earlier one', before: T0, dueAtMs: T0 + 5 * SECOND, expected: T0 + 5 * SECOND },
        { change: 'null clears it', before: T0 + 5 * SECOND, dueAtMs: null, expected: undefined },
        // The acquisition made it due by the lease end; a write that does not name it leaves that.
        { change: 'undefined leaves it', before: T0 + 5 * SECOND, dueAtMs: undefined, expected: T0 + LEASE_MS },
      ])('dueAtMs: $change', async ({ before, dueAtMs, expected }) => {
        await store.createInstance(anInstance('i1', before === undefined ? {} : { dueAtMs: before }))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await lease.writer.write({ updatedAtMs: T0 + 1, ...(dueAtMs === undefined ? {} : { dueAtMs }) })

        expect((await stored(store, 'i1')).dueAtMs).toBe(expected)
      })

      it('clears owner and end of the lease on release, keeping the fence', async () => {
        await store.createInstance(anInstance('i1'))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await lease.writer.write({ updatedAtMs: T0 + 1, status: 'completed', release: true })

        const after = await stored(store, 'i1')
        expect(after).not.toHaveProperty('leaseOwner')
        expect(after).not.toHaveProperty('leaseUntilMs')
        expect(after).toMatchObject({ status: 'completed', fence: lease.fence })
      })

      it('refuses a lease that was taken over with LeaseLostError and changes nothing', async () => {
        await store.createInstance(anInstance('i1', { nodes: { a: aNode() }, dueAtMs: T0 }))
        const stale = await acquired(store, 'i1', 'slow', T0)
        await acquired(store, 'i1', 'fast', stale.untilMs + 1)
        const before = await stored(store, 'i1')

        const error = await rejectionOf(
          stale.writer.write({
            updatedAtMs: T0 + 99 * SECOND,
            nodes: { a: aNode({ status: 'failed' }), b: aNode() },
            status: 'failed',
            input: { overwritten: true },
            dueAtMs: null,
            release: true,
          }),
        )

        expect(error).toBeInstanceOf(LeaseLostError)
        expect(error).toMatchObject({ instanceId: 'i1', fence: stale.fence })
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it.each([
        { holder: 'nobody, after release', release: true },
        { holder: 'the same owner under a newer fence', release: false },
      ])('refuses an old lease when the instance is held by $holder', async ({ release }) => {
        await store.createInstance(anInstance('i1'))
        const old = await acquired(store, 'i1', 'runner', T0)
        if (release) await old.writer.abandon()
        else await acquired(store, 'i1', 'runner', T0 + SECOND)
        const before = await stored(store, 'i1')

        await expect(old.writer.write({ updatedAtMs: T0 + 2, status: 'failed' })).rejects.toBeInstanceOf(LeaseLostError)
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it('treats a releasing write sent again after it landed as done, not as a lost lease', async () => {
        await store.createInstance(anInstance('i1', { eventSeq: 2 }))
        const lease = await acquired(store, 'i1', 'runner', T0)
        const change = { updatedAtMs: T0 + 1, status: 'completed' as const, dueAtMs: null, release: true }
        await lease.writer.write(change)
        const after = await stored(store, 'i1')

        await expect(lease.writer.write(change)).resolves.toEqual({ eventSeq: 2 })
        expect(await store.getInstance('i1')).toStrictEqual(after)
      })

      it('keeps the stored bytes by every write, and refuses one that grows past maxBytes in its own condition', async () => {
        await store.createInstance(anInstance('sized'))
        const start = (await store.getInstance('sized'))?.storedBytes as number
        const lease = await acquired(store, 'sized', 'runner', T0)
        await store.putEvent('sized', 'a', anEvent(1), T0, {
          replaces: null,
          addBytes: 100,
          baseBytes: start,
          maxBytes: start + 150,
        })

        const refused = await rejectionOf(
          lease.writer.write({ updatedAtMs: T0 + 1, bytesDelta: 60, maxBytes: start + 150 }),
        )
        await lease.writer.write({ updatedAtMs: T0 + 2, bytesDelta: 40, maxBytes: start + 150 })

        expect(refused).toBeInstanceOf(ItemTooLargeError)
        expect((await store.getInstance('sized'))?.storedBytes).toBe(start + 140)
      })

      it('refuses a guarded event over the budget, or when the event it replaces changed', async () => {
        await store.createInstance(anInstance('guarded'))
        const start = (await store.getInstance('guarded'))?.storedBytes as number
        await store.putEvent('guarded', 'a', anEvent(1), T0, {
          replaces: null,
          addBytes: 10,
          baseBytes: start,
          maxBytes: start + 100,
        })

        const over = await rejectionOf(
          store.putEvent('guarded', 'b', anEvent(1), T0, {
            replaces: null,
            addBytes: 91,
            baseBytes: start,
            maxBytes: start + 100,
          }),
        )
        const raced = await rejectionOf(
          store.putEvent('guarded', 'a', anEvent(2), T0, {
            replaces: null,
            addBytes: 1,
            baseBytes: start,
            maxBytes: start + 100,
          }),
        )

        expect(over).toBeInstanceOf(PayloadTooLargeError)
        expect(raced).toBeInstanceOf(EventReplacedError)
        const stored = await store.getInstance('guarded')
        expect(stored?.storedBytes).toBe(start + 10)
        expect(Object.keys(stored?.events ?? {})).toEqual(['a'])
      })

      it('returns the current event counter, including events stored during the lease', async () => {
        await store.createInstance(anInstance('i1', { eventSeq: 5 }))
        const lease = await acquired(store, 'i1', 'runner', T0)

        const before = await lease.writer.write({ updatedAtMs: T0 + 1 })
        await store.putEvent('i1', 'a', anEvent(100), T0 + 2)
        await store.putEvent('i1', 'b', anEvent(100), T0 + 3)
        const after = await lease.writer.write({ updatedAtMs: T0 + 4 })

        expect(before).toEqual({ eventSeq: 5 })
        expect(after).toEqual({ eventSeq: 7 })
      })
    })

    describe('a lease writer abandoning its lease', () => {
      it('clears its own lease so another owner can acquire at once', async () => {
        await store.createInstance(anInstance('i1'))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await lease.writer.abandon()

        const after = await stored(store, 'i1')
        expect(after).not.toHaveProperty('leaseOwner')
        expect(after.fence).toBe(lease.fence)
        await expect(store.acquireLease('i1', 'next', T0 + 1, T0 + 1 + LEASE_MS)).resolves.toMatchObject({
          kind: 'acquired',
        })
      })

      it('leaves the lease of a newer holder in place, without an error', async () => {
        await store.createInstance(anInstance('i1'))
        const stale = await acquired(store, 'i1', 'slow', T0)
        const current = await acquired(store, 'i1', 'fast', stale.untilMs + 1)

        await stale.writer.abandon()

        expect(await stored(store, 'i1')).toMatchObject({
          leaseOwner: 'fast',
          leaseUntilMs: current.untilMs,
          fence: current.fence,
        })
        await expect(current.writer.write({ updatedAtMs: T0 })).resolves.toBeDefined()
      })
    })

    describe('putEvent', () => {
      it('stores the event, counts it and makes the instance due now', async () => {
        await store.createInstance(anInstance('i1', { eventSeq: 3 }))
        const event = anEvent(1_767_268_800, { approved: true, by: 'alice' })

        await store.putEvent('i1', 'approve', event, T0 + 7 * SECOND)

        expect(await stored(store, 'i1')).toMatchObject({
          events: { approve: event },
          eventSeq: 4,
          dueAtMs: T0 + 7 * SECOND,
        })
      })

      it('keeps the event of a parked instance without making it due', async () => {
        const parked = { code: 'WORKER_MISSING' as const, reason: "no worker for 'b'", atMs: T0 - SECOND }
        await store.createInstance(anInstance('i1', { parked, eventSeq: 3 }))
        const event = anEvent(5, { approved: true })

        await store.putEvent('i1', 'approve', event, T0 + 7 * SECOND)

        const after = await stored(store, 'i1')
        expect(after).toMatchObject({ events: { approve: event }, eventSeq: 4, parked })
        expect(after.dueAtMs).toBeUndefined()
      })

      it('brings a later due time forward to now', async () => {
        await store.createInstance(anInstance('i1', { dueAtMs: T0 + 3600 * SECOND }))

        await store.putEvent('i1', 'approve', anEvent(1), T0)

        expect((await stored(store, 'i1')).dueAtMs).toBe(T0)
      })

      it('refuses an event older than the stored one with StaleEventError and changes nothing', async () => {
        await store.createInstance(anInstance('i1'))
        await store.putEvent('i1', 'approve', anEvent(200, 'newer'), T0)
        const before = await stored(store, 'i1')

        const error = await rejectionOf(store.putEvent('i1', 'approve', anEvent(199, 'older'), T0 + SECOND))

        expect(error).toBeInstanceOf(StaleEventError)
        expect(error).toMatchObject({ instanceId: 'i1', nodeId: 'approve', eventTs: 199, storedEventTs: 200 })
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it.each([
        { age: 'the same', eventTs: 200 },
        { age: 'a newer', eventTs: 201 },
      ])('overwrites the stored event with one of $age event_ts', async ({ eventTs }) => {
        await store.createInstance(anInstance('i1'))
        await store.putEvent('i1', 'approve', anEvent(200, 'first'), T0)
        const replacement = { eventTs, content: 'second', receivedAtMs: T0 + SECOND }

        await store.putEvent('i1', 'approve', replacement, T0 + SECOND)

        expect(await stored(store, 'i1')).toMatchObject({ events: { approve: replacement }, eventSeq: 2 })
      })

      it('keeps events of different nodes apart', async () => {
        await store.createInstance(anInstance('i1'))

        await store.putEvent('i1', 'a', anEvent(300, 'for a'), T0)
        await store.putEvent('i1', 'b', anEvent(100, 'for b'), T0)

        const { events } = await stored(store, 'i1')
        expect(events).toStrictEqual({ a: anEvent(300, 'for a'), b: anEvent(100, 'for b') })
      })

      it('loses no event when several arrive at once', async () => {
        await store.createInstance(anInstance('i1'))
        const nodes = ['a', 'b', 'c', 'd', 'e', 'f']

        await Promise.all(nodes.map((nodeId, index) => store.putEvent('i1', nodeId, anEvent(index), T0)))

        const after = await stored(store, 'i1')
        expect(after.eventSeq).toBe(nodes.length)
        expect(Object.keys(after.events).sort()).toEqual(nodes)
      })

      it('throws InstanceNotFoundError for an unknown id and creates nothing', async () => {
        const error = await rejectionOf(store.putEvent('ghost', 'a', anEvent(1), T0))

        expect(error).toBeInstanceOf(InstanceNotFoundError)
        expect(await store.getInstance('ghost')).toBeUndefined()
      })

      it.each(TERMINAL_STATUSES)('refuses events for a %s instance with IllegalStateError', async (status) => {
        await store.createInstance(anInstance('i1', { status }))
        const before = await stored(store, 'i1')

        await expect(store.putEvent('i1', 'a', anEvent(1), T0)).rejects.toBeInstanceOf(IllegalStateError)
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it.each(TERMINAL_NODE_STATUSES)('refuses events for a %s node with IllegalStateError', async (status) => {
        await store.createInstance(anInstance('i1', { nodes: { a: aNode({ status }) } }))
        const before = await stored(store, 'i1')

        const error = await rejectionOf(store.putEvent('i1', 'a', anEvent(1), T0))

        expect(error).toBeInstanceOf(IllegalStateError)
        expect(error).toMatchObject({ details: { nodeId: 'a', status } })
        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it.each(LIVE_NODE_STATUSES)('accepts events for a %s node', async (status) => {
        await store.createInstance(anInstance('i1', { nodes: { a: aNode({ status }) } }))

        await store.putEvent('i1', 'a', anEvent(1), T0)

        expect((await stored(store, 'i1')).events.a).toStrictEqual(anEvent(1))
      })

      it('accepts events for a node that has not started', async () => {
        await store.createInstance(anInstance('i1', { nodes: { other: aNode({ status: 'completed' }) } }))

        await store.putEvent('i1', 'later', anEvent(1), T0)

        expect((await stored(store, 'i1')).events.later).toStrictEqual(anEvent(1))
      })

      it('does not wait for a lease held by another owner, and leaves that lease alone', async () => {
        await store.createInstance(anInstance('i1'))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await store.putEvent('i1', 'a', anEvent(1), T0 + SECOND)

        expect(await stored(store, 'i1')).toMatchObject({
          events: { a: anEvent(1) },
          leaseOwner: 'runner',
          leaseUntilMs: lease.untilMs,
          fence: lease.fence,
        })
        await expect(lease.writer.write({ updatedAtMs: T0 + 2 * SECOND })).resolves.toEqual({ eventSeq: 1 })
      })
    })

    describe('queryDue', () => {
      /** Every shard read to the end with pages of `limit`; `afterFirstPage` runs once a shard's first page is read. */
      const allDue = async (nowMs: number, limit: number, afterFirstPage?: (ids: string[]) => Promise<void>) => {
        const seen: { instanceId: string; dueAtMs: number; shard: number }[] = []
        for (let shard = 0; shard < store.dueShards; shard++) {
          let cursor: string | undefined
          let first = true
          do {
            const page = await store.queryDue(shard, nowMs, limit, cursor)
            seen.push(...page.items.map((item) => ({ ...item, shard })))
            if (first && afterFirstPage) await afterFirstPage(page.items.map((item) => item.instanceId))
            first = false
            cursor = page.cursor
          } while (cursor !== undefined)
        }
        return seen
      }

      it('finds exactly the instances due by now, each shard earliest first', async () => {
        for (let n = 1; n <= 6; n++)
          await store.createInstance(anInstance(`due${n}`, { dueAtMs: T0 + (7 - n) * SECOND }))
        await store.createInstance(anInstance('later', { dueAtMs: T0 + 60 * SECOND }))
        await store.createInstance(anInstance('idle'))

        const seen = await allDue(T0 + 6 * SECOND, 2)

        expect(seen.map((item) => item.instanceId).sort()).toEqual(['due1', 'due2', 'due3', 'due4', 'due5', 'due6'])
        expect(seen.find((item) => item.instanceId === 'due6')?.dueAtMs).toBe(T0 + SECOND)
        for (let shard = 0; shard < store.dueShards; shard++) {
          const times = seen.filter((item) => item.shard === shard).map((item) => item.dueAtMs)
          expect(times).toEqual([...times].sort((a, b) => a - b))
        }
      })

      it('skips no instance when one it returned leaves the due index before the next page is read', async () => {
        for (let n = 1; n <= 6; n++) await store.createInstance(anInstance(`due${n}`, { dueAtMs: T0 + n * SECOND }))
        const leased: string[] = []

        const seen = await allDue(T0 + 10 * SECOND, 1, async (ids) => {
          // A runner takes the first one at once: it is due at its lease end now, no longer by the tick's time.
          for (const id of ids) {
            await store.acquireLease(id, 'runner', T0 + 10 * SECOND, T0 + 3600 * SECOND)
            leased.push(id)
          }
        })

        const ids = seen.map((item) => item.instanceId)
        expect(new Set(ids).size).toBe(ids.length)
        expect(ids.sort()).toEqual(['due1', 'due2', 'due3', 'due4', 'due5', 'due6'])
        expect(leased.length).toBeGreaterThan(0)
      })

      it.each(['not a cursor', Buffer.from('{"after":1}').toString('base64url')])(
        'refuses the due cursor %j with a ValidationError naming cursor',
        async (cursor) => {
          const error = await rejectionOf(store.queryDue(0, T0, 10, cursor))

          expect(error).toBeInstanceOf(ValidationError)
          expect(error).toMatchObject({ field: 'cursor' })
        },
      )
    })

    describe('markDue', () => {
      it.each([
        { rule: 'makes an idle instance due', before: undefined, markAt: T0 + 10, expected: T0 + 10 },
        { rule: 'moves a due time earlier', before: T0 + 100, markAt: T0 + 10, expected: T0 + 10 },
        { rule: 'never moves a due time later', before: T0 + 100, markAt: T0 + 200, expected: T0 + 100 },
        { rule: 'keeps an equal due time', before: T0 + 100, markAt: T0 + 100, expected: T0 + 100 },
      ])('$rule', async ({ before, markAt, expected }) => {
        await store.createInstance(anInstance('i1', before === undefined ? {} : { dueAtMs: before }))

        await store.markDue('i1', markAt)

        expect((await stored(store, 'i1')).dueAtMs).toBe(expected)
      })

      it.each(TERMINAL_STATUSES)('does nothing to a %s instance', async (status) => {
        await store.createInstance(anInstance('i1', { status }))
        const before = await stored(store, 'i1')

        await store.markDue('i1', T0)

        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it('does nothing to a parked instance', async () => {
        const parked = { code: 'WORKER_MISSING' as const, reason: "no worker for 'b'", atMs: T0 - SECOND }
        await store.createInstance(anInstance('i1', { parked }))
        const before = await stored(store, 'i1')

        await store.markDue('i1', T0)

        expect(await store.getInstance('i1')).toStrictEqual(before)
      })

      it('does not create an instance that does not exist', async () => {
        await store.markDue('ghost', T0)

        expect(await store.getInstance('ghost')).toBeUndefined()
      })

      it('works while another owner holds the lease', async () => {
        await store.createInstance(anInstance('i1'))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await store.markDue('i1', T0 + 5)

        expect(await stored(store, 'i1')).toMatchObject({ dueAtMs: T0 + 5, leaseOwner: 'runner', fence: lease.fence })
      })
    })

    describe('listInstances', () => {
      describe.each(FILTER_CASES)('filtered by $rule', ({ query, newestFirst }) => {
        it('lists the matches newest first with order desc', async () => {
          await seedListFixture(store)

          expect(await listIds(store, { ...query, limit: 50, order: 'desc' })).toEqual(newestFirst)
        })

        it('lists the matches oldest first with order asc', async () => {
          await seedListFixture(store)

          expect(await listIds(store, { ...query, limit: 50, order: 'asc' })).toEqual([...newestFirst].reverse())
        })

        it('counts the matches', async () => {
          await seedListFixture(store)

          expect((await store.countInstances(query, 10_000)).count).toBe(newestFirst.length)
        })
      })

      it('returns summaries with id, type, business id when set, status and creation time', async () => {
        await seedListFixture(store)

        const page = await store.listInstances({ workflowTypes: ['shipping'], limit: 50, order: 'desc' })

        expect(page.items).toStrictEqual<InstanceSummary[]>([
          {
            id: 'a07',
            workflowType: 'shipping',
            businessId: 'cust-1',
            status: 'canceled',
            createdAtMs: T0 + 7 * SECOND,
          },
          { id: 'a04', workflowType: 'shipping', status: 'running', createdAtMs: T0 + 4 * SECOND },
        ])
        expect(page.cursor).toBeUndefined()
      })

      it('reflects a status written under the lease in both the summary and the status filter', async () => {
        await store.createInstance(anInstance('i1', { status: 'running' }))
        const lease = await acquired(store, 'i1', 'runner', T0)

        await lease.writer.write({ updatedAtMs: T0 + 1, status: 'completed', release: true })

        const base = { workflowTypes: ['orders'], limit: 10, order: 'desc' } as const
        expect((await store.listInstances(base)).items.map((item) => item.status)).toEqual(['completed'])
        expect((await store.listInstances({ ...base, statuses: ['running'] })).items).toEqual([])
        expect((await store.countInstances({ workflowTypes: ['orders'], statuses: ['completed'] }, 10_000)).count).toBe(
          1,
        )
      })

      describe.each(PAGING_CASES)('paged with a limit of 5, $rule', ({ query, keep }) => {
        const expectedAsc = PAGING_ROWS.filter(keep)
          .sort((a, b) => a.createdAtMs - b.createdAtMs)
          .map((row) => row.id)

        it.each(['asc', 'desc'] as const)('visits every match exactly once, in %s order', async (order) => {
          for (const row of PAGING_ROWS) await store.createInstance(anInstance(row.id, row))

          const pages = await allPages(store, { ...query, limit: 5, order })

          const ids = pages.flatMap((page) => page.items.map((item) => item.id))
          // More matches than one page holds, or the cursor would never be followed.
          expect(expectedAsc.length).toBeGreaterThan(5)
          expect(ids).toEqual(order === 'asc' ? expectedAsc : [...expectedAsc].reverse())
          expect(pages.every((page) => page.items.length <= 5)).toBe(true)
        })
      })

      it('stops counting after reading the bound of entries, and says the count is incomplete', async () => {
        for (const row of PAGING_ROWS) await store.createInstance(anInstance(row.id, row))
        const query = { workflowTypes: PAGING_TYPES }

        expect(await store.countInstances(query, 3)).toEqual({ count: 3, complete: false })
        expect(await store.countInstances(query, PAGING_ROWS.length + 1)).toEqual({
          count: PAGING_ROWS.length,
          complete: true,
        })
      })

      it('lists and counts nothing for a creation range that ends before it starts', async () => {
        await seedListFixture(store)
        const query = { workflowTypes: ALL_TYPES, createdFromMs: T0 + 6 * SECOND, createdToMs: T0 + 3 * SECOND }

        expect(await listIds(store, { ...query, limit: 5, order: 'desc' })).toEqual([])
        expect(await listIds(store, { ...query, limit: 5, order: 'asc' })).toEqual([])
        expect((await store.countInstances(query, 10_000)).count).toBe(0)
      })

      it.each([
        { order: 'desc' as const, range: { createdFromMs: T0 + 7 * SECOND } },
        { order: 'asc' as const, range: { createdToMs: T0 + 3 * SECOND } },
      ])('returns nothing beyond a $order cursor that lies outside the creation range', async ({ order, range }) => {
        await seedListFixture(store)
        const first = await store.listInstances({ workflowTypes: ALL_TYPES, limit: 5, order })
        expect(first.cursor).toBeDefined()

        const next = await store.listInstances({
          workflowTypes: ALL_TYPES,
          ...range,
          limit: 5,
          order,
          ...(first.cursor === undefined ? {} : { cursor: first.cursor }),
        })

        expect(next.items).toEqual([])
        expect(next.cursor).toBeUndefined()
      })

      it('returns an empty page without a cursor when nothing matches', async () => {
        await seedListFixture(store)

        expect(await store.listInstances({ workflowTypes: ['unknown'], limit: 5, order: 'desc' })).toStrictEqual({
          items: [],
        })
      })

      it.each([
        { cursor: 'not a cursor' },
        { cursor: '' },
        { cursor: Buffer.from('{"after":5}').toString('base64url') },
        { cursor: Buffer.from('null').toString('base64url') },
        { cursor: Buffer.from('[1,2,3]').toString('base64url') },
      ])('rejects the cursor $cursor with a ValidationError on the cursor field', async ({ cursor }) => {
        await seedListFixture(store)

        const error = await rejectionOf(
          store.listInstances({ workflowTypes: ALL_TYPES, limit: 5, order: 'desc', cursor }),
        )

        expect(error).toBeInstanceOf(ValidationError)
        expect(error).toMatchObject({ field: 'cursor', details: { field: 'cursor' } })
      })
    })

    describe('list paging when filters reject most entries', () => {
      const TYPES = ['sparse', 'scarce']
      const SIZE = 40
      /** Every seventh instance failed; the rest completed. Creation times are mixed relative to ids. */
      const rows = Array.from({ length: SIZE }, (_, n) => ({
        id: `s${String(n).padStart(2, '0')}`,
        workflowType: TYPES[n % TYPES.length] as string,
        businessId: 'shared',
        status: (n % 7 === 3 ? 'failed' : 'completed') as InstanceStatus,
        createdAtMs: T0 + ((n * 11) % SIZE) * 1000,
      }))
      const failedAsc = rows
        .filter((row) => row.status === 'failed')
        .sort((a, b) => a.createdAtMs - b.createdAtMs)
        .map((row) => row.id)

      describe.each([
        { partitions: 'one workflow type', query: { workflowTypes: ['sparse'] }, types: ['sparse'] },
        { partitions: 'two workflow types', query: { workflowTypes: TYPES }, types: TYPES },
        { partitions: 'a business id', query: { workflowTypes: TYPES, businessId: 'shared' }, types: TYPES },
      ])('reading one index page per call, over $partitions', ({ query, types }) => {
        const expectedAsc = failedAsc.filter((id) =>
          types.includes(rows.find((row) => row.id === id)?.workflowType ?? ''),
        )

        it.each(['asc', 'desc'] as const)('returns every match exactly once in %s order', async (order) => {
          const sparse = await makeStore({ maxPagesPerList: 1 })
          for (const row of rows) await sparse.createInstance(anInstance(row.id, row))

          const pages = await allPages(sparse, { ...query, statuses: ['failed'], limit: 2, order })

          const ids = pages.flatMap((page) => page.items.map((item) => item.id))
          expect(expectedAsc.length).toBeGreaterThan(2)
          expect(ids).toEqual(order === 'asc' ? expectedAsc : [...expectedAsc].reverse())
          // Short pages that still carry a cursor show that the read stopped at the page budget, not at the limit.
          expect(pages.some((page) => page.items.length < 2 && page.cursor !== undefined)).toBe(true)
          expect(pages.every((page) => page.items.length <= 2)).toBe(true)
        })
      })
    })

    describe('list cursors, one rule for every store', () => {
      const query = { workflowTypes: ALL_TYPES, limit: 3, order: 'desc' } as const
      const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      // The shared format: the creation time in 10 base-36 digits, then the id.
      const keyTime = (ms: number) => ms.toString(36).padStart(10, '0')
      const a07 = `${keyTime(T0 + 7 * SECOND)}#a07`

      it('issues a cursor naming the created key of the last item, in the shared format', async () => {
        await seedListFixture(store)

        const page = await store.listInstances(query)

        const last = page.items[page.items.length - 1]
        expect(last).toBeDefined()
        expect(JSON.parse(Buffer.from(page.cursor ?? '', 'base64url').toString('utf8'))).toEqual({
          v: 1,
          after: `${keyTime(last?.createdAtMs ?? -1)}#${last?.id}`,
        })
      })

      it('continues from its own cursor with the next items and no repeats', async () => {
        await seedListFixture(store)
        const first = await store.listInstances(query)

        const next = await store.listInstances({ ...query, ...(first.cursor ? { cursor: first.cursor } : {}) })

        expect(first.items.map((item) => item.id)).toEqual(['a09', 'b08', 'a08'])
        expect(next.items.map((item) => item.id)).toEqual(['a07', 'a06', 'a05'])
      })

      it('accepts a well-formed cursor it did not issue itself, as any store of the same rule would', async () => {
        await seedListFixture(store)

        const page = await store.listInstances({ ...query, cursor: encoded({ v: 1, after: a07 }) })

        expect(page.items.map((item) => item.id)).toEqual(['a06', 'a05', 'a04'])
      })

      it.each([
        { forged: 'an unversioned position', value: { after: a07 } },
        { forged: 'a key that sorts after every created key', value: { v: 1, after: 'zzzzzzzzzz#\uffff' } },
        { forged: 'a key without the id', value: { v: 1, after: keyTime(T0) } },
        { forged: 'a decimal time', value: { v: 1, after: `${String(T0).padStart(15, '0')}#a07` } },
        { forged: 'a short time', value: { v: 1, after: '5#a07' } },
        { forged: 'another version', value: { v: 2, after: a07 } },
        { forged: 'extra fields', value: { v: 1, after: a07, limit: 1000 } },
        { forged: 'a due-index cursor', value: { pk: 'I#a07', sk: '#', dueShard: '3', ds: T0 } },
      ])('refuses a forged or foreign cursor ($forged) with a ValidationError naming cursor', async ({ value }) => {
        await seedListFixture(store)

        const error = await rejectionOf(store.listInstances({ ...query, cursor: encoded(value) }))

        expect(error).toBeInstanceOf(ValidationError)
        expect(error).toMatchObject({ field: 'cursor', details: { field: 'cursor' } })
      })
    })

    describe('putDefinition and getDefinition', () => {
      it('returns the definition stored for a type and version', async () => {
        await store.putDefinition('orders', 'v1', aConfig('first'))

        expect(await store.getDefinition('orders', 'v1')).toStrictEqual(aConfig('first'))
      })

      it('keeps the first definition when the same type and version are stored again', async () => {
        await store.putDefinition('orders', 'v1', aConfig('first'))

        await store.putDefinition('orders', 'v1', aConfig('second'))

        expect(await store.getDefinition('orders', 'v1')).toStrictEqual(aConfig('first'))
      })

      it('keeps versions and types apart', async () => {
        await store.putDefinition('orders', 'v1', aConfig('v1'))
        await store.putDefinition('orders', 'v2', aConfig('v2'))

        expect(await store.getDefinition('orders', 'v2')).toStrictEqual(aConfig('v2'))
        expect(await store.getDefinition('orders', 'v3')).toBeUndefined()
        expect(await store.getDefinition('billing', 'v1')).toBeUndefined()
      })
    })
  })
