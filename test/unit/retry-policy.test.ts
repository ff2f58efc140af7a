import { describe, expect, it } from 'vitest'
import { DEFAULT_RETRY_POLICY, mergeRetryPolicy, nextDelayMs } from '../../src/core/retry-policy.js'

describe('the retry backoff', () => {
  it('starts at 5 s, doubles, and stops growing at 300 s without jitter', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((waits) => nextDelayMs(DEFAULT_RETRY_POLICY, waits, 0))
    expect(delays).toEqual([5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000])
  })

  it('takes up to the jitter fraction off the delay', () => {
    expect(nextDelayMs(DEFAULT_RETRY_POLICY, 1, 0.999)).toBeGreaterThan(4000)
    expect(nextDelayMs(DEFAULT_RETRY_POLICY, 1, 0.5)).toBe(4500)
  })

  it('lets retryAfterSeconds win over the policy', () => {
    expect(nextDelayMs(DEFAULT_RETRY_POLICY, 7, 0, 2)).toBe(2000)
    expect(nextDelayMs(DEFAULT_RETRY_POLICY, 1, 0, 0)).toBe(0)
  })

  it('layers workflow and node overrides over the defaults', () => {
    const policy = mergeRetryPolicy({ initialDelaySeconds: 1 }, { multiplier: 3 })
    expect(policy).toEqual({ ...DEFAULT_RETRY_POLICY, initialDelaySeconds: 1, multiplier: 3 })
    expect(nextDelayMs(policy, 3, 0)).toBe(9000)
  })
})
