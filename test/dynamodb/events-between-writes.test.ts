import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import type { HistoryEntry } from '../../src/core/store.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { newDynamoClient } from '../support/dynamodb.js'
import { interceptRequests } from '../support/exchanges.js'
import { createTestTable, FakeClock, fixedRandom, sequentialIds, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * A write under the lease is conditioned on the event counter its lease knows and returns nothing (README, "The hot
 * path"). Events that arrive between two writes of a pass make the next one refused: the refusal shows what they
 * added, and the write goes again. The history stays whole and in order — also across the writes that move it out
 * of the instance item — and the pass that ends leaves the instance due for the events.
 */
let table: TestTable
const clients: ReturnType<typeof newDynamoClient>[] = []

beforeAll(async () => {
  table = await createTestTable('events-between-writes')
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

afterEach(async () => {
  expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
})

/** Node `s<i>`'s worker posts `events` events for the waiting node `sink` (replacing each other) while it runs. */
const setUp = (nodes: number, events: (i: number, storm: { left: number; instanceId: string }) => number) => {
  const clock = new FakeClock()
  const ids = Array.from({ length: nodes }, (_, i) => `s${String(i).padStart(2, '0')}`)
  let post: ((ctx: NodeContext, i: number) => Promise<void>) | undefined
  const workflow = defineWorkflow({
    type: `between-writes-${nodes}`,
    nodes: {
      ...Object.fromEntries(
        ids.map((id, i) => [
          id,
          {
            next: [ids[i + 1] ?? 'sink'],
            run: async (ctx: NodeContext) => {
              ctx.set('at', i)
              await post?.(ctx, i)
            },
          },
        ]),
      ),
      sink: {
        run: () => {},
        // Waits for an event: a pass that read none polls it again in an hour.
        check: (ctx: NodeContext) => {
          if (!ctx.event) throw new NotReadyError(3600)
          ctx.set('got', ctx.event.eventTs)
        },
      },
    },
  })
  const engineOn = (client: ReturnType<typeof newDynamoClient>) => {
    const engine = new Engine({
      store: new DynamoDbStore({ tableName: table.tableName, client }),
      clock,
      ids: sequentialIds(`between-${nodes}`),
      random: fixedRandom(0),
    })
    engine.register(workflow)
    return engine
  }
  const api = engineOn(table.client)
  const runnerClient = newDynamoClient()
  clients.push(runnerClient)
  const updates: { condition: string; update: string; refused: boolean }[] = []
  /** Events to post right before each of the runner's next fenced writes, one per write (see `storm`). */
  const storm = { left: 0, instanceId: '' }
  let eventTs = 0
  const postOne = async (instanceId: string, content: Record<string, number>) => {
    clock.advanceMs(1)
    await api.addNodeEvent({ instanceId, nodeId: 'sink', eventTs: ++eventTs, content })
  }
  interceptRequests(runnerClient, async (exchange, send) => {
    const input = exchange.input as { ConditionExpression?: string; UpdateExpression?: string }
    const fenced = exchange.commandName === 'UpdateItemCommand' && input.UpdateExpression?.startsWith('SET ua = :ua')
    if (fenced && storm.left > 0) {
      storm.left -= 1
      await postOne(storm.instanceId, { storm: storm.left })
    }
    const answer = await send()
    if (exchange.commandName === 'UpdateItemCommand') {
      updates.push({
        condition: input.ConditionExpression ?? '',
        update: input.UpdateExpression ?? '',
        refused: answer.response.statusCode !== 200,
      })
    }
    return answer
  })
  const runner = engineOn(runnerClient)
  post = async (ctx, i) => {
    storm.instanceId = ctx.instanceId
    for (let k = 0; k < events(i, storm); k++) await postOne(ctx.instanceId, { i, k })
  }
  return { api, runner, ids, updates, storm, clock, posted: () => eventTs }
}

const kinds = (entries: readonly HistoryEntry[]) =>
  entries.map((entry) =>
    entry.kind === 'event'
      ? `E${entry.eventTs}`
      : entry.kind === 'node'
        ? `${entry.status}:${entry.nodeId}`
        : entry.kind,
  )

describe('events that arrive between the writes of a pass', () => {
  it('refuse the next write, which goes again; each is in the history once, where it arrived', async () => {
    const { api, runner, ids, updates, posted } = setUp(6, (i) => (i % 2 === 0 ? 1 : 0))
    const { instanceId } = await runner.create({ workflowType: 'between-writes-6', context: {} })

    const history = kinds((await api.history(instanceId, { limit: 500 })).entries)
    // Node s<i> with an even i posted one event while it ran: between its start and its completion.
    let event = 0
    for (const [i, id] of ids.entries()) {
      const from = history.indexOf(`running:${id}`)
      const to = history.indexOf(`completed:${id}`)
      expect(from, id).toBeGreaterThanOrEqual(0)
      expect(to, id).toBeGreaterThan(from)
      const between = history.slice(from + 1, to)
      expect(between, id).toEqual(i % 2 === 0 ? [`E${++event}`] : [])
    }
    expect(history.filter((kind) => kind.startsWith('E'))).toEqual(['E1', 'E2', 'E3'])
    expect(posted()).toBe(3)
    // Each event refused the write after it once, conditioned on the counter; no other write was refused.
    const refused = updates.filter((update) => update.refused)
    expect(refused).toHaveLength(3)
    for (const update of refused) expect(update.condition).toContain('es = :es')
    // The sink's check saw the last event: the pass that ended left the instance due for it, or ran it.
    const sink = (await api.get(instanceId)).nodes.find((node) => node.id === 'sink')
    expect(sink?.status).not.toBe('failed')
  })

  it('that keep arriving before each send are learned by the write in the form that needs no counter', async () => {
    // While s01 runs, a storm starts: an event before each of the next four fenced writes the runner sends.
    const { api, runner, updates, clock } = setUp(4, (i, storm) => {
      if (i === 1) storm.left = 4
      return 0
    })
    const { instanceId } = await runner.create({ workflowType: 'between-writes-4', context: {} })

    // The write of s01's outcome: refused three times (the counter it knew, then each one its refusal showed), then
    // sent without the counter, returning it. The writes after it are conditioned on the counter again.
    const stormed = updates.findIndex((update) => update.refused)
    const sends = updates.slice(stormed, stormed + 5)
    expect(sends.map((send) => send.refused)).toEqual([true, true, true, false, false])
    for (const send of sends.slice(0, 3)) expect(send.condition).toContain('es = :es')
    expect(sends[3]?.condition).not.toContain('es = :es')
    expect(sends[3]?.update).toMatch(/ ADD es :zero$/)
    expect(sends[4]?.condition).toContain('es = :es')
    expect(updates.filter((update) => update.refused)).toHaveLength(3)

    const history = kinds((await api.history(instanceId, { limit: 500 })).entries)
    const from = history.indexOf('running:s01')
    expect(history.slice(from, from + 6)).toEqual(['running:s01', 'E1', 'E2', 'E3', 'E4', 'completed:s01'])
    expect(history.filter((kind) => kind.startsWith('E'))).toEqual(['E1', 'E2', 'E3', 'E4'])
    // The pass read no event for the sink, whose check waits an hour for one; but its release knew that events had
    // arrived, and left the instance due at once: the next pass checks the last of them.
    const waiting = await api.get(instanceId)
    expect(waiting.status).toBe('running')
    expect(waiting.dueAtMs).toBeLessThanOrEqual(clock.nowMs())
    await runner.runWorkflow(instanceId, { mode: 'due' })
    const detail = await api.get(instanceId)
    expect(detail.status).toBe('completed')
    expect(detail.nodes.find((node) => node.id === 'sink')?.context?.got).toBe(4)
  })

  it('keep the history whole across the writes that move it out of the instance item', async () => {
    // 40 nodes and an event during each: about 160 entries, moved out of the instance item in batches.
    const { api, runner, ids } = setUp(40, () => 1)
    const { instanceId } = await runner.create({ workflowType: 'between-writes-40', context: {} })

    const history = kinds((await api.history(instanceId, { limit: 500 })).entries)
    const expected = ids.flatMap((id, i) => [`running:${id}`, `E${i + 1}`, `completed:${id}`])
    expect(
      history.filter((kind) => kind !== 'running:sink' && !kind.startsWith('created') && kind !== 'completed:sink'),
    ).toEqual(expect.arrayContaining(expected))
    // Exactly these, in this order, each once: nothing lost, nothing twice.
    expect(history.filter((kind) => expected.includes(kind))).toEqual(expected)
  })
})
