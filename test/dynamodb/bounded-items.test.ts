import { DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb'
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { itemSizeBytes } from '../../scripts/bench-support.js'
import { CapacityMeter } from '../../scripts/capacity-meter.js'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { SPILL_AT_BYTES } from '../../src/adapters/dynamodb/write-layout.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import { Engine } from '../../src/core/engine.js'
import { LeaseLostError } from '../../src/core/errors.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { dynamoEndpoint } from '../support/dynamodb.js'
import {
  createTestTable,
  FakeClock,
  fixedRandom,
  newTestEngine,
  sequentialIds,
  type TestTable,
} from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * Bounded items (README, "Table layout"): what one instance can hold is no longer what one DynamoDB item can, the
 * cost of a node step does not grow with the nodes stored before it, and the instance item stays small.
 */
let table: TestTable

beforeAll(async () => {
  table = await createTestTable('bounded-items')
})

afterEach(async () => {
  expect(await invariantViolations(table, Number.MAX_SAFE_INTEGER / 2, { instanceIds: () => true })).toEqual([])
})

const KB = 1024

/** Every item of an instance's partition, raw. */
const partition = async (instanceId: string): Promise<Record<string, unknown>[]> => {
  const items: Record<string, unknown>[] = []
  let startKey: Record<string, never> | undefined
  do {
    const page = await table.client.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `I#${instanceId}` } },
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    )
    items.push(...(page.Items ?? []).map((item) => unmarshall(item)))
    startKey = page.LastEvaluatedKey as Record<string, never> | undefined
  } while (startKey)
  return items
}

/** The instance item's size as JSON: close to DynamoDB's count (names and values). */
const instanceItemBytes = async (instanceId: string): Promise<number> => {
  const items = await partition(instanceId)
  const item = items.find((found) => found.sk === '#') ?? items[0]
  return Buffer.byteLength(JSON.stringify(item))
}

/** The instance item's size as DynamoDB counts it. */
const storedItemBytes = async (instanceId: string): Promise<number> => {
  const got = await table.client.send(
    new GetItemCommand({ TableName: table.tableName, Key: marshall(instanceKey(instanceId)), ConsistentRead: true }),
  )
  return itemSizeBytes(got.Item ?? {})
}

const ids = (count: number) => Array.from({ length: count }, (_, i) => `n${String(i + 1).padStart(3, '0')}`)

/** A linear workflow whose nodes each store `bytes` bytes; the last fails unless the input says ok (when asked). */
const linear = (type: string, count: number, bytes: number, options: { lastNeedsOk?: boolean } = {}) => {
  const nodes = ids(count)
  const run = (ctx: NodeContext) => {
    if (options.lastNeedsOk && ctx.nodeId === nodes[count - 1]) {
      if (ctx.getBoolean('workflow_context', 'ok') !== true) throw new FailedWithFailedError('not ok')
    }
    ctx.set('out', `${ctx.nodeId}:${'x'.repeat(Math.max(0, bytes - 20))}`)
  }
  return defineWorkflow({
    type,
    nodes: Object.fromEntries(
      nodes.map((id, i) => [id, { ...(i + 1 < count ? { next: [nodes[i + 1] as string] } : {}), run }]),
    ),
  })
}

