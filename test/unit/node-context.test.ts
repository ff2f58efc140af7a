import { describe, expect, it } from 'vitest'
import { ValidationError } from '../../src/core/errors.js'
import { assertJsonValue } from '../../src/core/json.js'
import { NodeContext } from '../../src/core/node-context.js'

const info = {
  instanceId: 'i1',
  workflowType: 'flow',
  nodeId: 'a',
  businessId: undefined,
  attempt: 1,
  idempotencyKey: 'i1:a:1',
  step: 'run' as const,
}

describe('the node context path API', () => {
  it('reads nested values with typed getters that answer undefined for the wrong type', () => {
    const ctx = new NodeContext({ user: { name: 'Alice', age: 31, admin: true, score: 1.5 } }, info)
    expect(ctx.getString('user', 'name')).toBe('Alice')
    expect(ctx.getInteger('user', 'age')).toBe(31)
    expect(ctx.getInteger('user', 'score')).toBeUndefined()
    expect(ctx.getNumber('user', 'score')).toBe(1.5)
    expect(ctx.getBoolean('user', 'admin')).toBe(true)
    expect(ctx.getString('user', 'age')).toBeUndefined()
    expect(ctx.get('user', 'missing', 'deeper')).toBeUndefined()
  })

  it('creates intermediate objects on set and deletes by path', () => {
    const ctx = new NodeContext({ a: 'scalar' }, info)
    ctx.set(['a', 'b', 'c'], 1)
    ctx.set('top', [1, 2])
    expect(ctx.toJSON()).toEqual({ a: { b: { c: 1 } }, top: [1, 2] })
    ctx.delete('a', 'b', 'c')
    expect(ctx.toJSON()).toEqual({ a: { b: {} }, top: [1, 2] })
  })

  it.each(['__proto__', 'constructor', 'prototype'])('rejects the path segment %s on set and get', (segment) => {
    const ctx = new NodeContext({}, info)
    expect(() => ctx.set([segment, 'polluted'], true)).toThrow(ValidationError)
    expect(() => ctx.set(['safe', segment], true)).toThrow(ValidationError)
    expect(() => ctx.get(segment)).toThrow(ValidationError)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('does not read inherited properties', () => {
    const ctx = new NodeContext({}, info)
    expect(ctx.get('toString')).toBeUndefined()
    expect(ctx.get('hasOwnProperty')).toBeUndefined()
  })

  it('exposes the event, the predecessor outputs and the idempotency key', () => {
    const ctx = new NodeContext(
      {
        pre_node_context: { submit: { by: 'bob' } },
        workflow_context: { order: 7 },
        node_event: { event_content: { approved: true }, event_ts: 42 },
      },
      info,
    )
    expect(ctx.event).toEqual({ eventTs: 42, content: { approved: true } })
    expect(ctx.predecessor('submit')).toEqual({ by: 'bob' })
    expect(ctx.workflowContext).toEqual({ order: 7 })
    expect(ctx.idempotencyKey).toBe('i1:a:1')
  })
})

describe('what can be stored as JSON', () => {
  const limits = { maxDepth: 4 }
  it.each([
    ['a function', { f: () => 1 }, 'ctx.f'],
    ['NaN', { n: Number.NaN }, 'ctx.n'],
    ['Infinity', { a: [1, Number.POSITIVE_INFINITY] }, 'ctx.a[1]'],
    ['a class instance', { d: new Date(0) }, 'ctx.d'],
    ['a __proto__ key', JSON.parse('{"x":{"__proto__":{"polluted":1}}}'), 'ctx.x.__proto__'],
    ['a constructor key', { constructor: 1 }, 'ctx.constructor'],
    ['deep nesting', { a: { b: { c: { d: { e: 1 } } } } }, 'ctx.a.b.c.d'],
    ['a bigint', { b: BigInt(1) }, 'ctx.b'],
  ])('rejects %s, naming the path', (_, value, field) => {
    try {
      assertJsonValue(value, 'ctx', limits)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).field).toBe(field)
    }
  })

  it('rejects a cycle', () => {
    const value: Record<string, unknown> = {}
    value.self = value
    expect(() => assertJsonValue(value, 'ctx', { maxDepth: 10 })).toThrow(/cycle/)
  })

  it('accepts plain data, including null-prototype objects', () => {
    const bare = Object.assign(Object.create(null), { ok: true })
    expect(() => assertJsonValue({ a: [1, 'x', null, { b: false }], bare }, 'ctx', limits)).not.toThrow()
  })
})
