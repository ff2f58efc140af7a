import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { hash53, loadDefinition } from '../../src/core/definition.js'
import { Engine } from '../../src/core/engine.js'
import { canonicalJson } from '../../src/core/json.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

describe('canonicalJson', () => {
  it('does not depend on the order keys were written in, at any depth', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é' } })).toBe(
      canonicalJson({ a: { c: 'é', d: [1, { x: 1, y: 2 }] }, b: 1 }),
    )
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é' } })).toBe(
      '{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}',
    )
  })

  it('sorts keys by UTF-16 code units, as the stored hashes were computed', () => {
    expect(canonicalJson({ b: 0, B: 0, é: 0, a: 0, _: 0, '10': 0, '9': 0 })).toBe(
      '{"10":0,"9":0,"B":0,"_":0,"a":0,"b":0,"é":0}',
    )
  })

  it('keeps null, writes an undefined member or item as null, and undefined itself as null', () => {
    expect(canonicalJson({ a: null, b: undefined, c: [undefined, null] })).toBe('{"a":null,"b":null,"c":[null,null]}')
    expect(canonicalJson(undefined)).toBe('null')
  })

  it('leaves out null and undefined members with omitNullMembers, but keeps null items of arrays', () => {
    expect(canonicalJson({ a: null, b: undefined, c: [null], d: { e: null, f: 0 } }, { omitNullMembers: true })).toBe(
      '{"c":[null],"d":{"f":0}}',
    )
  })

  it('writes numbers, strings and booleans as JSON does', () => {
    expect(canonicalJson([1.5, -0, 1e21, 'a"b\n', true, false, Number.NaN])).toBe(
      JSON.stringify([1.5, -0, 1e21, 'a"b\n', true, false, Number.NaN]),
    )
  })
})

/**
 * Both hashes below are stored: a create's request hash on every instance created with a client-chosen id (a retry of
 * the create compares it), a definition's version on every instance and definition snapshot. A change of the text
 * they are computed on would turn an idempotent retry into a 409 and every stored instance into "an older version".
 * The values were computed before canonicalJson replaced the two functions that produced them.
 */
describe('hashes computed on canonical JSON', () => {
  const newEngine = () => {
    const store = new MemoryStore()
    const engine = new Engine({ store, clock: new FakeClock(), ids: sequentialIds('pin'), random: fixedRandom() })
    engine.registerWorkflow({ id: 'pinned', nodes: [{ id: 'a' }] })
    engine.registerWorker('pinned', 'a', { run: async () => {} })
    return { engine, store }
  }

  it.each([
    [
      'a context with nested data, null and non-ASCII keys',
      { context: { b: [1, 'two', null, { y: true, x: 1.5 }], a: null, é: 'ü' } },
      '12a0d7bf036a05',
    ],
    ['an empty context and a business id', { context: {}, businessId: 'PO-1' }, '0b67af00716fe9'],
    [
      'a delayed start',
      { context: { nested: { z: 1, a: { k: 'v' } } }, startAtMs: Date.UTC(2026, 0, 2) },
      '1d5e03b203e65a',
    ],
    ['an undefined member (counted as null)', { context: { k: 1, u: undefined } }, '1af1d5cb3ad17b'],
    ['a null member', { context: { k: 1, u: null } }, '1af1d5cb3ad17b'],
  ])('keeps the request hash of a create with %s', async (_, params, hash) => {
    const { engine, store } = newEngine()

    await engine.create({ workflowType: 'pinned', id: 'pinned-1', run: false, ...params })

    const stored = await store.getInstance('pinned-1')
    expect(stored?.requestHash).toBe(hash)
    expect(
      hash53(
        canonicalJson({
          type: 'pinned',
          businessId: (params as { businessId?: string }).businessId ?? null,
          input: stored?.input,
          startAtMs: (params as { startAtMs?: number }).startAtMs ?? null,
        }),
      ),
    ).toBe(hash)
  })

  it.each([
    [
      'with a null limit and an undefined name',
      {
        id: 'v',
        nodes: [
          { id: 'a', next_nodes: ['b'], fail_max_count: null },
          { id: 'b', max_wait_time_ts: 30, name: undefined },
        ],
      },
      '1d1fd8d5295a2d',
    ],
    [
      'without them (the same version)',
      {
        id: 'v',
        nodes: [
          { id: 'a', next_nodes: ['b'] },
          { id: 'b', max_wait_time_ts: 30 },
        ],
      },
      '1d1fd8d5295a2d',
    ],
    [
      'with retry policies',
      {
        id: 'v',
        name: 'V',
        retry: { multiplier: 2, jitter: 0 },
        nodes: [{ id: 'a', retry: { initial_delay_seconds: 5 } }],
      },
      '1f7438117a7350',
    ],
  ])('keeps the version of a definition %s', (_, config, version) => {
    expect(loadDefinition(config).version).toBe(version)
  })
})
