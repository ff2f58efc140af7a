import type { AttributeValue } from '@aws-sdk/client-dynamodb'
import type { QueryCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb'
import { marshall } from '@aws-sdk/util-dynamodb'
import { describe, expect, it } from 'vitest'
import { itemSizeBytes } from '../../scripts/bench-support.js'
import { arrivalFromItem, arrivalToItem } from '../../src/adapters/dynamodb/callback-items.js'
import {
  entriesFromItems,
  entriesToItems,
  entryFromItem,
  entryToItem,
  ItemPlanner,
  nodeToItem,
  packNode,
  parseInstanceItem,
  recordFromItem,
  recordToItem,
} from '../../src/adapters/dynamodb/item-codec.js'
import {
  createdKey,
  DUE_SHARDS,
  definitionKey,
  dueShardFor,
  INDEX,
  instanceKey,
} from '../../src/adapters/dynamodb/keys.js'
import { type LaidOutChange, storedNodeBytes } from '../../src/adapters/dynamodb/laid-out-change.js'
import { batchStartsAt } from '../../src/adapters/dynamodb/lease-writer.js'
import {
  acquireLeaseParams,
  clearArrivalsParams,
  clearTerminalDueParams,
  type ListPartition,
  listPartitions,
  listQueryParams,
  markDueParams,
  putCallbackParams,
  putEventParams,
  putInstanceParams,
  queryDueParams,
  releaseLeaseParams,
  writeUnderLeaseParams,
} from '../../src/adapters/dynamodb/params.js'
import { type IndexPageRequest, listKeyRange } from '../../src/adapters/store-catalogue.js'
import type { CallbackArrival } from '../../src/core/callbacks.js'
import { StoreError } from '../../src/core/errors.js'
import { instanceStoredBytes } from '../../src/core/limits.js'
import type { HistoryEntry, InstanceChange, InstanceRecord, Lease, NodeRecord } from '../../src/core/store.js'
import { aNode, anInstance, T0 } from '../support/records.js'

const TABLE = 'tickflow-test'
/** The instance's creation, which stored times are relative to. */
const BASE = T0
const LEASE: Lease = { instanceId: 'wf-1', owner: 'runner-a', fence: 7, untilMs: T0 + 30_000 }

/** Splits an update expression into its SET, REMOVE and ADD actions. */
const actions = (expression: string | undefined): Record<'SET' | 'REMOVE' | 'ADD', string[]> => {
  const result = { SET: [] as string[], REMOVE: [] as string[], ADD: [] as string[] }
  for (const match of (expression ?? '').matchAll(/\b(SET|REMOVE|ADD)\s+(.*?)(?=\s+\b(?:SET|REMOVE|ADD)\b|$)/g)) {
    const keyword = match[1] as keyof typeof result
    result[keyword].push(...(match[2] ?? '').split(',').map((part) => part.trim()))
  }
  return result
}

/** A change with the layout a lease writer would give it, its records and entries encoded as the writer does. */
type Layout = Partial<InstanceChange> & {
  allNodes?: Record<string, NodeRecord>
  historyOut?: { count: number; entries: HistoryEntry[]; base: number; drop?: boolean }
}

const laidOut = ({ allNodes, historyOut, ...change }: Layout): LaidOutChange => {
  const encode = (nodes: Record<string, NodeRecord>) =>
    Object.fromEntries(Object.entries(nodes).map(([id, node]) => [id, nodeToItem(node, id, BASE)]))
  return {
    change: { updatedAtMs: T0 + 1, ...change },
    nodes: encode(change.nodes ?? {}),
    history: (change.history ?? []).map((entry) => entryToItem(entry, BASE)),
    ...(allNodes ? { allNodes: encode(allNodes) } : {}),
    ...(historyOut
      ? { historyOut: { ...historyOut, entries: historyOut.entries.map((entry) => entryToItem(entry, BASE)) } }
      : {}),
  }
}

const update = (change: Layout, planner = new ItemPlanner('wf-1', BASE, undefined, '0')): UpdateCommandInput =>
  writeUnderLeaseParams(TABLE, LEASE, laidOut(change), planner)

describe('keys', () => {
  it('keeps instance and definition items in separate key spaces', () => {
    expect(instanceKey('x')).toEqual({ pk: 'I#x', sk: '#' })
    expect(definitionKey('x', 'v1')).toEqual({ pk: 'D#x#v1', sk: '#' })
  })
})

describe('dueShardFor', () => {
  it('gives an id the same shard every time, on every runner', () => {
    // The shard is stored in the due index: a different hash would strand due instances in the wrong shard.
    expect(['order-1', '01J9ZK3Q8F6R2M4N5P7S9T1V3W', 'a', ''].map((id) => dueShardFor(id))).toEqual([
      '5',
      '6',
      '4',
      '5',
    ])
    expect(dueShardFor('order-1')).toBe(dueShardFor('order-1'))
  })

  it('spreads 1000 ids over all shards, none with less than 3/4 or more than 5/4 of its share', () => {
    const counts = new Map<string, number>()
    for (let i = 0; i < 1000; i++) {
      const shard = dueShardFor(`wf-${String(i).padStart(6, '0')}`)
      counts.set(shard, (counts.get(shard) ?? 0) + 1)
    }

    const share = 1000 / DUE_SHARDS
    expect([...counts.keys()].sort()).toEqual(Array.from({ length: DUE_SHARDS }, (_, shard) => String(shard)))
    for (const count of counts.values()) {
      expect(count).toBeGreaterThanOrEqual(share * 0.75)
      expect(count).toBeLessThanOrEqual(share * 1.25)
    }
  })

  it.each([1, 3, 16])('stays within %i shards when asked for that many', (shards) => {
    const seen = new Set(Array.from({ length: 200 }, (_, i) => dueShardFor(`id-${i}`, shards)))

    expect([...seen].sort()).toEqual(Array.from({ length: shards }, (_, shard) => String(shard)).sort())
  })
})

describe('writeUnderLeaseParams', () => {
  const entry = (nodeId: string): HistoryEntry => ({ atMs: T0, kind: 'node', nodeId, status: 'completed', attempt: 1 })

  it('is conditioned on the event counter the writer knows, and returns nothing', () => {
    const params = writeUnderLeaseParams(
      TABLE,
      LEASE,
      { ...laidOut({ history: [entry('a')] }), eventSeq: 4 },
      new ItemPlanner('wf-1', BASE, undefined, '0'),
    )

    expect(params.ConditionExpression).toBe('lo = :owner AND f = :fence AND es = :es')
    expect(params.ExpressionAttributeValues).toMatchObject({ ':es': 4 })
    expect(params.ReturnValues).toBeUndefined()
    expect(params.UpdateExpression).not.toContain('ADD')
    // A refusal still returns the item: it tells an event that arrived from a lost lease or the budget.
    expect(params.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD')
  })

  it('without the counter, learns it and the history from what the write returns', () => {
    const params = update({ history: [entry('a')] })

    expect(params.ConditionExpression).not.toContain('es =')
    expect(params.UpdateExpression).toMatch(/ ADD es :zero$/)
    expect(params.ReturnValues).toBe('UPDATED_NEW')
  })

  it('writes only while the lease owner and fence still match', () => {
    const params = update({})

    expect(params.Key).toEqual(instanceKey('wf-1'))
    expect(params.ConditionExpression).toBe('lo = :owner AND f = :fence')
    expect(params.ExpressionAttributeValues).toMatchObject({ ':owner': 'runner-a', ':fence': 7 })
  })

  it('adds its bytes difference, and conditions a growing write on the room left in the budget', () => {
    const grows = update({ bytesDelta: 300, bytesBase: 500, maxBytes: 1000 })
    const shrinks = update({ bytesDelta: -300, bytesBase: 500, maxBytes: 1000 })
    const adds = 'b = if_not_exists(b, :bytesBase) + :bytes'

    expect(grows.UpdateExpression).toContain(`SET ua = :ua, ${adds}`)
    expect(grows.ConditionExpression).toContain('b <= :room')
    expect(grows.ExpressionAttributeValues).toMatchObject({ ':bytes': 300, ':bytesBase': 500, ':room': 700 })
    expect(grows.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD')
    expect(shrinks.UpdateExpression).toContain(adds)
    expect(shrinks.ConditionExpression).toBe('lo = :owner AND f = :fence')
  })

  it('sets or removes the TTL attribute', () => {
    expect(actions(update({ expiresAtSeconds: 1_800_000_000 }).UpdateExpression).SET).toContain(
      'expiresAt = :expiresAt',
    )
    expect(actions(update({ expiresAtSeconds: null }).UpdateExpression).REMOVE).toEqual(['expiresAt'])
  })

  it('writes the whole node map when given it, instead of one path per node', () => {
    const node = aNode({ status: 'canceled' })
    const allNodes = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`node_${i}`, node]))
    const params = update({ nodes: allNodes, allNodes })

    expect(actions(params.UpdateExpression).SET).toContain('n = :nodes')
    expect(params.UpdateExpression?.length).toBeLessThan(300)
    expect(Object.keys(params.ExpressionAttributeValues?.[':nodes'] as object)).toHaveLength(200)
  })

  it('always reads back the event counter without changing it', () => {
    const params = update({})

    expect(actions(params.UpdateExpression).ADD).toEqual(['es :zero'])
    expect(params.ExpressionAttributeValues?.[':zero']).toBe(0)
    expect(params.ReturnValues).toBe('UPDATED_NEW')
  })

  it.each([
    { change: { release: true }, removed: ['lo', 'lu'] },
    { change: { release: false }, removed: [] },
    { change: {}, removed: [] },
    { change: { dueAtMs: null }, removed: ['dueAtMs', 'ds', 'dueShard'] },
    { change: { dueAtMs: null, release: true }, removed: ['dueAtMs', 'ds', 'dueShard', 'lo', 'lu'] },
    { change: { dueAtMs: T0 }, removed: [] },
  ])('REMOVEs $removed for $change', ({ change, removed }) => {
    expect(actions(update(change).UpdateExpression).REMOVE.sort()).toEqual([...removed].sort())
  })

  it('SETs the due time together with its shard, and its place in the due index at the due time itself', () => {
    const params = update({ dueAtMs: T0 + 5_000 })

    expect(actions(params.UpdateExpression).SET).toEqual(
      expect.arrayContaining(['dueAtMs = :due', 'ds = :place', 'dueShard = :shard']),
    )
    expect(params.ExpressionAttributeValues).toMatchObject({
      ':due': T0 + 5_000,
      ':place': T0 + 5_000,
      ':shard': dueShardFor('wf-1'),
    })
  })

  it('leaves the due time alone when the change does not mention it', () => {
    const expression = update({ status: 'running' }).UpdateExpression ?? ''

    expect(expression).not.toMatch(/dueAtMs|\bds\b|dueShard/)
  })

  it('SETs each node record whole under an attribute name placeholder, in the stored short form', () => {
    const charge = aNode({ status: 'completed', output: { receipt: 'r-1' } })
    const params = update({ nodes: { 'charge.card': charge, ship: aNode() } })

    const set = actions(params.UpdateExpression).SET
    expect(set).toEqual(expect.arrayContaining(['ua = :ua', 'n.#n0 = :n0', 'n.#n1 = :n1']))
    expect(params.ExpressionAttributeNames).toMatchObject({ '#n0': 'charge.card', '#n1': 'ship' })
    expect(params.ExpressionAttributeValues?.[':n0']).toEqual(nodeToItem(charge, 'charge.card', BASE))
  })

  it('stores status and input only when given, the input as JSON text', () => {
    const params = update({ status: 'failed', input: { a: [1] } })

    expect(actions(params.UpdateExpression).SET).toEqual(expect.arrayContaining(['#status = :status', '#in = :in']))
    // The status as its stored code (see INSTANCE_STATUS_CODES).
    expect(params.ExpressionAttributeValues).toMatchObject({ ':status': 'f', ':in': '{"a":[1]}' })
    expect(update({}).UpdateExpression).not.toMatch(/status|#in\b/)
  })
})

describe('history entries in the item', () => {
  it.each<[string, HistoryEntry]>([
    [
      'a node entry',
      { atMs: T0, kind: 'node', nodeId: 'charge.card', status: 'completed', attempt: 3, durationMs: 12 },
    ],
    [
      'an event that replaced an unseen one',
      { atMs: T0, kind: 'event', nodeId: 'n', eventTs: 9, replacesTs: 8, origin: 'queue' },
    ],
    ['a created entry', { atMs: T0, kind: 'created', origin: 'schedule' }],
    ['an error', { atMs: T0, kind: 'error', nodeId: 'n', attempt: 1, errorClass: 'TypeError', message: 'a | b' }],
    ['a parking', { atMs: T0, kind: 'parked', code: 'WORKER_MISSING', message: 'no worker' }],
    [
      'a skip with its reason',
      { atMs: T0, kind: 'node', nodeId: 'n', status: 'skipped', attempt: 1, code: 'not_chosen' },
    ],
    ['a decision', { atMs: T0, kind: 'decision', nodeId: 'review', code: 'choice[1]:reject' }],
    ['an instance that timed out', { atMs: T0, kind: 'finished', status: 'timed_out' }],
  ])('reads back %s as written', (_name, entry) => {
    expect(entryFromItem(entryToItem(entry, T0 - 5000), T0 - 5000)).toEqual(entry)
  })

  it('packs entries without free text into one short string, and keeps the others as maps', () => {
    // The time is stored in ms after the instance's creation, in base 36.
    // A node status entry is headed by its status code in capitals: no kind and status fields apart; a duration in
    // base 36 (237 ms: 6l).
    expect(entryToItem({ atMs: T0 + 3600, kind: 'node', nodeId: 'a', status: 'running', attempt: 1 }, T0)).toBe(
      `R|${(3600).toString(36)}|a`,
    )
    expect(
      entryToItem({ atMs: T0 + 36, kind: 'node', nodeId: 'a', status: 'completed', attempt: 1, durationMs: 237 }, T0),
    ).toBe('C|10|a|6l')
    // The fields a kind uses come first: a creation's origin, an end's status.
    expect(entryToItem({ atMs: T0, kind: 'created', origin: 'engine' }, T0)).toBe('c|0|e')
    expect(entryToItem({ atMs: T0 + 36, kind: 'finished', status: 'completed' }, T0)).toBe('f|10|c')
    expect(typeof entryToItem({ atMs: T0, kind: 'error', errorClass: 'E', message: 'm' }, T0)).toBe('object')
  })

  it('leaves out the time of an entry of a batch that happened when the one before it did, and reads it back', () => {
    const batch: HistoryEntry[] = [
      { atMs: T0 + 3600, kind: 'node', nodeId: 'a', status: 'completed', attempt: 1, durationMs: 1500 },
      { atMs: T0 + 3600, kind: 'node', nodeId: 'b', status: 'running', attempt: 1 },
      { atMs: T0 + 3600, kind: 'error', nodeId: 'b', attempt: 1, errorClass: 'E', message: 'with text: a map' },
      { atMs: T0 + 3600, kind: 'node', nodeId: 'c', status: 'running', attempt: 1 },
      { atMs: T0 + 3700, kind: 'finished', status: 'completed' },
    ]

    const stored = entriesToItems(batch, T0)

    // The first of a batch always has its time: a list never starts with an entry that refers to the one before.
    expect(stored[0]).toBe(`C|${(3600).toString(36)}|a|${(1500).toString(36)}`)
    expect(stored[1]).toBe('R||b')
    expect(typeof stored[2]).toBe('object')
    expect(stored[3]).toBe('R||c')
    expect(stored[4]).toBe(`f|${(3700).toString(36)}|c`)
    expect(entriesFromItems(stored, T0)).toEqual(batch)
    // Alone, an entry without its time cannot be read: it is corrupt, never read at the wrong time.
    expect(() => entriesFromItems(stored.slice(1), T0)).toThrow(StoreError)
  })

  it('moves history in whole batches, so that no entry is parted from the one it takes its time from', () => {
    const at = (ms: number): HistoryEntry => ({
      atMs: T0 + ms,
      kind: 'node',
      nodeId: 'n',
      status: 'running',
      attempt: 1,
    })
    // Three writes' batches: [0, 1, 2], [3, 4], [5].
    const known = [
      ...entriesToItems([at(1), at(1), at(1)], T0),
      ...entriesToItems([at(2), at(2)], T0),
      ...entriesToItems([at(3)], T0),
    ]

    expect(batchStartsAt(known, 10)).toBe(6)
    expect(batchStartsAt(known, 4)).toBe(3)
    expect(batchStartsAt(known, 5)).toBe(5)
    // A first batch longer than the move goes whole.
    expect(batchStartsAt(known, 2)).toBe(3)
    for (const max of [1, 2, 3, 4, 5]) {
      const end = batchStartsAt(known, max)
      expect(entriesFromItems(known.slice(end), T0)).toEqual(entriesFromItems(known, T0).slice(end))
    }
  })

  it('packs a skip reason or a decision as the last field, where it costs a few bytes', () => {
    const skip: HistoryEntry = {
      atMs: T0,
      kind: 'node',
      nodeId: 'a',
      status: 'skipped',
      attempt: 1,
      code: 'condition_false',
    }
    // The reason as its short code: a skip is carried by every later write of the instance item.
    expect(entryToItem(skip, T0)).toBe('S|0|a|cf')
    expect(entryToItem({ atMs: T0 + 36, kind: 'decision', nodeId: 'a', code: 'when:true' }, T0)).toBe(
      'd|10|a|when:true',
    )
  })
})

describe('control-flow attributes in the item', () => {
  it('stores a skip reason and a choice (none included) on the node, and the deadline on the instance', () => {
    // A node skipped when it was decided: its creation time is its update time, left out.
    expect(nodeToItem(aNode({ status: 'skipped', skipReason: 'upstream_failed', calls: 0 }), 'a', T0)).toStrictEqual({
      s: 's',
      u: 0,
      sr: 'uf',
    })
    expect(nodeToItem(aNode({ status: 'completed', chosen: null }), 'a', T0).ch).toBeNull()
    const record = anInstance('wf-1', {
      deadlineAtMs: T0 + 5000,
      nodes: {
        a: aNode({ status: 'completed', chosen: 'b' }),
        b: aNode({ status: 'skipped', skipReason: 'not_chosen' }),
      },
    })
    const item = recordToItem(record)
    expect(item.dlMs).toBe(T0 + 5000)
    expect(recordFromItem(item)).toMatchObject({ deadlineAtMs: T0 + 5000, nodes: record.nodes })
  })

  it('packs a skipped record and a completed one with its output inline into one string each, read back as they were', () => {
    const skipped = aNode({
      status: 'skipped',
      skipReason: 'condition_false',
      createdAtMs: T0 + 75,
      updatedAtMs: T0 + 75,
    })
    const completed = aNode({
      status: 'completed',
      calls: 1,
      createdAtMs: T0 + 36,
      updatedAtMs: T0 + 1500,
      output: { s: 'a|b', n: 3 },
    })
    const bare = aNode({ status: 'completed', calls: 1, createdAtMs: T0 + 7, updatedAtMs: T0 + 7, output: {} })
    const retried = aNode({ status: 'completed', calls: 1, failCount: 1, createdAtMs: T0, updatedAtMs: T0 + 5 })
    expect(packNode(nodeToItem(skipped, 'a', T0))).toBe('cf|23')
    expect(packNode(nodeToItem(completed, 'b', T0))).toBe('c|10|15o|{"s":"a|b","n":3}')
    expect(packNode(nodeToItem(bare, 'c', T0))).toBe('c||7|')
    // Anything beyond status, times, reason and an inline output keeps the map.
    expect(typeof packNode(nodeToItem(retried, 'd', T0))).toBe('object')
    const record = anInstance('wf-p', { createdAtMs: T0, nodes: { a: skipped, b: completed, c: bare, d: retried } })
    const item = recordToItem(record)
    const stored = putInstanceParams('t', item).Item as Record<string, unknown>
    expect(Object.values(stored.n as object).map((node) => typeof node)).toEqual([
      'string',
      'string',
      'string',
      'object',
    ])
    expect(recordFromItem(parseInstanceItem(stored)).nodes).toStrictEqual(recordFromItem(item).nodes)
    expect(recordFromItem(item).nodes).toMatchObject(record.nodes)
  })

  it('sets or removes the deadline in a fenced write', () => {
    expect(update({ deadlineAtMs: T0 + 1 }).UpdateExpression).toContain('dlMs = :deadline')
    expect(update({ deadlineAtMs: null }).UpdateExpression).toMatch(/REMOVE .*dlMs/)
    expect(update({}).UpdateExpression).not.toContain('dlMs')
  })
})

describe('writeUnderLeaseParams with history', () => {
  const entry = (nodeId: string): HistoryEntry => ({ atMs: T0, kind: 'node', nodeId, status: 'completed', attempt: 1 })

  it('appends the entries to the list in the instance item, creating it on an item that has none', () => {
    const params = update({ history: [entry('a'), entry('b')] })

    expect(params.UpdateExpression).toContain('h = list_append(if_not_exists(h, :noH), :h)')
    // Packed: status code in capitals, time in base 36 after the instance's creation, node (the attempt only when not 1).
    expect(params.ExpressionAttributeValues?.[':h']).toEqual(['C|0|a', 'C|0|b'])
  })

  it('removes exactly the entries the holder knows, archives them, and appends its own past the end', () => {
    const known = [entry('a'), entry('b'), entry('c')]
    const planner = new ItemPlanner('wf-1', BASE, undefined, '0')
    const params = update({ history: [entry('d')], historyOut: { count: 3, entries: known, base: 40 } }, planner)

    const parts = actions(params.UpdateExpression)
    expect(parts.REMOVE).toEqual(['h[0]', 'h[1]', 'h[2]'])
    expect(parts.SET).toContain('h[1000000] = :h0')
    expect(parts.ADD).toContain('hb :hOut')
    expect(params.ConditionExpression).toContain('hb = :hBase')
    expect(params.ExpressionAttributeValues).toMatchObject({ ':hOut': 3, ':hBase': 40 })
    // One history archive item holds them, with the seq of the first.
    expect(planner.sideItems).toHaveLength(1)
    expect(planner.sideItems[0]).toMatchObject({ hb: 40, sk: expect.stringMatching(/^H#/) })
    expect(planner.sideItems[0]?.h).toHaveLength(3)
  })

  it('drops them instead at the cap: counted, and no archive item', () => {
    const planner = new ItemPlanner('wf-1', BASE, undefined, '0')
    const params = update({ historyOut: { count: 2, entries: [entry('a'), entry('b')], base: 0, drop: true } }, planner)

    expect(actions(params.UpdateExpression).ADD).toEqual(expect.arrayContaining(['hb :hOut', 'hd :hOut']))
    expect(params.ConditionExpression).toContain('(attribute_not_exists(hb) OR hb = :hBase)')
    expect(planner.sideItems).toEqual([])
  })
})

describe('acquireLeaseParams', () => {
  it('refuses terminal instances unless they are allowed', () => {
    const params = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, {})

    expect(params.ConditionExpression).toContain('NOT #status IN (:completed, :failed, :canceled, :timed_out)')
    expect(params.ExpressionAttributeNames).toEqual({ '#status': 'status' })
    expect(params.ExpressionAttributeValues).toMatchObject({ ':completed': 'c', ':failed': 'f', ':canceled': 'x' })
  })

  it('accepts terminal instances when they are allowed', () => {
    const params = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, { allowTerminal: true })

    expect(params.ConditionExpression).not.toMatch(/status/)
    expect(params.ExpressionAttributeNames).toBeUndefined()
    expect(Object.keys(params.ExpressionAttributeValues ?? {})).not.toContain(':completed')
  })

  it.each([false, true])('takes a free, expired or own lease and grows the fence (allowTerminal %s)', (allow) => {
    const params = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, { allowTerminal: allow })

    expect(params.ConditionExpression).toContain(
      'attribute_exists(pk) AND (attribute_not_exists(lo) OR lu < :now OR lo = :owner)',
    )
    // Due by the lease end (for no attempt named) and unparked in the same write.
    expect(params.UpdateExpression).toBe(
      'SET lo = :owner, lu = :until, dueAtMs = :until, ds = :until, dueShard = :shard, nx = :noName ' +
        'REMOVE parkCode, parkReason, parkAtMs ADD f :one',
    )
    expect(params.ExpressionAttributeValues).toMatchObject({
      ':owner': 'runner',
      ':until': T0 + 30_000,
      ':now': T0,
      ':shard': dueShardFor('wf-1'),
      ':noName': '',
    })
    expect(params.ReturnValues).toBe('ALL_OLD')
    expect(params.ReturnValuesOnConditionCheckFailure).toBe('ALL_OLD')
  })
})

describe('acquireLeaseParams for a due pass or a terminal instance', () => {
  it.each([
    ['a due pass (already due by now)', { dueBy: T0 }],
    ['a terminal instance (needs nothing)', { terminalOnly: true }],
  ])('leaves the due time alone for %s', (_, options) => {
    const params = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, options)
    expect(params.UpdateExpression).not.toMatch(/dueAtMs|dueShard/)
    expect(params.UpdateExpression).toMatch(/^SET lo = :owner, lu = :until\b.* ADD f :one$/)
    expect(params.ExpressionAttributeValues).not.toHaveProperty(':shard')
  })

  it('unparks what a due pass acquires (a parked instance is not due, but one stored so would be), not a terminal one', () => {
    const due = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, { dueBy: T0 }).UpdateExpression
    expect(due).toContain('REMOVE parkCode, parkReason, parkAtMs')
    const terminal = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, { terminalOnly: true })
    expect(terminal.UpdateExpression).not.toMatch(/park/)
  })

  it('records the attempt the item names for a due pass only, keeping one an earlier lease recorded', () => {
    const due = acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, { dueBy: T0 }).UpdateExpression
    for (const set of ['xn = if_not_exists(xn, nx)', 'xt = if_not_exists(xt, :now)', 'xf = if_not_exists(xf, f)']) {
      expect(due).toContain(set)
    }
    for (const options of [{}, { terminalOnly: true }, { allowTerminal: true }]) {
      expect(acquireLeaseParams(TABLE, 'wf-1', 'runner', T0, T0 + 30_000, options).UpdateExpression).not.toMatch(
        /\bx[ntf]\b/,
      )
    }
  })
})