describe('what one instance can hold', () => {
  it('runs 200 nodes of 32 KB, restarts them with a new 60 KB context, and keeps the instance item small', async () => {
    const { engine } = newTestEngine(table)
    engine.register(linear('wide-32k', 200, 32 * KB, { lastNeedsOk: true }))
    const old = { ok: false, note: 'o'.repeat(60_000) }

    const created = await engine.create({ workflowType: 'wide-32k', context: old })
    expect(created.status).toBe('failed')
    const restarted = await engine.restartInstance({
      instanceId: created.instanceId,
      context: { ok: true, note: 'n'.repeat(60_000) },
      run: true,
    })

    expect(restarted.status).toBe('completed')
    const detail = await engine.get(created.instanceId)
    const nodes = detail.nodes.filter((node) => node.id.startsWith('n'))
    expect(nodes).toHaveLength(200)
    for (const node of nodes) {
      expect(node.status).toBe('completed')
      expect(String(node.context?.out)).toMatch(new RegExp(`^${node.id}:x{${32 * KB - 20}}$`))
    }
    // The nodes that completed before the restart still see the input they ran with; the restarted one the new.
    expect(nodes[0]?.context?.workflow_context).toEqual(old)
    expect(nodes[199]?.context?.workflow_context).toMatchObject({ ok: true })
    expect(await instanceItemBytes(created.instanceId)).toBeLessThan(16 * KB)
  }, 120_000)

  it('cancels an instance holding 199 outputs of 32 KB in one fenced operation, keeping them', async () => {
    const { engine } = newTestEngine(table)
    const nodes = ids(200)
    engine.register(
      defineWorkflow({
        type: 'wide-wait',
        nodes: Object.fromEntries(
          nodes.map((id, i) => [
            id,
            {
              ...(i + 1 < nodes.length ? { next: [nodes[i + 1] as string] } : {}),
              run: (ctx: NodeContext) => {
                if (i === nodes.length - 1) throw new NotReadyError(3600)
                ctx.set('out', 'y'.repeat(32 * KB))
              },
            },
          ]),
        ),
      }),
    )
    const created = await engine.create({ workflowType: 'wide-wait' })
    expect(created.status).toBe('running')

    const canceled = await engine.cancel(created.instanceId)

    expect(canceled.status).toBe('canceled')
    const detail = await engine.get(created.instanceId)
    expect(detail.nodes.find((node) => node.id === 'n200')?.status).toBe('canceled')
    const done = detail.nodes.filter((node) => node.id.startsWith('n') && node.status === 'completed')
    expect(done).toHaveLength(199)
    for (const node of done) expect(String(node.context?.out).length).toBe(32 * KB)
  }, 120_000)

  it('stores two outputs of 350 KB in one instance and hands both to the next node', async () => {
    const { engine } = newTestEngine(table, { limits: { maxNodeContextBytes: 350 * KB } })
    const size = 350 * KB - 100
    let seen: number[] = []
    engine.register(
      defineWorkflow({
        type: 'huge-outputs',
        nodes: {
          first: { next: ['second'], run: (ctx) => ctx.set('blob', 'f'.repeat(size)) },
          second: { next: ['reader'], run: (ctx) => ctx.set('blob', 's'.repeat(size)) },
          reader: {
            run: (ctx) => {
              seen = [
                String(ctx.get('workflow_context', 'note') ?? '').length,
                String(ctx.get('pre_node_context', 'second', 'blob') ?? '').length,
              ]
              ctx.set('read', true)
            },
          },
        },
      }),
    )

    const created = await engine.create({ workflowType: 'huge-outputs', context: { note: 'n'.repeat(1000) } })

    expect(created.status).toBe('completed')
    expect(seen).toEqual([1000, size])
    const detail = await engine.get(created.instanceId)
    for (const id of ['first', 'second']) {
      expect(String(detail.nodes.find((node) => node.id === id)?.context?.blob).length).toBe(size)
    }
  })
})

describe('the cost of a node step', () => {
  /** Write units per node step of `instances` linear instances, measured on a client of its own. */
  const writeUnitsPerStep = async (count: number, bytes: number): Promise<number> => {
    const client = new DynamoDBClient({
      endpoint: dynamoEndpoint(),
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    })
    const meter = new CapacityMeter().attach(client)
    const engine = new Engine({
      store: new DynamoDbStore({ tableName: table.tableName, client }),
      clock: new FakeClock(),
      ids: sequentialIds(`cost-${count}-${bytes}`),
      random: fixedRandom(0),
    })
    const type = `cost-${count}-${bytes}`
    engine.register(linear(type, count, bytes))
    await engine.create({ workflowType: type })
    meter.reset()
    for (let i = 0; i < 2; i++) expect((await engine.create({ workflowType: type })).status).toBe('completed')
    client.destroy()
    return meter.writeUnits / (2 * count)
  }

  it('does not grow with the nodes stored before it, and stays within 1.5 × (KB + 1) per step', async () => {
    const small5 = await writeUnitsPerStep(5, 100)
    const small100 = await writeUnitsPerStep(100, 100)
    const large5 = await writeUnitsPerStep(5, 4 * KB)
    const large20 = await writeUnitsPerStep(20, 4 * KB)

    expect(small100 / small5).toBeLessThanOrEqual(1.3)
    expect(large20 / large5).toBeLessThanOrEqual(1.3)
    expect(small100).toBeLessThanOrEqual(1.5 * (1 + 1))
    expect(large20).toBeLessThanOrEqual(1.5 * (4 + 1))
  }, 60_000)
})

