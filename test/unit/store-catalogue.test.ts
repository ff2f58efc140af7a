import { describe, expect, it } from 'vitest'
import * as keys from '../../src/adapters/dynamodb/keys.js'
import {
  type CatalogueEntry,
  createdKey,
  createdKeyBounds,
  decodeListCursor,
  encodeListCursor,
  entryFilter,
  entryMatches,
  listKeyRange,
} from '../../src/adapters/store-catalogue.js'
import { ValidationError } from '../../src/core/errors.js'
import { T0 } from '../support/records.js'

/** The largest time a JavaScript Date can hold, which the API accepts for creation-range bounds. */
const MAX_EPOCH_MS = 8_640_000_000_000_000

describe('createdKey', () => {
  it('sorts as text in the same order as the creation times sort as numbers', () => {
    const times = [T0, 0, 1_000, 9, 999_999_999_999_999, 10, 100, T0 + 1, 99, 1_000_000_000_000]

    const byKey = [...times].sort((a, b) => (createdKey(a, 'x') < createdKey(b, 'x') ? -1 : 1))

    expect(byKey).toEqual([...times].sort((a, b) => a - b))
  })

  it('orders instances created in the same millisecond by id', () => {
    const keys = ['b', 'a', 'c'].map((id) => createdKey(T0, id)).sort()

    expect(keys).toEqual([createdKey(T0, 'a'), createdKey(T0, 'b'), createdKey(T0, 'c')])
  })

  it.each([
    { range: 'a day', fromMs: T0, toMs: T0 + 86_400_000 },
    { range: 'everything up to the end of time', fromMs: 0, toMs: MAX_EPOCH_MS },
    { range: 'the last 15-digit times and beyond', fromMs: 900_000_000_000_000, toMs: 1_000_000_000_000_000 },
    { range: 'a single millisecond', fromMs: T0, toMs: T0 },
  ])('bounds a creation range ($range) so that exactly the keys inside it fall between', ({ fromMs, toMs }) => {
    const [low, high] = createdKeyBounds(fromMs, toMs)
    const samples = [0, T0 - 1, T0, T0 + 1, T0 + 86_400_000, T0 + 86_400_001, 900_000_000_000_000, 999_999_999_999_999]

    const inside = samples.filter((ms) => {
      const key = createdKey(ms, 'some-id')
      return low <= key && key <= high
    })

    expect(low <= high).toBe(true)
    expect(inside).toEqual(samples.filter((ms) => ms >= fromMs && ms <= toMs))
  })
})

describe('the created key of the DynamoDB layout', () => {
  it.each([
    [0, 'a'],
    [T0, 'wf-000001'],
    [999_999_999_999_999, 'x.y:z_1'],
  ])('is the shared rule (%s, %s)', (ms, id) => {
    expect(keys.createdKey(ms, id)).toBe(createdKey(ms, id))
    expect(keys.createdKeyBounds(ms, ms + 1)).toEqual(createdKeyBounds(ms, ms + 1))
  })
})

describe('listKeyRange', () => {
  const cursorKey = createdKey(T0, 'wf-9')

  it.each([
    { order: 'desc' as const, bound: 'high' as const },
    { order: 'asc' as const, bound: 'low' as const },
  ])('narrows the $bound bound of a $order range to the cursor, which it includes', ({ order, bound }) => {
    expect(listKeyRange({ workflowTypes: ['orders'], order, after: cursorKey })[bound]).toBe(cursorKey)
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
  ])('is empty for $range', ({ query, order }) => {
    const { low, high } = listKeyRange({ workflowTypes: ['orders'], order, ...query })

    expect(low > high).toBe(true)
  })
})

describe('the entry filter', () => {
  const entry = (overrides: Partial<CatalogueEntry>): CatalogueEntry => ({
    createdKey: createdKey(T0, 'i1'),
    id: 'i1',
    workflowType: 'orders',
    businessId: 'cust-1',
    status: 'running',
    createdAtMs: T0,
    ...overrides,
  })

  it.each([
    { rule: 'no filter', query: { workflowTypes: ['orders'] }, overrides: {}, expected: true },
    {
      rule: 'a status it has',
      query: { workflowTypes: ['orders'], statuses: ['running' as const] },
      overrides: {},
      expected: true,
    },
    {
      rule: 'a status it has not',
      query: { workflowTypes: ['orders'], statuses: ['failed' as const] },
      overrides: {},
      expected: false,
    },
    { rule: 'parked, not parked', query: { workflowTypes: ['orders'], parked: true }, overrides: {}, expected: false },
    {
      rule: 'parked, parked',
      query: { workflowTypes: ['orders'], parked: true },
      overrides: { parkCode: 'WORKER_MISSING' },
      expected: true,
    },
    {
      rule: 'not parked, parked',
      query: { workflowTypes: ['orders'], parked: false },
      overrides: { parkCode: 'X' },
      expected: false,
    },
    {
      rule: 'a business id and its one type, of another type',
      query: { workflowTypes: ['billing'], businessId: 'cust-1' },
      overrides: {},
      expected: false,
    },
    {
      rule: 'a business id and several types, of a type not listed',
      query: { workflowTypes: ['billing', 'shipping'], businessId: 'cust-1' },
      overrides: {},
      expected: true,
    },
  ])('with $rule: $expected', ({ query, overrides, expected }) => {
    const partition = query.businessId
      ? ({ by: 'business', businessId: query.businessId } as const)
      : ({ by: 'type', workflowType: 'orders' } as const)

    expect(entryMatches(entry(overrides), entryFilter(query, partition))).toBe(expected)
  })
})

describe('the list cursor', () => {
  it('gives back the created key it was made from', () => {
    const key = createdKey(T0, 'wf-000042')

    expect(decodeListCursor(encodeListCursor(key))).toBe(key)
  })

  it.each(['', 'not a cursor', encodeListCursor('zzz'), encodeListCursor(`${createdKey(T0, 'a')}\uffff`)])(
    'refuses %j with a ValidationError naming cursor',
    (cursor) => {
      expect(() => decodeListCursor(cursor)).toThrow(ValidationError)
      try {
        decodeListCursor(cursor)
      } catch (error) {
        expect(error).toMatchObject({ field: 'cursor' })
      }
    },
  )
})
