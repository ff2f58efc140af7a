import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpClient, type NpmStart, npmStart } from '../support/npm-start.js'

/** `npm start` exactly as a new user runs it, driven over HTTP, then stopped with Ctrl-C. */
describe('npm start', () => {
  let runtime: NpmStart
  let request: ReturnType<typeof httpClient>

  beforeAll(async () => {
    // As from a shell where the variable that silences the AWS SDK's Node version notice is not set.
    runtime = await npmStart(['--in-memory'], {
      TICK_INTERVAL_SECONDS: '2',
      LOG_LEVEL: 'info',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '',
    })
    request = httpClient(runtime.url)
  }, 120_000)

  afterAll(() => runtime?.kill())

  it('starts quietly: no warning between the command and the banner', () => {
    expect(runtime.output()).not.toMatch(/warning/i)
    expect(runtime.output()).toContain('DynamoDB Local ready at')
  })

  it('prints a banner with copy-paste examples', () => {
    expect(runtime.output()).toContain(`curl -s -X POST ${runtime.url}/workflows`)
    expect(runtime.output()).toContain('workflows: approval, order, subscription-billing')
    expect(runtime.output()).toContain(`dashboard: open ${runtime.url}/ in a browser`)
  })

  it('runs an approval: create, send the reviewer event, wait for completion', async () => {
    const created = await request('POST', '/workflows', { workflowType: 'approval', context: { requester: 'ada' } })
    expect(created.status).toBe(201)
    expect(created.body.status).toBe('running')
    const id = created.body.instanceId as string
    const waiting = request('GET', `/workflows/${id}?wait=terminal&timeoutSeconds=20`)
    const event = await request('POST', `/workflows/${id}/nodes/review/events`, {
      eventTs: 1,
      content: { decision: 'approved' },
    })
    expect(event.status).toBe(202)
    // No explicit run: the event's run request goes through the local run queue to the worker handler.
    const done = await waiting
    expect(done.body.status).toBe('completed')
    expect(done.body.nodes.find((node: { id: string }) => node.id === 'approve').context.decision).toBe('approved')
    expect((await request('GET', `/workflows/${id}/graph`)).body).toContain('flowchart TD')
  })

  it('runs an order: charge and reserve in parallel, then ship', async () => {
    const created = await request('POST', '/workflows', {
      workflowType: 'order',
      context: { lines: [{ sku: 'A-1', quantity: 2, price: 9.5 }] },
    })
    expect(created.body.status).toBe('completed')
    const detail = await request('GET', `/workflows/${created.body.instanceId}`)
    const ship = detail.body.nodes.find((node: { id: string }) => node.id === 'ship')
    expect(ship.context.shipment).toEqual({ carrier: 'local-post', paid: true, items: 1 })
    expect(ship.predecessors).toEqual(['charge', 'reserve'])
  })

  it('wakes a waiting check up by itself (a billing run whose payment settles on the second poll)', async () => {
    const created = await request('POST', '/workflows', {
      workflowType: 'subscription-billing',
      context: { customer: 'c-1', amount: 30, settle_after_polls: 1 },
    })
    expect(created.body.status).toBe('running')
    const done = await request('GET', `/workflows/${created.body.instanceId}?wait=terminal&timeoutSeconds=20`)
    expect(done.body.status).toBe('completed')
    expect(done.body.nodes.find((node: { id: string }) => node.id === 'collect').context.polls).toBe(2)
  })

  it('takes external events from the local events queue', async () => {
    const created = await request('POST', '/workflows', { workflowType: 'approval', businessId: 'PO-9' })
    const queued = await request('POST', '/_local/queues/events', {
      workflowType: 'approval',
      businessId: 'PO-9',
      nodeId: 'review',
      eventTs: 5,
      content: { decision: 'rejected' },
    })
    expect(queued.status).toBe(202)
    const done = await request('GET', `/workflows/${created.body.instanceId}?wait=terminal&timeoutSeconds=20`)
    expect(done.body.nodes.find((node: { id: string }) => node.id === 'approve').context.decision).toBe('rejected')
  })

  it('stops cleanly on Ctrl-C and leaves no process behind', async () => {
    const { code, signal } = await runtime.interrupt()
    // npm itself ends by the signal, as it does in a terminal; the runtime below it stops cleanly first.
    expect(code === 0 || code === 130 || signal === 'SIGINT').toBe(true)
    expect(runtime.alive()).toBe(false)
    expect(runtime.output()).toContain('stopped.')
  }, 20_000)
})

describe('npm start without --in-memory', () => {
  it('keeps instances between runs', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tickflow-data-'))
    try {
      const first = await npmStart([], { TICKFLOW_DATA_DIR: dataDir })
      const created = await httpClient(first.url)('POST', '/workflows', { workflowType: 'approval' })
      await first.interrupt()
      const second = await npmStart([], { TICKFLOW_DATA_DIR: dataDir })
      try {
        const found = await httpClient(second.url)('GET', `/workflows/${created.body.instanceId}`)
        expect(found.status).toBe(200)
        expect(found.body.workflowType).toBe('approval')
        expect(second.output()).toContain(`data kept in ${dataDir}/`)
      } finally {
        await second.interrupt()
      }
      expect(second.alive()).toBe(false)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  }, 180_000)
})
