import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { defineWorkflow } from '../../src/core/builder.js'
import type { RunQueue } from '../../src/core/dispatch-ports.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { runTick } from '../../src/core/tick.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { isTerminalInstanceStatus } from '../../src/schemas/statuses.js'
import { createTestTable, FakeClock, fixedRandom, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { crashingClient } from './support.js'

/**
 * A worker that never returns (a hang, or Lambda stopping it at its timeout), driven only by the tick, the run-queue
 * consumer and lease expiry. Every delivery is one Lambda invocation: it is stopped (its client killed) once its
 * worker hangs, and the clock moves past its lease end before the next tick. README, "Every attempt counts": an
 * attempt whose lease ran out without an outcome is a counted failure, against `fail_max_count` and
 * `max_wait_time_ts` like any error.
 */

const LEASE_MS = 60_000
const GRACE_MS = 5_000
const ROUNDS = 12
const FAIL_MAX_COUNT = 3
const MAX_WAIT_SECONDS = 200
/** What the engine would write about an attempt that ended with its lease (matched loosely). */
const NO_OUTCOME = /without (an |its )?outcome|no outcome/i

let table: TestTable
let verifier: DynamoDbStore
const clients: DynamoDBClient[] = []

beforeAll(async () => {
  table = await createTestTable('hung-worker')
  verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

/** Lets pending promise callbacks and I/O callbacks run (the invocation goes as far as it can before it hangs). */
const settle = (ms = 25): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Drive {
  /** Clock time of every call of the hanging worker. */
  calls: number[]
  /** `ctx.signal` at each call: absent (not offered yet), live, or already aborted. */
  signals: ('absent' | 'live' | 'aborted')[]
  rounds: number
  problems: string[]
}

/** Creates one instance of `type` (not run) and drives it with ticks and run-queue invocations only. */
const drive = async (
  type: string,
  limits: { failMaxCount?: number; maxWaitTimeSeconds?: number },
  instanceId: string,
): Promise<Drive> => {
  const clock = new FakeClock()
  const result: Drive = { calls: [], signals: [], rounds: 0, problems: [] }
  let called: () => void = () => {}
  const workflow = defineWorkflow({
    type,
    nodes: {
      hang: {
        ...limits,
        run: (ctx) => {
          result.calls.push(clock.nowMs())
          // Tolerates an engine without `ctx.signal`; one that has it must not hand over an aborted signal.
          const signal = (ctx as { signal?: AbortSignal }).signal
          result.signals.push(signal === undefined ? 'absent' : signal.aborted ? 'aborted' : 'live')
          called()
          return new Promise<void>(() => {})
        },
      },
    },
  })
  const engineOn = (client: DynamoDBClient, owner: string) => {
    let counter = 0
    const engine = new Engine({
      store: new DynamoDbStore({ tableName: table.tableName, client }),
      clock,
      ids: { newInstanceId: () => instanceId, newLeaseOwner: () => `${owner}-${++counter}` },
      random: fixedRandom(0),
      defaultLeaseMs: LEASE_MS,
      leaseGraceMs: GRACE_MS,
    })
    engine.register(workflow)
    return engine
  }
  const checkInvariant = async (step: string) => {
    for (const violation of await invariantViolations(verifier, clock.nowMs(), {
      instanceIds: [instanceId],
      crashes: true,
    })) {
      result.problems.push(`invariant ${step}: ${violation.message}`)
    }
  }

  await engineOn(table.client, 'creator').create({ workflowType: type, id: instanceId, run: false })
  await checkInvariant('after the create')
  const runQueue = new LocalQueue({ name: 'run', now: () => clock.nowMs() })
  // The tick reads the whole table's due index; the other test's instance lives on another clock.
  const ownRuns: RunQueue = {
    sendRuns: (requests) => runQueue.sendRuns(requests.filter((request) => request.instanceId === instanceId)),
  }
  const deadLetters: string[] = []
  for (; result.rounds < ROUNDS; result.rounds++) {
    const record = await verifier.getInstance(instanceId)
    if (!record || isTerminalInstanceStatus(record.status)) break
    // Past the lease end of the last (stopped) invocation, then up to the instance's due time.
    const now = clock.nowMs()
    if (record.leaseOwner !== undefined && (record.leaseUntilMs ?? 0) >= now) {
      clock.advanceMs((record.leaseUntilMs ?? now) - now + 1)
    }
    if (record.dueAtMs !== undefined && record.dueAtMs > clock.nowMs()) clock.advanceMs(record.dueAtMs - clock.nowMs())
    await runTick({ store: verifier, queue: ownRuns, clock, logger: silentLogger }, { remainingTimeMs: 60_000 })
    // One invocation of the run-queue consumer, on a client of its own, stopped once its worker hangs.
    const { client, state } = crashingClient(Number.POSITIVE_INFINITY, 'before')
    clients.push(client)
    const handler = createRunHandler({
      engine: engineOn(client, `invocation${result.rounds}`),
      logger: silentLogger,
      maxReceiveCount: 5,
      deadLetters: { send: async (letter) => void deadLetters.push(letter.reason) },
    })
    const hung = new Promise<'hung'>((resolve) => {
      called = () => resolve('hung')
    })
    const delivery = runQueue.deliver(handler).then(() => 'returned' as const)
    if ((await Promise.race([delivery, hung])) === 'hung') {
      await settle()
      state.kill()
    }
    await settle(0)
    await checkInvariant(`after round ${result.rounds + 1}`)
  }
  for (const reason of deadLetters) result.problems.push(`a run request was dead-lettered: ${reason}`)
  return result
}

describe('a worker that never returns', () => {
  it(`with fail_max_count ${FAIL_MAX_COUNT} runs at most ${FAIL_MAX_COUNT} times, then fails its node and instance with the reason`, async () => {
    const id = 'hung-fail-max'
    const { calls, signals, rounds, problems } = await drive('hung-fail-max', { failMaxCount: FAIL_MAX_COUNT }, id)
    const final = await verifier.getInstance(id)
    const node = final?.nodes.hang
    // The last error lives in the node record (`system.last_error` in the node's context).
    const system = { last_error: node?.lastError }
    console.info(
      `hung worker, fail_max_count ${FAIL_MAX_COUNT}: ${calls.length} calls in ${rounds} rounds; ` +
        `instance ${final?.status}, node ${node?.status ?? 'uncreated'}, fail_count ${node?.failCount ?? 0}, ` +
        `last_error ${JSON.stringify(system?.last_error ?? null)}; ctx.signal ${[...new Set(signals)].join('/')}; ` +
        `${problems.length} invariant problems`,
    )
    expect(signals).not.toContain('aborted')
    expect({
      calls: calls.length,
      instance: final?.status,
      node: node?.status,
      failCount: node?.failCount,
      lastErrorSaysNoOutcome: NO_OUTCOME.test(system?.last_error ?? ''),
      problems,
    }).toEqual({
      calls: FAIL_MAX_COUNT,
      instance: 'failed',
      node: 'failed',
      failCount: FAIL_MAX_COUNT,
      lastErrorSaysNoOutcome: true,
      problems: [],
    })
  }, 30_000)

  it(`with max_wait_time_ts ${MAX_WAIT_SECONDS} fails at the deadline without being called at or after it`, async () => {
    const id = 'hung-max-wait'
    const { calls, rounds, problems } = await drive('hung-max-wait', { maxWaitTimeSeconds: MAX_WAIT_SECONDS }, id)
    const final = await verifier.getInstance(id)
    const node = final?.nodes.hang
    // The node was created with its first call; without a node record, the first call is the best estimate.
    const createdAtMs = node?.createdAtMs ?? calls[0] ?? 0
    const deadlineMs = createdAtMs + MAX_WAIT_SECONDS * 1000
    const late = calls.filter((atMs) => atMs >= deadlineMs).map((atMs) => `+${(atMs - createdAtMs) / 1000}s`)
    console.info(
      `hung worker, max_wait_time_ts ${MAX_WAIT_SECONDS}: ${calls.length} calls in ${rounds} rounds at ` +
        `[${calls.map((atMs) => `+${(atMs - createdAtMs) / 1000}s`).join(', ')}] (deadline +${MAX_WAIT_SECONDS}s); ` +
        `instance ${final?.status}, node ${node?.status ?? 'uncreated'}, reason ` +
        `${JSON.stringify(node?.output.reason ?? null)}; ${problems.length} invariant problems`,
    )
    expect({
      callsAtOrAfterDeadline: late,
      instance: final?.status,
      node: node?.status,
      reasonGiven: typeof node?.output.reason === 'string',
      problems,
    }).toEqual({ callsAtOrAfterDeadline: [], instance: 'failed', node: 'failed', reasonGiven: true, problems: [] })
    expect(calls.length).toBeGreaterThan(0)
  }, 30_000)
})
