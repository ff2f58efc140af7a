import { describe, expect, it } from 'vitest'
import { instanceStatusSchema } from '../../src/schemas/engine-params.js'
import {
  isTerminalInstanceStatus,
  isTerminalNodeStatus,
  NODE_STATUSES,
  SKIP_REASONS,
  STORED_NODE_STATUSES,
} from '../../src/schemas/statuses.js'

describe('the status vocabulary', () => {
  it.each([
    ['completed', true],
    ['failed', true],
    ['canceled', true],
    ['timed_out', true],
    ['init', false],
    ['running', false],
  ] as const)('treats the instance status %s as terminal: %s', (status, terminal) => {
    expect(isTerminalInstanceStatus(status)).toBe(terminal)
  })

  it.each([
    ['completed', true],
    ['failed', true],
    ['canceled', true],
    ['skipped', true],
    ['running', false],
    ['pending', false],
    ['finishing', false],
    ['restarting', false],
    ['uncreated', false],
  ] as const)('treats the node status %s as terminal: %s', (status, terminal) => {
    expect(isTerminalNodeStatus(status)).toBe(terminal)
  })

  it('stores a skipped node like any other, but never an uncreated one', () => {
    expect(STORED_NODE_STATUSES).toContain('skipped')
    expect(STORED_NODE_STATUSES).not.toContain('uncreated')
    expect(NODE_STATUSES).toContain('uncreated')
  })

  it('names every reason a node can be skipped for', () => {
    expect(SKIP_REASONS).toEqual([
      'condition_false',
      'not_chosen',
      'upstream_skipped',
      'upstream_failed',
      'not_started',
    ])
  })

  it('accepts timed_out wherever an instance status is parsed', () => {
    expect(instanceStatusSchema.parse('timed_out')).toBe('timed_out')
    expect(instanceStatusSchema.safeParse('timed-out').success).toBe(false)
  })
})
