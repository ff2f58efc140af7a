import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../../src/adapters/dynamodb/table.js'
import { Engine, type EngineDeps } from '../../src/core/engine.js'
import type { Clock, IdGenerator, Random } from '../../src/core/ports.js'
import type { Worker } from '../../src/core/registry.js'
import { newDynamoClient, uniqueTableName } from './dynamodb.js'

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

export interface TestEngine {
  engine: Engine
  store: DynamoDbStore
  clock: FakeClock
}

export const newTestEngine = (table: TestTable, overrides: Partial<EngineDeps> = {}): TestEngine => {
  const clock = overrides.clock instanceof FakeClock ? overrides.clock : new FakeClock()
  const store = new DynamoDbStore({ tableName: table.tableName, client: table.client })
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
