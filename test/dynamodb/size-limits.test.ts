import { GetItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { createApiHandler } from '../../src/api/handler.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { QueueConsumer } from '../../src/core/consumer.js'
import type { Engine, EngineDeps } from '../../src/core/engine.js'
import { instanceStoredBytes } from '../../src/core/limits.js'
import { silentLogger } from '../../src/core/ports.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { CallLog, createTestTable, type FakeClock, newTestEngine, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * Sizes against a real DynamoDB Local, which enforces DynamoDB's 400 KB item limit. Where a refusal by DynamoDB
 * itself is under test, the item is padded directly with an attribute the engine does not know (as an item grown by
 * an older deployment or a hand edit would be), so that the engine's own budget does not catch the write first.
 */
let table: TestTable

beforeAll(async () => {
  table = await createTestTable('size-limits')
})

const KB = 1024
const calls = new CallLog()

const bigOutput = defineWorkflow({
  type: 'big-output',
  nodes: {
    a: {
      next: ['b'],
      run: (ctx) => ctx.set('blob', 'x'.repeat(Number(ctx.getNumber('workflow_context', 'bytes') ?? 0))),
    },
    b: { run: (ctx) => ctx.set('done', true) },
  },
})

/** One node: its outcome is stored by the pass's releasing write. */
const bigLast = defineWorkflow({
  type: 'big-last',
  nodes: { only: { run: (ctx) => ctx.set('blob', 'x'.repeat(900)) } },
})

const engineWith = (overrides: Partial<EngineDeps> = {}): { engine: Engine; clock: FakeClock } => {
  const { engine, clock } = newTestEngine(table, overrides)
  engine.register({
    config: bigOutput.config,
    workers: Object.fromEntries(
      Object.entries(bigOutput.workers).map(([id, worker]) => [id, calls.wrap(`big-output.${id}`, worker)]),
    ),
  })
  engine.register({ config: bigLast.config, workers: { only: calls.wrap('big-last.only', bigLast.workers.only) } })
  return { engine, clock }
}

/** Grows the stored item by `bytes` the engine does not account for. */
const pad = async (instanceId: string, bytes: number): Promise<void> => {
  await table.client.send(
    new UpdateItemCommand({
      TableName: table.tableName,
      Key: { pk: { S: instanceKey(instanceId).pk }, sk: { S: instanceKey(instanceId).sk } },
      UpdateExpression: 'SET legacyPad = :pad',
      ExpressionAttributeValues: { ':pad': { S: 'p'.repeat(bytes) } },
    }),
  )
}

/**
 * Pads the instance item until DynamoDB has only `room` bytes left in it (found by trying: DynamoDB's own count is
 * the one that matters). The instance item is bounded by construction, so only such an item lets a test see
 * DynamoDB itself refuse a write.
 */
const fill = async (instanceId: string, room: number): Promise<void> => {
  let low = 0
  let high = 400 * KB
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2)
    const fits = await pad(instanceId, mid).then(
      () => true,
      () => false,
    )
    if (fits) low = mid
    else high = mid
  }
  await pad(instanceId, low - room)
}

/** The stored item of one instance, every attribute: what a refused request must leave as it was. */
const partition = async (instanceId: string) => {
  const result = await table.client.send(
    new QueryCommand({
      TableName: table.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: instanceKey(instanceId).pk } },
      ConsistentRead: true,
    }),
  )
  return result.Items ?? []
}

const storedItem = async (instanceId: string) => {
  const result = await table.client.send(
    new GetItemCommand({
      TableName: table.tableName,
      Key: { pk: { S: instanceKey(instanceId).pk }, sk: { S: instanceKey(instanceId).sk } },
      ConsistentRead: true,
    }),
  )
  return result.Item
}

