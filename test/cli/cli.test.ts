import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignatureV4 } from '@smithy/signature-v4'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NodeSha256 } from '../../src/adapters/http/sigv4-signer.js'
import { runCli } from '../../src/cli/program.js'
import { type LocalRuntime, startLocalRuntime } from '../../src/local/runtime.js'
import { dynamoEndpoint, uniqueTableName } from '../support/dynamodb.js'

/** The `tickflow` CLI against a real local runtime (in process, on the test run's DynamoDB Local). */
let runtime: LocalRuntime

beforeAll(async () => {
  runtime = await startLocalRuntime({
    port: 0,
    host: '127.0.0.1',
    inMemory: true,
    dataDir: '.data',
    dynamodbEndpoint: dynamoEndpoint(),
    tableName: uniqueTableName('cli'),
    tickIntervalMs: 1000,
    pumpIntervalMs: 100,
    logLevel: 'error',
    print: () => {},
  })
})

afterAll(() => runtime?.stop())

interface Run {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON. */
  json: () => Record<string, unknown> & { items?: Record<string, unknown>[] }
}

const tickflow = async (...argv: string[]): Promise<Run> => {
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

const createApproval = async (businessId?: string): Promise<string> => {
  const created = await tickflow(
    '--json',
    'create',
    'approval',
    '--context',
    '{"requester":"ada"}',
    ...(businessId ? ['--business-id', businessId] : []),
  )
  expect(created.code).toBe(0)
  return created.json().instanceId as string
}

describe('tickflow create and list', () => {
  it('creates an instance and lists it in a table and as JSON', async () => {
    const created = await tickflow('create', 'approval', '-c', '{"requester":"ada"}', '-b', 'PO-LIST')
    expect(created.code).toBe(0)
    const [id, status] = created.stdout.trim().split(' ')
    expect(status).toBe('running')

    const listed = await tickflow('list', '--business-id', 'PO-LIST')
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(/^ID\s+TYPE\s+STATUS\s+BUSINESS ID\s+CREATED\n/)
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+approval\\s+running\\s+PO-LIST\\s+\\d{4}-\\d\\d-\\d\\d `))

    const json = await tickflow('--json', 'list', '--business-id', 'PO-LIST')
    expect(json.json().items).toEqual([expect.objectContaining({ id, workflowType: 'approval', status: 'running' })])
  })

  it('pages with --limit and prints how to get the next page', async () => {
    for (let i = 0; i < 3; i++) await createApproval('PO-PAGE')
    const first = await tickflow('list', '-b', 'PO-PAGE', '--limit', '2')
    expect(first.stdout).toMatch(/more: tickflow list --cursor \S+/)
    const cursor = /--cursor (\S+)/.exec(first.stdout)?.[1] as string
    const second = await tickflow('--json', 'list', '-b', 'PO-PAGE', '--limit', '2', '--cursor', cursor)
    expect(second.json().items).toHaveLength(1)
  })

  it('rejects a bad filter with exit code 2, naming the field', async () => {
    const run = await tickflow('list', '--status', 'sleeping')
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('status')
  })
})

describe('tickflow get, graph, event', () => {
  it('shows an instance and its nodes, sends the event that completes it, and waits for the end', async () => {
    const id = await createApproval()

    const shown = await tickflow('get', id)
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(new RegExp(`instance:\\s+${id}`))
    expect(shown.stdout).toMatch(/review\s+pending\s+0\s+1/)
    expect(shown.stdout).toMatch(/approve\s+uncreated/)

    const graph = await tickflow('graph', id)
    expect(graph.stdout).toContain('flowchart TD')
    expect(graph.stdout).toMatch(/review: .*pending/)
    expect((await tickflow('--json', 'graph', id)).json()).toMatchObject({ format: 'mermaid' })

    const event = await tickflow('--json', 'event', id, 'review', '--content', '{"decision":"approved"}', '--ts', '7')
    expect(event.code).toBe(0)
    expect(event.json()).toMatchObject({ instanceId: id, nodeId: 'review', eventTs: 7 })

    const done = await tickflow('--json', 'get', id, '--wait', '20')
    expect(done.json().status).toBe('completed')
  })

  it('answers exit code 3 for an unknown instance, as text and as JSON', async () => {
    const text = await tickflow('get', 'no-such-instance')
    expect(text.code).toBe(3)
    expect(text.stderr).toMatch(/^tickflow: .*no-such-instance/)
    expect(text.stdout).toBe('')

    const json = await tickflow('--json', 'graph', 'no-such-instance')
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'INSTANCE_NOT_FOUND' }, exitCode: 3 })
  })

  it('answers exit code 4 for an older event than the stored one', async () => {
    const id = await createApproval()
    expect((await tickflow('event', id, 'review', '--ts', '10')).code).toBe(0)
    const stale = await tickflow('event', id, 'review', '--ts', '9')
    expect(stale.code).toBe(4)
  })

  it('answers exit code 2 for content that is not JSON, before any request', async () => {
    const run = await tickflow('event', 'any', 'review', '--content', '{nope')
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--content is not JSON')
  })
})

describe('tickflow cancel and restart', () => {
  it('cancels an instance, refuses to cancel a completed one, and restarts a canceled one', async () => {
    const id = await createApproval()
    const canceled = await tickflow('cancel', id)
    expect(canceled.stdout.trim()).toBe(`${id} canceled`)
    expect((await tickflow('--json', 'cancel', id)).json()).toMatchObject({ status: 'canceled', changed: false })

    const restarted = await tickflow('--json', 'restart', id)
    expect(restarted.code).toBe(0)
    expect(restarted.json()).toMatchObject({ instanceId: id, status: 'running' })
  })

  it('restarts one node of a finished instance with --force, and refuses without it (exit 4)', async () => {
    const id = await createApproval()
    await tickflow('event', id, 'review', '-c', '{"decision":"approved"}', '--ts', '1')
    expect((await tickflow('--json', 'get', id, '--wait', '20')).json().status).toBe('completed')

    const refused = await tickflow('restart', id, 'approve')
    expect(refused.code).toBe(4)
    const forced = await tickflow('--json', 'restart', id, 'approve', '--force')
    expect(forced.code).toBe(0)
    expect(forced.json()).toMatchObject({ instanceId: id })
    expect((await tickflow('--json', 'get', id, '--wait', '20')).json().status).toBe('completed')
  })

  it('answers exit code 3 for an unknown node', async () => {
    const id = await createApproval()
    expect((await tickflow('restart', id, 'nowhere', '--force')).code).toBe(3)
  })

  it('cancels with exit code 4 an instance that is completed', async () => {
    const id = await createApproval()
    await tickflow('event', id, 'review', '-c', '{"decision":"rejected"}', '--ts', '1')
    await tickflow('get', id, '--wait', '20')
    expect((await tickflow('cancel', id)).code).toBe(4)
  })
})

describe('tickflow schedules', () => {
  it('puts, lists, reads and deletes a schedule, with its next firing in its time zone', async () => {
    const put = await tickflow(
      'schedules',
      'put',
      'cli-nightly',
      '--expression',
      'cron(0 2 * * ? *)',
      '--type',
      'approval',
      '--timezone',
      'Europe/Paris',
      '--context',
      '{"requester":"cron"}',
    )
    expect(put.code).toBe(0)
    expect(put.stdout.trim()).toBe('schedule cli-nightly stored')

    const listed = await tickflow('schedules', 'list')
    expect(listed.stdout).toMatch(/NAME\s+EXPRESSION\s+TIME ZONE\s+TYPE\s+ENABLED\s+NEXT FIRING/)
    expect(listed.stdout).toMatch(/cli-nightly\s+cron\(0 2 \* \* \? \*\)\s+Europe\/Paris\s+approval\s+yes\s+\d{4}-/)

    const got = await tickflow('--json', 'schedules', 'get', 'cli-nightly')
    const schedule = got.json()
    expect(schedule).toMatchObject({ name: 'cli-nightly', timezone: 'Europe/Paris', context: { requester: 'cron' } })
    // 02:00 in Paris is 00:00 or 01:00 UTC.
    expect(schedule.nextFireAt).toMatch(/T0[01]:00:00Z$/)
    expect((await tickflow('schedules', 'get', 'cli-nightly')).stdout).toMatch(/next firing:\s+\d{4}-/)

    const deleted = await tickflow('schedules', 'delete', 'cli-nightly')
    expect(deleted.stdout.trim()).toBe('schedule cli-nightly deleted')
    expect((await tickflow('schedules', 'get', 'cli-nightly')).code).toBe(3)
    expect((await tickflow('schedules', 'delete', 'cli-nightly')).code).toBe(3)
  })

  it('answers exit code 2 for an expression AWS would refuse, naming the field', async () => {
    const run = await tickflow('schedules', 'put', 'bad', '-e', 'cron(0 2 * * * *)', '-t', 'approval')
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('expression')
  })

  it('needs --expression and --type (exit code 2)', async () => {
    const run = await tickflow('schedules', 'put', 'bad')
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--expression')
  })
})

describe('tickflow history', () => {
  it("prints an instance's history oldest first, with readable times, and pages it", async () => {
    const id = await createApproval()
    const sent = await tickflow('event', id, 'review', '-c', '{"decision":"approved"}', '--ts', '1700000000')
    expect(sent.code).toBe(0)

    const run = await tickflow('history', id)
    expect(run.code).toBe(0)
    const lines = run.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^SEQ\s+TIME\s+KIND\s+NODE\s+DETAIL$/)
    expect(lines[1]).toMatch(/^0\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z\s+created\s+-\s+origin api$/)
    expect(run.stdout).toMatch(/\d+\s+\S+ \S+\s+event\s+review\s+eventTs 1700000000, origin api/)

    const paged = await tickflow('history', id, '--limit', '2')
    expect(paged.code).toBe(0)
    const more = /more: tickflow history \S+ --cursor (\S+)/.exec(paged.stdout)
    expect(more).not.toBeNull()
    const next = await tickflow('--json', 'history', id, '--limit', '2', '--cursor', more?.[1] as string)
    expect(next.code).toBe(0)
    expect(next.json().items?.map((item) => item.seq)).toEqual([2, 3])
  })

  it('answers exit code 2 naming the option for a bad limit', async () => {
    const run = await tickflow('history', 'any', '--limit', '0')
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('--limit')
  })
})

describe('tickflow usage and reachability', () => {
  it('answers exit code 2 for an unknown command', async () => {
    const run = await tickflow('frobnicate')
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("unknown command 'frobnicate'")
  })

  it('prints help with the exit codes', async () => {
    const run = await tickflow('--help')
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('Exit codes:')
    for (const command of ['list', 'get', 'graph', 'history', 'event', 'restart', 'cancel', 'schedules']) {
      expect(run.stdout).toContain(command)
    }
  })

  it('answers exit code 5 when nothing answers at the URL', async () => {
    const closed = createServer()
    await new Promise<void>((listening) => closed.listen(0, '127.0.0.1', () => listening()))
    const port = (closed.address() as AddressInfo).port
    await new Promise<void>((done) => closed.close(() => done()))
    let stderr = ''
    const code = await runCli(['--api', `http://127.0.0.1:${port}`, 'list'], {
      stdout: () => {},
      stderr: (text) => {
        stderr += text
      },
      env: {},
    })
    expect(code).toBe(5)
    expect(stderr).toContain('cannot reach the API')
  })
})

