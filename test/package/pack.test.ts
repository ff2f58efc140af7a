import { execFile } from 'node:child_process'
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, resolve, sep } from 'node:path'
import { promisify } from 'node:util'
import { transform } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dynamoEndpoint } from '../support/dynamodb.js'
import { CHILD_PROCESS_TIMEOUT_MS } from '../support/timeouts.js'

const run = promisify(execFile)
const repo = resolve('.')

/**
 * The package as a user gets it: `npm pack` (which builds dist/), installed into an empty project, imported with
 * plain node, the README's "Using the engine" example run as written against DynamoDB Local, the CLI through npx.
 *
 * `npm pack` runs in a copy of the repository (its node_modules linked): its build starts by deleting dist/, which
 * the test files running at the same time serve the dashboard from.
 */
let project: string
let staging: string
let packed: { filename: string; files: { path: string }[] }

/** What the copy leaves out: installed, built or generated, and the tests. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', '.cache', '.data', '.serverless', '.esbuild', 'artifacts'])

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'tickflow-user-'))
  staging = await mkdtemp(join(tmpdir(), 'tickflow-pack-'))
  await cp(repo, staging, {
    recursive: true,
    filter: (source) => {
      const path = relative(repo, source)
      return path === '' || (!NOT_COPIED.has(path.split(sep)[0] as string) && path !== 'test')
    },
  })
  await symlink(join(repo, 'node_modules'), join(staging, 'node_modules'), 'dir')
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', project], {
    cwd: staging,
    maxBuffer: 64 * 1024 * 1024,
  })
  // npm prints the prepack build's output before the JSON.
  packed = (JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as (typeof packed)[])[0] as typeof packed
  await writeFile(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'uses-tickflow', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`,
  )
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel', 'error', join(project, packed.filename)],
    { cwd: project, maxBuffer: 64 * 1024 * 1024 },
  )
}, 300_000)

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true })
  if (staging) await rm(staging, { recursive: true, force: true })
})

const node = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, args, { cwd: project, env: { ...process.env, ...env } })

/** The first TypeScript block of a README section, written into the empty project as `file`. */
const readmeExample = async (heading: string, file: string): Promise<string> => {
  const readme = await readFile(join(repo, 'README.md'), 'utf8')
  const example = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf(heading)))?.[1] as string
  await writeFile(join(project, file), example)
  return example
}

/** Type-checks a file of the empty project against the installed package, strictly, as a TypeScript user would. */
const typeChecks = (file: string, what: string): Promise<unknown> =>
  node([
    join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
    '--noEmit',
    '--strict',
    '--target',
    'es2022',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--lib',
    'es2023,dom',
    // A TypeScript user has Node's types; the empty project borrows this repository's.
    '--typeRoots',
    join(repo, 'node_modules', '@types'),
    '--types',
    'node',
    file,
  ]).catch((error: { stdout?: string }) => {
    throw new Error(`${what} does not type-check against the package:\n${error.stdout}`)
  })

describe('the npm package', () => {
  it('holds the build and nothing of the repository besides', () => {
    const paths = packed.files.map((file) => file.path)
    expect(paths).toContain('dist/index.js')
    expect(paths).toContain('dist/testing/index.js')
    expect(paths).toContain('dist/testing/index.d.ts')
    expect(paths).toContain('dist/index.d.ts')
    expect(paths).toContain('dist/cli/main.js')
    expect(paths).toContain('package.json')
    expect(paths).toContain('README.md')
    expect(
      paths.filter((path) => !path.startsWith('dist/') && path !== 'package.json' && path !== 'README.md'),
    ).toEqual([])
    expect(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([])
  })

  it('is importable with plain node (ESM), with its named exports', async () => {
    await writeFile(
      join(project, 'imports.mjs'),
      [
        "import { createEngine, defineWorkflow, NotReadyError, Engine, MemoryStore } from 'tickflow'",
        "import pkg from 'tickflow/package.json' with { type: 'json' }",
        'console.log(JSON.stringify({ createEngine: typeof createEngine, defineWorkflow: typeof defineWorkflow,',
        '  notReady: new NotReadyError(5).retryAfterSeconds, engine: typeof Engine, store: typeof MemoryStore, name: pkg.name }))',
      ].join('\n'),
    )
    const { stdout } = await node(['imports.mjs'])
    expect(JSON.parse(stdout)).toEqual({
      createEngine: 'function',
      defineWorkflow: 'function',
      notReady: 5,
      engine: 'function',
      store: 'function',
      name: 'tickflow',
    })
  })

  it(
    'runs the README example as written, against DynamoDB Local, and its types check',
    async () => {
      const example = await readmeExample('## Using the engine', 'example.ts')
      expect(example).toContain("from 'tickflow'")
      await typeChecks('example.ts', 'the README example')
      await writeFile(join(project, 'example.mjs'), (await transform(example, { loader: 'ts', format: 'esm' })).code)
      const { stdout } = await node(['example.mjs'], {
        AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint(),
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      })
      expect(stdout).toMatch(/^completed \{.*final: 'approved'/s)
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )

  it(
    "runs the README's test of the approval workflow from tickflow/testing: a day of workflow time, skipped",
    async () => {
      const example = await readmeExample('## Testing your workflows', 'approval.test.ts')
      expect(example).toContain("from 'tickflow/testing'")
      await typeChecks('approval.test.ts', "the README's test")
      await writeFile(
        join(project, 'approval.test.mjs'),
        (await transform(example, { loader: 'ts', format: 'esm' })).code,
      )
      // A day of workflow time passes on the harness's virtual clock: the run ends within this test's timeout (a real
      // day never would). How long it took is printed, not asserted: speed is the benchmarks' to measure.
      const { stdout } = await node(['--test', '--test-reporter=tap', 'approval.test.mjs'])
      expect(stdout).toMatch(/^# pass 2$/m)
      expect(stdout).toMatch(/^# fail 0$/m)
      const day = /ok 2 - a request nobody answers fails after a day[\s\S]*?duration_ms: ([\d.]+)/.exec(stdout)
      expect(day, 'the day-long test ran').not.toBeNull()
      console.info(
        `README test of the approval workflow from the tarball: 24 h of workflow time in ${Number(day?.[1]).toFixed(0)} ms`,
      )
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )

  it(
    'installs the tickflow command (npx tickflow)',
    async () => {
      const help = await run('npx', ['--no-install', 'tickflow', '--help'], { cwd: project })
      expect(help.stdout).toContain('Usage: tickflow')
      expect(help.stdout).toContain('Exit codes:')
      const unreachable = await run('npx', ['--no-install', 'tickflow', '--api', 'http://127.0.0.1:9', 'list'], {
        cwd: project,
      }).catch((error: { code: number; stderr: string }) => error)
      expect(unreachable).toMatchObject({ code: 5 })
      expect((unreachable as { stderr: string }).stderr).toContain('cannot reach the API')
      expect((unreachable as { stderr: string }).stderr).not.toMatch(/warning/i)
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )
})
