import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { beforeAll, describe, expect, it } from 'vitest'
import { CapacityMeter } from '../../scripts/capacity-meter.js'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { instanceKey } from '../../src/adapters/dynamodb/keys.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { newLocalClient, requestKind } from '../reliability/support.js'
import { newDynamoClient } from '../support/dynamodb.js'
import { drain, interceptRequests, refusal } from '../support/exchanges.js'
import { createTestTable, FakeClock, fixedRandom, sequentialIds, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { notYetNode } from '../support/polled.js'

/**
 * A due poll records its attempt in the write that acquires the lease (README, "Cost"): the release before it named
 * the attempt that is due next, and a due pass's acquisition stores it as started by the new lease. What that must
 * keep: every attempt recorded before the worker is called and counted once, an attempt recorded by a runner that
 * died counted as failed, and an attempt the pass does not make not counted at all.
 */
let table: TestTable

beforeAll(async () => {
  table = await createTestTable('poll-attempt')
})

const RETRY_SECONDS = 60

/** `wait` runs once, then its check is polled every minute and says not yet, `maxWaitSeconds` at most. */
const polledType = (type: string, checks: { count: number }, maxWaitTimeSeconds?: number) =>
  defineWorkflow({
    type,
    nodes: {
      wait: {
        ...(maxWaitTimeSeconds === undefined ? {} : { maxWaitTimeSeconds }),
        ...notYetNode(RETRY_SECONDS, { run: (ctx) => ctx.set('ticket', 'T-1'), onCheck: () => (checks.count += 1) }),
      },
    },
  })

/** An engine of its own on the shared table, with its client metered. */
const anEngine = () => {
  const client = newDynamoClient()
  const meter = new CapacityMeter().attach(client)
  const clock = new FakeClock()
  const store = new DynamoDbStore({ tableName: table.tableName, client })
  const engine = new Engine({ store, clock, ids: sequentialIds(), random: fixedRandom(0) })
  return { client, meter, clock, store, engine }
}

const setUp = (type: string, maxWaitTimeSeconds?: number) => {
  const checks = { count: 0 }
  const set = anEngine()
  set.engine.register(polledType(type, checks, maxWaitTimeSeconds))
  return { ...set, checks }
}

/** The instance item as stored: the attributes of an attempt an acquisition recorded, and the next one named. */
const armedAttributes = async (instanceId: string) => {
  const key = instanceKey(instanceId)
  const raw = await table.client.send(
    new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: key.pk }, sk: { S: key.sk } } }),
  )
  const item = raw.Item ?? {}
  return {
    recorded: Object.keys(item).filter((name) => /^x[nft]$/.test(name)),
    // Always stored, '' when no attempt is named.
    named: item.nx?.S || undefined,
  }
}

const waitNode = async (store: DynamoDbStore, instanceId: string) => {
  const record = await store.getInstance(instanceId)
  const node = record?.nodes.wait
  if (!node) throw new Error(`instance ${instanceId} has no node 'wait'`)
  return node
}

