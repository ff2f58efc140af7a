import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import type { HistoryEntry } from '../../src/core/store.js'
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
const setUp = (nodes: number, events: (i: number) => number) => {
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
        check: (ctx: NodeContext) => {
          ctx.set('got', ctx.event?.eventTs ?? null)
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
  const updates: { condition: string; refused: boolean }[] = []
  interceptRequests(runnerClient, async (exchange, send) => {
    const answer = await send()
    if (exchange.commandName === 'UpdateItemCommand') {
      const input = exchange.input as { ConditionExpression?: string }
      updates.push({ condition: input.ConditionExpression ?? '', refused: answer.response.statusCode !== 200 })
    }
    return answer
  })
  const runner = engineOn(runnerClient)
  let eventTs = 0
  post = async (ctx, i) => {
    for (let k = 0; k < events(i); k++) {
      clock.advanceMs(1)
      await api.addNodeEvent({ instanceId: ctx.instanceId, nodeId: 'sink', eventTs: ++eventTs, content: { i, k } })
    }
  }
  return { api, runner, ids, updates, posted: () => eventTs }
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
