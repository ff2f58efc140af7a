import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { IdempotencyConflictError, LeaseLostError, LockConflictError, StoreError } from '../../src/core/errors.js'
import { instanceStoredBytes } from '../../src/core/limits.js'
import type { InstanceRecord } from '../../src/core/store.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { drain, interceptRequests, refusal } from '../support/exchanges.js'
import { createTestTable, FakeClock, fixedRandom, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'
import { errorName, hashUnit, newLocalClient, requestKey, requestKind } from './support.js'

/**
 * DynamoDB throttling and server errors on a fraction of all requests, injected per attempt behind the SDK's retry
 * middleware: before the request is sent, or after DynamoDB executed it (the answer is lost and the SDK sends the
 * same write again). Every instance must complete with every node run exactly once.
 */

const SEED = 20_260_101
const FAULT_RATE = 0.2
const INSTANCES = 40
const MAX_ATTEMPTS = 6
const TYPE = 'faulty'

type FaultKind = 'ThrottlingException' | 'ProvisionedThroughputExceededException' | 'InternalServerError' | 'lostAnswer'
const FAULT_KINDS: readonly FaultKind[] = [
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'InternalServerError',
  'lostAnswer',
]

/**
 * Decides each attempt's fate from the seed, the item it touches and how many attempts that item has seen, so a
 * run injects the same faults into the same requests however the instances interleave.
 */
class FaultInjector {
  readonly injected = new Map<FaultKind, number>(FAULT_KINDS.map((kind) => [kind, 0]))
  /** `${kind} ${request kind}` → count */
  readonly byRequest = new Map<string, number>()
  attempts = 0
  readonly #seen = new Map<string, number>()

  constructor(
    readonly seed: number,
    readonly rate: number,
  ) {}

  decide(key: string): FaultKind | undefined {
    const n = (this.#seen.get(key) ?? 0) + 1
    this.#seen.set(key, n)
    const u = hashUnit(`${this.seed}|${key}|${n}`)
    if (u >= this.rate) return undefined
    return FAULT_KINDS[Math.min(FAULT_KINDS.length - 1, Math.floor((u / this.rate) * FAULT_KINDS.length))]
  }

  count(kind: FaultKind, request: string): void {
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1)
    this.byRequest.set(`${kind} ${request}`, (this.byRequest.get(`${kind} ${request}`) ?? 0) + 1)
  }

  /** `runner` names the client: each runner's requests draw from their own sequences. */
  attach(client: DynamoDBClient, runner: string): void {
    // At the HTTP handler, behind the retries (the SDK's and the store's direct writes'): every attempt is a separate
    // draw, and a refusal is answered as DynamoDB answers it, for the client to read.
    interceptRequests(client, async (exchange, send) => {
      this.attempts += 1
      const request = requestKind(exchange.commandName, exchange)
      const fault = this.decide(`${runner}|${requestKey(exchange) ?? request}`)
      if (fault === 'ThrottlingException') {
        this.count(fault, request)
        return refusal(400, fault, 'injected: rate of requests exceeds the allowed throughput')
      }
      if (fault === 'ProvisionedThroughputExceededException') {
        this.count(fault, request)
        return refusal(400, fault, 'injected: the level of configured provisioned throughput was exceeded')
      }
      if (fault === 'InternalServerError') {
        this.count(fault, request)
        return refusal(500, fault, 'injected: internal server error')
      }
      const answer = await send()
      if (fault === 'lostAnswer') {
        // DynamoDB did it; the caller hears a 500 and sends the same request again.
        this.count(fault, request)
        await drain(answer)
        return refusal(500, 'InternalServerError', 'injected: the answer was lost after the request was executed')
      }
      return answer
    })
  }
}

const runs = new Map<string, number>()
const checks = new Map<string, number>()
const bump = (map: Map<string, number>, key: string): number => {
  const value = (map.get(key) ?? 0) + 1
  map.set(key, value)
  return value
}

const workflow = defineWorkflow({
  type: TYPE,
  nodes: {
    a: { next: ['b', 'c', 'd'], run: (ctx) => void bump(runs, `${ctx.instanceId}:a`) },
    // Waits for an external event.
    b: {
      next: ['e'],
      run: (ctx) => void bump(runs, `${ctx.instanceId}:b`),
      check: (ctx) => {
        bump(checks, `${ctx.instanceId}:b`)
        if ((ctx.event?.content as { ok?: boolean } | null | undefined)?.ok !== true) throw new NotReadyError(60)
      },
    },
    // Ready on the second poll.
    c: {
      next: ['e'],
      run: (ctx) => void bump(runs, `${ctx.instanceId}:c`),
      check: (ctx) => {
        if (bump(checks, `${ctx.instanceId}:c`) < 2) throw new NotReadyError(5)
      },
    },
    d: { next: ['e'], run: (ctx) => void bump(runs, `${ctx.instanceId}:d`) },
    e: { run: (ctx) => void bump(runs, `${ctx.instanceId}:e`) },
  },
})
const NODE_IDS = ['a', 'b', 'c', 'd', 'e'] as const

let table: TestTable
const clients: DynamoDBClient[] = []

beforeAll(async () => {
  table = await createTestTable('reliability-faults')
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

type Step = 'create' | 'find' | 'event' | 'run' | 'done'

/** One instance driven as a caller, the events queue and the tick would: one step per round. */
interface Driver {
  index: number
  engine: Engine
  step: Step
  instanceId?: string
  /** Errors that escaped every SDK retry, by the step they interrupted. */
  escaped: { step: Step; error: string }[]
  conflicts: number
}

describe('DynamoDB throttling and server errors on a fifth of all requests', () => {
  it('lose and duplicate nothing: every instance completes, every run happens exactly once', async () => {
    const clock = new FakeClock()
    const faults = new FaultInjector(SEED, FAULT_RATE)
    const surfaced = new Map<string, number>()
    // One client per runner, as one Lambda each: the SDK's retry quota is per client.
    const drivers: Driver[] = Array.from({ length: INSTANCES }, (_, index) => {
      const client = newLocalClient({ maxAttempts: MAX_ATTEMPTS })
      clients.push(client)
      faults.attach(client, `runner-${index}`)
      let counter = 0
      const engine = new Engine({
        store: new DynamoDbStore({ tableName: table.tableName, client }),
        clock,
        ids: { newInstanceId: () => `f${index}-${++counter}`, newLeaseOwner: () => `f${index}-owner-${++counter}` },
        random: fixedRandom(0),
      })
      engine.register(workflow)
      return { index, engine, step: 'create', escaped: [], conflicts: 0 }
    })

    const step = async (driver: Driver): Promise<void> => {
      const { engine } = driver
      try {
        switch (driver.step) {
          case 'create': {
            const created = await engine.create({
              workflowType: TYPE,
              businessId: `order-${driver.index}`,
              context: { index: driver.index },
            })
            driver.instanceId = created.instanceId
            driver.step = 'event'
            return
          }
          case 'find': {
            // The create failed after all retries: it may have landed anyway. A caller finds it by business id.
            const page = await engine.list({ workflowType: TYPE, businessId: `order-${driver.index}` })
            const found = page.items[0]
            if (page.items.length > 1) throw new Error(`order-${driver.index} was created ${page.items.length} times`)
            if (found) driver.instanceId = found.id
            driver.step = found ? 'event' : 'create'
            return
          }
          case 'event':
            await engine.addNodeEvent({
              instanceId: driver.instanceId as string,
              nodeId: 'b',
              eventTs: 1_767_268_800,
              content: { ok: true },
            })
            driver.step = 'run'
            return
          case 'run': {
            const pass = await engine.runWorkflow(driver.instanceId as string, { mode: 'due' })
            if (pass.status === 'completed') driver.step = 'done'
            return
          }
          case 'done':
            return
        }
      } catch (error) {
        bump(surfaced, errorName(error))
        if (error instanceof StoreError) {
          driver.escaped.push({ step: driver.step, error: error.message })
          if (driver.step === 'create') driver.step = 'find'
          return
        }
        // A failed pass that could not release its lease leaves it held until it expires.
        if (error instanceof LockConflictError) {
          driver.conflicts += 1
          return
        }
        throw error
      }
    }

    // After every round, every instance is due, leased or parked (README, "Nothing is stranded").
    const violations: string[] = []
    let rounds = 0
    for (; rounds < 40; rounds++) {
      const open = drivers.filter((driver) => driver.step !== 'done')
      if (open.length === 0) break
      await Promise.all(open.map(step))
      for (const violation of await invariantViolations(table, clock.nowMs())) {
        violations.push(`round ${rounds + 1}: ${violation.message}`)
      }
      // The tick's minute, shortened: c's second poll is due 5 s after its first.
      clock.advanceSeconds(10)
    }

    // What happened, checked through a client without faults.
    const verifier = new DynamoDbStore({ tableName: table.tableName, client: table.client })
    const statuses = await Promise.all(
      drivers.map(async (driver) => (await verifier.getInstance(driver.instanceId ?? 'none'))?.status ?? 'missing'),
    )
    const escaped = drivers.flatMap((driver) => driver.escaped.map((entry) => ({ index: driver.index, ...entry })))
    const extraRuns: string[] = []
    for (const driver of drivers) {
      for (const node of NODE_IDS) {
        const count = runs.get(`${driver.instanceId}:${node}`) ?? 0
        if (count !== 1) extraRuns.push(`${driver.instanceId}:${node} ran ${count} times`)
      }
    }
    const report = {
      seed: SEED,
      rate: FAULT_RATE,
      instances: INSTANCES,
      rounds,
      attempts: faults.attempts,
      injected: Object.fromEntries(faults.injected),
      totalInjected: [...faults.injected.values()].reduce((a, b) => a + b, 0),
      byRequest: Object.fromEntries([...faults.byRequest].sort(([a], [b]) => a.localeCompare(b))),
      surfaced: Object.fromEntries(surfaced),
      escaped,
      conflicts: drivers.reduce((sum, driver) => sum + driver.conflicts, 0),
      extraRuns,
      violations,
    }
    console.info(`fault injection report: ${JSON.stringify(report, null, 2)}`)

    expect(statuses.filter((status) => status !== 'completed')).toEqual([])
    expect(violations).toEqual([])
    // No lost answer turns into a conflict: the create recognises its own item, the release its own write.
    expect(surfaced.get(IdempotencyConflictError.name) ?? 0).toBe(0)
    expect(surfaced.get(LeaseLostError.name) ?? 0).toBe(0)
    expect([...surfaced.keys()].filter((name) => name !== 'StoreError' && name !== 'LockConflictError')).toEqual([])
    // Exactly once, unless a run's outcome was lost to an error that escaped every retry of a pass.
    const passesInterrupted = escaped.filter((entry) => entry.step === 'run' || entry.step === 'create').length
    expect(extraRuns.length).toBeLessThanOrEqual(passesInterrupted)
    expect(escaped).toEqual([])
    expect(extraRuns).toEqual([])
    for (const driver of drivers) expect(checks.get(`${driver.instanceId}:c`)).toBe(2)
    // The faults really hit every kind of request, lost answers included where they are hardest.
    for (const kind of FAULT_KINDS) expect(faults.injected.get(kind)).toBeGreaterThan(0)
    for (const request of ['createInstance', 'acquireLease', 'write', 'releasingWrite', 'putEvent']) {
      expect(faults.byRequest.get(`lostAnswer ${request}`) ?? 0, `lost answers of ${request}`).toBeGreaterThan(0)
    }
    expect(report.totalInjected / faults.attempts).toBeGreaterThan(0.15)
    expect(report.totalInjected / faults.attempts).toBeLessThan(0.25)
  }, 60_000)
})

describe('one lost answer at a time', () => {
  /** A client that executes the first request `matches` picks, then loses its answer (a 500) after `meanwhile`. */
  const losingClient = (
    matches: (kind: string, args: unknown) => boolean,
    meanwhile: () => Promise<unknown> = async () => {},
  ) => {
    const client = newLocalClient({ maxAttempts: MAX_ATTEMPTS })
    clients.push(client)
    const state = { lost: 0 }
    interceptRequests(client, async (exchange, send) => {
      const answer = await send()
      if (state.lost === 0 && matches(requestKind(exchange.commandName, exchange), exchange)) {
        state.lost += 1
        await drain(answer)
        await meanwhile()
        return refusal(500, 'InternalServerError', 'injected: the answer was lost after the request was executed')
      }
      return answer
    })
    return { client, state }
  }

  const oneNode = defineWorkflow({ type: 'lost-one', nodes: { only: { run: () => {} } } })
  const engineOn = (client: DynamoDBClient, clock: FakeClock, prefix: string) => {
    let counter = 0
    const engine = new Engine({
      store: new DynamoDbStore({ tableName: table.tableName, client }),
      clock,
      ids: { newInstanceId: () => `${prefix}-${++counter}`, newLeaseOwner: () => `${prefix}-owner-${++counter}` },
      random: fixedRandom(0),
    })
    engine.register(oneNode)
    return engine
  }

  it('a create with a generated id whose put answer was lost runs its instance to the end', async () => {
    const { client, state } = losingClient((kind) => kind === 'createInstance')
    const clock = new FakeClock()
    const result = await engineOn(client, clock, 'lost-gen').create({ workflowType: 'lost-one' })
    expect(state.lost).toBe(1)
    expect(result).toMatchObject({ created: true, status: 'completed' })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [result.instanceId] })).toEqual([])
  })

  // The answer of a write that moves the recent history out of the instance item is lost: the SDK's retry must not
  // remove the entries that follow, nor store the moved ones twice.
  it('a history move whose answer was lost keeps every entry exactly once', async () => {
    const nodes: Record<string, { next?: string[]; run: (ctx: { set(key: string, value: string): void }) => void }> = {}
    for (let i = 0; i < 40; i++) {
      nodes[`n${i}`] = { ...(i < 39 ? { next: [`n${i + 1}`] } : {}), run: (ctx) => ctx.set('out', 'x'.repeat(100)) }
    }
    const client = newLocalClient({ maxAttempts: MAX_ATTEMPTS })
    clients.push(client)
    const state = { lost: 0 }
    interceptRequests(client, async (exchange, send) => {
      const answer = await send()
      const update = exchange.input.UpdateExpression
      if (state.lost === 0 && typeof update === 'string' && /\bh\[0\]/.test(update)) {
        state.lost += 1
        await drain(answer)
        return refusal(500, 'InternalServerError', 'injected: the answer was lost after the request was executed')
      }
      return answer
    })
    const clock = new FakeClock()
    const engine = engineOn(client, clock, 'lost-history')
    engine.register(defineWorkflow({ type: 'lost-history', nodes } as Parameters<typeof defineWorkflow>[0]))

    const { instanceId, status } = await engine.create({ workflowType: 'lost-history' })

    expect(state.lost).toBe(1)
    expect(status).toBe('completed')
    const page = await engine.history(instanceId, { limit: 500 })
    expect(page.entries.map((entry) => entry.seq)).toEqual([...Array(1 + 40 * 2 + 1).keys()])
    expect(page.entries.filter((entry) => entry.kind === 'node' && entry.status === 'completed')).toHaveLength(40)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  // The answer of a plain write of a pass (a node's outcome, no history move) is lost and the SDK sends it again:
  // what it adds — the stored bytes, its history entries — must be added once.
  it('a node write whose answer was lost adds its bytes and its history entries once', async () => {
    const nodes: Record<string, { next?: string[]; run: (ctx: { set(key: string, value: string): void }) => void }> = {}
    for (let i = 0; i < 3; i++) {
      nodes[`w${i}`] = { ...(i < 2 ? { next: [`w${i + 1}`] } : {}), run: (ctx) => ctx.set('out', 'y'.repeat(200)) }
    }
    const { client, state } = losingClient((kind) => kind === 'write')
    const clock = new FakeClock()
    const engine = engineOn(client, clock, 'lost-write')
    engine.register(defineWorkflow({ type: 'lost-write', nodes } as Parameters<typeof defineWorkflow>[0]))

    const { instanceId, status } = await engine.create({ workflowType: 'lost-write' })

    expect(state.lost).toBe(1)
    expect(status).toBe('completed')
    const record = await new DynamoDbStore({ tableName: table.tableName, client: newLocalClient() }).getInstance(
      instanceId,
    )
    expect(record?.storedBytes).toBe(instanceStoredBytes(record as InstanceRecord))
    const page = await engine.history(instanceId, { limit: 500 })
    const kinds = page.entries.map((entry) => `${entry.kind} ${entry.nodeId ?? ''} ${entry.status ?? ''}`)
    expect(kinds).toEqual([...new Set(kinds)])
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })

  // The first and only request of an idempotent create (the API's, a scheduled start's) must run its pass.
  it('a create with a client-chosen id whose put answer was lost runs its instance to the end', async () => {
    const { client, state } = losingClient((kind) => kind === 'createInstance')
    const clock = new FakeClock()
    const engine = engineOn(client, clock, 'lost-id')
    const result = await engine.create({ workflowType: 'lost-one', id: 'lost-id-chosen' })
    expect(state.lost).toBe(1)
    const detail = await engine.get('lost-id-chosen')
    expect({ created: result.created, status: result.status, stored: detail.status, lease: detail.lease }).toEqual({
      created: true,
      status: 'completed',
      stored: 'completed',
      lease: undefined,
    })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: ['lost-id-chosen'] })).toEqual([])
  })

  // The answer of a write that stored a payload in an item of its own is lost and the SDK sends it again: the retry
  // is refused by its condition, and the item the landed write refers to must stay.
  /** The put of the instance item itself (sort key `#`), not of an item of its partition. */
  const instancePut = (args: unknown) =>
    (args as { input?: { Item?: { sk?: { S?: string } } } }).input?.Item?.sk?.S === '#'
  it.each([
    { what: 'an event', kind: 'putEvent', only: () => true },
    { what: 'a create (its input item)', kind: 'createInstance', only: (args: unknown) => !instancePut(args) },
    { what: 'a create (its instance item)', kind: 'createInstance', only: instancePut },
  ])('$what with a large payload whose answer was lost keeps the item it refers to', async ({ kind, only }) => {
    const clock = new FakeClock()
    const waiting = defineWorkflow({
      type: 'lost-large',
      nodes: {
        wait: {
          run: () => {},
          check: (ctx) => {
            if (!ctx.event) throw new NotReadyError(60)
          },
        },
      },
    })
    const healthy = engineOn(table.client, clock, `lost-large-ok-${kind}-${only === instancePut ? 'item' : 'side'}`)
    healthy.register(waiting)
    const { client, state } = losingClient((request, args) => request === kind && only(args))
    const engine = engineOn(client, clock, `lost-large-${kind}-${only === instancePut ? 'item' : 'side'}`)
    engine.register(waiting)
    const note = 'n'.repeat(2000)

    const { instanceId } =
      kind === 'createInstance'
        ? await engine.create({ workflowType: 'lost-large', context: { note } })
        : await healthy.create({ workflowType: 'lost-large' })
    if (kind === 'putEvent') {
      await engine.addNodeEvent({ instanceId, nodeId: 'wait', eventTs: 1, content: { note } })
    }

    expect(state.lost).toBe(1)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
    const detail = await healthy.get(instanceId)
    if (kind === 'createInstance') expect(detail.context.note).toBe(note)
    else expect(detail.nodes.find((node) => node.id === 'wait')?.context?.node_event).toBeDefined()
  })

  // The answer of a stored event is lost and a pass completes the node before the SDK's retry: still stored.
  it('an event whose answer was lost while a pass completed its node is reported stored', async () => {
    const clock = new FakeClock()
    const waiting = defineWorkflow({
      type: 'lost-event',
      nodes: {
        wait: {
          run: () => {},
          check: (ctx) => {
            if (!ctx.event) throw new NotReadyError(60)
          },
        },
      },
    })
    const other = engineOn(table.client, clock, 'lost-ev-other')
    other.register(waiting)
    const { instanceId } = await other.create({ workflowType: 'lost-event' })
    const { client } = losingClient(
      (kind) => kind === 'putEvent',
      // Between the landed write and the SDK's retry, another runner (the tick's) completes the node with the event.
      () => other.runWorkflow(instanceId),
    )
    const engine = engineOn(client, clock, 'lost-ev')
    engine.register(waiting)
    const outcome = await engine
      .addNodeEvent({ instanceId, nodeId: 'wait', eventTs: 1, content: { ok: true } })
      .then(() => 'stored')
      .catch((error: unknown) => errorName(error))
    expect((await other.get(instanceId)).status).toBe('completed')
    expect(outcome).toBe('stored')
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
