import { describe, expect, it } from 'vitest'
import {
  blockingFailures,
  edgeOutcome,
  endOutcome,
  failureEffect,
  joinDecision,
  skippedDownstream,
} from '../../src/core/control-flow.js'
import { attemptDeadline, instanceDeadlineFrom, nodeTimedOut } from '../../src/core/deadlines.js'
import { loadDefinition, type NodeDefinition, type WorkflowDefinition } from '../../src/core/definition.js'
import type { NodeRecord } from '../../src/core/store.js'
import { aNode, T0 } from '../support/records.js'

/**
 * The control-flow rules as pure functions of the definition and the node records (README, "Conditions, choices,
 * join rules and deadlines"): what a join decides for every combination of how its parents ended.
 */

/** `a` and `b` lead to `join` (with the given trigger); `a` may choose between `join` and `other`. */
const joinOf = (trigger?: string, choice = false, optional = false): WorkflowDefinition =>
  loadDefinition({
    id: 'joins',
    nodes: [
      {
        id: 'a',
        next_nodes: choice ? ['join', 'other'] : ['join'],
        ...(choice ? { choice: [{ when: 'true', next: 'other' }, { default: 'join' }] } : {}),
        ...(optional ? { optional: true } : {}),
      },
      { id: 'b', next_nodes: ['join'] },
      { id: 'join', ...(trigger ? { trigger } : {}) },
      { id: 'other' },
    ],
  })

type Parent = 'completed' | 'failed' | 'skipped' | 'canceled' | 'running' | 'untaken' | 'chosen' | 'undecided'

/** The record of a parent that ended as `parent` (a choice that took `join`, another edge, or none yet). */
const recordOf = (parent: Parent): NodeRecord | undefined => {
  switch (parent) {
    case 'untaken':
      return aNode({ status: 'completed', chosen: 'other' })
    case 'chosen':
      return aNode({ status: 'completed', chosen: 'join' })
    case 'undecided':
      return aNode({ status: 'completed' })
    default:
      return aNode({ status: parent, ...(parent === 'skipped' ? { skipReason: 'condition_false' } : {}) })
  }
}

const decide = (definition: WorkflowDefinition, a: Parent, b: Parent) =>
  joinDecision(definition, { a: recordOf(a), b: recordOf(b) }, definition.byId.get('join') as NodeDefinition)

describe('joinDecision', () => {
  it.each<[string | undefined, Parent, Parent, string]>([
    // Never decided while a parent is not terminal, whatever the trigger.
    [undefined, 'running', 'skipped', 'wait'],
    ['all_success', 'running', 'failed', 'wait'],
    ['all_done', 'completed', 'running', 'wait'],
    // none_failed_min_one_success (the default)
    [undefined, 'completed', 'completed', 'run'],
    [undefined, 'completed', 'skipped', 'run'],
    [undefined, 'skipped', 'skipped', 'skip:upstream_skipped'],
    [undefined, 'completed', 'failed', 'skip:upstream_failed'],
    [undefined, 'skipped', 'canceled', 'skip:upstream_failed'],
    // all_success
    ['all_success', 'completed', 'completed', 'run'],
    ['all_success', 'completed', 'skipped', 'skip:upstream_skipped'],
    ['all_success', 'skipped', 'failed', 'skip:upstream_failed'],
    // all_done
    ['all_done', 'failed', 'skipped', 'run'],
    ['all_done', 'skipped', 'skipped', 'run'],
  ])('%s with parents %s and %s: %s', (trigger, a, b, expected) => {
    const decision = decide(joinOf(trigger), a, b)
    expect(decision.kind === 'skip' ? `skip:${decision.reason}` : decision.kind).toBe(expected)
  })

  it.each<[string | undefined, Parent, Parent, string]>([
    // An edge the choice did not take: not_chosen when nothing else leads there, whatever the trigger.
    [undefined, 'untaken', 'skipped', 'skip:not_chosen'],
    ['all_done', 'untaken', 'failed', 'skip:not_chosen'],
    ['all_success', 'untaken', 'skipped', 'skip:not_chosen'],
    // Another path reaches it: the trigger decides, the untaken edge counting as a skipped parent.
    [undefined, 'untaken', 'completed', 'run'],
    ['all_success', 'untaken', 'completed', 'skip:upstream_skipped'],
    ['all_done', 'untaken', 'completed', 'run'],
    // The choice took this edge; a completed parent whose choice is not made yet is not terminal for the join.
    ['all_success', 'chosen', 'completed', 'run'],
    [undefined, 'undecided', 'completed', 'wait'],
  ])('after a choice, %s with parents %s and %s: %s', (trigger, a, b, expected) => {
    const decision = decide(joinOf(trigger, true), a, b)
    expect(decision.kind === 'skip' ? `skip:${decision.reason}` : decision.kind).toBe(expected)
  })

  it.each([undefined, 'all_success'])('counts an optional parent that failed as done (%s)', (trigger) => {
    expect(decide(joinOf(trigger, false, true), 'failed', 'completed')).toEqual({ kind: 'run' })
  })
})

