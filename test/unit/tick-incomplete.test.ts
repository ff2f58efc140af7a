import { describe, expect, it } from 'vitest'
import type { RunQueue, RunRequest } from '../../src/core/dispatch-ports.js'
import { InProcessMetrics, MetricName } from '../../src/core/metrics.js'
import type { LogLevel } from '../../src/core/ports.js'
import type { DueIndex, DuePage } from '../../src/core/store.js'
import { runTick } from '../../src/core/tick.js'

/** A due index whose shards never end: every page is empty and carries a cursor, as places not yet due read. */
class EndlessIndex implements DueIndex {
  readonly dueShards = 2
  pages = 0
  constructor(readonly clock: { ms: number }) {}
  async queryDue(): Promise<DuePage> {
    this.pages += 1
    this.clock.ms += 1_000
    return { items: [], cursor: `page-${this.pages}` }
  }
}

class NoQueue implements RunQueue {
  async sendRuns(requests: readonly RunRequest[]): Promise<{ failed: RunRequest[] }> {
    return { failed: [...requests] }
  }
}

describe('a tick that cannot read every shard to the end', () => {
  it('stops at its time, says it is incomplete, and logs it as a warning', async () => {
    const clock = { ms: 1_000_000, nowMs: () => clock.ms }
    const store = new EndlessIndex(clock)
    const logged: { level: LogLevel; message: string; fields?: Record<string, unknown> }[] = []
    const logger = {
      log: (level: LogLevel, message: string, fields?: Record<string, unknown>) =>
        logged.push({ level, message, ...(fields ? { fields } : {}) }),
    }

    const metrics = new InProcessMetrics()
    const result = await runTick({ store, queue: new NoQueue(), clock, logger, metrics }, { remainingTimeMs: 12_000 })

    expect(result.complete).toBe(false)
    expect(store.pages).toBeGreaterThan(0)
    expect(store.pages).toBeLessThan(20)
    expect(logged).toEqual([{ level: 'warn', message: 'tick', fields: expect.objectContaining({ complete: false }) }])
    // Counted too, for the alarm on ticks that run out of time (infra/alarms.yml).
    expect(metrics.points.filter((point) => point.name === MetricName.incompleteTicks)).toEqual([
      { name: MetricName.incompleteTicks, value: 1, unit: 'Count', dimensions: {} },
    ])
  })

  it('counts 0 incomplete ticks when it reads every shard to the end', async () => {
    const clock = { ms: 1_000_000, nowMs: () => clock.ms }
    const metrics = new InProcessMetrics()
    const store: DueIndex = { dueShards: 2, queryDue: async () => ({ items: [] }) }
    const result = await runTick(
      { store, queue: new NoQueue(), clock, logger: { log: () => {} }, metrics },
      { remainingTimeMs: 12_000 },
    )
    expect(result.complete).toBe(true)
    expect(metrics.points.filter((point) => point.name === MetricName.incompleteTicks).map((p) => p.value)).toEqual([0])
  })
})