/** The page request the shared catalogue makes for a query. */
const listPage = (
  query: Parameters<typeof listKeyRange>[0],
  filter: IndexPageRequest['filter'] = {},
  limit = 5,
): Pick<IndexPageRequest, 'range' | 'order' | 'filter' | 'limit'> => ({
  range: listKeyRange(query),
  order: query.order,
  filter,
  limit,
})

describe('clearing consumed callback arrivals', () => {
  it('removes each only while it is the arrival read, takes its bytes off, and lists its content for deletion', () => {
    const params = clearArrivalsParams(TABLE, 'wf-1', {
      pay: { call: 2, fence: 3, fingerprint: 'fp1', bytes: 700, sk: 'N#1' },
      ship: { call: 1, fence: 3, bytes: 0 },
    }) as UpdateCommandInput
    expect(params.ConditionExpression).toBe(
      'attribute_exists(pk) AND cb.#a0.c = :c0 AND cb.#a0.f = :f0 AND cb.#a0.fp = :p0 AND ' +
        'cb.#a1.c = :c1 AND cb.#a1.f = :f1 AND attribute_not_exists(cb.#a1.s)',
    )
    expect(params.UpdateExpression).toBe('SET gc.#g0 = :zero, b = b - :freed REMOVE cb.#a0, cb.#a1')
    expect(params.ExpressionAttributeNames).toEqual({ '#a0': 'pay', '#g0': 'N#1', '#a1': 'ship' })
    expect(params.ExpressionAttributeValues).toMatchObject({ ':c0': 2, ':f0': 3, ':p0': 'fp1', ':freed': 700 })
  })

  it('lists only the content of an arrival replaced since it was read, and sends nothing when there is none', () => {
    const arrivals = { pay: { call: 2, fence: 3, fingerprint: 'fp1', bytes: 700, sk: 'N#1' } }
    const params = clearArrivalsParams(TABLE, 'wf-1', arrivals, new Set(['pay'])) as UpdateCommandInput
    expect(params.UpdateExpression).toBe('SET gc.#g0 = :zero')
    expect(params.ConditionExpression).toBe('attribute_exists(pk)')
    const inline = { pay: { call: 2, fence: 3, fingerprint: 'fp1', bytes: 70 } }
    expect(clearArrivalsParams(TABLE, 'wf-1', inline, new Set(['pay']))).toBeUndefined()
  })
})

