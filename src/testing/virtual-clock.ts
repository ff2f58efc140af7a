import type { Clock } from '../core/ports.js'

/**
 * A clock that moves only when told to, with timers (the engine's lease-end aborts) that fire as it passes them:
 * no timer of the host is ever started, so a test that ends leaves nothing running.
 */
export class VirtualClock implements Clock {
  readonly #timers = new Set<{ atMs: number; fn: () => void }>()

  constructor(public ms: number) {}

  nowMs(): number {
    return this.ms
  }

  at(atMs: number, fn: () => void): () => void {
    const timer = { atMs, fn }
    this.#timers.add(timer)
    return () => this.#timers.delete(timer)
  }

  /** Moves to `ms` (never back), firing the timers it passes in time order. */
  moveTo(ms: number): void {
    this.ms = Math.max(this.ms, ms)
    for (const timer of [...this.#timers].sort((a, b) => a.atMs - b.atMs)) {
      if (timer.atMs > this.ms) continue
      this.#timers.delete(timer)
      timer.fn()
    }
  }

  /** Timers still set (a pass in progress holds one). */
  get pendingTimers(): number {
    return this.#timers.size
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * A duration in milliseconds: a number of milliseconds, or text such as `'90s'`, `'15m'`, `'2h'`, `'1d 6h'`,
 * `'1.5h'` (units ms, s, m, h, d).
 */
export const durationMs = (duration: string | number): number => {
  if (typeof duration === 'number') {
    if (!Number.isFinite(duration) || duration < 0) throw new RangeError(`not a duration: ${duration}`)
    return duration
  }
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)]
  const rest = duration.replace(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g, '').trim()
  if (!parts.length || rest !== '') {
    throw new RangeError(`not a duration: '${duration}' (write it like '90s', '15m', '2h' or '1d 6h')`)
  }
  return Math.round(parts.reduce((sum, [, value, unit]) => sum + Number(value) * (UNITS[unit as string] ?? 0), 0))
}
