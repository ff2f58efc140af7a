import { type AttributeValue, GetItemCommand } from '@aws-sdk/client-dynamodb'
import { beforeAll, describe, expect, it } from 'vitest'
import { hotPathOutput, linearFive } from '../../scripts/bench-hot-path.js'
import { itemSizeBytes } from '../../scripts/bench-support.js'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { defineWorkflow } from '../../src/core/builder.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { createIdGenerator } from '../../src/system/defaults.js'
import { createTestTable, FakeClock, newTestEngine, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * A small workflow's instance item is billed one write unit per write only while it stays under 1 KB (DynamoDB
 * rounds an item's size up to the next KB for every write, before and after): the item of a 5-node workflow whose
 * nodes each store 108 bytes must stay under 1,024 bytes through its whole life, history on.
 */

const KB = 1024
/** Each step takes this long: times and durations stored in the item have their realistic length. */
const STEP_MS = 1_500

let table: TestTable
const clock = new FakeClock(Date.UTC(2026, 11, 4, 9, 30))

beforeAll(async () => {
  table = await createTestTable('item-size')
})

const storedItem = async (instanceId: string): Promise<Record<string, AttributeValue>> => {
  const key = instanceKey(instanceId)
  const result = await table.client.send(
    new GetItemCommand({
      TableName: table.tableName,
      Key: { pk: { S: key.pk }, sk: { S: key.sk } },
      ConsistentRead: true,
    }),
  )
  if (!result.Item) throw new Error(`instance ${instanceId} is not stored`)
  return result.Item
}

/** An engine on the test table, history on, with real instance ids (ULIDs, 26 characters: the id is in the item twice). */
const newEngine = () => newTestEngine(table, { clock, ids: createIdGenerator(), history: true }).engine

describe('the instance item of a 5-node workflow with 108-byte outputs', () => {
  it('stays under 1 KB after every write, from creation to completion, history on', async () => {
    const sizes: number[] = []
    const step = (n: number) => async (ctx: NodeContext) => {
      // What the previous write left: the item as this node's attempt sees it stored.
      sizes.push(itemSizeBytes(await storedItem(ctx.instanceId)))
      clock.advanceMs(STEP_MS)
      for (const [key, value] of Object.entries(hotPathOutput(n))) ctx.set(key, value)
    }
    const engine = newEngine()
    engine.register(linearFive('small-linear-workflow', step))

    const created = await engine.create({
      workflowType: 'small-linear-workflow',
      context: { orderId: 'A-00042', amount: 12.5 },
    })
    const completed = await storedItem(created.instanceId)
    sizes.push(itemSizeBytes(completed))

    expect(created.status).toBe('completed')
    expect(sizes).toHaveLength(6)
    expect(Math.max(...sizes), `item sizes after each write: ${sizes.join(', ')}`).toBeLessThan(KB)
    // The history is in it: one entry for the creation, two per node, one for the end.
    expect(completed.h?.L).toHaveLength(12)
    const history = await engine.history(created.instanceId)
    expect(history.entries.map((entry) => `${entry.kind}:${entry.nodeId ?? ''}:${entry.status ?? ''}`)).toEqual([
      'created::',
      ...[1, 2, 3, 4, 5].flatMap((n) => [`node:step${n}:running`, `node:step${n}:completed`]),
      'finished::completed',
    ])
    expect(
      history.entries
        .filter((entry) => entry.status === 'completed' && entry.kind === 'node')
        .map((entry) => entry.durationMs),
    ).toEqual([STEP_MS, STEP_MS, STEP_MS, STEP_MS, STEP_MS])
    expect(await invariantViolations(table, clock.nowMs())).toEqual([])
  })
})

describe('the instance item of a 20-node workflow whose every other node is skipped by its condition', () => {
  const step = (i: number) => `step${String(i).padStart(2, '0')}`
  const side = (i: number) => `side${String(i).padStart(2, '0')}`

  /** Ten steps in a line; with `sides`, each also leads to a node whose condition is false (skipped, never run). */
  const run = async (type: string, sides: boolean) => {
    const sizes: number[] = []
    const nodes: Record<string, { next?: string[]; when?: string; run: (ctx: NodeContext) => Promise<void> }> = {}
    for (let i = 1; i <= 10; i++) {
      const next = [...(i < 10 ? [step(i + 1)] : []), ...(sides ? [side(i)] : [])]
      nodes[step(i)] = {
        ...(next.length ? { next } : {}),
        run: async (ctx) => {
          sizes.push(itemSizeBytes(await storedItem(ctx.instanceId)))
          clock.advanceMs(STEP_MS)
          ctx.set('step', i)
        },
      }
      if (sides) nodes[side(i)] = { when: '$input.amount > 1000', run: async (ctx) => ctx.set('side', i) }
    }
    const engine = newEngine()
    engine.register(defineWorkflow({ type, nodes }))
    const created = await engine.create({ workflowType: type, context: { amount: 12.5 } })
    sizes.push(itemSizeBytes(await storedItem(created.instanceId)))
    expect(created.status).toBe('completed')
    return { sizes, engine, instanceId: created.instanceId }
  }

  it('stays under 1 KB after every write, as the ten nodes that run do alone: a skip costs no write unit', async () => {
    const alone = await run('ten-steps-alone', false)
    expect(Math.max(...alone.sizes), `sizes: ${alone.sizes.join(', ')}`).toBeLessThan(KB)

    const skipping = await run('ten-steps-sides', true)
    expect(skipping.sizes).toHaveLength(11)
    expect(Math.max(...skipping.sizes), `sizes: ${skipping.sizes.join(', ')}`).toBeLessThan(KB)
    const { nodes } = await skipping.engine.get(skipping.instanceId)
    expect(nodes.filter((node) => node.status === 'skipped').map((node) => node.skipReason)).toEqual(
      Array(10).fill('condition_false'),
    )
    // Each skip is in the history with its reason, after the outcome that decided it.
    const history = await skipping.engine.history(skipping.instanceId)
    const skips = history.entries.filter((entry) => entry.status === 'skipped')
    expect(skips.map((entry) => `${entry.nodeId}:${entry.code}`)).toEqual(
      Array.from({ length: 10 }, (_, i) => `${side(i + 1)}:condition_false`),
    )
    const seqOf = (nodeId: string, status: string) =>
      history.entries.find((entry) => entry.nodeId === nodeId && entry.status === status)?.seq ?? -1
    for (let i = 1; i <= 10; i++) expect(seqOf(side(i), 'skipped')).toBeGreaterThan(seqOf(step(i), 'completed'))
    expect(await invariantViolations(table, clock.nowMs())).toEqual([])
  })
})