describe('arrivals at a parked instance', () => {
  const event = { eventTs: 5, content: { ok: true }, receivedAtMs: T0 }
  const eventParams = (parked: boolean) =>
    putEventParams(
      TABLE,
      'wf-1',
      'approve',
      event,
      T0,
      undefined,
      new ItemPlanner('wf-1', BASE, undefined, '0'),
      undefined,
      undefined,
      0,
      parked,
    )

  it('makes an instance due for its event only when it is not parked, as the condition says', () => {
    const live = eventParams(false)
    expect(live.ConditionExpression).toContain('attribute_not_exists(parkCode)')
    expect(live.UpdateExpression).toMatch(/dueAtMs = :now/)
    const parked = eventParams(true)
    expect(parked.ConditionExpression).toContain('attribute_exists(parkCode)')
    expect(parked.ConditionExpression).not.toContain('attribute_not_exists(parkCode)')
    expect(parked.UpdateExpression).not.toMatch(/dueAtMs|\bds\b|dueShard|\bnx\b/)
    // Counted all the same: a pass running when it arrives notices it.
    expect(parked.UpdateExpression).toMatch(/ADD es :one$/)
  })

  it('makes an instance due for a callback completion only when it is not parked; a heartbeat never', () => {
    const claims = { instanceId: 'wf-1', nodeId: 'pay', attempt: 1, call: 1, fence: 2 }
    const completion = (parked: boolean) =>
      putCallbackParams(TABLE, claims, { c: 1, f: 2, s: 's' }, T0, 'entry', {}, parked)
    expect(completion(false).ConditionExpression).toContain('attribute_not_exists(parkCode)')
    expect(completion(false).UpdateExpression).toMatch(/dueAtMs = :now.* ADD es :one$/)
    expect(completion(true).ConditionExpression).toContain('attribute_exists(parkCode)')
    expect(completion(true).ConditionExpression).not.toContain('attribute_not_exists(parkCode)')
    expect(completion(true).UpdateExpression).toBe('SET cb.#n = :arrival ADD es :one')
    // `:now` is the clock the wait's deadlines are held to, parked or not.
    expect(completion(true).ExpressionAttributeValues).toHaveProperty(':now', T0)
    const heartbeat = putCallbackParams(TABLE, claims, { c: 1, f: 2, hb: T0 }, T0, 'entry')
    expect(heartbeat.ConditionExpression).not.toMatch(/parkCode/)
    expect(heartbeat.UpdateExpression).toBe('SET cb.#n = :arrival')
  })

  it('never marks a parked instance due', () => {
    expect(markDueParams(TABLE, 'wf-1', T0).ConditionExpression).toContain('attribute_not_exists(parkCode)')
  })
})