describe('how the instance ends', () => {
  const definition = joinOf(undefined, false, true)

  it('waits while a predecessor of end is not terminal, then completes when nothing failed', () => {
    const settled = { a: aNode({ status: 'completed' }), b: aNode({ status: 'skipped' }) }
    expect(endOutcome(definition, { ...settled, join: aNode({ status: 'running' }), other: undefined })).toBe('wait')
    expect(
      endOutcome(definition, { ...settled, join: aNode({ status: 'completed' }), other: aNode({ status: 'skipped' }) }),
    ).toBe('completed')
  })

  it('fails when a node failed that is not optional, even with every leaf skipped (isolate)', () => {
    const records = {
      a: aNode({ status: 'failed' }),
      b: aNode({ status: 'failed' }),
      join: aNode({ status: 'skipped' }),
      other: aNode({ status: 'skipped' }),
    }
    expect(blockingFailures(definition, records)).toEqual(['b'])
    expect(endOutcome(definition, records)).toBe('failed')
  })

  it('applies the failure mode unless the node is optional', () => {
    const isolate = loadDefinition({
      id: 'iso',
      on_failure: 'isolate',
      nodes: [{ id: 'x' }, { id: 'y', optional: true }],
    })
    const byId = (id: string) => isolate.byId.get(id) as NodeDefinition
    expect(failureEffect(isolate, byId('x'))).toBe('isolate')
    expect(failureEffect(isolate, byId('y'))).toBe('continue')
    expect(failureEffect(joinOf(), joinOf().byId.get('b') as NodeDefinition)).toBe('fail_instance')
  })
})

describe('edgeOutcome', () => {
  it('counts the edge from root as a success', () => {
    expect(edgeOutcome(joinOf(), {}, 'root', 'a')).toBe('success')
  })
})

describe('skippedDownstream', () => {
  it('finds the skipped nodes below what a restart reopens, not those elsewhere', () => {
    const definition = loadDefinition({
      id: 'restart',
      nodes: [{ id: 'a', next_nodes: ['b'] }, { id: 'b', next_nodes: ['c'] }, { id: 'c' }, { id: 'd' }],
    })
    const records = {
      a: aNode({ status: 'failed' }),
      b: aNode({ status: 'skipped' }),
      c: aNode({ status: 'skipped' }),
      d: aNode({ status: 'skipped' }),
    }
    expect(skippedDownstream(definition, records, ['a'])).toEqual(['b', 'c'])
  })
})

describe('deadlines', () => {
  const definition = loadDefinition({
    id: 'deadlines',
    timeout_seconds: 100,
    nodes: [{ id: 'n', run_timeout_seconds: 30, timeout_seconds: 60 }, { id: 'free' }],
  })
  const node = definition.byId.get('n') as NodeDefinition

  it('counts the instance timeout from its start, and none without one', () => {
    expect(instanceDeadlineFrom(definition, T0)).toBe(T0 + 100_000)
    expect(instanceDeadlineFrom(joinOf(), T0)).toBeUndefined()
  })

  it.each([
    { first: 'run', createdAt: T0, startedAt: T0, expected: { atMs: T0 + 30_000, kind: 'run' } },
    { first: 'node', createdAt: T0, startedAt: T0 + 40_000, expected: { atMs: T0 + 60_000, kind: 'node' } },
    {
      first: 'instance',
      createdAt: T0 + 80_000,
      startedAt: T0 + 90_000,
      expected: { atMs: T0 + 100_000, kind: 'instance' },
    },
  ])('bounds an attempt by the first deadline: $first', ({ createdAt, startedAt, expected }) => {
    const record = aNode({ createdAtMs: createdAt })
    expect(attemptDeadline({ deadlineAtMs: T0 + 100_000 }, node, record, startedAt)).toEqual(expected)
  })

  it('lets the instance deadline win a tie, and bounds nothing without deadlines', () => {
    expect(attemptDeadline({ deadlineAtMs: T0 + 60_000 }, node, aNode(), T0 + 50_000)?.kind).toBe('instance')
    expect(attemptDeadline({}, definition.byId.get('free') as NodeDefinition, aNode(), T0)).toBeUndefined()
  })

  it('times a node out at its creation plus its timeout', () => {
    expect(nodeTimedOut(node, aNode(), T0 + 59_999)).toBe(false)
    expect(nodeTimedOut(node, aNode(), T0 + 60_000)).toBe(true)
  })
})
