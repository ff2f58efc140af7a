import { type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../../src/adapters/dynamodb/table.js'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { Engine, type EngineDeps } from '../../src/core/engine.js'
import type { Clock, IdGenerator, Random } from '../../src/core/ports.js'
import type { Worker } from '../../src/core/registry.js'
import type { InstanceStore } from '../../src/core/store.js'
import { newDynamoClient, uniqueTableName } from './dynamodb.js'
import { type InvariantOptions, invariantViolations, type Violation } from './invariant.js'

/** A clock that moves only when told to. */
export class FakeClock implements Clock {
  constructor(public ms = Date.UTC(2026, 0, 1, 12, 0, 0)) {}
  nowMs(): number {
    return this.ms
  }
  advanceMs(ms: number): void {
    this.ms += ms
  }
  advanceSeconds(seconds: number): void {
    this.advanceMs(seconds * 1000)
  }
}

/** A fake clock whose timers (the engine's lease-end aborts) fire when it is advanced past them. */
export class TimerClock extends FakeClock {
  readonly #timers = new Set<{ atMs: number; fn: () => void }>()
  at(atMs: number, fn: () => void): () => void {
    const timer = { atMs, fn }
    this.#timers.add(timer)
    return () => this.#timers.delete(timer)
  }
  override advanceMs(ms: number): void {
    super.advanceMs(ms)
    for (const timer of [...this.#timers].sort((a, b) => a.atMs - b.atMs)) {
      if (timer.atMs > this.ms) continue
      this.#timers.delete(timer)
      timer.fn()
    }
  }
  get pendingTimers(): number {
    return this.#timers.size
  }
}

let idCounter = 0
export const sequentialIds = (prefix = 'wf'): IdGenerator => ({
  newInstanceId: () => `${prefix}-${(++idCounter).toString().padStart(6, '0')}`,
  newLeaseOwner: () => `owner-${++idCounter}`,
})

export const fixedRandom = (value = 0): Random => ({ next: () => value })

export interface TestTable {
  client: DynamoDBClient
  tableName: string
}

/** A fresh table on the shared DynamoDB Local, one per test file (or per test where isolation matters). */
export const createTestTable = async (prefix: string): Promise<TestTable> => {
  const client = newDynamoClient()
  const tableName = uniqueTableName(prefix)
  await ensureTable(client, tableName)
  return { client, tableName }
}

/**
 * Where a behaviour spec keeps its instances: the engine's specs run once on each (`describe.each(STORE_BACKENDS)`),
 * fast on MemoryStore and real on DynamoDB Local, so the two stores cannot disagree unnoticed.
 */
export interface StoreBackend {
  readonly name: string
  /** A store on this backend's data; every call is another runner (another Lambda) on the same data. */
  store(): InstanceStore
  /** Every violation of the engine's invariant in the stored instances at `nowMs` (see invariant.ts). */
  violations(nowMs: number, options?: InvariantOptions): Promise<Violation[]>
  /** Everything stored, in a stable order: what a refused request must leave exactly as it was. */
  snapshot(): Promise<unknown[]>
}

export interface StoreBackendFactory {
  readonly name: 'MemoryStore' | 'DynamoDbStore'
  /** Fresh, empty data for one spec file (`prefix` names its table where there is one). */
  open(prefix: string): Promise<StoreBackend>
}

export const memoryBackend: StoreBackendFactory = {
  name: 'MemoryStore',
  open: async () => {
    const store = new MemoryStore()
    return {
      name: 'MemoryStore',
      store: () => store,
      violations: (nowMs, options) => invariantViolations(store, nowMs, options),
      snapshot: async () => store.allRecords().sort((a, b) => (a.id < b.id ? -1 : 1)),
    }
  },
}

export const dynamoDbBackend: StoreBackendFactory = {
  name: 'DynamoDbStore',
  open: async (prefix) => {
    const table = await createTestTable(prefix)
    return {
      name: 'DynamoDbStore',
      store: () => new DynamoDbStore({ tableName: table.tableName, client: table.client }),
      violations: (nowMs, options) => invariantViolations(table, nowMs, options),
      snapshot: async () => {
        const result = await table.client.send(new ScanCommand({ TableName: table.tableName, ConsistentRead: true }))
        return (result.Items ?? []).map((item) => unmarshall(item)).sort((a, b) => (a.pk < b.pk ? -1 : 1))
      },
    }
  },
}

/** The stores every engine behaviour spec runs on. */
export const STORE_BACKENDS: readonly StoreBackendFactory[] = [memoryBackend, dynamoDbBackend]

export interface TestEngine<S extends InstanceStore = DynamoDbStore> {
  engine: Engine
  store: S
  clock: FakeClock
}

const isBackend = (source: TestTable | StoreBackend): source is StoreBackend => 'store' in source

/** An engine on a test table (a DynamoDbStore of its own), or on a backend's data (another runner on it). */
export function newTestEngine(table: TestTable, overrides?: Partial<EngineDeps>): TestEngine
export function newTestEngine(backend: StoreBackend, overrides?: Partial<EngineDeps>): TestEngine<InstanceStore>
export function newTestEngine(
  source: TestTable | StoreBackend,
  overrides: Partial<EngineDeps> = {},
): TestEngine<InstanceStore> {
  const clock = overrides.clock instanceof FakeClock ? overrides.clock : new FakeClock()
  const store = isBackend(source)
    ? source.store()
    : new DynamoDbStore({ tableName: source.tableName, client: source.client })
  const engine = new Engine({ store, clock, ids: sequentialIds(), random: fixedRandom(0), ...overrides })
  return { engine, store, clock }
}

/** Counts every call of each node's run and check. */
export class CallLog {
  readonly runs = new Map<string, number>()
  readonly checks = new Map<string, number>()
  readonly order: string[] = []

  run(nodeId: string): number {
    return this.runs.get(nodeId) ?? 0
  }
  check(nodeId: string): number {
    return this.checks.get(nodeId) ?? 0
  }

  /** Wraps a worker so that its calls are counted before it runs. */
  wrap(key: string, worker: Worker): Worker {
    const wrapped: Worker = {
      run: (ctx) => {
        this.runs.set(key, this.run(key) + 1)
        this.order.push(`${key}.run`)
        return worker.run(ctx)
      },
    }
    if (worker.check) {
      const check = worker.check
      wrapped.check = (ctx) => {
        this.checks.set(key, this.check(key) + 1)
        this.order.push(`${key}.check`)
        return check(ctx)
      }
    }
    return wrapped
  }
}