describe('list query parameters', () => {
  const byType: ListPartition = { index: INDEX.byType, keyName: 'wfType', keyValue: 'orders' }
  const byBusiness: ListPartition = { index: INDEX.byBusiness, keyName: 'businessId', keyValue: 'cust-1' }
  const cursorKey = createdKey(T0, 'wf-9')

  it('reads one byType partition per workflow type, or the business id partition alone', () => {
    expect(listPartitions({ workflowTypes: ['orders', 'billing'] })).toEqual([
      byType,
      { index: INDEX.byType, keyName: 'wfType', keyValue: 'billing' },
    ])
    expect(listPartitions({ workflowTypes: ['orders', 'billing'], businessId: 'cust-1' })).toEqual([byBusiness])
  })

  it.each([
    { order: 'desc' as const, bound: 'high', forward: false },
    { order: 'asc' as const, bound: 'low', forward: true },
  ])('continues a $order list from the cursor by moving the $bound bound', ({ order, bound, forward }) => {
    const params = listQueryParams(
      TABLE,
      byType,
      listPage({ workflowTypes: ['orders'], order, after: cursorKey }, {}, 6),
      undefined,
    )

    expect(params.ExpressionAttributeValues?.[`:${bound}`]).toBe(cursorKey)
    expect(params.ScanIndexForward).toBe(forward)
    expect(params.Limit).toBe(6)
  })

  it('translates the shared entry filter: statuses, parked, and the one workflow type of a business id partition', () => {
    const typed = listQueryParams(
      TABLE,
      byBusiness,
      listPage({ workflowTypes: ['orders'], order: 'asc' }, { workflowType: 'orders' }),
      undefined,
    )
    const all = listQueryParams(
      TABLE,
      byBusiness,
      listPage({ workflowTypes: ['orders', 'x'], order: 'asc' }),
      undefined,
    )
    const statuses = listQueryParams(
      TABLE,
      byType,
      listPage({ workflowTypes: ['orders'], order: 'asc' }, { statuses: ['running', 'init'], parked: false }),
      undefined,
    )

    expect(typed.FilterExpression).toBe('#type = :type')
    expect(all.FilterExpression).toBeUndefined()
    expect(statuses.FilterExpression).toBe('#status IN (:s0, :s1) AND attribute_not_exists(parkCode)')
  })

  it('asks only for the number of matches when counting', () => {
    const params = listQueryParams(
      TABLE,
      byType,
      { ...listPage({ workflowTypes: ['orders'], order: 'asc' }), countOnly: true },
      undefined,
    )

    expect(params.Select).toBe('COUNT')
  })

  it.each([
    { range: 'from after to', query: { createdFromMs: T0 + 1, createdToMs: T0 }, order: 'asc' as const },
    {
      range: 'a desc cursor older than the start',
      query: { createdFromMs: T0 + 1, after: cursorKey },
      order: 'desc' as const,
    },
    {
      range: 'an asc cursor newer than the end',
      query: { createdToMs: T0 - 1, after: cursorKey },
      order: 'asc' as const,
    },
  ])('reports an empty key range for $range', ({ query, order }) => {
    const { low, high } = listKeyRange({ workflowTypes: ['orders'], order, ...query })

    expect(low > high).toBe(true)
  })
})