describe('items of a writer that lost its lease', () => {
  it('are never referenced, and what a refused write wrote first is deleted again', async () => {
    const { engine, store, clock } = newTestEngine(table)
    engine.register(linear('fenced-out', 2, 10))
    const { instanceId } = await engine.create({ workflowType: 'fenced-out', run: false })
    const now = clock.nowMs()
    const first = await store.acquireLease(instanceId, 'runner-a', now, now + 1000)
    if (first.kind !== 'acquired') throw new Error('expected the lease')
    await store.acquireLease(instanceId, 'runner-b', now + 2000, now + 60_000)
    const before = await partition(instanceId)

    const late = await first.writer
      .write({
        updatedAtMs: now + 2500,
        nodes: {
          n001: {
            status: 'completed',
            failCount: 0,
            createdAtMs: now,
            updatedAtMs: now + 2500,
            attempt: 1,
            waits: 0,
            output: { blob: 'z'.repeat(20 * KB) },
          },
        },
      })
      .catch((error: unknown) => error)

    expect(late).toBeInstanceOf(LeaseLostError)
    expect(await partition(instanceId)).toEqual(before)
    expect((await store.getInstance(instanceId))?.nodes.n001).toBeUndefined()
  })

  it('carry a time to live, so that an item of a write whose answer was lost expires', async () => {
    const { engine, clock } = newTestEngine(table)
    engine.register(linear('expiring', 2, 4 * KB))
    const { instanceId } = await engine.create({ workflowType: 'expiring' })

    const items = await partition(instanceId)
    const side = items.filter((item) => item.sk !== '#')
    expect(side.length).toBeGreaterThanOrEqual(2)
    const written = Math.floor(clock.nowMs() / 1000)
    for (const item of side) expect(item.expiresAt).toBe(written + 395 * 86_400)
  })
})