describe('a check polled by due passes', () => {
  it('is one acquisition and one release per poll: the acquisition records the attempt', async () => {
    const { meter, clock, store, engine, checks } = setUp('poll-attempt-cost')
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-cost' })
    clock.advanceSeconds(RETRY_SECONDS + 1)
    await engine.runWorkflow(instanceId, { mode: 'due' })

    for (const _ of [1, 2, 3]) {
      const before = await waitNode(store, instanceId)
      const called = checks.count
      clock.advanceSeconds(RETRY_SECONDS + 1)
      meter.reset()

      const result = await engine.runWorkflow(instanceId, { mode: 'due' })

      expect(result.executed).toEqual(['wait'])
      expect(checks.count).toBe(called + 1)
      expect(meter.requests.get('UpdateItemCommand')).toBe(2)
      // Two writes of the instance item (1 each) and the due time the due index projects (1): its place stays.
      expect(meter.writeUnits).toBe(3)
      const after = await waitNode(store, instanceId)
      expect(after.calls).toBe((before.calls ?? 0) + 1)
      expect(after.attemptStarted).toBeUndefined()
      expect(after.failCount).toBe(before.failCount)
      expect(await armedAttributes(instanceId)).toEqual({ recorded: [], named: 'wait|c' })
      expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    }
  })

  it('counts the attempt of a runner that died after its acquisition as failed, and polls again', async () => {
    const { client, clock, store, engine, checks } = setUp('poll-attempt-crash')
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-crash' })
    clock.advanceSeconds(RETRY_SECONDS + 1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const before = await waitNode(store, instanceId)

    // The runner dies once its acquisition landed: nothing it sends after it reaches the table.
    let acquisitions = 0
    let dead = false
    interceptRequests(client, async (exchange, send) => {
      if (dead) throw new Error('the runner is gone')
      const answer = await send()
      const update = String(exchange.input.UpdateExpression ?? '')
      if (exchange.commandName === 'UpdateItemCommand' && update.includes('ADD f :one') && acquisitions++ === 0) {
        dead = true
      }
      return answer
    })
    clock.advanceSeconds(RETRY_SECONDS + 1)
    await expect(engine.runWorkflow(instanceId, { mode: 'due' })).rejects.toThrow()
    dead = false

    // Stored as started by the dead runner's lease, and shown so to every reader.
    const atCrash = await waitNode(store, instanceId)
    expect(atCrash.attemptStarted).toMatchObject({ step: 'check' })
    expect(atCrash.calls).toBe((before.calls ?? 0) + 1)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    // Past the dead runner's lease: the next pass counts the attempt as failed (retried by the node's policy).
    clock.advanceSeconds(3600)
    const called = checks.count
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const counted = await waitNode(store, instanceId)
    expect(counted.failCount).toBe(before.failCount + 1)
    expect(counted.lastError).toMatch(/without an outcome/)
    expect(counted.calls).toBe((before.calls ?? 0) + 1)
    expect(counted.attemptStarted).toBeUndefined()
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    clock.advanceSeconds(3600)
    const result = await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(result.executed).toEqual(['wait'])
    expect(checks.count).toBe(called + 1)
    const after = await waitNode(store, instanceId)
    expect(after.calls).toBe((before.calls ?? 0) + 2)
    expect(after.attemptStarted).toBeUndefined()
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('withdraws the attempt its acquisition recorded when the pass fails before making it', async () => {
    const { client, clock, store, engine } = anEngine()
    const checks = { count: 0 }
    engine.register(
      defineWorkflow({
        type: 'poll-attempt-withdrawn',
        nodes: {
          // Its 5 KB output is kept in an item of its own: the pass reads it by key before calling `wait`.
          big: { next: ['wait'], run: (ctx: NodeContext) => ctx.set('blob', 'b'.repeat(5000)) },
          wait: notYetNode(RETRY_SECONDS, { onCheck: () => (checks.count += 1) }),
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-withdrawn' })
    const before = await waitNode(store, instanceId)
    const called = checks.count
    let failRead = false
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (failRead && /^(Get|BatchGet)/.test(context.commandName ?? '')) throw new Error('the read failed')
        return next(args)
      },
      { step: 'initialize', name: 'failReads' },
    )

    clock.advanceSeconds(RETRY_SECONDS + 1)
    failRead = true
    await expect(engine.runWorkflow(instanceId, { mode: 'due' })).rejects.toThrow()
    failRead = false

    expect(checks.count).toBe(called)
    expect(await waitNode(store, instanceId)).toEqual(before)
    expect((await armedAttributes(instanceId)).recorded).toEqual([])
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    await engine.runWorkflow(instanceId, { mode: 'due' })
    expect(checks.count).toBe(called + 1)
    const after = await waitNode(store, instanceId)
    expect(after.failCount).toBe(before.failCount)
    expect(after.calls).toBe((before.calls ?? 0) + 1)
  })

  it('withdraws the attempt its acquisition recorded when the write before the call fails', async () => {
    const { client, clock, store, engine } = anEngine()
    const checks = { count: 0 }
    engine.register(
      defineWorkflow({
        type: 'poll-attempt-flush-fails',
        nodes: {
          wait: notYetNode(RETRY_SECONDS, { onCheck: () => (checks.count += 1) }),
          // Past its max wait when `wait` is polled: the pass stores that before it calls the check.
          expiring: { optional: true, maxWaitTimeSeconds: RETRY_SECONDS, ...notYetNode(2 * RETRY_SECONDS) },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-flush-fails' })
    expect((await armedAttributes(instanceId)).named).toBe('wait|c')
    const before = await waitNode(store, instanceId)
    const called = checks.count
    let failWrite = false
    interceptRequests(client, async (exchange, send) => {
      const update = String(exchange.input.UpdateExpression ?? '')
      if (failWrite && exchange.commandName === 'UpdateItemCommand' && update.startsWith('SET ua = :ua')) {
        failWrite = false
        throw new Error('the write failed')
      }
      return send()
    })

    clock.advanceSeconds(RETRY_SECONDS + 1)
    failWrite = true
    await expect(engine.runWorkflow(instanceId, { mode: 'due' })).rejects.toThrow()

    expect(checks.count).toBe(called)
    expect(await waitNode(store, instanceId)).toEqual(before)
    expect((await armedAttributes(instanceId)).recorded).toEqual([])
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('calls the check once, and counts nothing failed, when the SDK sent the acquisition again after it landed', async () => {
    const client = newLocalClient({ maxAttempts: 4 })
    const state = { lose: false, lost: 0 }
    // The answer of one acquisition is lost after it landed: the SDK's retry strategy sends it again.
    interceptRequests(client, async (exchange, send) => {
      const answer = await send()
      if (state.lose && state.lost === 0 && requestKind(exchange.commandName, exchange) === 'acquireLease') {
        state.lost += 1
        await drain(answer)
        return refusal(500, 'InternalServerError', 'the answer was lost')
      }
      return answer
    })
    const clock = new FakeClock()
    const store = new DynamoDbStore({ tableName: table.tableName, client })
    const engine = new Engine({ store, clock, ids: sequentialIds(), random: fixedRandom(0) })
    const checks = { count: 0 }
    engine.register(polledType('poll-attempt-lost-answer', checks))
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-lost-answer' })
    clock.advanceSeconds(RETRY_SECONDS + 1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const before = await waitNode(store, instanceId)
    const called = checks.count

    clock.advanceSeconds(RETRY_SECONDS + 1)
    state.lose = true
    const result = await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(state.lost).toBe(1)
    expect(result.executed).toEqual(['wait'])
    expect(checks.count).toBe(called + 1)
    const after = await waitNode(store, instanceId)
    expect(after.failCount).toBe(before.failCount)
    expect(after.calls).toBe((before.calls ?? 0) + 1)
    expect(after.attemptStarted).toBeUndefined()
    expect((await armedAttributes(instanceId)).recorded).toEqual([])
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it('does not count an attempt its pass does not make: a node past its max wait fails unpolled', async () => {
    const { clock, store, engine, checks } = setUp('poll-attempt-expired', 150)
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-expired' })
    clock.advanceSeconds(RETRY_SECONDS + 1)
    await engine.runWorkflow(instanceId, { mode: 'due' })
    const before = await waitNode(store, instanceId)
    const called = checks.count

    clock.advanceSeconds(RETRY_SECONDS * 3)
    await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(checks.count).toBe(called)
    const after = await waitNode(store, instanceId)
    expect(after.status).toBe('failed')
    expect(after.calls).toBe(before.calls)
    expect(after.attemptStarted).toBeUndefined()
    // Nothing of the acquisition's record is left in the item once the pass wrote; no attempt is named any more.
    expect(await armedAttributes(instanceId)).toEqual({ recorded: [], named: undefined })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  it("records the attempt of the check an event wakes, and the poll's next one after it", async () => {
    const { meter, clock, store, engine } = anEngine()
    const calls: string[] = []
    const polledEvery = (node: string, seconds: number) =>
      notYetNode(seconds, { run: (ctx) => ctx.set('node', node), onCheck: () => calls.push(node) })
    engine.register(
      defineWorkflow({
        type: 'poll-attempt-other',
        nodes: {
          soon: { ...polledEvery('soon', RETRY_SECONDS), next: ['report'] },
          later: { ...polledEvery('later', 10 * RETRY_SECONDS), next: ['report'] },
          report: { run: (ctx: NodeContext) => ctx.set('done', true) },
        },
      }),
    )
    const { instanceId } = await engine.create({ workflowType: 'poll-attempt-other' })
    expect((await armedAttributes(instanceId)).named).toBe('soon|c')
    const before = await store.getInstance(instanceId)

    clock.advanceSeconds(10)
    await engine.addNodeEvent({ instanceId, nodeId: 'later', eventTs: 1, content: { ok: false } })
    expect((await armedAttributes(instanceId)).named).toBe('later|c')
    calls.length = 0
    meter.reset()
    const result = await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(result.executed).toEqual(['later'])
    expect(meter.requests.get('UpdateItemCommand')).toBe(2)
    expect(calls).toEqual(['later'])
    const after = await store.getInstance(instanceId)
    expect(after?.nodes.soon).toEqual(before?.nodes.soon)
    expect(after?.nodes.later?.calls).toBe((before?.nodes.later?.calls ?? 0) + 1)
    expect(await armedAttributes(instanceId)).toEqual({ recorded: [], named: 'soon|c' })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    // An event for a node that has not started: the pass it makes due has no attempt to make, and nothing of the
    // one its acquisition was told of stays.
    const beforeEarly = await store.getInstance(instanceId)
    clock.advanceSeconds(5)
    await engine.addNodeEvent({ instanceId, nodeId: 'report', eventTs: 1, content: { early: true } })
    expect((await armedAttributes(instanceId)).named).toBe('report|c')
    calls.length = 0
    const early = await engine.runWorkflow(instanceId, { mode: 'due' })

    expect(early.executed).toEqual([])
    expect(calls).toEqual([])
    const afterEarly = await store.getInstance(instanceId)
    expect(afterEarly?.nodes).toEqual(beforeEarly?.nodes)
    expect(await armedAttributes(instanceId)).toEqual({ recorded: [], named: 'soon|c' })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