/** Every `#name` and `:value` placeholder the expressions use, and every one the request declares. */
const placeholders = (params: UpdateCommandInput | QueryCommandInput) => {
  const expressions = [
    'UpdateExpression' in params ? params.UpdateExpression : undefined,
    'ConditionExpression' in params ? params.ConditionExpression : undefined,
    'KeyConditionExpression' in params ? params.KeyConditionExpression : undefined,
    'FilterExpression' in params ? params.FilterExpression : undefined,
  ].join(' ')
  const used = (sigil: string) => [...new Set(expressions.match(new RegExp(`${sigil}[A-Za-z0-9_]+`, 'g')) ?? [])].sort()
  return {
    usedNames: used('#'),
    declaredNames: Object.keys(params.ExpressionAttributeNames ?? {}).sort(),
    usedValues: used(':'),
    declaredValues: Object.keys(params.ExpressionAttributeValues ?? {}).sort(),
  }
}

describe('every request declares exactly the placeholders it uses', () => {
  // DynamoDB rejects a request that declares a name or value its expressions do not use.
  const byType: ListPartition = { index: INDEX.byType, keyName: 'wfType', keyValue: 'orders' }
  const byBusiness: ListPartition = { index: INDEX.byBusiness, keyName: 'businessId', keyValue: 'cust-1' }
  const event = { eventTs: 5, content: { ok: true }, receivedAtMs: T0 }

  it.each<{ request: string; params: UpdateCommandInput | QueryCommandInput }>([
    { request: 'acquireLease', params: acquireLeaseParams(TABLE, 'wf-1', 'r', T0, T0 + 1, {}) },
    {
      request: 'acquireLease allowing terminal',
      params: acquireLeaseParams(TABLE, 'wf-1', 'r', T0, T0 + 1, { allowTerminal: true }),
    },
    { request: 'acquireLease when due', params: acquireLeaseParams(TABLE, 'wf-1', 'r', T0, T0 + 1, { dueBy: T0 }) },
    { request: 'queryDue', params: queryDueParams(TABLE, 3, T0, 100, undefined) },
    { request: 'writeUnderLease, time only', params: update({}) },
    {
      request: 'writeUnderLease, everything',
      params: update({
        nodes: { a: aNode(), b: aNode() },
        status: 'completed',
        input: { x: 1 },
        dueAtMs: T0,
        release: true,
      }),
    },
    { request: 'writeUnderLease, clearing due', params: update({ dueAtMs: null }) },
    {
      request: 'writeUnderLease, moving history',
      params: update({
        history: [{ atMs: T0, kind: 'finished', status: 'completed' }],
        historyOut: { count: 1, entries: [{ atMs: T0, kind: 'created' }], base: 0 },
      }),
    },
    {
      request: 'putEvent with its history entry',
      params: putEventParams(
        TABLE,
        'wf-1',
        'approve',
        event,
        T0,
        undefined,
        new ItemPlanner('wf-1', BASE, undefined, '0'),
        {
          atMs: T0,
          kind: 'event',
          nodeId: 'approve',
          eventTs: 5,
        },
      ),
    },
    { request: 'releaseLease', params: releaseLeaseParams(TABLE, LEASE) },
    {
      request: 'putEvent',
      params: putEventParams(
        TABLE,
        'wf-1',
        'approve',
        event,
        T0,
        undefined,
        new ItemPlanner('wf-1', BASE, undefined, '0'),
      ),
    },
    {
      request: 'putEvent for a parked instance',
      params: putEventParams(
        TABLE,
        'wf-1',
        'approve',
        event,
        T0,
        undefined,
        new ItemPlanner('wf-1', BASE, undefined, '0'),
        undefined,
        undefined,
        0,
        true,
      ),
    },
    { request: 'markDue', params: markDueParams(TABLE, 'wf-1', T0) },
    { request: 'clearTerminalDue', params: clearTerminalDueParams(TABLE, 'wf-1', T0) },
    {
      request: 'acquireLease of a terminal instance only',
      params: acquireLeaseParams(TABLE, 'wf-1', 'r', T0, T0 + 1, { terminalOnly: true }),
    },
    { request: 'writeUnderLease, deadline', params: update({ deadlineAtMs: T0 }) },
    {
      request: 'list by type',
      params: listQueryParams(TABLE, byType, listPage({ workflowTypes: ['orders'], order: 'desc' }), undefined),
    },
    {
      request: 'list by type with statuses and range',
      params: listQueryParams(
        TABLE,
        byType,
        listPage({ workflowTypes: ['orders'], createdFromMs: T0, order: 'asc' }, { statuses: ['running', 'init'] }),
        undefined,
      ),
    },
    {
      request: 'list by business id and type',
      params: listQueryParams(
        TABLE,
        byBusiness,
        listPage(
          { workflowTypes: ['orders'], businessId: 'cust-1', order: 'desc' },
          { statuses: ['failed'], workflowType: 'orders', parked: true },
        ),
        undefined,
      ),
    },
  ])('$request', ({ params }) => {
    const { usedNames, declaredNames, usedValues, declaredValues } = placeholders(params)

    expect(declaredNames).toEqual(usedNames)
    expect(declaredValues).toEqual(usedValues)
  })
})

