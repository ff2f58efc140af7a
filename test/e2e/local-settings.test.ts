import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAlive } from '../../src/local/data-lock.js'
import { httpClient, type NpmStart, npmStart, npmStartExit } from '../support/npm-start.js'

/** What `npm start` does with settings it cannot use, a port in use, and a data directory in use, as a user sees it. */
describe('npm start with a wrong setting', () => {
  it.each<[string, string[], Record<string, string>, RegExp]>([
    ['PORT', [], { PORT: 'abc' }, /PORT="abc": must be a whole number 0-65535/],
    ['PORT out of range', [], { PORT: '70000' }, /PORT="70000"/],
    ['--port', ['--port', '-1'], {}, /--port|Option '--port/],
    ['HOST', [], { HOST: 'not a host' }, /HOST="not a host": must be a host name or an IP address/],
    ['TICK_INTERVAL_SECONDS', [], { TICK_INTERVAL_SECONDS: 'abc' }, /TICK_INTERVAL_SECONDS="abc"/],
    ['TICK_INTERVAL_SECONDS of 0', [], { TICK_INTERVAL_SECONDS: '0' }, /TICK_INTERVAL_SECONDS="0"/],
    ['LOG_LEVEL', [], { LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud": must be debug, info, warn or error/],
    ['DYNAMODB_ENDPOINT', [], { DYNAMODB_ENDPOINT: 'localhost:8000' }, /DYNAMODB_ENDPOINT="localhost:8000"/],
    ['TABLE_NAME', [], { TABLE_NAME: 'x' }, /TABLE_NAME="x"/],
    ['TICKFLOW_IN_MEMORY', [], { TICKFLOW_IN_MEMORY: 'yes' }, /TICKFLOW_IN_MEMORY="yes": must be true or false/],
    ['an unknown option', ['--in-memroy'], {}, /--in-memroy/],
  ])('exits 2 naming %s before anything starts', async (_name, args, env, message) => {
    const { code, output } = await npmStartExit(args, env)

    expect(code).toBe(2)
    expect(output).toMatch(message)
    expect(output).toContain('usage: npm start')
    expect(output).not.toContain('DynamoDB Local on port')
  })

  it('names every wrong variable at once', async () => {
    const { code, output } = await npmStartExit(['--in-memory'], { PORT: 'x', LOG_LEVEL: 'loud' })

    expect(code).toBe(2)
    expect(output).toMatch(/PORT="x"[\s\S]*LOG_LEVEL="loud"/)
  })
})

describe('npm start on a port in use', () => {
  let blocker: Server
  let port: number

  beforeAll(async () => {
    blocker = createServer()
    await new Promise<void>((listening) => blocker.listen(0, '127.0.0.1', () => listening()))
    port = (blocker.address() as { port: number }).port
  })

  afterAll(() => new Promise<void>((closed) => blocker.close(() => closed())))

  it('fails before DynamoDB Local starts, with a hint', async () => {
    const { code, output } = await npmStartExit(['--in-memory'], { PORT: String(port) })

    expect(code).toBe(1)
    expect(output).toContain(`PORT ${port} on 127.0.0.1 is already in use`)
    expect(output).toContain('--port 0')
    expect(output).toContain(`lsof -i :${port}`)
    expect(output).not.toContain('DynamoDB Local on port')
  })
})

describe('npm start on a data directory', () => {
  let dataDir: string

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tickflow-lock-'))
  })

  afterAll(() => rm(dataDir, { recursive: true, force: true }))

  const lockFile = async () =>
    JSON.parse(await readFile(join(dataDir, 'tickflow.lock'), 'utf8')) as { pid: number; dynamodbPid: number }

  it('refuses a second start on a directory in use, and names the first', async () => {
    const first = await npmStart([], { TICKFLOW_DATA_DIR: dataDir })
    try {
      const lock = await lockFile()
      const second = await npmStartExit([], { TICKFLOW_DATA_DIR: dataDir })

      expect(second.code).toBe(1)
      expect(second.output).toContain(`the data directory ${dataDir} is in use by another tickflow (pid ${lock.pid}`)
      expect(second.output).toContain(first.url)
      expect(second.output).not.toContain('DynamoDB Local on port')
      // The first one is untouched.
      expect((await httpClient(first.url)('GET', '/workflows')).status).toBe(200)
    } finally {
      await first.interrupt()
    }
    // A clean stop frees the directory.
    await expect(readFile(join(dataDir, 'tickflow.lock'))).rejects.toMatchObject({ code: 'ENOENT' })
  }, 120_000)

  it('stops the DynamoDB Local a killed start left behind, then starts on the same data', async () => {
    const first = await npmStart([], { TICKFLOW_DATA_DIR: dataDir })
    let second: NpmStart | undefined
    try {
      const created = await httpClient(first.url)('POST', '/workflows', { workflowType: 'approval' })
      const lock = await lockFile()
      process.kill(lock.pid, 'SIGKILL')
      for (const deadline = Date.now() + 5_000; isAlive(lock.pid) && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(isAlive(lock.pid)).toBe(false)
      expect(isAlive(lock.dynamodbPid)).toBe(true)

      second = await npmStart([], { TICKFLOW_DATA_DIR: dataDir, LOG_LEVEL: 'warn' })
      expect(second.output()).toContain(`stopped an orphaned DynamoDB Local (pid ${lock.dynamodbPid})`)
      expect(isAlive(lock.dynamodbPid)).toBe(false)
      const found = await httpClient(second.url)('GET', `/workflows/${created.body.instanceId}`)
      expect(found.status).toBe(200)
    } finally {
      await second?.interrupt()
      first.kill()
    }
  }, 180_000)
})
