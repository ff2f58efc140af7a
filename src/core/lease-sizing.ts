/**
 * One rule sizes every lease, whoever takes it (API, queue consumer, tick, local runtime, create): the caller's
 * remaining time, less a margin for the last write, is the span in which workers may run; the lease lasts a grace
 * period longer, so it never ends while its holder can still write.
 */
export interface LeaseSizing {
  /** Span when the caller gives no remaining time (outside Lambda). */
  defaultSpanMs: number
  /** Added beyond the span: the time the pass has to store what happened after it aborts its workers. */
  graceMs: number
}

export interface LeaseTimes {
  startedAtMs: number
  /** No node starts after this. */
  startDeadlineMs: number
  /** Workers' abort signal fires here; the pass stops waiting for them and stores their attempts as failed. */
  abortAtMs: number
  /** The lease ends here; the instance is due no later than this while it is held. */
  untilMs: number
}

/** Kept free of the caller's remaining time for the last write and the release. */
export const WRITE_MARGIN_MS = 3_000
export const MIN_SPAN_MS = 1_000

/** The span a caller with `remainingTimeMs` left can give to workers. */
export const spanFor = (remainingTimeMs: number | undefined, sizing: LeaseSizing): number =>
  remainingTimeMs === undefined ? sizing.defaultSpanMs : Math.max(MIN_SPAN_MS, remainingTimeMs - WRITE_MARGIN_MS)

export const leaseTimes = (nowMs: number, remainingTimeMs: number | undefined, sizing: LeaseSizing): LeaseTimes => {
  const spanMs = spanFor(remainingTimeMs, sizing)
  return {
    startedAtMs: nowMs,
    startDeadlineMs: nowMs + spanMs - Math.min(5_000, Math.floor(spanMs / 5)),
    abortAtMs: nowMs + spanMs,
    untilMs: nowMs + spanMs + sizing.graceMs,
  }
}