describe('item codec', () => {
  it.each<{ shape: string; record: InstanceRecord }>([
    { shape: 'a minimal record', record: anInstance('wf-1') },
    {
      shape: 'a record with every optional field',
      record: anInstance('wf-1', {
        businessId: 'cust-1',
        status: 'failed',
        input: { a: 1, list: [true, null, 'x'], nested: { deep: {} } },
        nodes: {
          plain: aNode(),
          busy: aNode({
            status: 'restarting',
            failCount: 3,
            attempt: 2,
            waits: 5,
            nextAttemptAtMs: T0 + 9,
            seenEventTs: 1_767_268_800,
            seenEventAtMs: T0 + 2,
            output: { done: false },
            workflowContext: {},
            preNodeContext: { plain: { done: true } },
            resetOnRestart: true,
          }),
        },
        events: { busy: { eventTs: 1_767_268_800, content: ['a', 1], receivedAtMs: T0 + 2 } },
        eventSeq: 4,
        fence: 9,
        leaseOwner: 'runner',
        leaseUntilMs: T0 + 30_000,
        dueAtMs: T0 + 10,
        requestHash: 'h',
      }),
    },
  ])('reads back $shape exactly as it was written', ({ record }) => {
    expect(recordFromItem(recordToItem(record))).toStrictEqual({ ...record, storedBytes: instanceStoredBytes(record) })
  })

  it('leaves default values out of a stored node, its times in ms after the instance was created', () => {
    const node = aNode({ status: 'pending', createdAtMs: T0, updatedAtMs: T0 + 1, calls: 1 })
    expect(nodeToItem(node, 'node', T0)).toStrictEqual({ s: 'p', a: 0, u: 1 })
  })

  it.each<{ field: string; node: Partial<NodeRecord>; stored: Record<string, unknown> }>([
    { field: 'failCount', node: { failCount: 2 }, stored: { fc: 2 } },
    { field: 'attempt', node: { attempt: 3 }, stored: { at: 3 } },
    { field: 'waits', node: { waits: 4 }, stored: { w: 4 } },
    { field: 'output', node: { output: { a: 1 } }, stored: { o: '{"a":1}' } },
    { field: 'an empty workflowContext', node: { workflowContext: {} }, stored: { wc: '{}' } },
    { field: 'resetOnRestart', node: { resetOnRestart: true }, stored: { rr: true } },
    { field: 'calls other than one', node: { calls: 2 }, stored: { c: 2 } },
    { field: 'the last error', node: { lastError: 'e', lastErrorAtSeconds: 5 }, stored: { le: 'e', lt: 5 } },
  ])('stores $field when it differs from the default', ({ node, stored }) => {
    expect(nodeToItem(aNode({ calls: 1, ...node }), 'node', T0)).toStrictEqual({ s: 'r', a: 0, u: 0, ...stored })
  })

  it('indexes the item for listing, and for the due index only while it is due', () => {
    const due = recordToItem(anInstance('wf-1', { dueAtMs: T0 }))
    const idle = recordToItem(anInstance('wf-1'))

    expect(due).toMatchObject({ pk: 'I#wf-1', wfType: 'orders', createdKey: createdKey(T0, 'wf-1') })
    expect(due.dueShard).toBe(dueShardFor('wf-1'))
    expect(idle).not.toHaveProperty('dueAtMs')
    expect(idle).not.toHaveProperty('dueShard')
  })

  it.each<{ fault: string; item: Record<string, unknown> }>([
    { fault: 'a missing attribute', item: { ...recordToItem(anInstance('wf-1')), f: undefined } },
    { fault: 'a schema version that is not a number', item: { ...recordToItem(anInstance('wf-1')), v: 'two' } },
    { fault: 'an unknown status', item: { ...recordToItem(anInstance('wf-1')), status: 'paused' } },
    {
      fault: 'a malformed node',
      item: { ...recordToItem(anInstance('wf-1')), n: { a: { s: 'r', a: 'yesterday', u: 1 } } },
    },
    { fault: 'no item shape at all', item: { pk: 'I#x' } },
  ])('rejects an item with $fault as a CORRUPT_ITEM StoreError', ({ item }) => {
    let error: unknown
    try {
      recordFromItem(item)
    } catch (caught) {
      error = caught
    }

    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ code: 'CORRUPT_ITEM', retryable: false })
  })
})

