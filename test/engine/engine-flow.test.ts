import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import type { Engine } from '../../src/core/engine.js'
import { WorkflowTypeNotFoundError } from '../../src/core/errors.js'
import { CallLog, type FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend
  let engine: Engine
  let clock: FakeClock
  let calls: CallLog

  beforeAll(async () => {
    backend = await backendFactory.open('engine-flow')
  })

  beforeEach(() => {
    ;({ engine, clock } = newTestEngine(backend))
    calls = new CallLog()
  })

  const nodeContext = async (instanceId: string, nodeId: string) =>
    (await engine.get(instanceId)).nodes.find((node) => node.id === nodeId)

  describe('a linear workflow', () => {
    beforeEach(() => {
      engine.registerWorkflow({
        id: 'linear',
        name: 'Linear',
        nodes: [
          { id: 'first', next_nodes: ['second'] },
          { id: 'second', next_nodes: ['third'] },
          { id: 'third', next_nodes: [] },
        ],
      })
      engine.registerWorker(
        'linear',
        'first',
        calls.wrap('first', {
          run: (ctx) => {
            ctx.set(['user', 'name'], `${ctx.getString('workflow_context', 'name')}!`)
          },
        }),
      )
      engine.registerWorker(
        'linear',
        'second',
        calls.wrap('second', {
          run: (ctx) => {
            ctx.set('seen', ctx.getString('pre_node_context', 'first', 'user', 'name') ?? 'nothing')
            // A worker's copy of the input is its own: this must not reach any other node.
            ctx.set(['workflow_context', 'name'], 'changed by second')
          },
        }),
      )
      engine.registerWorker('linear', 'third', calls.wrap('third', { run: (ctx) => ctx.set('done', true) }))
    })

    it('runs every node once, in order, and completes in one explicit pass', async () => {
      const created = await engine.create({ workflowType: 'linear', businessId: 'B-1', context: { name: 'Ada' } })
      expect(created.status).toBe('completed')
      expect(created.pass?.executed).toEqual(['first', 'second', 'third', 'end'])
      expect(calls.order).toEqual(['first.run', 'second.run', 'third.run'])
    })

    it('gives each node exactly the documented context layout', async () => {
      const { instanceId } = await engine.create({ workflowType: 'linear', context: { name: 'Ada' } })
      expect((await nodeContext(instanceId, 'first'))?.context).toEqual({
        pre_node_context: { root: {} },
        workflow_context: { name: 'Ada' },
        user: { name: 'Ada!' },
      })
      expect((await nodeContext(instanceId, 'second'))?.context).toEqual({
        pre_node_context: { first: { user: { name: 'Ada!' } } },
        workflow_context: { name: 'changed by second' },
        seen: 'Ada!',
      })
      expect((await nodeContext(instanceId, 'third'))?.context).toEqual({
        pre_node_context: { second: { seen: 'Ada!' } },
        workflow_context: { name: 'Ada' },
        done: true,
      })
      expect((await nodeContext(instanceId, 'end'))?.context).toEqual({
        pre_node_context: { third: { done: true } },
        workflow_context: { name: 'Ada' },
      })
    })

    it('shows every definition node in definition order with predecessors, successors and statuses', async () => {
      const { instanceId } = await engine.create({ workflowType: 'linear', context: { name: 'Ada' }, run: false })
      const before = await engine.get(instanceId)
      expect(before.status).toBe('init')
      expect(before.nodes.map((node) => [node.id, node.status])).toEqual([
        ['root', 'uncreated'],
        ['first', 'uncreated'],
        ['second', 'uncreated'],
        ['third', 'uncreated'],
        ['end', 'uncreated'],
      ])
      expect(before.dueAtMs).toBe(clock.nowMs())
      await engine.runWorkflow(instanceId)
      const after = await engine.get(instanceId)
      expect(after.nodes.map((node) => [node.id, node.status, node.predecessors, node.successors])).toEqual([
        ['root', 'completed', [], ['first']],
        ['first', 'completed', ['root'], ['second']],
        ['second', 'completed', ['first'], ['third']],
        ['third', 'completed', ['second'], ['end']],
        ['end', 'completed', ['third'], []],
      ])
      expect(after.dueAtMs).toBeUndefined()
      expect(after.lease).toBeUndefined()
    })

    it('leaves a terminal instance untouched when it is run again', async () => {
      const { instanceId } = await engine.create({ workflowType: 'linear', context: { name: 'Ada' } })
      const before = await engine.get(instanceId)
      const again = await engine.runWorkflow(instanceId)
      expect(again).toMatchObject({ status: 'completed', executed: [] })
      expect(await engine.get(instanceId)).toEqual(before)
      expect(calls.run('first')).toBe(1)
    })

    it('rejects an unknown workflow type and stores nothing', async () => {
      await expect(engine.create({ workflowType: 'nope', context: {} })).rejects.toBeInstanceOf(
        WorkflowTypeNotFoundError,
      )
      expect(await engine.count({ workflowType: 'nope' })).toEqual({ count: 0, complete: true })
    })
  })

  describe('fan-out and AND-join', () => {
    it('runs the join node once, after both branches, and hands it both outputs', async () => {
      let joinSawBoth = false
      engine.register(
        defineWorkflow({
          type: 'diamond',
          nodes: {
            split: { next: ['left', 'right'], run: calls.wrap('split', { run: (ctx) => ctx.set('n', 1) }).run },
            left: { next: ['join'], run: calls.wrap('left', { run: (ctx) => ctx.set('side', 'left') }).run },
            right: { next: ['join'], run: calls.wrap('right', { run: (ctx) => ctx.set('side', 'right') }).run },
            join: {
              run: calls.wrap('join', {
                run: (ctx) => {
                  joinSawBoth =
                    ctx.getString('pre_node_context', 'left', 'side') === 'left' &&
                    ctx.getString('pre_node_context', 'right', 'side') === 'right'
                },
              }).run,
            },
          },
        }),
      )
      const { instanceId, status } = await engine.create({ workflowType: 'diamond' })
      expect(status).toBe('completed')
      expect(calls.run('join')).toBe(1)
      expect(joinSawBoth).toBe(true)
      expect(calls.order.indexOf('join.run')).toBeGreaterThan(calls.order.indexOf('left.run'))
      expect(calls.order.indexOf('join.run')).toBeGreaterThan(calls.order.indexOf('right.run'))
      expect((await nodeContext(instanceId, 'join'))?.context?.pre_node_context).toEqual({
        left: { side: 'left' },
        right: { side: 'right' },
      })
    })

    it('runs branches of one pass concurrently: a slow branch does not hold back its sibling', async () => {
      let releaseSlow: () => void = () => {}
      const slowStarted = new Promise<void>((resolve) => {
        engine.register(
          defineWorkflow({
            type: 'parallel',
            nodes: {
              slow: {
                run: () =>
                  new Promise<void>((done) => {
                    releaseSlow = done
                    resolve()
                  }),
              },
              fast: { run: calls.wrap('fast', { run: () => {} }).run },
            },
          }),
        )
      })
      const pass = engine.create({ workflowType: 'parallel' })
      await slowStarted
      // `fast` ran and was stored while `slow` is still running.
      await expect.poll(() => calls.run('fast')).toBe(1)
      releaseSlow()
      expect((await pass).status).toBe('completed')
    })

    it('joins two start nodes', async () => {
      engine.register(
        defineWorkflow({
          type: 'two-starts',
          nodes: {
            a: { next: ['j'], run: (ctx) => ctx.set('v', 'a') },
            b: { next: ['j'], run: (ctx) => ctx.set('v', 'b') },
            j: { run: calls.wrap('j', { run: () => {} }).run },
          },
        }),
      )
      const { instanceId, status } = await engine.create({ workflowType: 'two-starts' })
      expect(status).toBe('completed')
      expect(calls.run('j')).toBe(1)
      const detail = await engine.get(instanceId)
      expect(detail.nodes.find((node) => node.id === 'root')?.successors).toEqual(['a', 'b'])
      expect((await nodeContext(instanceId, 'a'))?.context?.pre_node_context).toEqual({ root: {} })
      expect((await nodeContext(instanceId, 'j'))?.context?.pre_node_context).toEqual({ a: { v: 'a' }, b: { v: 'b' } })
    })
  })

  describe('definition versions', () => {
    it('keeps the graph an instance started with when the definition changes', async () => {
      engine.registerWorkflow({ id: 'evolving', nodes: [{ id: 'a', next_nodes: [] }] })
      engine.registerWorker('evolving', 'a', { run: () => {} })
      const { instanceId } = await engine.create({ workflowType: 'evolving', run: false })

      // A new deployment: same table, a changed definition with one more node.
      const next = newTestEngine(backend, { clock }).engine
      next.registerWorkflow({
        id: 'evolving',
        nodes: [
          { id: 'a', next_nodes: ['b'] },
          { id: 'b', next_nodes: [] },
        ],
      })
      next.registerWorker('evolving', 'a', { run: () => {} })
      next.registerWorker('evolving', 'b', calls.wrap('b', { run: () => {} }))
      const result = await next.runWorkflow(instanceId)
      expect(result.status).toBe('completed')
      expect(calls.run('b')).toBe(0)
      expect((await next.get(instanceId)).nodes.map((node) => node.id)).toEqual(['root', 'a', 'end'])
    })
  })

  describe('listing and counting through the engine', () => {
    it('filters by type, status, business id and creation time, across the registered types', async () => {
      const listing = newTestEngine(await backendFactory.open('engine-list'), { clock })
      const { engine: lister } = listing
      lister.register(defineWorkflow({ type: 'alpha', nodes: { a: { run: () => {} } } }))
      lister.register(defineWorkflow({ type: 'beta', nodes: { b: { run: () => {} } } }))
      const created: string[] = []
      for (let i = 0; i < 6; i++) {
        clock.advanceSeconds(1)
        const type = i % 2 === 0 ? 'alpha' : 'beta'
        const run = i < 4
        created.push((await lister.create({ workflowType: type, businessId: `biz-${i % 3}`, run })).instanceId)
      }
      const all = await lister.list({})
      expect(all.items.map((item) => item.id)).toEqual([...created].reverse())
      expect(all.cursor).toBeUndefined()
      expect((await lister.list({ workflowType: 'alpha' })).items.map((item) => item.id)).toEqual([
        created[4],
        created[2],
        created[0],
      ])
      expect((await lister.list({ status: 'init', order: 'asc' })).items.map((item) => item.id)).toEqual(
        created.slice(4),
      )
      expect((await lister.list({ businessId: 'biz-1' })).items.map((item) => item.id)).toEqual([
        created[4],
        created[1],
      ])
      const firstPage = await lister.list({ limit: 4 })
      const secondPage = await lister.list({ limit: 4, cursor: firstPage.cursor as string })
      expect([...firstPage.items, ...secondPage.items].map((item) => item.id)).toEqual([...created].reverse())
      expect((await lister.count({ workflowType: 'beta', status: ['completed'] })).count).toBe(2)
      expect((await lister.count({})).count).toBe(6)
      const third = (await lister.get(created[2] as string)).createdAtMs
      expect((await lister.count({ createdFromMs: third, createdToMs: third + 1000 })).count).toBe(2)
    })
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
