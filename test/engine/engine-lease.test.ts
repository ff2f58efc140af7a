import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import type { Engine } from '../../src/core/engine.js'
import { LeaseLostError, LockConflictError } from '../../src/core/errors.js'
import type { Worker } from '../../src/core/registry.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { systemClock } from '../../src/system/defaults.js'
import { FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend, sequentialIds } from '../support/harness.js'

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend

  beforeAll(async () => {
    backend = await backendFactory.open('engine-lease')
  })

  describe('a held lease', () => {
    it('makes run, cancel and restarts fail fast with a typed conflict, until it expires', async () => {
      const { engine, store, clock } = newTestEngine(backend)
      engine.register(
        defineWorkflow({
          type: 'held',
          nodes: {
            a: {
              run: (ctx) => {
                if (ctx.getBoolean('workflow_context', 'fail')) throw new FailedWithFailedError('no')
              },
            },
          },
        }),
      )
      // Run and cancel need a live instance; restarts need a failed one.
      const { instanceId: live } = await engine.create({ workflowType: 'held', run: false })
      const { instanceId: failed, status } = await engine.create({ workflowType: 'held', context: { fail: true } })
      expect(status).toBe('failed')
      const untilMs = clock.nowMs() + 30_000
      await store.acquireLease(live, 'someone-else', clock.nowMs(), untilMs)
      await store.acquireLease(failed, 'someone-else', clock.nowMs(), untilMs, { terminalOnly: true })

      const started = Date.now()
      for (const [instanceId, attempt] of [
        [live, () => engine.runWorkflow(live)],
        [live, () => engine.cancel(live)],
        [failed, () => engine.restartNode({ instanceId: failed, nodeId: 'a', force: true })],
        [failed, () => engine.restartInstance({ instanceId: failed })],
      ] as const) {
        const error = await attempt().catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(LockConflictError)
        expect((error as LockConflictError).details).toMatchObject({ instanceId, leaseUntilMs: untilMs })
        expect((error as LockConflictError).httpStatus).toBe(409)
      }
      // Non-blocking: a conflict is answered at once, not after waiting for the lease.
      expect(Date.now() - started).toBeLessThan(5_000)

      clock.advanceSeconds(31)
      expect((await engine.runWorkflow(live)).status).toBe('completed')
      expect((await engine.restartInstance({ instanceId: failed })).status).toBe('running')
    })
  })

  describe('a pass whose lease was taken over', () => {
    it('cannot write: its outcome is discarded and it stops with LeaseLostError', async () => {
      const clock = new FakeClock()
      let release: () => void = () => {}
      let stalledOnce = false
      const stall = new Promise<void>((resolve) => {
        release = resolve
      })
      let entered: () => void = () => {}
      const stalled = new Promise<void>((resolve) => {
        entered = resolve
      })
      const workers: Record<'first' | 'second', Worker> = {
        first: {
          run: async (ctx) => {
            if (!stalledOnce) {
              stalledOnce = true
              entered()
              await stall
              ctx.set('writer', 'stale runner')
              return
            }
            ctx.set('writer', 'new runner')
          },
        },
        second: { run: () => {} },
      }
      const module = defineWorkflow({
        type: 'takeover',
        nodes: { first: { next: ['second'], ...workers.first }, second: workers.second },
      })
      const stale = newTestEngine(backend, { clock, defaultLeaseMs: 10_000, leaseGraceMs: 0 }).engine
      const fresh = newTestEngine(backend, { clock, defaultLeaseMs: 10_000, leaseGraceMs: 0 }).engine
      stale.register(module)
      fresh.register(module)
      const { instanceId } = await stale.create({ workflowType: 'takeover', run: false })

      const stalePass = stale.runWorkflow(instanceId)
      await stalled
      clock.advanceSeconds(11)
      const freshPass = await fresh.runWorkflow(instanceId)
      expect(freshPass.status).toBe('completed')
      release()
      await expect(stalePass).rejects.toBeInstanceOf(LeaseLostError)

      const detail = await fresh.get(instanceId)
      expect(detail.status).toBe('completed')
      expect(detail.nodes.find((node) => node.id === 'first')?.context?.writer).toBe('new runner')
      expect(detail.lease).toBeUndefined()
    })
  })

  describe('many concurrent passes over the same instances', () => {
    it('call every run exactly once and complete every instance', async () => {
      const runs = new Map<string, number>()
      const checks = new Map<string, number>()
      const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)
      const pause = () => new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)))
      const module = defineWorkflow({
        type: 'race-diamond',
        nodes: {
          a: {
            next: ['b', 'c'],
            run: async (ctx) => {
              count(runs, `${ctx.instanceId}:a`)
              await pause()
            },
          },
          b: {
            next: ['d'],
            run: async (ctx) => {
              count(runs, `${ctx.instanceId}:b`)
              await pause()
            },
            check: (ctx) => {
              // Ready on the third poll: instances need several passes.
              if ((count(checks, `${ctx.instanceId}:b`).get(`${ctx.instanceId}:b`) ?? 0) < 3) throw new NotReadyError(0)
            },
          },
          c: {
            next: ['d'],
            run: async (ctx) => {
              count(runs, `${ctx.instanceId}:c`)
              await pause()
            },
          },
          d: {
            run: async (ctx) => {
              count(runs, `${ctx.instanceId}:d`)
            },
          },
        },
      })
      // Eight runners, as eight Lambdas would be: each its own engine object on the same table and real time.
      const runners: Engine[] = Array.from({ length: 8 }, (_, index) => {
        const engine = newTestEngine(backend, { clock: systemClock, ids: sequentialIds(`race${index}`) }).engine
        engine.register(module)
        return engine
      })
      const ids: string[] = []
      for (let i = 0; i < 12; i++) {
        ids.push((await (runners[0] as Engine).create({ workflowType: 'race-diamond', run: false })).instanceId)
      }

      const conflicts = { count: 0 }
      for (let round = 0; round < 40; round++) {
        const open = await Promise.all(
          ids.map(async (id) => ((await runners[0]?.get(id))?.status === 'completed' ? 0 : 1)),
        )
        if (open.every((value) => value === 0)) break
        await Promise.all(
          runners.flatMap((runner) =>
            ids.map((id) =>
              runner.runWorkflow(id).catch((error: unknown) => {
                if (!(error instanceof LockConflictError)) throw error
                conflicts.count++
              }),
            ),
          ),
        )
      }

      for (const id of ids) {
        expect((await runners[0]?.get(id))?.status).toBe('completed')
        for (const nodeId of ['a', 'b', 'c', 'd']) expect(runs.get(`${id}:${nodeId}`)).toBe(1)
      }
      // The runners did contend: some passes found the lease taken.
      expect(conflicts.count).toBeGreaterThan(0)
    }, 120_000)
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