describe('putCallbackParams and the instance budget', () => {
  const claims = { instanceId: 'i-1', nodeId: 'pay', attempt: 1, call: 2, fence: 3 }
  const completion = { c: 2, f: 3, s: 's' as const, o: '"ok"', at: 1, fp: 'x', b: 120 }

  it('adds what a completion counts for to b, conditioned on room for it', () => {
    const params = putCallbackParams('t', claims, completion, 1000, 'entry', { maxBytes: 10_000, baseBytes: 2000 })
    expect(params.UpdateExpression).toContain('b = if_not_exists(b, :bytesBase) + :bytes')
    expect(params.ExpressionAttributeValues).toMatchObject({ ':bytes': 120, ':room': 9880, ':bytesBase': 2000 })
    expect(params.ConditionExpression).toContain('(attribute_not_exists(b) OR b <= :room)')
    // It may replace only an entry that counts nothing: one that does is replaced by name (below).
    expect(params.ConditionExpression).toContain('(attribute_not_exists(cb.#n) OR attribute_not_exists(cb.#n.b))')
  })

  it('takes off the bytes of the counted arrival it replaces, conditioned on that very one', () => {
    const params = putCallbackParams('t', claims, completion, 1000, 'entry', {
      replaces: { call: 1, bytes: 500 },
      maxBytes: 10_000,
      baseBytes: 2000,
    })
    expect(params.ConditionExpression).toContain('cb.#n.c = :oldCall AND cb.#n.b = :oldBytes')
    expect(params.ExpressionAttributeValues).toMatchObject({ ':bytes': -380, ':oldCall': 1, ':oldBytes': 500 })
    expect(params.ConditionExpression).not.toContain(':room')
  })

  it('leaves b alone for a heartbeat', () => {
    const params = putCallbackParams('t', claims, { c: 2, f: 3, hb: 5 }, 1000, 'map')
    expect(params.UpdateExpression).not.toMatch(/[ ,]b = /)
    expect(params.ConditionExpression).not.toContain(':room')
  })
})