describe('a write DynamoDB refuses as too large, in a pass', () => {
  it('stores the node failure once, terminally, without the output, and never runs the node again', async () => {
    const { engine, clock } = engineWith({ limits: { maxNodeContextBytes: 200 * KB } })
    const { instanceId } = await engine.create({ workflowType: 'big-output', context: { bytes: 900 }, run: false })
    // Room for the record of the attempt and for a failure, not for the outcome (900 bytes inline, the next node).
    await fill(instanceId, 700)
    const before = calls.run('big-output.a')

    const first = await engine.runWorkflow(instanceId).catch((error: unknown) => error)
    for (let tick = 0; tick < 3; tick++) {
      clock.advanceSeconds(120)
      await engine.runWorkflow(instanceId, { mode: 'due' }).catch(() => undefined)
    }

    expect(calls.run('big-output.a') - before).toBe(1)
    expect(first).toMatchObject({ status: 'failed' })
    const detail = await engine.get(instanceId)
    expect(detail.status).toBe('failed')
    const a = detail.nodes.find((node) => node.id === 'a')
    expect(a?.status).toBe('failed')
    expect(a?.context?.blob).toBeUndefined()
    expect(String((a?.context?.system as Record<string, unknown>)?.last_error)).toMatch(/too large|exceeded/i)
    expect(detail.nodes.find((node) => node.id === 'b')?.status).toBe('uncreated')
    expect(detail.failure).toMatchObject({ nodeId: 'a' })
  })

  it('does the same when the refused write is the releasing one', async () => {
    const { engine, clock } = engineWith({ limits: { maxNodeContextBytes: 200 * KB } })
    const { instanceId } = await engine.create({ workflowType: 'big-last', run: false })
    await fill(instanceId, 700)
    const before = calls.run('big-last.only')

    const first = await engine.runWorkflow(instanceId)
    clock.advanceSeconds(120)
    const again = await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(first.status).toBe('failed')
    expect(again.skipped).toBe('terminal')
    expect(calls.run('big-last.only') - before).toBe(1)
    const only = (await engine.get(instanceId)).nodes.find((node) => node.id === 'only')
    expect(only).toMatchObject({ status: 'failed', failCount: 1 })
    expect(only?.context?.blob).toBeUndefined()
  })
})

describe('a write DynamoDB refuses as too large, at the API', () => {
  it('answers 413 PAYLOAD_TOO_LARGE to an event and leaves the item as it was', async () => {
    const { engine, clock } = engineWith()
    const { instanceId } = await engine.create({ workflowType: 'big-output', context: { bytes: 10 }, run: false })
    await fill(instanceId, 20)
    const before = await partition(instanceId)
    const handler = createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 1000 })

    const reply = await handler(
      apiEvent('POST', `/workflows/${instanceId}/nodes/a/events`, {
        body: { eventTs: 1, content: { note: 'n'.repeat(60 * KB) } },
      }),
      lambdaContext(),
    )

    expect(reply.statusCode).toBe(413)
    expect(JSON.parse(reply.body ?? '{}').error.code).toBe('PAYLOAD_TOO_LARGE')
    // Nothing stored: neither the instance item nor the item the event's content was written to first.
    expect(await partition(instanceId)).toEqual(before)
  })
})

const inherited = defineWorkflow({
  type: 'inherited',
  nodes: {
    left: { next: ['join'], run: (ctx) => ctx.set('half', 'l'.repeat(35_000)) },
    right: { next: ['join'], run: (ctx) => ctx.set('half', 'r'.repeat(35_000)) },
    join: { next: ['small'], run: () => {} },
    small: { next: ['listen'], run: (ctx) => ctx.set('note', 's'.repeat(2_000)) },
    listen: {
      run: (ctx) => ctx.set('waiting', true),
      check: (ctx) => {
        if (ctx.event === undefined) throw new NotReadyError(1)
        ctx.set('heard', true)
      },
    },
  },
})

