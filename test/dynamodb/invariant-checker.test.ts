import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import { marshall } from '@aws-sdk/util-dynamodb'
import { beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { recordToItem } from '../../src/adapters/dynamodb/item-codec.js'
import { definitionKey } from '../../src/adapters/dynamodb/keys.js'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { createTestTable, type TestTable } from '../support/harness.js'
import {
  assertInvariant,
  InvariantViolationError,
  invariantViolations,
  itemViolations,
  type ViolationKind,
} from '../support/invariant.js'
import { aNode, anInstance, T0 } from '../support/records.js'

const NOW = T0 + 60_000
const item = (id: string, overrides: Partial<InstanceRecord> = {}, extra: Record<string, unknown> = {}) => ({
  ...recordToItem(anInstance(id, overrides)),
  ...extra,
})
const kinds = (raw: Record<string, unknown>, nowMs = NOW): ViolationKind[] =>
  itemViolations(raw, nowMs).map((violation) => violation.kind)

describe('the invariant checker on a MemoryStore', () => {
  const parked = { code: 'WORKER_MISSING' as const, reason: 'worker missing: shipment.pack', atMs: 1 }

  it.each<[string, Partial<InstanceRecord>, ViolationKind[]]>([
    ['a running instance that is due', { dueAtMs: NOW + 1 }, []],
    ['a leased instance due at its lease end', { leaseOwner: 'o', leaseUntilMs: NOW + 10, dueAtMs: NOW + 10 }, []],
    ['a parked instance with a reason', { parked }, []],
    ['a completed instance', { status: 'completed' }, []],
    ['a running instance with neither due time, lease nor parking', {}, ['stranded']],
    ['a leased instance with no due time', { leaseOwner: 'o', leaseUntilMs: NOW + 5 }, ['leased-without-due']],
    [
      'a leased instance due only after its lease ends',
      { leaseOwner: 'o', leaseUntilMs: NOW + 5, dueAtMs: NOW + 86_400_000 },
      ['due-after-lease'],
    ],
    ['a parked instance without a reason', { parked: { ...parked, reason: ' ' } }, ['parked-without-reason']],
    ['a parked instance still due', { parked, dueAtMs: 5 }, ['parked-without-reason']],
    ['a completed instance still due', { status: 'completed', dueAtMs: NOW }, ['terminal-due']],
    ['a timed-out instance with nothing left', { status: 'timed_out', failure: { reason: 'timeout', atMs: 1 } }, []],
    ['a timed-out instance still due', { status: 'timed_out', dueAtMs: NOW }, ['terminal-due']],
    [
      'a timed-out instance with a wake-up left',
      { status: 'timed_out', farWakeAtMs: NOW + 3_600_000 },
      ['terminal-wake-up'],
    ],
    [
      'a skipped node with an attempt in flight',
      { dueAtMs: NOW, nodes: { a: aNode({ status: 'skipped', attemptStarted: { step: 'run', atMs: T0, fence: 1 } }) } },
      ['skipped-ran'],
    ],
    [
      'a skipped node with an output',
      { status: 'completed', nodes: { a: aNode({ status: 'skipped', output: { ran: true } }) } },
      ['skipped-ran'],
    ],
    [
      'a skipped node as the engine stores it',
      { dueAtMs: NOW, nodes: { a: aNode({ status: 'skipped', skipReason: 'condition_false' }) } },
      [],
    ],
  ])('applies the same rules to %s', async (_name, overrides, expected) => {
    const store = new MemoryStore()
    await store.createInstance(anInstance('m1', overrides))

    const violations = await invariantViolations(store, NOW)

    expect(violations.map((violation) => violation.kind)).toEqual(expected)
    expect(kinds(item('m1', overrides))).toEqual(expected)
  })
})

describe('the invariant checker on hand-made items', () => {
  it.each([
    ['a running instance that is due', item('due', { dueAtMs: NOW + 1 })],
    [
      'an instance whose place in the due index is kept from an earlier poll',
      item('kept', { dueAtMs: NOW + 60_000 }, { ds: NOW - 3_000_000 }),
    ],
    ['an init instance due in the past', item('init', { status: 'init', dueAtMs: T0 })],
    [
      'a leased instance due at its lease end',
      item('leased', { leaseOwner: 'o', leaseUntilMs: NOW + 10, dueAtMs: NOW + 10 }),
    ],
    ['a leased instance due before its lease end', item('early', { leaseOwner: 'o', leaseUntilMs: NOW, dueAtMs: T0 })],
    [
      'a parked instance with a reason',
      item('parked', {}, { parkCode: 'WORKER_MISSING', parkReason: 'worker missing: shipment.pack', parkAtMs: 1 }),
    ],
    ['a completed instance', item('done', { status: 'completed' })],
    ['a failed instance with an expired lease left behind', item('f', { status: 'failed', leaseOwner: 'o' })],
    ['a canceled instance', item('c', { status: 'canceled' })],
    ['an item with attributes the codec does not know', item('x', { dueAtMs: NOW }, { attempts: { a: 1 } })],
  ])('accepts %s', (_name, raw) => {
    expect(itemViolations(raw, NOW)).toEqual([])
  })

  it.each<[string, Record<string, unknown>, ViolationKind]>([
    ['a running instance with neither due time, lease nor parking', item('s'), 'stranded'],
    ['an init instance with no due time', item('s-init', { status: 'init' }), 'stranded'],
    [
      'a running instance whose lease expired and that has no due time',
      item('s-exp', { leaseOwner: 'o', leaseUntilMs: NOW - 1 }),
      'stranded',
    ],
    ['a leased instance with no due time', item('l', { leaseOwner: 'o', leaseUntilMs: NOW + 5 }), 'leased-without-due'],
    [
      'a leased instance due only after its lease ends',
      item('late', { leaseOwner: 'o', leaseUntilMs: NOW + 5, dueAtMs: NOW + 86_400_000 }),
      'due-after-lease',
    ],
    ['a due time without its index shard', { ...item('ni', { dueAtMs: NOW }), dueShard: undefined }, 'due-not-indexed'],
    [
      'a due time without a place in the due index',
      { ...item('nd', { dueAtMs: NOW }), ds: undefined },
      'due-not-indexed',
    ],
    [
      'a place in the due index without a due time',
      item('nodue', { status: 'completed' }, { ds: NOW, dueShard: '1' }),
      'placed-not-due',
    ],
    [
      'a place in the due index after the due time (the tick would find it late)',
      item('lateplace', { dueAtMs: NOW }, { ds: NOW + 1 }),
      'due-not-indexed',
    ],
    [
      'a parked instance without a reason',
      item('p', {}, { parkCode: 'NOTHING_RUNNABLE', parkReason: ' ' }),
      'parked-without-reason',
    ],
    [
      'a parked instance still due',
      item('p2', { dueAtMs: 5 }, { parkCode: 'NOTHING_RUNNABLE', parkReason: 'why', parkAtMs: 1 }),
      'parked-without-reason',
    ],
    ['a completed instance still due', item('t', { status: 'completed', dueAtMs: NOW }), 'terminal-due'],
    ['a canceled instance still due', item('t2', { status: 'canceled', dueAtMs: T0 }), 'terminal-due'],
    ['an item the codec cannot read', { ...item('bad'), status: 'sleeping' }, 'unreadable'],
  ])('reports %s', (_name, raw, kind) => {
    const violations = itemViolations(raw, NOW)
    expect(violations.map((violation) => violation.kind)).toEqual([kind])
    expect(violations[0]?.message).toContain(kind)
    expect(violations[0]?.message).toContain(`'${String(raw.pk).replace(/^I#/, '')}'`)
  })

  it('treats a lease that ends exactly now as live', () => {
    expect(kinds(item('edge', { leaseOwner: 'o', leaseUntilMs: NOW }), NOW)).toEqual(['leased-without-due'])
    expect(kinds(item('edge', { leaseOwner: 'o', leaseUntilMs: NOW }), NOW + 1)).toEqual(['stranded'])
  })
})

describe('the invariant checker on a table', () => {
  let table: TestTable
  const put = (raw: Record<string, unknown>) =>
    table.client.send(
      new PutItemCommand({
        TableName: table.tableName,
        Item: marshall(raw, { removeUndefinedValues: true, convertClassInstanceToMap: true }),
      }),
    )

  beforeAll(async () => {
    table = await createTestTable('invariant-checker')
    // Definitions share the table and are not instances.
    await put({ ...definitionKey('orders', 'v1'), config: '{}' })
    await put(item('ok-due', { dueAtMs: NOW }))
    await put(item('ok-done', { status: 'completed' }))
    await put(item('ok-parked', {}, { parkCode: 'WORKER_MISSING', parkReason: 'worker missing', parkAtMs: 1 }))
  })

  it('passes a table whose instances all keep the invariant', async () => {
    expect(await invariantViolations(table, NOW)).toEqual([])
    await expect(assertInvariant(table, NOW)).resolves.toBeUndefined()
    await expect(
      assertInvariant(new DynamoDbStore({ tableName: table.tableName, client: table.client }), NOW),
    ).resolves.toBeUndefined()
  })

  it('reports every broken instance, and only the selected ones when asked', async () => {
    await put(item('bad-stranded'))
    await put(item('bad-terminal', { status: 'failed', dueAtMs: NOW }))
    const violations = await invariantViolations(table, NOW)
    expect(violations.map((violation) => `${violation.kind} ${violation.instanceId}`).sort()).toEqual([
      'stranded bad-stranded',
      'terminal-due bad-terminal',
    ])
    expect(await invariantViolations(table, NOW, { instanceIds: ['ok-due', 'bad-terminal'] })).toHaveLength(1)
    expect(await invariantViolations(table, NOW, { instanceIds: (id) => id.startsWith('ok-') })).toEqual([])
    const error = await assertInvariant(table, NOW, { context: 'after the setup' }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(InvariantViolationError)
    expect((error as Error).message).toMatch(/2 instance\(s\) break the invariant after the setup/)
    expect((error as Error).message).toContain("stranded: instance 'bad-stranded'")
  })
})

describe('the invariant checker on what a partition holds', () => {
  const side = (entries: [string, Record<string, unknown>][]) => new Map(entries)

  it('accepts an instance that refers to its items, lists those pending deletion, and counts what it holds', () => {
    const raw = { ...item('counted', { dueAtMs: NOW }), gc: { 'P#x#old': 120 } }
    raw.b = (raw.b as number) + 120

    expect(itemViolations(raw, NOW, side([['P#x#old', { sk: 'P#x#old' }]]))).toEqual([])
  })

  it('reports an item the instance neither refers to nor lists, whatever time to live it has', () => {
    const raw = item('leaky', { dueAtMs: NOW })
    const kindsWith = (sk: string, extra: Record<string, unknown> = {}, crashes = false) =>
      itemViolations(raw, NOW, side([[sk, { sk, ...extra }]]), { crashes }).map((found) => found.kind)

    expect(kindsWith('P#x#lost')).toEqual(['unaccounted-item'])
    expect(kindsWith('P#x#0000000003.1#abc', { expiresAt: 1 })).toEqual(['unaccounted-item'])
    // A lease-less writer's (fence 0) is excused only where writers were killed, and only with a time to live.
    expect(kindsWith('E#x#0000000000.1#abc', { expiresAt: 1 })).toEqual(['unaccounted-item'])
    expect(kindsWith('E#x#0000000000.1#abc', { expiresAt: 1 }, true)).toEqual([])
    expect(kindsWith('E#x#0000000000.1#abc', {}, true)).toEqual(['unaccounted-item'])
  })

  it('excuses an unreferenced item only to the lease the instance is at, while it is held', () => {
    const leased = { dueAtMs: NOW + 10, leaseOwner: 'o', leaseUntilMs: NOW + 10, fence: 4 }
    const sk = 'P#x#0000000004.7#abc'
    const found = (overrides: Partial<InstanceRecord>) =>
      itemViolations(item('mid-write', overrides), NOW, side([[sk, { sk, expiresAt: 1 }]])).map((v) => v.kind)

    // Its holder is between the put and the write, or died there: the lease that takes over deletes it.
    expect(found(leased)).toEqual([])
    // Released, or taken over: the item should be gone.
    expect(found({ dueAtMs: NOW + 10, fence: 4 })).toEqual(['unaccounted-item'])
    expect(found({ ...leased, fence: 5 })).toEqual(['unaccounted-item'])
  })

  it('reports a counted total that is not what the instance holds', () => {
    const raw = { ...item('miscounted', { dueAtMs: NOW }) }
    raw.b = (raw.b as number) + 1

    expect(itemViolations(raw, NOW, side([])).map((found) => found.kind)).toEqual(['miscounted'])
  })
})
