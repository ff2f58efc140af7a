export interface RetryPolicy {
  readonly initialDelaySeconds: number
  readonly multiplier: number
  readonly maxDelaySeconds: number
  /** Fraction of the delay that is randomised away (0 = none, 0.2 = up to 20 % earlier). */
  readonly jitter: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialDelaySeconds: 5,
  multiplier: 2,
  maxDelaySeconds: 300,
  jitter: 0.2,
}

export const mergeRetryPolicy = (...layers: (Partial<RetryPolicy> | undefined)[]): RetryPolicy =>
  Object.assign({}, DEFAULT_RETRY_POLICY, ...layers.filter(Boolean)) as RetryPolicy

/**
 * Delay before the next attempt after the `waits`-th consecutive wait (1-based). A `retryAfterSeconds` from
 * NotReady wins over the policy. `random` is in [0, 1).
 */
export const nextDelayMs = (policy: RetryPolicy, waits: number, random: number, retryAfterSeconds?: number): number => {
  if (retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds >= 0) {
    return Math.round(retryAfterSeconds * 1000)
  }
  const exponent = Math.max(0, waits - 1)
  const base = Math.min(policy.maxDelaySeconds, policy.initialDelaySeconds * policy.multiplier ** exponent)
  const jittered = base * (1 - policy.jitter * random)
  return Math.max(1, Math.round(jittered * 1000))
}
