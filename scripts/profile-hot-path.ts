/**
 * `npm run profile`: where a node step spends the client's CPU. Runs the benchmark's workload (5-node linear
 * synchronous workflows created with run, 16 at a time) under the V8 profiler, in process, and prints the functions
 * with the most self time: tickflow's own first (its share of the whole), then everything else. A measurement to
 * look at, not a test: the machine's load changes the figures, the ranking much less.
 *
 *   PROFILE_INSTANCES (default 400), PROFILE_CONCURRENCY (default 16)
 */
import '../src/local/quiet-sdk.js'
import { Session } from 'node:inspector/promises'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { linearFive } from './bench-hot-path.js'
import { num, pool } from './bench-support.js'
import { withDynamoDb } from './capacity-meter.js'

const INSTANCES = Number(process.env.PROFILE_INSTANCES ?? 400)
const CONCURRENCY = Number(process.env.PROFILE_CONCURRENCY ?? 16)
const TOP = Number(process.env.PROFILE_TOP ?? 12)

const step = (n: number) => (ctx: NodeContext) => ctx.set('step', n)
const linear5 = linearFive('profile-linear5', step)

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
}

/** Where a sample's function lives: tickflow, the AWS SDK, other packages, Node itself, the collector, idle. */
const areaOf = (file: string, functionName: string): string => {
  if (/^(src|functions)\//.test(file)) return 'tickflow (src/)'
  if (/^@(smithy|aws-sdk|aws-crypto)\//.test(file)) return 'AWS SDK (@smithy, @aws-sdk)'
  if (file.startsWith('node:') || file === '') {
    if (functionName === '(idle)') return 'idle'
    if (functionName === '(garbage collector)') return 'garbage collector'
    return 'Node.js and V8 (I/O, microtasks, program)'
  }
  return 'other packages'
}

/** Self time by function (`name (file:line)`), as a share of all samples; tickflow's own code apart. */
const selfTimes = (nodes: readonly ProfileNode[], root: string) => {
  const byFunction = new Map<string, number>()
  const byArea = new Map<string, number>()
  const byFile = new Map<string, number>()
  let total = 0
  for (const node of nodes) {
    const hits = node.hitCount ?? 0
    if (!hits) continue
    total += hits
    const { functionName, url, lineNumber, columnNumber } = node.callFrame
    const file = url.replace(/^.*node_modules\//, '').replace(`file://${root}/`, '')
    // tsx hands V8 one line per module: the column tells anonymous functions of a file apart.
    const at = lineNumber > 0 ? `${lineNumber + 1}` : `col ${columnNumber + 1}`
    const key = `${functionName || '(anonymous)'} (${file || 'native'}${functionName ? '' : `:${at}`})`
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits)
    if (/^(src|functions)\//.test(file)) byFile.set(file, (byFile.get(file) ?? 0) + hits)
    const area = areaOf(file, functionName)
    byArea.set(area, (byArea.get(area) ?? 0) + hits)
  }
  const ranked = [...byFunction].sort((a, b) => b[1] - a[1])
  const own = ranked.filter(([key]) => /\((src|functions)\//.test(key))
  return {
    total,
    ranked,
    own,
    areas: [...byArea].sort((a, b) => b[1] - a[1]),
    files: [...byFile].sort((a, b) => b[1] - a[1]),
  }
}

await withDynamoDb(async (config) => {
  const tableName = `profile-${Date.now()}`
  const engines = Array.from({ length: CONCURRENCY }, () => {
    const client = new DynamoDBClient(config)
    const engine = new Engine({
      store: new DynamoDbStore({ tableName, client }),
      clock: systemClock,
      ids: createIdGenerator(),
      random: mathRandom,
    })
    engine.register(linear5)
    return { client, engine }
  })
  await ensureTable((engines[0] as (typeof engines)[number]).client, tableName)
  const run = (count: number) =>
    pool(count, CONCURRENCY, async (i, worker) => {
      const result = await (engines[worker] as (typeof engines)[number]).engine.create({
        workflowType: 'profile-linear5',
        context: { orderId: `A-${i}`, amount: 12.5 },
      })
      if (result.status !== 'completed') throw new Error(`instance ended ${result.status}`)
    })
  await run(CONCURRENCY * 5) // warm-up: the JIT, the connections, the definition snapshot

  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  await session.post('Profiler.start')
  const cpu = process.cpuUsage()
  await run(INSTANCES)
  const used = process.cpuUsage(cpu)
  const { profile } = (await session.post('Profiler.stop')) as { profile: { nodes: ProfileNode[] } }
  session.disconnect()
  for (const { client } of engines) client.destroy()

  const { total, ranked, own, areas, files } = selfTimes(profile.nodes, process.cwd())
  const share = (hits: number) => `${num((100 * hits) / total, 1)} %`
  const ownTotal = own.reduce((sum, [, hits]) => sum + hits, 0)
  console.log(`## Client CPU of a node step (${num(INSTANCES)} × 5-node linear, ${CONCURRENCY} at a time)\n`)
  console.log(`CPU per node step: ${num((used.user + used.system) / 1000 / (INSTANCES * 5), 3)} ms (user + system)`)
  console.log(`tickflow's own code (src/, functions/): ${share(ownTotal)} of the samples\n`)
  console.log('| self time | where |\n| --- | --- |')
  for (const [area, hits] of areas) console.log(`| ${share(hits)} | ${area} |`)
  console.log('\n| self time | tickflow file |\n| --- | --- |')
  for (const [file, hits] of files.slice(0, TOP)) console.log(`| ${share(hits)} | ${file} |`)
  console.log('\n| self time | tickflow function |\n| --- | --- |')
  for (const [key, hits] of own.slice(0, TOP)) console.log(`| ${share(hits)} | ${key} |`)
  console.log('\n| self time | any function |\n| --- | --- |')
  for (const [key, hits] of ranked.slice(0, TOP)) console.log(`| ${share(hits)} | ${key} |`)
})