describe('a callback arrival in the instance item', () => {
  const failure = (error: string, cause: string): CallbackArrival => {
    const completion = { status: 'failure' as const, error, cause }
    return { call: 1, fence: 1, completion: { ...completion, atMs: 5, fingerprint: 'fp' }, storedBytes: 900 }
  }
  const side = new Map<string, string>()
  const lay = (text: string) => {
    if (text.length <= 128) return { text }
    side.set(`N#${side.size}`, text)
    return { ref: `N#${side.size - 1}` }
  }

  it.each([
    ['inline, when its error and cause are short', failure('Declined', 'no funds'), ['e', 'ca']],
    ['in an item of its own, when they are long', failure('E'.repeat(256), 'c'.repeat(4096)), ['er']],
  ])('keeps a failure %s, and reads it back whole', (_, arrival, fields) => {
    const item = arrivalToItem(arrival, lay)
    for (const field of fields) expect(item).toHaveProperty(field)
    expect(item.b).toBe(900)
    expect(arrivalFromItem(item, (sk) => side.get(sk))).toEqual(arrival)
  })
})

describe('what a node record takes in the instance item', () => {
  it('is counted at least as DynamoDB counts it, and within a few bytes', () => {
    const records = [
      nodeToItem(aNode({ status: 'completed', output: { out: 'o'.repeat(1000) } }), 'n'.repeat(25), BASE),
      nodeToItem(
        aNode({
          status: 'running',
          output: { out: 'o'.repeat(900) },
          lastError: `Error: ${'E'.repeat(293)}`,
          lastErrorAtSeconds: 1_767_268_920,
          failCount: 1,
          attempt: 2,
          updatedAtMs: T0 + 123_456,
          nextAttemptAtMs: T0 + 3_600_000,
        }),
        'n'.repeat(64),
        BASE,
      ),
      nodeToItem(aNode({ status: 'skipped' }), 'skipped', BASE),
    ]
    for (const [index, node] of records.entries()) {
      const id = ['n'.repeat(25), 'n'.repeat(64), 'skipped'][index] as string
      const dynamo = itemSizeBytes({ n: { M: { [id]: marshall({ v: packNode(node) }).v as AttributeValue } } })
      // The map `n` itself (its name and 3 bytes) is not the record's.
      const counted = storedNodeBytes(id, node) + 1 + 3
      expect(counted).toBeGreaterThanOrEqual(dynamo)
      expect(counted - dynamo).toBeLessThan(16)
    }
  })
})