describe('what the node-context limit measures', () => {
  it('counts only what a node stores, not its input, its predecessors’ outputs or its event', async () => {
    const { engine } = newTestEngine(table)
    engine.register(inherited)
    // 64,000 bytes: accepted as input (limit 64 KiB), and inherited by every node.
    const input = { blob: 'i'.repeat(64_000 - 12) }
    const { instanceId, status } = await engine.create({ workflowType: 'inherited', context: input })
    expect(status).toBe('running')
    await engine.addNodeEvent({ instanceId, nodeId: 'listen', eventTs: 1, content: { e: 'e'.repeat(63_990) } })

    const result = await engine.runWorkflow(instanceId)

    expect(result.status).toBe('completed')
    const nodes = (await engine.get(instanceId)).nodes
    for (const id of ['join', 'small', 'listen']) {
      expect(nodes.find((node) => node.id === id)?.status).toBe('completed')
    }
  })
})

describe('limits given to the engine', () => {
  it.each([
    ['maxInstanceBytes', { maxInstanceBytes: 64 * KB * KB + 1 }],
    ['maxInstanceBytes', { maxInstanceBytes: 0 }],
    ['maxNodeContextBytes', { maxInstanceBytes: 100 * KB, maxNodeContextBytes: 200 * KB }],
    ['maxNodeContextBytes', { maxNodeContextBytes: 351 * KB }],
    ['maxInputBytes', { maxInputBytes: 380 * KB }],
    ['maxDepth', { maxDepth: 1.5 }],
  ])('refuses a %s that DynamoDB could not store, naming it', (name, limits) => {
    expect(() => newTestEngine(table, { limits })).toThrow(new RegExp(`limits\\.${name}`))
  })

  it('accepts the largest limits DynamoDB can store', () => {
    expect(() =>
      newTestEngine(table, {
        limits: { maxInstanceBytes: 64 * KB * KB, maxNodeContextBytes: 350 * KB, maxInputBytes: 350 * KB },
      }),
    ).not.toThrow()
  })
})

/** Eight nodes, each waiting for an event: every event is for a node of its own. */
const listeners = defineWorkflow({
  type: 'listeners',
  nodes: Object.fromEntries(
    Array.from({ length: 8 }, (_, i) => [
      `n${i}`,
      {
        run: (ctx: import('../../src/core/node-context.js').NodeContext) => {
          if (ctx.event === undefined) throw new NotReadyError(60)
          ctx.set('heard', true)
        },
      },
    ]),
  ),
})

const event60k = (i: number) => ({ payload: String(i).repeat(60_000) })

/** The budget these cases fill with 60 KB events: five fit, a sixth does not. */
const BUDGET = { limits: { maxInstanceBytes: 300 * KB } }

