import { describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { createTestEngine, durationMs } from '../../src/testing/index.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { orderWorkflow } from '../../src/workflows/order.js'
import { paymentWorkflow } from '../../src/workflows/payment.js'
import { subscriptionBillingWorkflow } from '../../src/workflows/subscription.js'

/**
 * The project's own workflows, tested as a workflow author would test theirs: with `tickflow/testing`, the engine
 * on the memory store and a virtual clock (README, "Testing your workflows").
 */

const node = async (t: ReturnType<typeof createTestEngine>, id: string, nodeId: string) =>
  (await t.instance(id)).nodes.find((n) => n.id === nodeId)

describe('approval', () => {
  it('completes with the reviewer’s decision, whenever it comes within the day', async () => {
    const t = createTestEngine({ workflows: [approvalWorkflow] })
    const { id, status } = await t.start('approval', { requester: 'ada', amount: 120 })
    expect(status).toBe('running')
    await t.advance('7h')
    await t.sendEvent(id, 'review', { decision: 'rejected' })
    const done = await t.instance(id)
    expect(done.status).toBe('completed')
    expect((await node(t, id, 'approve'))?.context?.decision).toBe('rejected')
    expect(t.events().map((event) => event.detail.status)).toEqual(['running', 'completed'])
  })

  it('fails after a day without an answer, polled every minute meanwhile, on virtual time', async () => {
    const t = createTestEngine({ workflows: [approvalWorkflow] })
    const started = performance.now()
    const { id } = await t.start('approval', { requester: 'ada' })
    await t.advance('23h 59m')
    expect((await t.instance(id)).status).toBe('running')
    await t.advance('2m')
    const elapsed = performance.now() - started
    const failed = await t.instance(id)
    expect(failed.status).toBe('failed')
    expect(failed.failure?.reason).toMatch(/max_wait_time_ts exceeded/)
    // Polled once a minute for the day: the worker's check ran each time, at its own virtual time.
    const review = await node(t, id, 'review')
    expect(review?.calls).toBeGreaterThan(1400)
    expect(t.clock.pendingTimers).toBe(0)
    console.info(`approval: 24 h of workflow time in ${elapsed.toFixed(0)} ms`)
    // The day's 1,440 polls waited for no real minute: a bound no loaded machine comes near (about 0.6 s alone; how
    // fast is the benchmarks' to say, not a test's).
    expect(elapsed).toBeLessThan(60_000)
  })
})

describe('order', () => {
  it('charges and reserves in parallel, then ships once', async () => {
    const t = createTestEngine({ workflows: [orderWorkflow] })
    const { id, status } = await t.start('order', { lines: [{ sku: 'A-1', quantity: 2, price: 9.5 }] })
    expect(status).toBe('completed')
    expect((await node(t, id, 'ship'))?.context?.shipment).toEqual({ carrier: 'local-post', paid: true, items: 1 })
    expect((await node(t, id, 'charge'))?.context?.payment).toMatchObject({ amount: 19 })
  })

  it('fails for good at validate when the order has no lines', async () => {
    const t = createTestEngine({ workflows: [orderWorkflow] })
    const { id, status } = await t.start('order', { lines: [] })
    expect(status).toBe('failed')
    expect((await t.instance(id)).failure).toMatchObject({
      nodeId: 'validate',
      reason: expect.stringMatching(/no lines/),
    })
    const kinds = (await t.history(id)).map((entry) => entry.kind)
    expect(kinds).toContain('error')
    expect(kinds.at(-1)).toBe('finished')
  })
})

describe('subscription billing', () => {
  it('retries declined payments with its backoff, then collects once the provider settles', async () => {
    const t = createTestEngine({ workflows: [subscriptionBillingWorkflow] })
    const { id } = await t.start('subscription-billing', {
      customer: 'c-1',
      amount: 30,
      declines: 2,
      settle_after_polls: 3,
    })
    const collect = await node(t, id, 'collect')
    expect(collect).toMatchObject({ status: 'running', failCount: 1 })
    // 10 s, then 20 s after the second decline: due at its own times, not earlier.
    await t.advance('9s')
    expect((await node(t, id, 'collect'))?.failCount).toBe(1)
    await t.advance('1s')
    expect((await node(t, id, 'collect'))?.failCount).toBe(2)
    await t.advance('20s')
    expect((await node(t, id, 'collect'))?.status).toBe('pending')
    await t.advance('1m')
    const done = await t.instance(id)
    expect(done.status).toBe('completed')
    expect((await node(t, id, 'notify'))?.context?.receipt_sent_to).toBe('c-1')
  })

  it('gives up after 10 minutes when the provider never settles', async () => {
    const t = createTestEngine({ workflows: [subscriptionBillingWorkflow] })
    const { id } = await t.start('subscription-billing', { customer: 'c-2', amount: 30, settle_after_polls: 1_000 })
    await t.advance('11m')
    const failed = await t.instance(id)
    expect(failed.status).toBe('failed')
    expect(failed.failure?.nodeId).toBe('collect')
  })
})

describe('payment', () => {
  it('waits for the provider’s callback without polling, and records its confirmation', async () => {
    const t = createTestEngine({ workflows: [paymentWorkflow] })
    const { id } = await t.start('payment', { amount: 42 })
    const capture = await node(t, id, 'capture')
    expect(capture?.waiting?.reason).toBe('waiting for a callback')
    expect(String(capture?.context?.confirm_url)).toBe(
      `http://tickflow.test/callbacks/${t.callbackToken(id, 'capture')}`,
    )
    await t.advance('10m')
    expect((await node(t, id, 'capture'))?.calls).toBe(1)
    await t.completeCallback(id, 'capture', { status: 'success', output: { reference: 'ch_42' } })
    const done = await t.instance(id)
    expect(done.status).toBe('completed')
    expect((await node(t, id, 'receipt'))?.context?.receipt).toEqual({
      amount: 42,
      confirmation: { reference: 'ch_42' },
    })
  })

  it('asks again after a missed heartbeat, and fails after three attempts', async () => {
    const t = createTestEngine({ workflows: [paymentWorkflow] })
    const { id } = await t.start('payment', { amount: 42 })
    const first = t.callbackToken(id, 'capture')
    // The wait times out once its heartbeat deadline is a second (the clock skew allowed) behind.
    await t.advance('15m')
    expect((await node(t, id, 'capture'))?.failCount).toBe(0)
    await t.advance('1s')
    const retried = await node(t, id, 'capture')
    expect(retried?.failCount).toBe(1)
    expect(retried?.context?.system).toMatchObject({ last_error: expect.stringMatching(/no heartbeat/) })
    await t.advance('16m')
    expect(t.callbackToken(id, 'capture')).not.toBe(first)
    await expect(t.completeCallback(first, { status: 'success' })).rejects.toMatchObject({ code: 'CALLBACK_GONE' })
    await t.advance('1h')
    const failed = await t.instance(id)
    expect(failed.status).toBe('failed')
    expect((await node(t, id, 'capture'))?.failCount).toBe(3)
  })

  it('keeps a capture alive with heartbeats, up to its hour', async () => {
    const t = createTestEngine({ workflows: [paymentWorkflow] })
    const { id } = await t.start('payment', { amount: 42 })
    for (let beat = 0; beat < 4; beat++) {
      await t.advance('14m')
      await t.completeCallback(id, 'capture', { status: 'heartbeat' })
    }
    // 56 minutes: almost four heartbeat intervals, none missed.
    expect((await node(t, id, 'capture'))?.failCount).toBe(0)
    await t.advance('5m')
    // The hour since the request is over: heartbeats do not extend it.
    expect((await node(t, id, 'capture'))?.context?.system).toMatchObject({
      last_error: expect.stringMatching(/not completed within 3600 s/),
    })
  })
})

describe('the test engine', () => {
  it('runs what is due in time order, each at its own time, and leaves no timer behind', async () => {
    const seen: string[] = []
    const t = createTestEngine({
      workflows: [
        defineWorkflow({
          type: 'later',
          nodes: {
            wait: {
              run: (ctx) => {
                const after = ctx.getInteger('workflow_context', 'after') ?? 0
                const at = ctx.getInteger('at')
                if (at === undefined) {
                  ctx.set('at', Math.floor(t.now() / 1000) + after)
                  throw new NotReadyError(after)
                }
                seen.push(`${ctx.getString('workflow_context', 'name')}@${Math.round((t.now() - start) / 1000)}s`)
              },
            },
          },
        }),
      ],
    })
    const start = t.now()
    await t.start('later', { name: 'b', after: 7200 })
    await t.start('later', { name: 'a', after: 60 })
    await t.start('later', { name: 'c', after: 86_400 })
    await t.advance('2h')
    expect(seen).toEqual(['a@60s', 'b@7200s'])
    await t.advance('1d')
    expect(seen).toEqual(['a@60s', 'b@7200s', 'c@86400s'])
    expect(t.now() - start).toBe(durationMs('1d 2h'))
    expect(t.clock.pendingTimers).toBe(0)
  })

  it('reads durations as text or milliseconds, and refuses anything else', () => {
    expect(durationMs('90s')).toBe(90_000)
    expect(durationMs('1d 6h')).toBe(108_000_000)
    expect(durationMs('1.5h')).toBe(5_400_000)
    expect(durationMs(250)).toBe(250)
    expect(() => durationMs('soon')).toThrow(/not a duration/)
    expect(() => durationMs(-1)).toThrow(/not a duration/)
  })
})
