import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import type { Engine } from '../../src/core/engine.js'
import type { Logger } from '../../src/core/ports.js'
import {
  BusinessCriticalError,
  BusinessWarningError,
  FailedWithContinueError,
  FailedWithFailedError,
  NotReadyError,
} from '../../src/core/worker-signals.js'
import { CallLog, type FakeClock, newTestEngine, STORE_BACKENDS, type StoreBackend } from '../support/harness.js'

describe.each(STORE_BACKENDS)('on $name', (backendFactory) => {
  let backend: StoreBackend
  let engine: Engine
  let clock: FakeClock
  let calls: CallLog
  let logs: { level: string; message: string; fields?: Record<string, unknown> }[]

  beforeAll(async () => {
    backend = await backendFactory.open('engine-errors')
  })

  beforeEach(() => {
    logs = []
    const logger: Logger = {
      log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }),
    }
    ;({ engine, clock } = newTestEngine(backend, { logger }))
    calls = new CallLog()
  })

  const node = async (instanceId: string, nodeId: string) => {
    const found = (await engine.get(instanceId)).nodes.find((item) => item.id === nodeId)
    if (!found) throw new Error(`no node ${nodeId}`)
    return found
  }

  describe('FailedWithContinue', () => {
    it('completes the node with a counted failure and runs its successors, without calling check', async () => {
      engine.register(
        defineWorkflow({
          type: 'notify',
          nodes: {
            email: {
              next: ['after'],
              run: calls.wrap('email', {
                run: (ctx) => {
                  ctx.set('sent', false)
                  throw new Error('smtp down', { cause: new FailedWithContinueError() })
                },
              }).run,
              check: calls.wrap('email-check', { run: () => {} }).run,
            },
            after: { run: calls.wrap('after', { run: () => {} }).run },
          },
        }),
      )
      const { instanceId, status } = await engine.create({ workflowType: 'notify' })
      expect(status).toBe('completed')
      const email = await node(instanceId, 'email')
      expect(email).toMatchObject({ status: 'completed', failCount: 1 })
      expect(email.context).toMatchObject({ sent: false, system: { last_error: expect.stringContaining('smtp down') } })
      expect(calls.run('email-check')).toBe(0)
      expect(calls.run('after')).toBe(1)
    })
  })

  describe('errors that are not terminal', () => {
    it.each([
      ['a plain Error', () => new Error('boom')],
      ['a thrown string', () => 'boom'],
      ['a BusinessWarningError', () => new BusinessWarningError('late')],
      ['a BusinessCriticalError', () => new BusinessCriticalError('mismatch')],
    ])('retries %s without limit, counting failures, until the worker succeeds', async (_, makeError) => {
      let remaining = 12
      engine.register(
        defineWorkflow({
          type: 'flaky',
          nodes: {
            flaky: {
              run: () => {
                if (remaining-- > 0) throw makeError()
              },
            },
          },
        }),
      )
      const { instanceId, status } = await engine.create({ workflowType: 'flaky' })
      expect(status).toBe('running')
      for (let pass = 0; pass < 11; pass++) {
        clock.advanceSeconds(400)
        expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('running')
      }
      const waiting = await node(instanceId, 'flaky')
      expect(waiting).toMatchObject({ status: 'running', failCount: 12 })
      expect(waiting.context?.system).toMatchObject({
        last_error: expect.any(String),
        last_error_time: Math.floor(clock.nowMs() / 1000),
      })
      clock.advanceSeconds(400)
      expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('completed')
    })

    it('logs business critical errors at error level and warnings at warn level', async () => {
      engine.register(
        defineWorkflow({
          type: 'levels',
          nodes: {
            critical: {
              run: () => {
                throw new Error('wrapped', { cause: new BusinessCriticalError('ledger mismatch') })
              },
            },
            warning: {
              run: () => {
                throw new BusinessWarningError('discount service slow')
              },
            },
          },
        }),
      )
      await engine.create({ workflowType: 'levels' })
      const nodeErrors = logs.filter((entry) => entry.message === 'node error')
      expect(nodeErrors.find((entry) => entry.fields?.nodeId === 'critical')).toMatchObject({
        level: 'error',
        fields: { severity: 'critical' },
      })
      expect(nodeErrors.find((entry) => entry.fields?.nodeId === 'warning')).toMatchObject({
        level: 'warn',
        fields: { severity: 'warning' },
      })
    })

    it('logs a plain worker error at error level, the level its severity names', async () => {
      engine.register(
        defineWorkflow({
          type: 'plain-error',
          nodes: {
            plain: {
              run: () => {
                throw new TypeError('undefined is not a function')
              },
            },
          },
        }),
      )
      await engine.create({ workflowType: 'plain-error' })
      const line = logs.find((entry) => entry.message === 'node error' && entry.fields?.nodeId === 'plain')
      expect(line).toMatchObject({ level: 'error', fields: { severity: 'error', workflowType: 'plain-error' } })
    })

    it('retries with the backoff: a due pass before the next attempt does not call the worker', async () => {
      engine.register(
        defineWorkflow({
          type: 'backoff',
          retry: { initialDelaySeconds: 10, jitter: 0 },
          nodes: {
            task: {
              run: calls.wrap('task', {
                run: () => {
                  throw new Error('not yet')
                },
              }).run,
            },
          },
        }),
      )
      const { instanceId } = await engine.create({ workflowType: 'backoff' })
      expect((await engine.get(instanceId)).dueAtMs).toBe(clock.nowMs() + 10_000)
      clock.advanceSeconds(9)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      expect(calls.run('task')).toBe(1)
      clock.advanceSeconds(1)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      expect(calls.run('task')).toBe(2)
      expect((await engine.get(instanceId)).dueAtMs).toBe(clock.nowMs() + 20_000)
      // An explicit run executes waiting nodes whatever their next attempt time.
      await engine.runWorkflow(instanceId)
      expect(calls.run('task')).toBe(3)
    })
  })

  describe('fail_max_count', () => {
    it('turns the N-th counted failure into a terminal failure; NotReady does not count', async () => {
      let call = 0
      engine.registerWorkflow({ id: 'limited', nodes: [{ id: 'task', next_nodes: [], fail_max_count: 3 }] })
      engine.registerWorker('limited', 'task', {
        run: () => {
          call++
          if (call % 2 === 0) throw new NotReadyError()
          throw new Error(`failure ${call}`)
        },
      })
      const { instanceId } = await engine.create({ workflowType: 'limited' })
      const statuses: string[] = []
      for (let pass = 0; pass < 5; pass++) statuses.push((await engine.runWorkflow(instanceId)).status)
      // calls 1,3,5 fail (counted), 2,4 are NotReady: the third counted failure is call 5.
      expect(statuses).toEqual(['running', 'running', 'running', 'failed', 'failed'])
      expect(call).toBe(5)
      expect(await node(instanceId, 'task')).toMatchObject({ status: 'failed', failCount: 3 })
      expect((await engine.get(instanceId)).status).toBe('failed')
    })
  })

  describe('NotReady', () => {
    it('from run: keeps the node running, persists its context, and calls run again later', async () => {
      let ready = false
      engine.register(
        defineWorkflow({
          type: 'not-ready-run',
          nodes: {
            task: {
              run: calls.wrap('task', {
                run: (ctx) => {
                  ctx.set('tries', (ctx.getInteger('tries') ?? 0) + 1)
                  if (!ready) throw new NotReadyError(30)
                },
              }).run,
            },
          },
        }),
      )
      const { instanceId } = await engine.create({ workflowType: 'not-ready-run' })
      const waiting = await node(instanceId, 'task')
      expect(waiting).toMatchObject({ status: 'running', failCount: 0, nextAttemptAtMs: clock.nowMs() + 30_000 })
      expect(waiting.context?.tries).toBe(1)
      ready = true
      expect((await engine.runWorkflow(instanceId)).status).toBe('completed')
      expect(calls.run('task')).toBe(2)
      expect((await node(instanceId, 'task')).context?.tries).toBe(2)
    })

    it('makes a pending check due at retryAfterSeconds', async () => {
      engine.register(
        defineWorkflow({
          type: 'retry-after',
          nodes: {
            task: {
              run: () => {},
              check: () => {
                throw new NotReadyError(42)
              },
            },
          },
        }),
      )
      const { instanceId } = await engine.create({ workflowType: 'retry-after' })
      expect((await engine.get(instanceId)).dueAtMs).toBe(clock.nowMs() + 42_000)
    })
  })

  describe('a check that errors', () => {
    it('is retried alone: run is never called again after it succeeded', async () => {
      let checks = 0
      engine.register(
        defineWorkflow({
          type: 'check-error',
          nodes: {
            job: {
              run: calls.wrap('job', { run: (ctx) => ctx.set('started', true) }).run,
              check: calls.wrap('job-check', {
                run: () => {
                  if (++checks < 3) throw new Error('poll failed')
                },
              }).run,
            },
          },
        }),
      )
      const { instanceId } = await engine.create({ workflowType: 'check-error' })
      expect(await node(instanceId, 'job')).toMatchObject({ status: 'pending', failCount: 1 })
      await engine.runWorkflow(instanceId)
      expect((await engine.runWorkflow(instanceId)).status).toBe('completed')
      expect(calls.run('job')).toBe(1)
      expect(calls.run('job-check')).toBe(3)
      expect(await node(instanceId, 'job')).toMatchObject({ status: 'completed', failCount: 2 })
    })
  })

  describe('a terminal failure', () => {
    it('fails the instance and cancels running siblings; nothing new starts', async () => {
      engine.register(
        defineWorkflow({
          type: 'fail-fast',
          nodes: {
            start: { next: ['doomed', 'waiting'], run: () => {} },
            doomed: {
              next: ['after'],
              run: () => {
                throw new FailedWithFailedError('account missing')
              },
            },
            waiting: {
              next: ['after'],
              run: () => {},
              check: () => {
                throw new NotReadyError()
              },
            },
            after: { run: calls.wrap('after', { run: () => {} }).run },
          },
        }),
      )
      const { instanceId, status } = await engine.create({ workflowType: 'fail-fast' })
      expect(status).toBe('failed')
      const detail = await engine.get(instanceId)
      expect(detail.nodes.map((item) => [item.id, item.status])).toEqual([
        ['root', 'completed'],
        ['start', 'completed'],
        ['doomed', 'failed'],
        ['waiting', 'canceled'],
        ['after', 'uncreated'],
        ['end', 'uncreated'],
      ])
      expect(detail.dueAtMs).toBeUndefined()
      expect(calls.run('after')).toBe(0)
      expect((await node(instanceId, 'doomed')).failCount).toBe(1)
    })
  })

  describe('max_wait_time_ts', () => {
    const register = () => {
      engine.registerWorkflow({ id: 'deadline', nodes: [{ id: 'approval', next_nodes: [], max_wait_time_ts: 60 }] })
      engine.registerWorker('deadline', 'approval', {
        run: () => {},
        check: calls.wrap('approval-check', {
          run: () => {
            throw new NotReadyError(3600)
          },
        }).run,
      })
    }

    it('keeps waiting at exactly the limit and fails one second later with a reason', async () => {
      register()
      const { instanceId } = await engine.create({ workflowType: 'deadline' })
      clock.advanceSeconds(60)
      expect((await engine.runWorkflow(instanceId)).status).toBe('running')
      clock.advanceSeconds(1)
      expect((await engine.runWorkflow(instanceId)).status).toBe('failed')
      const approval = await node(instanceId, 'approval')
      expect(approval.status).toBe('failed')
      expect(approval.context?.reason).toMatch(/max_wait_time_ts exceeded/)
    })

    it('makes the instance due at the deadline, so a node whose next poll is later still times out', async () => {
      register()
      const { instanceId } = await engine.create({ workflowType: 'deadline' })
      const created = clock.nowMs()
      // The check asked for an hour; the deadline (60 s) comes first.
      expect((await engine.get(instanceId)).dueAtMs).toBe(created + 60_001)
      clock.advanceSeconds(61)
      expect((await engine.runWorkflow(instanceId, { mode: 'due' })).status).toBe('failed')
    })

    it('keeps a reason the worker set itself', async () => {
      engine.registerWorkflow({ id: 'own-reason', nodes: [{ id: 'a', next_nodes: [], max_wait_time_ts: 1 }] })
      engine.registerWorker('own-reason', 'a', {
        run: (ctx) => {
          ctx.set('reason', 'supplier never answered')
          throw new NotReadyError()
        },
      })
      const { instanceId } = await engine.create({ workflowType: 'own-reason' })
      clock.advanceSeconds(2)
      await engine.runWorkflow(instanceId)
      expect((await node(instanceId, 'a')).context?.reason).toBe('supplier never answered')
    })
  })

  // After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
  afterEach(async () => {
    expect((await backend.violations(Date.now())).map((violation) => violation.message)).toEqual([])
  })
})