describe('the instance item at its largest', () => {
  it('holds 200 waiting nodes with inline events and then their inline outputs, below 400 KB', async () => {
    const { engine } = newTestEngine(table)
    const nodes = ids(200)
    engine.register(
      defineWorkflow({
        type: 'widest',
        nodes: Object.fromEntries(
          nodes.map((id) => [
            id,
            {
              run: (ctx: NodeContext) => {
                if (ctx.event === undefined) throw new NotReadyError(3600)
                ctx.set('out', 'o'.repeat(990))
              },
            },
          ]),
        ),
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'widest' })
    for (const nodeId of nodes) {
      await engine.addNodeEvent({ instanceId, nodeId, eventTs: 1, content: { e: 'e'.repeat(480) } })
    }
    const waiting = await instanceItemBytes(instanceId)

    const result = await engine.runWorkflow(instanceId)

    expect(result.status).toBe('completed')
    expect(waiting).toBeGreaterThan(100 * KB)
    expect(waiting).toBeLessThan(400 * KB)
    const detail = await engine.get(instanceId)
    for (const node of detail.nodes.filter((found) => found.id.startsWith('n'))) {
      expect(String(node.context?.out).length).toBe(990)
    }
  }, 120_000)
})

describe('callback arrivals in the instance item', () => {
  it('keeps 120 failure completions at their largest out of the instance item, accepting every one', async () => {
    const tokens: string[] = []
    const { engine } = newTestEngine(table, {
      callbacks: { tokens: callbackTokens(['a-deployment-secret-of-at-least-32-characters']) },
    })
    const nodes = ids(120)
    engine.register(
      defineWorkflow({
        type: 'many-callbacks',
        nodes: Object.fromEntries(
          nodes.map((id) => [
            id,
            {
              run: async (ctx: NodeContext) => {
                tokens.push((await ctx.callback({ timeoutSeconds: 3600 })).token)
              },
            },
          ]),
        ),
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'many-callbacks' })
    expect(tokens).toHaveLength(120)
    const waiting = await instanceItemBytes(instanceId)

    const answers: string[] = []
    for (const token of tokens) {
      // The schema's largest: a 256-character error and a 4,096-character cause.
      const completion = { status: 'failure', error: 'E'.repeat(256), cause: 'c'.repeat(4096) }
      answers.push(
        await engine.completeCallback(token, completion).then(
          () => 'accepted',
          (error: Error) => error.name,
        ),
      )
    }

    expect(answers.filter((answer) => answer !== 'accepted')).toEqual([])
    // Each arrival adds a bounded entry to the instance item (README, "Bounded by construction"), its content elsewhere.
    const arrived = await instanceItemBytes(instanceId)
    expect(arrived - waiting).toBeLessThan(120 * 256)
    expect(arrived).toBeLessThan(64 * KB)
    // One pass settles all 120: each a failed attempt, its arrival and the item its content was in gone.
    const settled = await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(settled.status).toBe('running')
    const left = await partition(instanceId)
    expect(left.filter((item) => String(item.sk).startsWith('N#'))).toEqual([])
    const failed = (await engine.get(instanceId)).nodes.filter((node) => node.failCount === 1)
    expect(failed).toHaveLength(120)
    expect(
      String(failed[0]?.context?.system && (failed[0].context.system as { last_error: string }).last_error),
    ).toMatch(/^CallbackFailedError: E{256}: c+/)
  }, 120_000)
})

describe('the instance item with every limit at its maximum', () => {
  it('accepts a callback completion for each of 200 nodes at their largest inline, and completes them all', async () => {
    const tokens = new Map<string, string>()
    const calls = new Map<string, number>()
    const { engine, clock } = newTestEngine(table, {
      callbacks: { tokens: callbackTokens(['a-deployment-secret-of-at-least-32-characters']) },
    })
    // 25-character ids, each node with a 1 KB output (the most kept inline), a 300-character last error and a
    // 480-byte event, all waiting for a callback: about 380 KB of instance item if every output stayed inline, and
    // 200 arrivals of about 0.2 KB each would pass 400 KB (DynamoDB refused 91 of them with 413 before the bound).
    const nodes = Array.from({ length: 200 }, (_, i) => `n${String(i).padStart(3, '0')}${'i'.repeat(21)}`)
    engine.register(
      defineWorkflow({
        type: 'fullest',
        nodes: Object.fromEntries(
          nodes.map((id) => [
            id,
            {
              failMaxCount: 3,
              run: async (ctx: NodeContext) => {
                const call = (calls.get(ctx.nodeId) ?? 0) + 1
                calls.set(ctx.nodeId, call)
                ctx.set('out', 'o'.repeat(1000))
                if (call === 1) throw new NotReadyError(1)
                if (call === 2) throw new Error('E'.repeat(293))
                tokens.set(ctx.nodeId, (await ctx.callback({ timeoutSeconds: 3600 })).token)
              },
            },
          ]),
        ),
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'fullest' })
    for (const nodeId of nodes) {
      await engine.addNodeEvent({ instanceId, nodeId, eventTs: 1, content: 'e'.repeat(478) })
    }
    for (let round = 0; round < 5 && tokens.size < nodes.length; round++) {
      clock.advanceMs(60_000)
      await engine.runWorkflow(instanceId, { mode: 'due' })
      expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    }
    expect(tokens.size).toBe(nodes.length)
    const waiting = await engine.get(instanceId)
    const lastErrors = waiting.nodes.filter((found) => nodes.includes(found.id)).map((node) => node.context?.system)
    expect(lastErrors.map((system) => String((system as { last_error?: string })?.last_error).length)).toEqual(
      nodes.map(() => 300),
    )
    // Before any arrival, what the lease wrote is within its bound (write-layout.ts, SPILL_AT_BYTES) and every
    // event is in: some outputs left the instance item for payload items of their own.
    const largest = await storedItemBytes(instanceId)
    expect(largest).toBeLessThan(SPILL_AT_BYTES + 200 * 600)
    const spilled = (await partition(instanceId)).filter((item) => String(item.sk).startsWith('P#'))
    expect(spilled.length).toBeGreaterThan(0)

    const answers: string[] = []
    for (const nodeId of nodes) {
      const completion = { status: 'success', output: { r: 'r'.repeat(120) } }
      answers.push(
        await engine.completeCallback(tokens.get(nodeId) as string, completion).then(
          () => 'accepted',
          (error: Error) => error.name,
        ),
      )
    }

    expect(answers.filter((answer) => answer !== 'accepted')).toEqual([])
    expect(await storedItemBytes(instanceId)).toBeLessThan(360 * KB)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    const result = await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(result.status).toBe('completed')
    const detail = await engine.get(instanceId)
    for (const node of detail.nodes.filter((found) => nodes.includes(found.id))) {
      expect(node.status).toBe('completed')
      expect(String(node.context?.out)).toHaveLength(1000)
      expect(node.context?.callback_output).toEqual({ r: 'r'.repeat(120) })
    }
  }, 300_000)
})