describe('events are size-guarded where they are written', () => {
  it('accepts sequential events while the instance has room, refuses the next with 413, and the pass completes', async () => {
    const { engine } = newTestEngine(table, BUDGET)
    engine.register(listeners)
    const { instanceId } = await engine.create({ workflowType: 'listeners', run: false })
    const outcomes: string[] = []
    for (let i = 0; i < 6; i++) {
      outcomes.push(
        await engine
          .addNodeEvent({ instanceId, nodeId: `n${i}`, eventTs: 1, content: event60k(i) })
          .then(() => 'stored')
          .catch((error: { code?: string }) => String(error.code)),
      )
    }
    expect(outcomes).toEqual(['stored', 'stored', 'stored', 'stored', 'stored', 'PAYLOAD_TOO_LARGE'])
    const result = await engine.runWorkflow(instanceId)
    const nodes = (await engine.get(instanceId)).nodes
    for (let i = 0; i < 5; i++) expect(nodes.find((node) => node.id === `n${i}`)?.status).toBe('completed')
    expect(result.status).toBe('running')
  })

  it('accepts of concurrent events exactly those that fit, refuses the others with 413, and the pass completes', async () => {
    const { engine } = newTestEngine(table, BUDGET)
    engine.register(listeners)
    const { instanceId } = await engine.create({ workflowType: 'listeners', run: false })

    const outcomes = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        engine
          .addNodeEvent({ instanceId, nodeId: `n${i}`, eventTs: 1, content: event60k(i) })
          .then(() => 'stored')
          .catch((error: { code?: string }) => String(error.code)),
      ),
    )

    expect(outcomes.filter((outcome) => outcome === 'stored')).toHaveLength(5)
    expect(outcomes.filter((outcome) => outcome === 'PAYLOAD_TOO_LARGE')).toHaveLength(2)
    await engine.runWorkflow(instanceId)
    const detail = await engine.get(instanceId)
    const stored = outcomes.flatMap((outcome, i) => (outcome === 'stored' ? [`n${i}`] : []))
    for (const id of stored) expect(detail.nodes.find((node) => node.id === id)?.status).toBe('completed')
    expect(detail.nodes.filter((node) => node.status === 'failed')).toEqual([])
  })

  it('dead-letters a refused event on the events queue with its reason', async () => {
    const { engine } = newTestEngine(table, BUDGET)
    engine.register(listeners)
    const { instanceId } = await engine.create({ workflowType: 'listeners', run: false })
    for (let i = 0; i < 5; i++)
      await engine.addNodeEvent({ instanceId, nodeId: `n${i}`, eventTs: 1, content: event60k(i) })

    const delivery = await new QueueConsumer(engine, silentLogger).deliver('events', {
      body: JSON.stringify({ instanceId, nodeId: 'n7', eventTs: 1, content: event60k(7) }),
    })

    expect(delivery).toMatchObject({ kind: 'dead', reason: expect.stringMatching(/PAYLOAD_TOO_LARGE/) })
  })
})

/** Five nodes that complete, then one that fails unless the input says ok. */
const restartable = defineWorkflow({
  type: 'restartable',
  nodes: {
    s1: { next: ['s2'], run: (ctx) => ctx.set('n', 1) },
    s2: { next: ['s3'], run: (ctx) => ctx.set('n', 2) },
    s3: { next: ['s4'], run: (ctx) => ctx.set('n', 3) },
    s4: { next: ['s5'], run: (ctx) => ctx.set('n', 4) },
    s5: { next: ['last'], run: (ctx) => ctx.set('n', 5) },
    last: {
      run: (ctx) => {
        if (ctx.getBoolean('workflow_context', 'ok') !== true) throw new FailedWithFailedError('not ok')
        ctx.set('n', 6)
      },
    },
  },
})

describe('restartInstance with a new context', () => {
  it.each([false, true])(
    'is refused with 413 when DynamoDB refuses its write (run: %s), leaving the instance as it was',
    async (run) => {
      const { engine } = newTestEngine(table)
      engine.register(restartable)
      const { instanceId } = await engine.create({ workflowType: 'restartable', context: { ok: false } })
      await fill(instanceId, 400)
      const before = await storedItem(instanceId)
      const items = (await partition(instanceId)).length

      const refused = await engine
        .restartInstance({ instanceId, context: { ok: true, blob: 'n'.repeat(900) }, run })
        .catch((error: unknown) => error)

      expect(refused).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', httpStatus: 413 })
      const after = await storedItem(instanceId)
      // Only the fencing token and the write count moved: the lease was taken and given back.
      expect({ ...after, f: undefined, ws: undefined }).toEqual({ ...before, f: undefined, ws: undefined })
      expect(await partition(instanceId)).toHaveLength(items)
      expect((await engine.get(instanceId)).status).toBe('failed')
    },
  )

  it('keeps the input completed nodes ran with once, not copied into each of them, and completes', async () => {
    const { engine } = newTestEngine(table)
    engine.register(restartable)
    const old = { ok: false, blob: 'o'.repeat(60_000) }
    const { instanceId, status } = await engine.create({ workflowType: 'restartable', context: old })
    expect(status).toBe('failed')

    const restarted = await engine.restartInstance({
      instanceId,
      context: { ok: true, blob: 'n'.repeat(60_000) },
      run: true,
    })

    expect(restarted.status).toBe('completed')
    const detail = await engine.get(instanceId)
    expect(detail.context.ok).toBe(true)
    for (const id of ['s1', 's5']) {
      expect(detail.nodes.find((node) => node.id === id)?.context?.workflow_context).toEqual(old)
    }
    expect(detail.nodes.find((node) => node.id === 'last')?.context?.workflow_context).toMatchObject({ ok: true })
    const item = await storedItem(instanceId)
    expect(JSON.stringify(item).length).toBeLessThan(200 * KB)
  })
})