describe('tickflow against a deployed API', () => {
  let server: Server
  let url: string
  let seen: { request: IncomingMessage; body: string }[]

  beforeAll(async () => {
    seen = []
    server = createServer((request, response) => {
      let body = ''
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      request.on('end', () => {
        seen.push({ request, body })
        const authorised = typeof request.headers.authorization === 'string'
        response.writeHead(authorised ? 200 : 401, { 'content-type': 'application/json' })
        response.end(
          authorised
            ? JSON.stringify({ items: [] })
            : JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'no credentials', details: {} } }),
        )
      })
    })
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prod`
  })

  afterAll(() => new Promise<void>((closed) => server.close(() => closed())))

  const call = (argv: string[]) => runCli(['--api', url, ...argv], { stdout: () => {}, stderr: () => {}, env: {} })

  it('sends a bearer token with --token, under the stage path', async () => {
    expect(await call(['--token', 'tok-123', 'list'])).toBe(0)
    const last = seen.at(-1)?.request
    expect(last?.headers.authorization).toBe('Bearer tok-123')
    expect(last?.url).toBe('/prod/workflows')
  })

  it('answers exit code 6 when the API refuses the credentials', async () => {
    expect(await call(['list'])).toBe(6)
  })

  it('signs with SigV4 for IAM auth, with the credentials of the AWS chain', async () => {
    const saved = { ...process.env }
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret-example' })
    delete process.env.AWS_PROFILE
    delete process.env.AWS_SESSION_TOKEN
    try {
      expect(await call(['--iam', '--region', 'eu-west-1', 'list', '--type', 'approval'])).toBe(0)
    } finally {
      process.env = saved
    }
    const { request } = seen.at(-1) as { request: IncomingMessage }
    const authorization = String(request.headers.authorization)
    const amzDate = String(request.headers['x-amz-date'])
    expect(authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    )
    // The signature is the one the request as received deserves.
    const signer = new SignatureV4({
      service: 'execute-api',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret-example' },
      sha256: NodeSha256,
    })
    const received = new URL(request.url ?? '/', url)
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? []
    const headers: Record<string, string> = {}
    for (const name of signedHeaders) headers[name] = String(request.headers[name])
    const expected = await signer.sign(
      {
        method: 'GET',
        protocol: 'http:',
        hostname: received.hostname,
        port: Number(received.port),
        path: received.pathname,
        query: Object.fromEntries(received.searchParams),
        headers,
      },
      {
        signingDate: new Date(
          `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
        ),
      },
    )
    expect(authorization).toBe(expected.headers.authorization)
  })
})

describe('the SigV4 hash', () => {
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

  it('is SHA-256, and HMAC-SHA256 with a secret (FIPS 180-2 and RFC 4231 vectors)', async () => {
    const hash = new NodeSha256()
    hash.update('abc')
    expect(hex(await hash.digest())).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    const hmac = new NodeSha256(new Uint8Array(20).fill(0x0b))
    hmac.update(new TextEncoder().encode('Hi There'))
    expect(hex(await hmac.digest())).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7')
  })
})
