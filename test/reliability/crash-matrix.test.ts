import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { defineWorkflow, type WorkflowModule } from '../../src/core/builder.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import type { RunQueue } from '../../src/core/dispatch-ports.js'
import { Engine } from '../../src/core/engine.js'
import type { NodeContext } from '../../src/core/node-context.js'
import { silentLogger } from '../../src/core/ports.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { runTick } from '../../src/core/tick.js'
import { FailedWithFailedError, NotReadyError } from '../../src/core/worker-signals.js'
import { createRunHandler } from '../../src/handlers/run-handler.js'
import { isTerminalInstanceStatus, isTerminalNodeStatus, type StoredNodeStatus } from '../../src/schemas/statuses.js'
import { createTestTable, FakeClock, fixedRandom, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { Crash, type CrashMode, type CrashState, causes, crashingClient } from './support.js'

/**
 * The crash matrix: a runner killed at every DynamoDB request of every operation, and (modes `hang`, `hang-twice`)
 * at every worker call of it by a worker that never returns. After the crash nothing but the tick and the run-queue
 * consumer work on the table, on a clock moved past lease ends and due times. Checked for every (operation, point,
 * mode):
 * - the invariant (every non-terminal instance due, leased or parked) after every step;
 * - the instance ends terminal, or waiting with a due time, or parked with a reason;
 * - no node that was completed at the crash is called again, no `run` that succeeded is repeated;
 * - a node whose worker was called by the dead runner without its outcome being stored (interrupted) shows that
 *   attempt as a counted failure: `fail_count` one higher per interruption, and `system.last_error` saying that the
 *   attempt ended without an outcome (README, "Every attempt counts");
 * - a node its condition skips (`audit`, in every scenario) is never called, whatever crashed when;
 * - an instance past its timeout (the `-timed` type) ends `timed_out` with no wake-up left (the invariant), and
 *   restarts.
 */

/** `hang-twice`: as `hang`, and the first call of the same node after the crash hangs too (its invocation is stopped). */
type Mode = CrashMode | 'hang' | 'hang-twice'
type Phase = 'setup' | 'dead' | 'recovery'
type Step = 'run' | 'check'

const TYPE = 'crash-matrix'
const LEASE_MS = 60_000
const GRACE_MS = 5_000
const APPROVAL_RETRY_SECONDS = 3_600
const RECOVERY_ROUNDS = 8
const PARALLEL_SCENARIOS = 4
const TIMED_TYPE = `${TYPE}-timed`
/** The timeout of TIMED_TYPE: a second passes between the setup and the operation, so the operation finds it over. */
const TIMED_SECONDS = 1
const NODES = ['start', 'approve', 'flaky', 'side', 'audit', 'join'] as const
type NodeId = (typeof NODES)[number]
/** The graph of the workflow below, for telling a dead end from a wait. */
const PREDECESSORS: Record<NodeId, readonly NodeId[]> = {
  start: [],
  approve: ['start'],
  flaky: ['start'],
  side: ['start'],
  audit: ['start'],
  join: ['approve', 'flaky', 'side', 'audit'],
}
/** How `flaky` behaves on its first call: succeeds, throws a plain error (retried), or fails the instance. */
type Flaky = 'ok' | 'error' | 'fatal'
/** What the engine would write about an attempt whose runner died (matched loosely: the wording is the engine's). */
const NO_OUTCOME = /without (an |its )?outcome|no outcome/i

interface Call {
  node: NodeId
  step: Step
  phase: Phase
  token: string
  /** How the worker ended: `hung` never returns. */
  result: 'ok' | 'error' | 'not-ready' | 'fatal' | 'hung'
}

/** The worker calls of one scenario; `hangAt` makes the n-th call of the dead runner hang and kill the runner. */
class ScenarioLog {
  phase: Phase = 'setup'
  readonly calls: Call[] = []
  hangAt = 0
  runner: CrashState | undefined
  /** After the crash, the next call of this node hangs as well and stops its invocation. */
  hangAgain: NodeId | undefined
  invocation: CrashState | undefined
  /** The token `approve` was last given, when the instance asks for callbacks (context `callback: true`). */
  callbackToken: string | undefined
  count(filter: Partial<Pick<Call, 'node' | 'step' | 'phase' | 'result'>>): number {
    return this.calls.filter((call) =>
      Object.entries(filter).every(([key, value]) => call[key as keyof Call] === value),
    ).length
  }
}

const workflowFor = (log: ScenarioLog, type = TYPE, timeoutSeconds?: number): WorkflowModule => {
  const worker =
    (node: NodeId, step: Step, body: (ctx: NodeContext) => Call['result']) =>
    (ctx: NodeContext): Promise<void> | undefined => {
      const token = `${log.phase}:${node}.${step}#${log.calls.length + 1}`
      // Stored with every outcome, success or error: tells which call's outcome the table holds.
      ctx.set('token', token)
      // Instances created with `big` store each output in an item of its own (over 1 KB; README, "Table layout").
      if (ctx.workflowContext.big === true) ctx.set('pad', 'p'.repeat(1500))
      if (log.phase === 'recovery' && log.hangAgain === node) {
        log.hangAgain = undefined
        log.calls.push({ node, step, phase: log.phase, token, result: 'hung' })
        log.invocation?.kill()
        return new Promise<void>(() => {})
      }
      const deadCalls = log.count({ phase: 'dead' })
      if (log.phase === 'dead' && log.hangAt > 0 && deadCalls + 1 === log.hangAt) {
        log.calls.push({ node, step, phase: log.phase, token, result: 'hung' })
        // The worker never returns; its Lambda is stopped at the timeout, with everything else in it.
        log.runner?.kill()
        return new Promise<void>(() => {})
      }
      let result: Call['result'] = 'ok'
      try {
        result = body(ctx)
      } finally {
        log.calls.push({ node, step, phase: log.phase, token, result })
      }
      if (result === 'error') throw new Error('flaky: the first call fails')
      if (result === 'fatal') throw new FailedWithFailedError('flaky: the first call fails for good')
      if (result === 'not-ready') throw new NotReadyError(APPROVAL_RETRY_SECONDS)
      return undefined
    }
  return defineWorkflow({
    type,
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
    nodes: {
      start: { next: ['approve', 'flaky', 'side', 'audit'], run: worker('start', 'run', () => 'ok') },
      // Approval-like: waits for an event `{ok: true}` — or, with `callback: true`, asks for a callback and then
      // waits for its completion.
      approve: {
        next: ['join'],
        run: async (ctx) => {
          if (ctx.workflowContext.callback === true) {
            log.callbackToken = (await ctx.callback({ timeoutSeconds: APPROVAL_RETRY_SECONDS })).token
          }
          return worker('approve', 'run', () => 'ok')(ctx)
        },
        check: worker('approve', 'check', (ctx) =>
          (ctx.event?.content as { ok?: unknown } | null | undefined)?.ok === true ||
          ctx.get('callback_output') !== undefined
            ? 'ok'
            : 'not-ready',
        ),
      },
      flaky: {
        next: ['join'],
        failMaxCount: 0,
        run: worker('flaky', 'run', (ctx) => {
          const first = log.count({ node: 'flaky', step: 'run' }) === 0
          const behaviour = (ctx.workflowContext.flaky ?? 'ok') as Flaky
          return first && behaviour !== 'ok' ? behaviour : 'ok'
        }),
      },
      side: { next: ['join'], run: worker('side', 'run', () => 'ok') },
      // Skipped by its condition in every scenario: the skip travels in writes the operation makes anyway.
      audit: { next: ['join'], when: '$input.audit = true', run: worker('audit', 'run', () => 'ok') },
      join: { run: worker('join', 'run', () => 'ok') },
    },
  })
}

type Setup =
  | 'none'
  | 'init'
  | 'waiting'
  | 'waiting-large'
  | 'waiting-callback'
  | 'retrying'
  | 'failed'
  | 'waiting-timed'
  | 'timed-out'

interface Operation {
  name: string
  setup: Setup
  act(engine: Engine, id: string, log: ScenarioLog): Promise<unknown>
}

const EVENT_TS = 1_767_268_800
const CALLBACK_SECRET = 'the-crash-matrix-callback-secret-0123456789'

const OPERATIONS: readonly Operation[] = [
  {
    name: 'create+run',
    setup: 'none',
    act: (engine, id) => engine.create({ workflowType: TYPE, id, context: { flaky: 'ok' } }),
  },
  {
    name: 'create',
    setup: 'none',
    act: (engine, id) => engine.create({ workflowType: TYPE, id, context: { flaky: 'ok' }, run: false }),
  },
  { name: 'runWorkflow', setup: 'init', act: (engine, id) => engine.runWorkflow(id) },
  {
    name: 'restartNode',
    setup: 'retrying',
    act: (engine, id) => engine.restartNode({ instanceId: id, nodeId: 'side' }),
  },
  {
    name: 'restartNode+run',
    setup: 'retrying',
    act: (engine, id) => engine.restartNode({ instanceId: id, nodeId: 'flaky', run: true }),
  },
  {
    name: 'restartNode+force',
    setup: 'failed',
    act: (engine, id) => engine.restartNode({ instanceId: id, nodeId: 'start', force: true }),
  },
  {
    name: 'restartNode+force+run',
    setup: 'failed',
    act: (engine, id) => engine.restartNode({ instanceId: id, nodeId: 'start', force: true, run: true }),
  },
  { name: 'restartInstance', setup: 'failed', act: (engine, id) => engine.restartInstance({ instanceId: id }) },
  {
    name: 'restartInstance+run+ctx',
    setup: 'failed',
    act: (engine, id) =>
      engine.restartInstance({ instanceId: id, run: true, context: { flaky: 'ok', note: 'replaced' } }),
  },
  { name: 'cancel', setup: 'waiting', act: (engine, id) => engine.cancel(id) },
  // The same with payloads in items of their own: an input, outputs and an event over the inline sizes.
  {
    name: 'create+run large',
    setup: 'none',
    act: (engine, id) =>
      engine.create({ workflowType: TYPE, id, context: { flaky: 'ok', big: true, note: 'n'.repeat(1500) } }),
  },
  { name: 'cancel large', setup: 'waiting-large', act: (engine, id) => engine.cancel(id) },
  {
    name: 'addNodeEvent large',
    setup: 'waiting-large',
    act: (engine, id) =>
      engine.addNodeEvent({
        instanceId: id,
        nodeId: 'approve',
        eventTs: EVENT_TS,
        content: { ok: true, note: 'e'.repeat(1000) },
      }),
  },
  // An instance whose timeout has passed (TIMED_TYPE): a pass ends it timed_out; a restart makes it run again.
  { name: 'runWorkflow timed out', setup: 'waiting-timed', act: (engine, id) => engine.runWorkflow(id) },
  {
    name: 'restartInstance timed out',
    setup: 'timed-out',
    act: (engine, id) => engine.restartInstance({ instanceId: id }),
  },
  {
    name: 'addNodeEvent',
    setup: 'waiting',
    act: (engine, id) =>
      engine.addNodeEvent({ instanceId: id, nodeId: 'approve', eventTs: EVENT_TS, content: { ok: true } }),
  },
  // Callbacks: the write that stores a node waiting for one, and the write of its completion.
  {
    name: 'create+run callback',
    setup: 'none',
    act: (engine, id) => engine.create({ workflowType: TYPE, id, context: { flaky: 'ok', callback: true } }),
  },
  {
    name: 'completeCallback',
    setup: 'waiting-callback',
    act: (engine, _id, log) =>
      engine.completeCallback(log.callbackToken as string, { status: 'success', output: { ok: true } }),
  },
]

let table: TestTable
let verifier: DynamoDbStore
const clients: DynamoDBClient[] = []

beforeAll(async () => {
  table = await createTestTable('crash-matrix')
  verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

const newEngine = (client: DynamoDBClient, clock: FakeClock, owner: string, log: ScenarioLog): Engine => {
  let counter = 0
  const engine = new Engine({
    store: new DynamoDbStore({ tableName: table.tableName, client }),
    clock,
    ids: { newInstanceId: () => `${owner}-unused-${++counter}`, newLeaseOwner: () => `${owner}-${++counter}` },
    random: fixedRandom(0),
    callbacks: { tokens: callbackTokens([CALLBACK_SECRET]) },
    defaultLeaseMs: LEASE_MS,
    leaseGraceMs: GRACE_MS,
  })
  engine.register(workflowFor(log))
  engine.register(workflowFor(log, TIMED_TYPE, TIMED_SECONDS))
  return engine
}

/** Brings the instance where the operation needs it, with a healthy engine. */
const arrange = async (setup: Setup, engine: Engine, id: string, clock: FakeClock): Promise<void> => {
  const create = (flaky: Flaky, run: boolean) => engine.create({ workflowType: TYPE, id, context: { flaky }, run })
  const expectStatus = async (status: string) => {
    const record = await verifier.getInstance(id)
    if (record?.status !== status) throw new Error(`setup '${setup}' left ${id} ${record?.status}, not ${status}`)
  }
  switch (setup) {
    case 'none':
      return
    case 'init':
      await create('ok', false)
      return expectStatus('init')
    case 'waiting':
      await create('ok', true)
      return expectStatus('running')
    case 'waiting-large':
      await engine.create({ workflowType: TYPE, id, context: { flaky: 'ok', big: true } })
      return expectStatus('running')
    case 'waiting-callback':
      await engine.create({ workflowType: TYPE, id, context: { flaky: 'ok', callback: true } })
      return expectStatus('running')
    case 'retrying':
      await create('error', true)
      return expectStatus('running')
    case 'failed':
      await create('fatal', true)
      return expectStatus('failed')
    case 'waiting-timed':
      await engine.create({ workflowType: TIMED_TYPE, id, context: { flaky: 'ok' } })
      return expectStatus('running')
    case 'timed-out':
      await engine.create({ workflowType: TIMED_TYPE, id, context: { flaky: 'ok' } })
      clock.advanceSeconds(TIMED_SECONDS)
      await engine.runWorkflow(id)
      return expectStatus('timed_out')
  }
}

interface Point {
  operation: Operation
  mode: Mode
  /** Requests answered (`before`), the request whose answer is lost (`after`), the worker call that hangs (`hang`). */
  k: number
}

interface ScenarioResult extends Point {
  id: string
  /** The dead runner's operation: how it ended. */
  ended: 'crashed' | 'hung' | 'returned' | 'refused'
  statusAtCrash: string
  finalStatus: string
  interrupted: NodeId[]
  problems: string[]
}

interface CleanRun {
  operation: Operation
  requests: number
  workerCalls: number
  /** Set when the engine refused the operation on a clean run (a restart into a dead end, say). */
  refused?: string
}

const nodeStatuses = (record: InstanceRecord | undefined): Partial<Record<NodeId, StoredNodeStatus>> => {
  const statuses: Partial<Record<NodeId, StoredNodeStatus>> = {}
  for (const node of NODES) {
    const status = record?.nodes[node]?.status
    if (status) statuses[node] = status
  }
  return statuses
}

const lastError = (record: InstanceRecord | undefined, node: NodeId): string | undefined => {
  // The last error lives in the node record (`system.last_error` in the node's context).
  return record?.nodes[node]?.lastError
}

const runScenario = async (point: Point, index: number): Promise<ScenarioResult & { clean?: CleanRun }> => {
  const { operation, mode, k } = point
  const id = `m${index}-${operation.name.replace(/[^a-z]/gi, '')}-${mode}-${k}`
  const log = new ScenarioLog()
  const clock = new FakeClock()
  const problems: string[] = []
  const checkInvariant = async (step: string): Promise<void> => {
    for (const violation of await invariantViolations(verifier, clock.nowMs(), { instanceIds: [id], crashes: true })) {
      problems.push(`invariant ${step}: ${violation.kind}`)
    }
  }

  // 1. A healthy engine brings the instance where the operation needs it.
  await arrange(operation.setup, newEngine(table.client, clock, `${id}-setup`, log), id, clock)
  await checkInvariant('after the setup')
  clock.advanceSeconds(1)

  // 2. The runner does the operation and dies at point k (k = Infinity: the clean run that counts the points).
  log.phase = 'dead'
  const hangs = mode === 'hang' || mode === 'hang-twice'
  const { client, state } = crashingClient(hangs ? Number.POSITIVE_INFINITY : k, mode === 'after' ? 'after' : 'before')
  clients.push(client)
  log.runner = state
  if (hangs) log.hangAt = k
  type Outcome = { kind: 'returned' } | { kind: 'threw'; error: unknown } | { kind: 'hung' }
  const acting: Promise<Outcome> = operation.act(newEngine(client, clock, `${id}-dead`, log), id, log).then(
    () => ({ kind: 'returned' }),
    (error: unknown) => ({ kind: 'threw', error }),
  )
  // A hung runner never finishes: stop waiting when it is killed.
  const outcome = await Promise.race([
    acting,
    state.died.then((): Outcome | Promise<Outcome> => (hangs ? { kind: 'hung' } : acting)),
  ])
  let ended: ScenarioResult['ended'] = 'returned'
  let refused: string | undefined
  if (outcome.kind === 'hung') ended = 'hung'
  else if (outcome.kind === 'threw') {
    if (causes(outcome.error).some((cause) => cause instanceof Crash)) ended = 'crashed'
    else if (!Number.isFinite(k)) {
      ended = 'refused'
      refused = `${(outcome.error as Error).name}: ${(outcome.error as Error).message}`
    } else problems.push(`the dead runner failed with something else than its crash: ${String(outcome.error)}`)
  } else if (state.dead) ended = 'crashed'
  const requests = state.calls
  const workerCalls = log.count({ phase: 'dead' })

  // 3. What the dead runner left behind.
  const atCrash = await verifier.getInstance(id)
  const statusAtCrash = nodeStatuses(atCrash)
  await checkInvariant('at the crash')
  const interruptedByDead: NodeId[] = []
  for (const node of NODES) {
    const deadCalls = log.calls.filter((call) => call.node === node && call.phase === 'dead')
    const last = deadCalls[deadCalls.length - 1]
    if (last && atCrash?.nodes[node]?.output.token !== last.token) interruptedByDead.push(node)
  }
  if (mode === 'hang-twice') log.hangAgain = log.calls.find((call) => call.result === 'hung')?.node

  // 4. Only the tick and the run-queue consumer work from now on, on the same table and clock.
  log.phase = 'recovery'
  const runQueue = new LocalQueue({ name: 'run', now: () => clock.nowMs() })
  const deadLetters: string[] = []
  // The tick reads the whole table's due index; other scenarios' instances live on other clocks.
  const ownRuns: RunQueue = {
    sendRuns: (requests) => runQueue.sendRuns(requests.filter((request) => request.instanceId === id)),
  }
  let rounds = 0
  for (; rounds < RECOVERY_ROUNDS; rounds++) {
    const record = await verifier.getInstance(id)
    if (!record || isTerminalInstanceStatus(record.status)) break
    const now = clock.nowMs()
    if (record.leaseOwner !== undefined && (record.leaseUntilMs ?? 0) >= now) {
      clock.advanceMs((record.leaseUntilMs ?? now) - now + 1)
    } else if (record.dueAtMs !== undefined && record.dueAtMs > now) {
      clock.advanceMs(record.dueAtMs - now)
    }
    await runTick({ store: verifier, queue: ownRuns, clock, logger: silentLogger }, { remainingTimeMs: 60_000 })
    // Each delivery is one invocation of the run-queue consumer, on a client of its own (stopped if a worker hangs).
    const invocation = crashingClient(Number.POSITIVE_INFINITY, 'before')
    clients.push(invocation.client)
    log.invocation = invocation.state
    const runHandler = createRunHandler({
      engine: newEngine(invocation.client, clock, `${id}-live${rounds}`, log),
      logger: silentLogger,
      maxReceiveCount: 5,
      deadLetters: { send: async (letter) => void deadLetters.push(letter.reason) },
    })
    const delivering = runQueue.deliver(runHandler)
    const stopped = invocation.state.died.then(() => ({ delivered: 1, failed: 0, error: undefined }))
    const delivered = await Promise.race([delivering, stopped])
    if (invocation.state.dead) await new Promise((resolve) => setTimeout(resolve, 25))
    if (delivered.error !== undefined) problems.push(`the run handler threw: ${String(delivered.error)}`)
    await checkInvariant(`after recovery round ${rounds + 1}`)
    const after = await verifier.getInstance(id)
    const leased = after?.leaseOwner !== undefined && (after.leaseUntilMs ?? 0) >= clock.nowMs()
    // Nothing was due: a non-terminal instance that is neither due nor leased stays so for good.
    if (delivered.delivered + delivered.failed === 0 && after?.dueAtMs === undefined && !leased) break
    // Only the approval is left, waiting for an event nobody sends, and it was polled since the crash (so any lost
    // attempt of it was met): more rounds would only poll it again.
    const waitingForApproval =
      after !== undefined &&
      log.hangAgain === undefined &&
      log.count({ node: 'approve', phase: 'recovery' }) > 0 &&
      !leased &&
      after.dueAtMs !== undefined &&
      after.events.approve === undefined &&
      NODES.every((node) => {
        const status = after.nodes[node]?.status
        return node === 'approve' ? status === 'pending' : ['completed', 'skipped', undefined].includes(status)
      }) &&
      after.nodes.flaky?.status === 'completed' &&
      after.nodes.side?.status === 'completed'
    if (waitingForApproval) break
    // The same with a callback nobody completes: the approval waits for it, asked for since the crash.
    const waitingForCallback =
      after !== undefined &&
      log.hangAgain === undefined &&
      log.count({ node: 'approve', phase: 'recovery' }) > 0 &&
      !leased &&
      after.dueAtMs !== undefined &&
      after.nodes.approve?.callback !== undefined &&
      after.nodes.approve.callback.outcome === undefined &&
      after.nodes.flaky?.status === 'completed' &&
      after.nodes.side?.status === 'completed'
    if (waitingForCallback) break
  }
  for (const reason of deadLetters) problems.push(`a run request was dead-lettered: ${reason}`)

  // 5. Where it ended.
  const final = await verifier.getInstance(id)
  const parked = final?.parked !== undefined
  const finalStatus = final?.status ?? 'missing'
  if (final && !isTerminalInstanceStatus(final.status) && !parked) {
    if (final.dueAtMs === undefined) problems.push(`ended ${final.status} with no due time and not parked`)
    // Waiting means something can still run or is waiting: a node not terminal, or one whose predecessors completed.
    const canMove = NODES.some((node) => {
      const status = final.nodes[node]?.status
      if (status !== undefined) return !isTerminalNodeStatus(status)
      return PREDECESSORS[node].every((prev) => ['completed', 'skipped'].includes(final.nodes[prev]?.status ?? ''))
    })
    if (!canMove) problems.push(`ended ${final.status} in a dead end: no node can run or wait`)
  }

  // 6. No completed node is called again; a `run` that succeeded (pending) is not repeated.
  for (const node of NODES) {
    const recoveryCalls = log.count({ node, phase: 'recovery' })
    if (statusAtCrash[node] === 'completed' && recoveryCalls > 0) {
      problems.push(`${node} was completed at the crash but was called ${recoveryCalls}x after it`)
    }
    if (statusAtCrash[node] === 'pending' && log.count({ node, step: 'run', phase: 'recovery' }) > 0) {
      problems.push(`${node}'s run had succeeded (pending) but ran again`)
    }
  }

  // A node its condition skips never runs, in any phase.
  const auditCalls = log.count({ node: 'audit' })
  if (auditCalls > 0) problems.push(`audit, skipped by its condition, was called ${auditCalls}x`)
  if (final?.nodes.audit !== undefined && final.nodes.audit.status !== 'skipped' && final.status !== 'canceled') {
    problems.push(`audit ended ${final.nodes.audit.status}, not skipped`)
  }

  // 7. Every interrupted attempt is a counted failure, with its reason.
  const interruptions = (node: NodeId): number =>
    (interruptedByDead.includes(node) ? 1 : 0) + log.count({ node, phase: 'recovery', result: 'hung' })
  const interrupted = NODES.filter((node) => interruptions(node) > 0)
  for (const node of interrupted) {
    const finalNode = final?.nodes[node]
    if (final?.status === 'canceled' || finalNode?.status === 'canceled') continue
    const countedLater = log.calls.filter(
      (call) => call.node === node && call.phase === 'recovery' && (call.result === 'error' || call.result === 'fatal'),
    ).length
    const expected = (atCrash?.nodes[node]?.failCount ?? 0) + interruptions(node) + countedLater
    const failCount = finalNode?.failCount ?? 0
    if (failCount < expected) {
      problems.push(
        `${node} was interrupted ${interruptions(node)}x (called, no outcome stored): fail_count ${failCount}, expected >= ${expected}`,
      )
    }
    const laterErrors = log.calls.some(
      (call) =>
        call.node === node && call.phase === 'recovery' && ['error', 'fatal', 'not-ready'].includes(call.result),
    )
    if (!laterErrors && !NO_OUTCOME.test(lastError(final, node) ?? '')) {
      problems.push(
        `${node} was interrupted: last_error ${JSON.stringify(lastError(final, node) ?? null)} names no lost outcome`,
      )
    }
  }

  const result: ScenarioResult & { clean?: CleanRun } = {
    ...point,
    id,
    ended,
    statusAtCrash: atCrash
      ? `${atCrash.status}[${NODES.map((n) => `${n}:${statusAtCrash[n] ?? '-'}`).join(' ')}]`
      : 'missing',
    finalStatus,
    interrupted,
    problems,
  }
  if (!Number.isFinite(k)) {
    result.clean = { operation, requests, workerCalls, ...(refused === undefined ? {} : { refused }) }
  }
  return result
}

/** Runs `tasks` with at most `limit` at once, results in task order. */
const pool = async <T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> => {
  const results: T[] = new Array(tasks.length)
  let next = 0
  const lane = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await (tasks[index] as () => Promise<T>)()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane))
  return results
}

/** One letter per scenario for the grid: what went wrong first, in this order. */
const GRID: readonly [string, RegExp][] = [
  ['S', /^invariant/],
  ['D', /^ended /],
  ['R', /was completed at the crash|ran again/],
  ['C', /was interrupted/],
  ['!', /./],
]
const cell = (problems: readonly string[]): string =>
  problems.length === 0 ? '.' : (GRID.find(([, pattern]) => problems.some((p) => pattern.test(p)))?.[0] ?? '!')

/** `3,4,5,9` → `3-5,9`. */
const ranges = (values: readonly number[]): string => {
  const sorted = [...new Set(values)].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i] as number
    let end = start
    while (sorted[i + 1] === end + 1) end = sorted[++i] as number
    parts.push(start === end ? `${start}` : `${start}-${end}`)
  }
  return parts.join(',')
}