describe('the stored bytes total', () => {
  it('equals what the instance stores after creates, events, passes, failures and restarts', async () => {
    const { engine, store } = newTestEngine(table)
    engine.register(restartable)
    engine.register(listeners)
    const { instanceId } = await engine.create({
      workflowType: 'restartable',
      context: { ok: false, n: 'x'.repeat(500) },
    })
    await engine.restartInstance({ instanceId, context: { ok: false, again: true } })
    await engine.runWorkflow(instanceId)
    await engine.restartInstance({ instanceId, context: { ok: true }, run: true })
    const waiting = await engine.create({ workflowType: 'listeners', run: false })
    await engine.addNodeEvent({
      instanceId: waiting.instanceId,
      nodeId: 'n1',
      eventTs: 1,
      content: { a: 'a'.repeat(300) },
    })
    await engine.addNodeEvent({ instanceId: waiting.instanceId, nodeId: 'n1', eventTs: 2, content: { b: 1 } })
    await engine.runWorkflow(waiting.instanceId)
    await engine.cancel(waiting.instanceId)

    for (const id of [instanceId, waiting.instanceId]) {
      const record = await store.getInstance(id)
      expect(record?.storedBytes).toBe(instanceStoredBytes(record as InstanceRecord))
    }
    expect((await store.getInstance(instanceId))?.status).toBe('completed')
  })
})

/** 200 nodes (the most a definition may have) that all start at once and wait. */
const wide = defineWorkflow({
  type: 'wide',
  nodes: Object.fromEntries(
    Array.from({ length: 200 }, (_, i) => [
      `node_${String(i).padStart(3, '0')}`,
      {
        run: () => {
          throw new NotReadyError(60)
        },
      },
    ]),
  ),
})

describe('writes of the largest definition the engine accepts', () => {
  it('start, store and cancel 200 nodes at once within DynamoDB’s request limits', async () => {
    const { engine } = newTestEngine(table)
    engine.register(wide)

    const { instanceId, status, pass } = await engine.create({ workflowType: 'wide' })

    expect(status).toBe('running')
    expect(pass?.parked).toBeUndefined()
    expect(pass?.executed).toHaveLength(200)
    const canceled = await engine.cancel(instanceId)
    expect(canceled.status).toBe('canceled')
    const nodes = (await engine.get(instanceId)).nodes.filter((node) => node.id.startsWith('node_'))
    expect(nodes.map((node) => node.status)).toEqual(Array(200).fill('canceled'))
  })
})

/** The instance item as stored before the bytes total existed: without `b`. */
const dropTotal = (instanceId: string) =>
  table.client.send(
    new UpdateItemCommand({
      TableName: table.tableName,
      Key: { pk: { S: instanceKey(instanceId).pk }, sk: { S: instanceKey(instanceId).sk } },
      UpdateExpression: 'REMOVE #bytes',
      ExpressionAttributeNames: { '#bytes': 'b' },
    }),
  )

