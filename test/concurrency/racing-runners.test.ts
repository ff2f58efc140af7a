import { beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { LockConflictError } from '../../src/core/errors.js'
import { silentLogger } from '../../src/core/ports.js'
import { runTick } from '../../src/core/tick.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { createIdGenerator, mathRandom, systemClock } from '../../src/system/defaults.js'
import { createTestTable, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

const INSTANCES = 200
let table: TestTable

beforeAll(async () => {
  table = await createTestTable('racing-runners')
})

describe('200 diamond instances driven by 8 racing runners (2 ticks, 4 queue workers, 2 direct runners)', () => {
  it('run every node exactly once, complete every instance and lose no update', async () => {
    const runs = new Map<string, number>()
    const checks = new Map<string, number>()
    const bump = (map: Map<string, number>, key: string) => {
      const next = (map.get(key) ?? 0) + 1
      map.set(key, next)
      return next
    }
    const pause = () => new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)))
    const step = (nodeId: string) => async (ctx: { instanceId: string; set: (key: string, value: string) => void }) => {
      bump(runs, `${ctx.instanceId}:${nodeId}`)
      await pause()
      ctx.set('by', nodeId)
    }
    const diamond = defineWorkflow({
      type: 'race',
      nodes: {
        a: { next: ['b', 'c'], run: step('a') },
        b: {
          next: ['d'],
          run: step('b'),
          // Ready on the second poll: every instance needs more than one pass.
          check: (ctx) => {
            if (bump(checks, `${ctx.instanceId}:b`) < 2) throw new NotReadyError(0)
          },
        },
        c: { next: ['d'], run: step('c') },
        d: { run: step('d') },
      },
    })
    const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    const runQueue = new LocalQueue({ name: 'race-run' })
    const runDlq = new LocalQueue({ name: 'race-run-dlq' })
    const engine = () => {
      const created = new Engine({
        store,
        clock: systemClock,
        ids: createIdGenerator(systemClock),
        random: mathRandom,
        queue: runQueue,
      })
      created.register(diamond)
      return created
    }
    const creator = engine()
    const ids: string[] = []
    for (let i = 0; i < INSTANCES; i++)
      ids.push((await creator.create({ workflowType: 'race', run: false })).instanceId)

    const open = new Set(ids)
    const deadline = Date.now() + 90_000
    const conflicts = { direct: 0 }
    const refresh = async () => {
      for (const id of [...open]) if ((await creator.get(id)).status === 'completed') open.delete(id)
    }
    const loop = async (body: () => Promise<void>) => {
      while (open.size > 0 && Date.now() < deadline) await body()
    }
    const ticks = [0, 1].map(() =>
      loop(async () => {
        await runTick({ store, queue: runQueue, clock: systemClock, logger: silentLogger }, { remainingTimeMs: 30_000 })
        await new Promise((resolve) => setTimeout(resolve, 50))
      }),
    )
    const workers = [0, 1, 2, 3].map(() => {
      const handler = createRunHandler({
        engine: engine(),
        logger: silentLogger,
        deadLetters: runDlq,
        maxReceiveCount: 5,
      })
      return loop(async () => {
        const { delivered, failed } = await runQueue.deliver(handler)
        if (delivered + failed === 0) await new Promise((resolve) => setTimeout(resolve, 10))
      })
    })
    const direct = [0, 1].map(() => {
      const runner = engine()
      return loop(async () => {
        const pick = [...open][Math.floor(Math.random() * open.size)]
        if (pick === undefined) return
        await runner.runWorkflow(pick).catch((error: unknown) => {
          if (!(error instanceof LockConflictError)) throw error
          conflicts.direct++
        })
      })
    })
    // While the runners race, every instance stays due, leased or parked (README, "Nothing is stranded").
    const violations = new Set<string>()
    let invariantChecks = 0
    const checkInvariant = async () => {
      invariantChecks++
      for (const violation of await invariantViolations(table, Date.now())) violations.add(violation.message)
    }
    const checker = loop(async () => {
      await checkInvariant()
      await new Promise((resolve) => setTimeout(resolve, 20))
    })
    const watcher = loop(async () => {
      await refresh()
      await new Promise((resolve) => setTimeout(resolve, 100))
    })
    await Promise.all([...ticks, ...workers, ...direct, checker, watcher])
    await checkInvariant()

    expect(open.size).toBe(0)
    console.info(`racing runners: the invariant was checked ${invariantChecks} times over the whole table`)
    expect([...violations]).toEqual([])
    for (const id of ids) {
      for (const nodeId of ['a', 'b', 'c', 'd']) expect(runs.get(`${id}:${nodeId}`), `${id}:${nodeId}`).toBe(1)
    }
    // No update lost: every node's output is stored and the join saw both branches.
    const sample = await creator.get(ids[INSTANCES - 1] as string)
    for (const nodeId of ['a', 'b', 'c', 'd']) {
      expect(sample.nodes.find((node) => node.id === nodeId)?.context?.by).toBe(nodeId)
    }
    expect(sample.nodes.find((node) => node.id === 'd')?.context?.pre_node_context).toEqual({
      b: { by: 'b' },
      c: { by: 'c' },
    })
    expect(runDlq.pending()).toBe(0)
    // The runners did race for the same instances.
    expect(conflicts.direct).toBeGreaterThan(0)
  }, 120_000)
})
