import type { RunQueue } from '../core/dispatch-ports.js'
import type { Metrics } from '../core/metrics.js'
import type { Clock, Logger } from '../core/ports.js'
import type { DueIndex } from '../core/store.js'
import { runTick, type TickResult } from '../core/tick.js'

/** The scheduled tick: hands every due instance to the run queue within the Lambda's remaining time. */
export const createTickHandler =
  (deps: { store: DueIndex; queue: RunQueue; clock: Clock; logger: Logger; metrics?: Metrics }) =>
  (_event: unknown, context?: { getRemainingTimeInMillis?: () => number }): Promise<TickResult> =>
    runTick(deps, { remainingTimeMs: context?.getRemainingTimeInMillis?.() ?? 60_000 })
