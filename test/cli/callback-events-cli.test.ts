import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../src/cli/program.js'
import { webhookSignature } from '../../src/local/local-event-bus.js'
import { type LocalRuntime, startLocalRuntime } from '../../src/local/runtime.js'
import { dynamoEndpoint, uniqueTableName } from '../support/dynamodb.js'

/**
 * `tickflow callback` and `tickflow events` against a real local runtime (in process, on the test run's DynamoDB
 * Local), whose lifecycle events also go to a webhook, signed.
 */

const WEBHOOK_SECRET = 'the-webhook-secret-of-this-test'

interface Delivery {
  headers: Record<string, string | string[] | undefined>
  body: string
}

let runtime: LocalRuntime
let webhook: Server
const deliveries: Delivery[] = []
/** The first delivery fails: the bus retries it. */
let refuseNext = true

beforeAll(async () => {
  webhook = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8')
    })
    request.on('end', () => {
      if (refuseNext) {
        refuseNext = false
        response.writeHead(503).end()
        return
      }
      deliveries.push({ headers: request.headers, body })
      response.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve))
  runtime = await startLocalRuntime({
    port: 0,
    host: '127.0.0.1',
    inMemory: true,
    dataDir: '.data',
    dynamodbEndpoint: dynamoEndpoint(),
    tableName: uniqueTableName('cli-callbacks'),
    tickIntervalMs: 1000,
    pumpIntervalMs: 100,
    logLevel: 'error',
    events: {
      nodeEventTypes: ['payment'],
      webhook: { url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`, secret: WEBHOOK_SECRET },
    },
    print: () => {},
  })
})

afterAll(async () => {
  await runtime?.stop()
  webhook?.close()
})

const tickflow = async (...argv: string[]) => {
  let stdout = ''
  let stderr = ''
  const code = await runCli(['--api', runtime.url, ...argv], {
    stdout: (text) => {
      stdout += text
    },
    stderr: (text) => {
      stderr += text
    },
    env: {},
  })
  return { code, stdout, stderr, json: () => JSON.parse(stdout) }
}

const confirmUrl = async (id: string): Promise<string> => {
  const detail = (await tickflow('--json', 'get', id)).json() as {
    nodes: { id: string; context?: { confirm_url?: string } }[]
  }
  return String(detail.nodes.find((node) => node.id === 'capture')?.context?.confirm_url)
}

describe('tickflow callback', () => {
  it('keeps a payment alive and completes it with the token alone; a late or unknown token is refused', async () => {
    const created = await tickflow('--json', 'create', 'payment', '--context', '{"amount": 42}')
    expect(created.code).toBe(0)
    const id = created.json().instanceId as string
    const url = await confirmUrl(id)
    expect(url.startsWith(`${runtime.url}/callbacks/`)).toBe(true)
    const token = url.slice(`${runtime.url}/callbacks/`.length)

    expect(await tickflow('callback', token, '--heartbeat')).toMatchObject({
      code: 0,
      stdout: 'callback heartbeat accepted\n',
    })
    const done = await tickflow('callback', token, '--success', '{"reference":"ch_9"}')
    expect(done).toMatchObject({ code: 0, stdout: 'callback success accepted\n' })
    const finished = (await tickflow('--json', 'get', id, '--wait', '20')).json() as { status: string }
    expect(finished.status).toBe('completed')

    const late = await tickflow('callback', token, '--failure', '{"error":"Late","cause":"too late"}')
    expect(late.code).toBe(4)
    expect(late.stderr).toMatch(/can no longer be completed/)
    const unknown = await tickflow('callback', `${token.slice(0, -2)}AA`, '--success')
    expect(unknown).toMatchObject({ code: 3, stderr: 'tickflow: no such callback\n' })
    expect((await tickflow('callback', token)).code).toBe(2)
    expect((await tickflow('callback', token, '--success', 'not json')).code).toBe(2)
  }, 60_000)
})

describe('tickflow events', () => {
  it('lists the lifecycle events, and follows new ones as they come', async () => {
    const before = (await tickflow('--json', 'events')).json() as { next: number }
    const following = tickflow('--json', 'events', '--follow', '--after', String(before.next), '--count', '2')
    const created = await tickflow('--json', 'create', 'order', '--context', '{"lines":[]}')
    const id = created.json().instanceId as string
    const followed = await following
    expect(followed.code).toBe(0)
    // One JSON line per event as it arrives (then the count).
    const lines = followed.stdout
      .split('\n')
      .slice(0, 2)
      .map((line) => JSON.parse(line))
    expect(lines.map((event) => [event.detail.instanceId, event.detail.status])).toEqual([
      [id, 'running'],
      [id, 'failed'],
    ])
    const table = await tickflow('events', '--after', String(before.next))
    expect(table.stdout).toMatch(/^SEQ\s+TIME\s+KIND\s+STATUS\s+INSTANCE\s+NODE\s+NOTE\n/)
    expect(table.stdout).toMatch(new RegExp(`Instance\\s+failed\\s+${id}\\s+validate\\s+FailedWithFailedError`))
  }, 60_000)

  it('publishes node events of the types that opt in, and forwards every event to the webhook, signed', async () => {
    const created = await tickflow('--json', 'create', 'payment', '--context', '{"amount": 7}')
    const id = created.json().instanceId as string
    const page = (await tickflow('--json', 'events')).json() as {
      items: { 'detail-type': string; detail: { instanceId: string; nodeId?: string; status: string } }[]
    }
    const mine = page.items.filter((event) => event.detail.instanceId === id)
    expect(mine.map((event) => `${event.detail.nodeId ?? '-'}:${event.detail.status}`)).toEqual([
      '-:running',
      'authorize:running',
      'authorize:completed',
      'capture:running',
    ])
    for (let wait = 0; wait < 50 && !deliveries.some((d) => d.body.includes(id)); wait++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const delivered = deliveries.filter((delivery) => delivery.body.includes(id))
    expect(delivered.length).toBeGreaterThan(0)
    for (const delivery of delivered) {
      const timestamp = String(delivery.headers['x-tickflow-timestamp'])
      expect(delivery.headers['x-tickflow-signature']).toBe(webhookSignature(WEBHOOK_SECRET, timestamp, delivery.body))
      expect(JSON.parse(delivery.body)).toMatchObject({ source: 'tickflow', detail: { instanceId: id } })
    }
    // The first delivery of the run was refused (503): it came again.
    expect(refuseNext).toBe(false)
  }, 60_000)

  it('refuses a bad watch with a 400 naming the parameter', async () => {
    const reply = await fetch(`${runtime.url}/_local/events?waitSeconds=99`)
    expect(reply.status).toBe(400)
    expect(await reply.json()).toMatchObject({ error: { details: { field: 'query.waitSeconds' } } })
  })
})