describe('an item stored before the bytes total existed', () => {
  it('gets its total from the first write, by an event or a lease holder, and keeps it exact', async () => {
    const { engine, store } = newTestEngine(table)
    engine.register(listeners)
    const first = await engine.create({ workflowType: 'listeners', run: false, context: { c: 'c'.repeat(2000) } })
    const second = await engine.create({ workflowType: 'listeners', run: false, context: { c: 'c'.repeat(2000) } })
    await dropTotal(first.instanceId)
    await dropTotal(second.instanceId)

    await engine.addNodeEvent({ instanceId: first.instanceId, nodeId: 'n0', eventTs: 1, content: { e: 1 } })
    await engine.runWorkflow(second.instanceId)

    for (const id of [first.instanceId, second.instanceId]) {
      const record = (await store.getInstance(id)) as InstanceRecord
      expect(record.storedBytes).toBe(instanceStoredBytes(record))
    }
  })
})

describe('a fenced write on an item that holds its history and total', () => {
  it('appends and adds to them without if_not_exists once they are stored, from an item that had neither', async () => {
    const sent: string[] = []
    const name = 'storedForms'
    table.client.middlewareStack.add(
      (next, context) => async (args) => {
        const expression = (args.input as { UpdateExpression?: string }).UpdateExpression
        if (context.commandName === 'UpdateItemCommand' && expression?.startsWith('SET ua = :ua')) sent.push(expression)
        return next(args)
      },
      { step: 'initialize', name },
    )
    try {
      const step = (n: number) => (ctx: import('../../src/core/node-context.js').NodeContext) => {
        ctx.set(`out${n}`, 'o'.repeat(100))
      }
      const chain = defineWorkflow({
        type: 'stored-forms',
        nodes: { a: { next: ['b'], run: step(1) }, b: { next: ['c'], run: step(2) }, c: { run: step(3) } },
      })
      const { engine, store } = newTestEngine(table)
      engine.register(chain)
      const { instanceId } = await engine.create({ workflowType: 'stored-forms', run: false })
      // Its total and history list removed: an item as stored before either existed.
      const key = { pk: { S: instanceKey(instanceId).pk }, sk: { S: instanceKey(instanceId).sk } }
      await table.client.send(
        new UpdateItemCommand({ TableName: table.tableName, Key: key, UpdateExpression: 'REMOVE b, h' }),
      )
      const before = await table.client.send(new GetItemCommand({ TableName: table.tableName, Key: key }))
      expect(before.Item?.h).toBeUndefined()
      expect(before.Item?.b).toBeUndefined()

      sent.length = 0
      await engine.runWorkflow(instanceId)

      // The first write makes both; every later one that appends or adds knows they are there.
      expect(sent[0]).toContain('h = list_append(if_not_exists(h, :noH), :h)')
      expect(sent[0]).toContain('b = if_not_exists(b, :bytesBase) + :bytes')
      const later = sent.slice(1)
      expect(later.filter((expression) => expression.includes('list_append(h, :h)')).length).toBeGreaterThan(1)
      expect(later.filter((expression) => expression.includes('b = b + :bytes')).length).toBeGreaterThan(1)
      for (const expression of later) expect(expression).not.toContain('if_not_exists')

      const record = (await store.getInstance(instanceId)) as InstanceRecord
      expect(record.status).toBe('completed')
      expect(record.storedBytes).toBe(instanceStoredBytes(record))
      const entries = (await engine.history(instanceId)).entries
      for (const nodeId of ['a', 'b', 'c']) {
        const own = entries.filter((entry) => entry.kind === 'node' && entry.nodeId === nodeId)
        expect(own.map((entry) => entry.status)).toEqual(['running', 'completed'])
      }
      expect(entries.filter((entry) => entry.kind === 'finished').map((entry) => entry.status)).toEqual(['completed'])
    } finally {
      table.client.middlewareStack.remove(name)
    }
  })
})

// After every test, whatever it did: every non-terminal instance is due, leased, or parked with a reason.
afterEach(async () => {
  expect((await invariantViolations(table, Date.now())).map((violation) => violation.message)).toEqual([])
})
