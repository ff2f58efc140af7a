import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { defineWorkflow, type WorkflowModule } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import type { IdGenerator } from '../../src/core/ports.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import type { NodeStatus } from '../../src/schemas/statuses.js'
import { createTestTable, FakeClock, fixedRandom, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { Crash, type CrashMode, causes, crashingClient, WAYS, type Way } from './support.js'

/**
 * A runner killed at every possible point of its work: after its k-th DynamoDB request, every further request
 * fails (the process is gone, its lease stays held). A healthy runner on the same table and clock then finishes
 * the instance once the lease has expired.
 */

const LEASE_MS = 60_000
const GRACE_MS = 5_000
const POLL_RETRY_SECONDS = 10
const TYPE = 'crash-mix'
const NODES = ['prepare', 'poll', 'left', 'right', 'join', 'finish'] as const
type NodeId = (typeof NODES)[number]
type Phase = 'crashed' | 'healthy'

/** Calls of one scenario, per node, step and phase; `polls` is the outside world the check looks at. */
class ScenarioLog {
  phase: Phase = 'crashed'
  polls = 0
  readonly calls: { node: NodeId; step: 'run' | 'check'; phase: Phase }[] = []
  count(node: NodeId, step: 'run' | 'check', phase?: Phase): number {
    return this.calls.filter((call) => call.node === node && call.step === step && (!phase || call.phase === phase))
      .length
  }
}

const workflowFor = (log: ScenarioLog): WorkflowModule => {
  const run = (node: NodeId) => () => {
    log.calls.push({ node, step: 'run', phase: log.phase })
  }
  return defineWorkflow({
    type: TYPE,
    nodes: {
      prepare: { next: ['poll', 'left', 'right'], run: run('prepare') },
      poll: {
        next: ['join'],
        run: run('poll'),
        // The outside world is ready on the second look, whoever looks.
        check: (ctx) => {
          log.calls.push({ node: 'poll', step: 'check', phase: log.phase })
          log.polls += 1
          if (log.polls < 2) throw new NotReadyError(POLL_RETRY_SECONDS)
          ctx.set('ready_on_poll', log.polls)
        },
      },
      left: { next: ['join'], run: run('left') },
      right: { next: ['join'], run: run('right') },
      join: { next: ['finish'], run: run('join') },
      finish: { run: run('finish') },
    },
  })
}

let table: TestTable
let verifier: DynamoDbStore
const clients: DynamoDBClient[] = []

beforeAll(async () => {
  table = await createTestTable('reliability-crash')
  verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

const ids = (prefix: string): IdGenerator => {
  let counter = 0
  return { newInstanceId: () => `${prefix}-i${++counter}`, newLeaseOwner: () => `${prefix}-o${++counter}` }
}

const newEngine = (client: DynamoDBClient, clock: FakeClock, prefix: string, log: ScenarioLog): Engine => {
  const engine = new Engine({
    store: new DynamoDbStore({ tableName: table.tableName, client }),
    clock,
    ids: ids(prefix),
    random: fixedRandom(0),
    defaultLeaseMs: LEASE_MS,
    leaseGraceMs: GRACE_MS,
  })
  engine.register(workflowFor(log))
  return engine
}

/** What the crashed runner was doing: create (with its explicit pass), then a due pass once the poll is due. */
const runnerScript = async (engine: Engine, clock: FakeClock, instanceId: string): Promise<void> => {
  const created = await engine.create({ workflowType: TYPE, id: instanceId, context: { order: instanceId } })
  expect(created.status).toBe('running')
  clock.advanceSeconds(POLL_RETRY_SECONDS)
  const pass = await engine.runWorkflow(instanceId, { mode: 'due' })
  expect(pass.status).toBe('completed')
}

interface ScenarioResult {
  k: number
  mode: CrashMode
  crashed: boolean
  existedAfterCrash: boolean
  statusAtCrash: Partial<Record<NodeId, NodeStatus>>
  finalStatus: string
  healthyPasses: number
  runs: Record<NodeId, { crashed: number; healthy: number }>
  checks: { crashed: number; healthy: number }
  problems: string[]
}

const runScenario = async (k: number, mode: CrashMode, way: Way): Promise<ScenarioResult> => {
  const log = new ScenarioLog()
  const clock = new FakeClock()
  const instanceId = `crash-${way === 'direct' ? 'd' : 's'}-${mode}-${k}`
  const { client } = crashingClient(k, mode, { way })
  clients.push(client)
  const problems: string[] = []
  // The instance keeps the invariant after every step (README, "Nothing is stranded").
  const checkInvariant = async (step: string): Promise<void> => {
    for (const violation of await invariantViolations(verifier, clock.nowMs(), {
      instanceIds: [instanceId],
      crashes: true,
    })) {
      problems.push(`invariant ${step}: ${violation.kind}`)
    }
  }

  // 1. The runner dies somewhere in its work.
  let crashError: unknown
  try {
    await runnerScript(
      newEngine(client, clock, `dead${k}${mode}${way === 'direct' ? 'd' : 's'}`, log),
      clock,
      instanceId,
    )
  } catch (error) {
    crashError = error
  }
  const crashed = crashError !== undefined
  if (crashed && !causes(crashError).some((cause) => cause instanceof Crash)) {
    problems.push(`the runner failed with something else than its crash: ${String(crashError)}`)
  }

  // 2. What it left behind, as the table holds it right after the crash.
  const atCrash = await verifier.getInstance(instanceId)
  const statusAtCrash: Partial<Record<NodeId, NodeStatus>> = {}
  for (const node of NODES) {
    const status = atCrash?.nodes[node]?.status
    if (status) statusAtCrash[node] = status
  }
  await checkInvariant('at the crash')

  // 3. The lease runs out; a healthy runner (the client retrying its create, then the tick's due passes and
  //    explicit runs) takes over on the same table and clock.
  log.phase = 'healthy'
  clock.advanceMs(LEASE_MS + GRACE_MS + 1_000)
  const healthy = newEngine(table.client, clock, `live${k}${mode}${way === 'direct' ? 'd' : 's'}`, log)
  const again = await healthy.create({ workflowType: TYPE, id: instanceId, context: { order: instanceId } })
  await checkInvariant('after the retried create')
  if (again.created === (atCrash !== undefined)) {
    problems.push(`the retried create answered created=${again.created} for an instance that existed: ${!!atCrash}`)
  }
  let healthyPasses = 0
  for (let round = 0; round < 12; round++) {
    const record = await verifier.getInstance(instanceId)
    if (!record || record.status === 'completed') break
    const now = clock.nowMs()
    if (record.leaseOwner !== undefined && (record.leaseUntilMs ?? 0) >= now) {
      clock.advanceMs((record.leaseUntilMs ?? now) - now + 1)
    } else if (record.dueAtMs !== undefined && record.dueAtMs > now) {
      clock.advanceMs(record.dueAtMs - now)
    }
    healthyPasses += 1
    await healthy.runWorkflow(instanceId, { mode: round % 2 === 0 ? 'due' : 'explicit' })
    await checkInvariant(`after healthy pass ${healthyPasses}`)
  }
  const final = await verifier.getInstance(instanceId)
  const finalStatus = final?.status ?? 'missing'
  if (finalStatus !== 'completed') problems.push(`instance ended ${finalStatus}`)
  if (final?.leaseOwner !== undefined) problems.push('the lease is still held at the end')

  // 4. Nothing durable was done twice; what the dead runner was doing was done again at most once.
  const runs = {} as ScenarioResult['runs']
  for (const node of NODES) {
    const crashedRuns = log.count(node, 'run', 'crashed')
    const healthyRuns = log.count(node, 'run', 'healthy')
    runs[node] = { crashed: crashedRuns, healthy: healthyRuns }
    const atCrashStatus = statusAtCrash[node]
    if (crashedRuns + healthyRuns < 1) problems.push(`${node} never ran`)
    if (crashedRuns + healthyRuns > 2) problems.push(`${node} ran ${crashedRuns + healthyRuns} times`)
    if (healthyRuns > 1) problems.push(`${node} ran ${healthyRuns} times after the crash`)
    if (crashedRuns > 1) problems.push(`${node} ran ${crashedRuns} times in the dead runner`)
    if (atCrashStatus === 'completed' && (healthyRuns > 0 || log.count(node, 'check', 'healthy') > 0)) {
      problems.push(`${node} was completed at the crash but was called again`)
    }
    if (atCrashStatus === 'pending' && healthyRuns > 0) problems.push(`${node} was pending (run durable) but ran again`)
    // A repeated run is one the dead runner was executing: its outcome never became durable.
    if (crashedRuns > 0 && healthyRuns > 0 && atCrashStatus !== undefined && atCrashStatus !== 'running') {
      problems.push(`${node} ran again although it was ${atCrashStatus} at the crash`)
    }
  }
  const checks = { crashed: log.count('poll', 'check', 'crashed'), healthy: log.count('poll', 'check', 'healthy') }
  // The check is polled until ready (the second look); only a successful look whose outcome died with the runner
  // is repeated, once.
  if (checks.crashed + checks.healthy > 3) problems.push(`poll was checked ${checks.crashed + checks.healthy} times`)
  if (statusAtCrash.poll === 'completed' && checks.healthy > 0) problems.push('poll was checked after it completed')
  if (final?.status === 'completed') {
    const ready = final.nodes.poll?.output.ready_on_poll
    if (ready !== 2 && ready !== 3) problems.push(`poll completed on look ${String(ready)}`)
  }

  return {
    k,
    mode,
    crashed,
    existedAfterCrash: atCrash !== undefined,
    statusAtCrash,
    finalStatus,
    healthyPasses,
    runs,
    checks,
    problems,
  }
}

// Both ways a store sends its writes: direct, and through the SDK (a client with middleware of its own).
describe.each(WAYS)('a runner killed at any point of its work, its writes sent %s', (way) => {
  it('leaves nothing that a healthy runner cannot finish, and no completed node is repeated', async () => {
    // A clean run first: how many requests does the whole work take?
    const cleanLog = new ScenarioLog()
    const clean = crashingClient(Number.POSITIVE_INFINITY, 'before', { way })
    clients.push(clean.client)
    const cleanClock = new FakeClock()
    await runnerScript(
      newEngine(clean.client, cleanClock, `clean-${way}`, cleanLog),
      cleanClock,
      `crash-clean-${way === 'direct' ? 'd' : 's'}`,
    )
    const requests = clean.state.calls
    // The writes went the way the scenario says.
    if (way === 'direct') expect(clean.state.directWrites).toBeGreaterThanOrEqual(6)
    else expect(clean.state.directWrites).toBe(0)
    for (const node of NODES) expect(cleanLog.count(node, 'run')).toBe(1)
    expect(cleanLog.count('poll', 'check')).toBe(2)
    // create, definition, 4 writes and the release of the first pass; the acquisition of the second (which records
    // its poll's attempt), a write and its release
    expect(requests).toBeGreaterThanOrEqual(9)

    const results: ScenarioResult[] = []
    for (const mode of ['before', 'after'] as const) {
      // k = 0: the runner dies before its first request, so nothing of the instance exists yet.
      for (let k = mode === 'before' ? 0 : 1; k <= requests; k++) results.push(await runScenario(k, mode, way))
    }

    const summary = results.map((result) => {
      const reran = NODES.filter((node) => result.runs[node].crashed > 0 && result.runs[node].healthy > 0)
      const completedAtCrash = NODES.filter((node) => result.statusAtCrash[node] === 'completed')
      return `${result.mode} k=${String(result.k).padStart(2)}: crashed=${result.crashed} existed=${result.existedAfterCrash} completed@crash=[${completedAtCrash.join(',')}] reran=[${reran.join(',')}] checks=${result.checks.crashed}+${result.checks.healthy} passes=${result.healthyPasses} -> ${result.finalStatus}${result.problems.length ? ` PROBLEMS: ${result.problems.join('; ')}` : ''}`
    })
    console.info(`clean run: ${requests} requests\n${summary.join('\n')}`)

    // Every k below the last request really killed the runner mid-work (the last one in `after` mode too).
    for (const result of results) {
      expect(result.crashed, `${result.mode} k=${result.k}`).toBe(result.mode === 'after' || result.k < requests)
    }
    expect(
      results.filter((result) => result.problems.length > 0).map((result) => summary[results.indexOf(result)]),
    ).toEqual([])
    // The crash points covered every state: before the instance existed, mid-pass with nodes in flight, done.
    expect(results.some((result) => !result.existedAfterCrash)).toBe(true)
    expect(results.some((result) => NODES.some((node) => result.runs[node].healthy && result.runs[node].crashed))).toBe(
      true,
    )
  }, 60_000)
})
