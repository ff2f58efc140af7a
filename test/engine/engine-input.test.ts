import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import type { Engine } from '../../src/core/engine.js'
import {
  IdempotencyConflictError,
  PayloadTooLargeError,
  type TickflowError,
  ValidationError,
} from '../../src/core/errors.js'
import { newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend
  let engine: Engine

  beforeAll(async () => {
    backend = await backendFactory.open('engine-input')
  })

  beforeEach(() => {
    ;({ engine } = newTestEngine(backend, { limits: { maxInputBytes: 4096, maxNodeContextBytes: 4096 } }))
    engine.register(
      defineWorkflow({
        type: 'input',
        nodes: {
          a: { next: ['b'], run: (ctx) => ctx.set('ok', true) },
          b: {
            run: (ctx) => {
              const mode = ctx.getString('workflow_context', 'mode')
              if (mode === 'huge') ctx.set('blob', 'x'.repeat(10_000))
              if (mode === 'pollute') ctx.set(['safe', '__proto__', 'polluted'], true)
              if (mode === 'function') (ctx.toJSON() as Record<string, unknown>).fn = () => 1
            },
          },
        },
      }),
    )
  })

  /** Everything stored: what a rejected request must leave exactly as it was. */
  const snapshot = () => backend.snapshot()

  const nested = (depth: number): Record<string, unknown> => (depth === 0 ? { leaf: 1 } : { n: nested(depth - 1) })

  const rejection = async (promise: Promise<unknown>): Promise<TickflowError> => {
    try {
      await promise
    } catch (error) {
      return error as TickflowError
    }
    throw new Error('expected a rejection')
  }

  describe('bad input to create', () => {
    it.each([
      ['a missing workflow type', { context: {} }, ValidationError, 'workflowType'],
      ['a numeric workflow type', { workflowType: 7 }, ValidationError, 'workflowType'],
      ['an unknown parameter', { workflowType: 'input', colour: 'red' }, ValidationError, 'params'],
      ['a context that is an array', { workflowType: 'input', context: [1] }, ValidationError, 'context'],
      ['a context that is a string', { workflowType: 'input', context: 'x' }, ValidationError, 'context'],
      ['an id with a slash', { workflowType: 'input', id: 'a/b' }, ValidationError, 'id'],
      ['a run flag that is a string', { workflowType: 'input', run: 'yes' }, ValidationError, 'run'],
      [
        'a __proto__ key in the context',
        { workflowType: 'input', context: JSON.parse('{"a":{"__proto__":{"polluted":true}}}') },
        ValidationError,
        'context.a.__proto__',
      ],
      [
        'a constructor key',
        { workflowType: 'input', context: { constructor: { x: 1 } } },
        ValidationError,
        'context.constructor',
      ],
      ['a context nested too deep', { workflowType: 'input', context: nested(30) }, ValidationError, 'context'],
      [
        'an oversize context',
        { workflowType: 'input', context: { big: 'x'.repeat(5000) } },
        PayloadTooLargeError,
        'context',
      ],
      ['a NaN in the context', { workflowType: 'input', context: { n: Number.NaN } }, ValidationError, 'context.n'],
    ])('rejects %s with a typed error naming the field, and stores nothing', async (_, params, type, field) => {
      const before = await snapshot()
      const error = await rejection(engine.create(params as never))
      expect(error).toBeInstanceOf(type)
      expect(String(error.details.field)).toContain(field)
      expect(error.httpStatus).toBeGreaterThanOrEqual(400)
      expect(error.httpStatus).toBeLessThan(500)
      expect(await snapshot()).toEqual(before)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    })
  })

  describe('idempotent create with a client-chosen id', () => {
    it('returns the same instance for the same request and refuses a different one', async () => {
      const first = await engine.create({ workflowType: 'input', id: 'order-42', businessId: 'B', context: { n: 1 } })
      expect(first).toMatchObject({ instanceId: 'order-42', created: true, status: 'completed' })
      const again = await engine.create({ workflowType: 'input', id: 'order-42', businessId: 'B', context: { n: 1 } })
      expect(again).toEqual({ instanceId: 'order-42', status: 'completed', created: false })
      const before = await snapshot()
      await expect(
        engine.create({ workflowType: 'input', id: 'order-42', businessId: 'B', context: { n: 2 } }),
      ).rejects.toBeInstanceOf(IdempotencyConflictError)
      expect(await snapshot()).toEqual(before)
    })
  })

  describe('bad input to the other operations', () => {
    it('rejects an oversize or non-JSON event and keeps the instance as it was', async () => {
      const { instanceId } = await engine.create({ workflowType: 'input', run: false })
      const before = await snapshot()
      const tooBig = await rejection(
        engine.addNodeEvent({ instanceId, nodeId: 'a', eventTs: 1, content: { blob: 'x'.repeat(5000) } }),
      )
      expect(tooBig).toBeInstanceOf(PayloadTooLargeError)
      expect(tooBig.details).toMatchObject({ field: 'content', limitBytes: 4096 })
      const polluted = await rejection(
        engine.addNodeEvent({ instanceId, nodeId: 'a', eventTs: 1, content: JSON.parse('{"__proto__":{"x":1}}') }),
      )
      expect(polluted).toBeInstanceOf(ValidationError)
      const negative = await rejection(engine.addNodeEvent({ instanceId, nodeId: 'a', eventTs: -1 }))
      expect(negative.details.field).toBe('eventTs')
      expect(await snapshot()).toEqual(before)
    })

    it('rejects a restart with an oversize context and leaves the instance unchanged', async () => {
      const { instanceId } = await engine.create({ workflowType: 'input', run: false })
      await engine.cancel(instanceId)
      const before = await snapshot()
      await expect(engine.restartInstance({ instanceId, context: { big: 'x'.repeat(5000) } })).rejects.toBeInstanceOf(
        PayloadTooLargeError,
      )
      expect(await snapshot()).toEqual(before)
    })

    it.each([
      ['a cursor that is not one', { cursor: 'not-a-cursor' }, 'cursor'],
      ['a limit of zero', { limit: 0 }, 'limit'],
      ['an unknown status', { status: 'sleeping' }, 'status'],
      ['a reversed created range', { createdFromMs: 10, createdToMs: 5 }, 'createdFromMs'],
    ])('rejects a list with %s', async (_, params, field) => {
      const error = await rejection(engine.list(params as never))
      expect(error).toBeInstanceOf(ValidationError)
      expect(error.details.field).toBe(field)
    })
  })

  describe('what a worker leaves in its context', () => {
    it('fails the node for good when the context would exceed the budget, storing the context it started with', async () => {
      const { instanceId, status } = await engine.create({ workflowType: 'input', context: { mode: 'huge' } })
      expect(status).toBe('failed')
      const b = (await engine.get(instanceId)).nodes.find((node) => node.id === 'b')
      expect(b?.status).toBe('failed')
      expect(b?.context?.blob).toBeUndefined()
      expect(String((b?.context?.system as Record<string, unknown>)?.last_error)).toMatch(/over the limit of 4096/)
    })

    it.each([
      // `set` throws inside the worker: an ordinary worker error, retried.
      ['a __proto__ path', 'pollute', 'running', /forbidden/],
      // The worker returned but its context cannot be stored: retrying would store nothing better.
      ['a function value', 'function', 'failed', /only JSON data/],
    ])('treats %s as a worker error and stores nothing of it', async (_, mode, expected, message) => {
      const { instanceId, status } = await engine.create({ workflowType: 'input', context: { mode } })
      expect(status).toBe(expected)
      const b = (await engine.get(instanceId)).nodes.find((node) => node.id === 'b')
      expect(b?.failCount).toBe(1)
      expect(b?.context?.safe).toBeUndefined()
      expect(String((b?.context?.system as Record<string, unknown>)?.last_error)).toMatch(message)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    })
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