describe('a runner killed at every DynamoDB request and every worker call of every operation', () => {
  it('leaves every instance terminal, due or parked; repeats no completed node; counts every lost attempt', async () => {
    // Clean runs first: how many requests and worker calls each operation makes.
    const cleanResults = await pool(
      PARALLEL_SCENARIOS,
      OPERATIONS.map(
        (operation, index) => () => runScenario({ operation, mode: 'before', k: Number.POSITIVE_INFINITY }, index),
      ),
    )
    const cleanRuns = cleanResults.map((result) => result.clean as CleanRun)
    const points: Point[] = []
    for (const clean of cleanRuns) {
      if (clean.refused) continue
      const { operation, requests, workerCalls } = clean
      for (let k = 0; k < requests; k++) points.push({ operation, mode: 'before', k })
      for (let k = 1; k <= requests; k++) points.push({ operation, mode: 'after', k })
      for (let k = 1; k <= workerCalls; k++) points.push({ operation, mode: 'hang', k })
      for (let k = 1; k <= workerCalls; k++) points.push({ operation, mode: 'hang-twice', k })
    }
    const results = await pool(
      PARALLEL_SCENARIOS,
      points.map((point, index) => () => runScenario(point, OPERATIONS.length + index)),
    )

    // The summary: one line per operation and mode, problems grouped with the points that show them.
    // The grid: one row per operation and mode, one column per call point (k from its first value).
    const grid: string[] = [
      'grid: . ok, S invariant broken, D ended without a due time or in a dead end, R completed node called again,',
      '      C interrupted attempt not counted, ! other; columns are k = 0.. (before), 1.. (after, hang, hang-twice)',
    ]
    for (const clean of cleanRuns) {
      const cleanCell = cell(cleanResults.find((result) => result.operation === clean.operation)?.problems ?? [])
      for (const mode of ['before', 'after', 'hang', 'hang-twice'] as const) {
        const own = results.filter((result) => result.operation === clean.operation && result.mode === mode)
        if (own.length === 0 && mode !== 'before') continue
        const label = `${mode === 'before' ? clean.operation.name : ''}`.padEnd(24)
        const cells = clean.refused ? 'refused' : own.map((result) => cell(result.problems)).join('')
        grid.push(`${label}${mode.padEnd(11)}${cells}${mode === 'before' ? `  (clean run ${cleanCell})` : ''}`)
      }
    }
    const lines: string[] = []
    for (const clean of cleanRuns) {
      const name = clean.operation.name
      if (clean.refused) {
        lines.push(`${name.padEnd(24)} refused on a clean run: ${clean.refused}`)
        continue
      }
      lines.push(`${name.padEnd(24)} ${clean.requests} requests, ${clean.workerCalls} worker calls`)
      const cleanProblems = cleanResults.find((result) => result.operation === clean.operation)?.problems ?? []
      if (cleanProblems.length > 0) lines.push(`  clean run (no crash): ${cleanProblems.join('; ')}`)
      for (const mode of ['before', 'after', 'hang', 'hang-twice'] as const) {
        const own = results.filter((result) => result.operation === clean.operation && result.mode === mode)
        if (own.length === 0) continue
        const byProblem = new Map<string, number[]>()
        for (const result of own) {
          for (const problem of new Set(result.problems))
            byProblem.set(problem, [...(byProblem.get(problem) ?? []), result.k])
        }
        const ok = own.filter((result) => result.problems.length === 0).length
        lines.push(`  ${mode.padEnd(10)} k=${ranges(own.map((result) => result.k))}: ${ok}/${own.length} ok`)
        for (const [problem, ks] of [...byProblem].sort(([a], [b]) => a.localeCompare(b))) {
          lines.push(`    k=${ranges(ks)}: ${problem}`)
        }
      }
    }
    const operationsRun = cleanRuns.filter((clean) => !clean.refused).length
    const failing = [...cleanResults, ...results].filter((result) => result.problems.length > 0)
    const requestPoints = cleanRuns.reduce((sum, clean) => sum + (clean.refused ? 0 : clean.requests), 0)
    const hangPoints = results.filter((result) => result.mode === 'hang').length
    const hangTwicePoints = results.filter((result) => result.mode === 'hang-twice').length
    console.info(
      `crash matrix: ${operationsRun} operations; ${requestPoints} DynamoDB requests x 2 modes (before, after) + ` +
        `${hangPoints} hung worker calls + ${hangTwicePoints} hung again after the crash = ${points.length} call points; ${failing.length} scenarios with problems ` +
        `(clean runs included)\n${grid.join('\n')}\n${lines.join('\n')}`,
    )
    if (failing.length > 0) {
      console.info(
        `scenarios with problems (state at the crash -> end):\n${failing
          .map(
            (r) =>
              `${r.operation.name} ${r.mode} k=${r.k} ${r.ended} ${r.statusAtCrash} interrupted=[${r.interrupted.join(',')}] -> ${r.finalStatus}: ${r.problems.join('; ')}`,
          )
          .join('\n')}`,
      )
    }

    // The matrix really covers every operation, and its points really kill the runner.
    expect(operationsRun + cleanRuns.filter((clean) => clean.refused).length).toBe(OPERATIONS.length)
    for (const result of results) {
      if (result.mode === 'hang' || result.mode === 'hang-twice')
        expect(result.ended, `${result.operation.name} hang k=${result.k}`).toBe('hung')
      else expect(result.ended, `${result.operation.name} ${result.mode} k=${result.k}`).toBe('crashed')
    }
    expect(results.some((result) => result.interrupted.length > 0)).toBe(true)
    expect(failing.map((r) => `${r.operation.name} ${r.mode} k=${r.k}: ${r.problems.join('; ')}`)).toEqual([])
  }, 240_000)
})
