import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../src/cli/program.js'

/**
 * `tickflow events` checks its options before any request, as the other commands do: the API's URL here answers
 * nothing, so an option that got through would end in exit code 5 (and `--follow` with a count that is not a number
 * would never stop).
 */
let url: string

beforeAll(async () => {
  const closed = createServer()
  await new Promise<void>((listening) => closed.listen(0, '127.0.0.1', () => listening()))
  url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
  await new Promise<void>((done) => closed.close(() => done()))
})

const tickflow = async (...argv: string[]) => {
  let stderr = ''
  const code = await runCli(['--api', url, ...argv], {
    stdout: () => {},
    stderr: (text) => {
      stderr += text
    },
    env: {},
  })
  return { code, stderr }
}

describe('tickflow events options', () => {
  it.each([
    ['--count', ['--follow', '--count', 'x']],
    ['--count', ['--follow', '--count', '-1']],
    ['--count', ['--follow', '--count', '2.5']],
    ['--after', ['--after', 'x']],
    ['--after', ['--follow', '--after', '1e3', '--count', '1']],
  ])('answer exit code 2 naming %s for a value that is not a whole number: %j', async (option, argv) => {
    const run = await tickflow('events', ...argv)
    expect(run.code).toBe(2)
    expect(run.stderr).toContain(`${option} must be a whole number`)
  })

  it('take whole numbers, and then ask the API', async () => {
    const run = await tickflow('events', '--follow', '--after', '12', '--count', '3')
    expect(run.code).toBe(5)
    expect(run.stderr).toContain('cannot reach the API')
  })
})
