import { describe, expect, it } from 'vitest'
import {
  bulkTargets,
  errorText,
  eventContent,
  instanceActions,
  nodeActions,
  nodeData,
  nodeState,
  nodeTookMs,
  waterfall,
} from '../../src/dashboard/node-facts.js'
import type { HistoryEntry, InstanceDetail, InstanceSummary, NodeDetail } from '../../src/schemas/http-api.js'

/** What the dashboard says about a node, read from the API's answers (src/dashboard/node-facts.ts). */

const T0 = 1_800_000_000_000

const node = (patch: Partial<NodeDetail>): NodeDetail => ({
  id: 'review',
  name: 'Wait for a reviewer',
  status: 'pending',
  predecessors: ['submit'],
  successors: ['approve'],
  failCount: 0,
  attempt: 1,
  calls: 2,
  createdAtMs: T0,
  updatedAtMs: T0 + 100,
  ...patch,
})

const instance = (nodes: NodeDetail[], patch: Partial<InstanceDetail> = {}): InstanceDetail => ({
  id: 'i-1',
  workflowType: 'approval',
  status: 'running',
  context: {},
  createdAtMs: T0 - 10,
  updatedAtMs: T0 + 100,
  definitionVersion: 'v',
  nodes,
  ...patch,
})

let seq = 0
const entry = (patch: Partial<HistoryEntry>): HistoryEntry => ({
  seq: seq++,
  at: new Date(patch.atMs ?? T0).toISOString(),
  atMs: T0,
  kind: 'node',
  ...patch,
})

describe("a node's data", () => {
  it('splits the context into the input it ran with, its output, its event and the engine notes', () => {
    const data = nodeData(
      node({
        context: {
          pre_node_context: { submit: { amount: 1 } },
          workflow_context: { requester: 'ada' },
          node_event: { event_ts: 5, event_content: { decision: 'approved' } },
          system: { last_error: 'NotReadyError: not ready' },
          reason: 'late',
          review_status: 'pending',
        },
      }),
    )
    expect(data).toEqual({
      input: { workflow_context: { requester: 'ada' }, pre_node_context: { submit: { amount: 1 } } },
      output: { review_status: 'pending' },
      event: { eventTs: 5, content: { decision: 'approved' } },
      system: { last_error: 'NotReadyError: not ready', reason: 'late' },
    })
  })

  it('has nothing for a node that has not started', () => {
    expect(nodeData(node({ status: 'uncreated' }))).toEqual({})
  })
})

describe('what a node is doing', () => {
  const pending = node({
    nextAttemptAtMs: T0 + 60_000,
    context: { system: { last_error: 'NotReadyError: not ready' } },
  })
  const entries = [
    entry({ nodeId: 'review', status: 'running', atMs: T0 }),
    entry({ nodeId: 'review', status: 'pending', atMs: T0 + 80 }),
  ]

  it('says a waiting node waits for its check, since it started waiting, and when it is looked at again', () => {
    const state = nodeState(instance([pending]), pending, entries, true)
    expect(state).toMatchObject({
      kind: 'waiting-check',
      text: 'waiting for its check',
      sinceMs: T0 + 80,
      nextMs: T0 + 60_000,
    })
    expect(state.detail).toContain('no event received yet')
    expect(state.text).not.toMatch(/attempt|retry/)
  })

  it('says an event has arrived', () => {
    const withEvent = node({
      ...pending,
      context: { ...pending.context, node_event: { event_ts: 7, event_content: null } },
    })
    expect(nodeState(instance([withEvent]), withEvent, entries, true).detail).toContain('an event arrived (eventTs 7)')
  })

  it('tells a failing retry from a wait', () => {
    const failing = node({
      status: 'running',
      failCount: 2,
      context: { system: { last_error: 'Error: card declined' } },
    })
    expect(nodeState(instance([failing]), failing, [], false)).toMatchObject({
      kind: 'retrying',
      detail: '2 failures so far; the last: Error: card declined',
    })
  })

  it('says what a node that has not started waits for', () => {
    const later = node({ id: 'approve', status: 'uncreated', predecessors: ['review'] })
    expect(nodeState(instance([later]), later, [], false)).toEqual({
      kind: 'not-started',
      text: 'not started',
      detail: 'it starts once review has completed',
    })
  })

  it('says a worker is running, since when', () => {
    const working = node({ status: 'running', attemptStartedAtMs: T0 + 5, attemptStep: 'check' })
    expect(nodeState(instance([working]), working, [], true)).toMatchObject({ kind: 'working', sinceMs: T0 + 5 })
  })

  it('says a node of a finished instance is stopped', () => {
    expect(nodeState(instance([pending], { status: 'canceled' }), pending, entries, true)).toMatchObject({
      kind: 'settled',
      text: 'stopped',
    })
  })
})

describe('the actions the API would accept', () => {
  it('offers an event to a waiting node, an early one to a node not started, none to a settled one', () => {
    const running = instance([])
    expect(nodeActions(running, node({}))).toEqual({ event: 'now', restart: { force: false } })
    expect(nodeActions(running, node({ status: 'uncreated' }))).toEqual({ event: 'early' })
    expect(nodeActions(running, node({ status: 'completed' }))).toEqual({ restart: { force: false } })
  })

  it('says a restart needs force once the instance is terminal, and takes no event then', () => {
    for (const status of ['completed', 'failed', 'canceled'] as const) {
      expect(nodeActions(instance([], { status }), node({ status: 'completed' }))).toEqual({ restart: { force: true } })
    }
  })

  it('offers nothing on the synthetic start and end', () => {
    expect(nodeActions(instance([]), node({ id: 'root' }))).toEqual({})
  })

  it('offers cancel until the instance is terminal, and restart on a failed, canceled or parked one', () => {
    expect(instanceActions({ status: 'running' })).toEqual({ cancel: true, restart: false })
    expect(instanceActions({ status: 'completed' })).toEqual({ cancel: false, restart: false })
    expect(instanceActions({ status: 'failed' })).toEqual({ cancel: false, restart: true })
    expect(instanceActions({ status: 'running', parked: { code: 'WORKER_MISSING', reason: 'r', atMs: 0 } })).toEqual({
      cancel: true,
      restart: true,
    })
  })

  it('acts in bulk on the instances whose own page offers the action, a timed-out one restarted too', () => {
    const summary = (id: string, status: InstanceSummary['status'], parked?: InstanceSummary['parked']) => ({
      id,
      workflowType: 'approval',
      status,
      createdAtMs: T0,
      ...(parked ? { parked } : {}),
    })
    const chosen = [
      summary('running', 'running'),
      summary('parked', 'running', 'WORKER_MISSING'),
      summary('completed', 'completed'),
      summary('failed', 'failed'),
      summary('canceled', 'canceled'),
      summary('timed-out', 'timed_out'),
    ]
    const targets = bulkTargets(chosen)
    expect(targets.cancel.map((item) => item.id)).toEqual(['running', 'parked'])
    expect(targets.restart.map((item) => item.id)).toEqual(['parked', 'failed', 'canceled', 'timed-out'])
    for (const item of chosen) {
      expect(targets.cancel.includes(item)).toBe(instanceActions(item).cancel)
      expect(targets.restart.includes(item)).toBe(instanceActions(item).restart)
    }
  })
})

describe("a node's duration in the nodes table", () => {
  const running = instance([], { status: 'running', updatedAtMs: T0 + 500 })
  const ended = instance([], { status: 'failed', updatedAtMs: T0 + 500 })

  it('stops at the last change of a settled node, a skipped one included, while the instance runs on', () => {
    for (const status of ['completed', 'failed', 'canceled', 'skipped'] as const) {
      expect(nodeTookMs(running, node({ status, updatedAtMs: T0 + 100 }), T0 + 9_000)).toBe(100)
    }
  })

  it('runs to now while the node and the instance run, and to the end of the instance once it ended', () => {
    expect(nodeTookMs(running, node({ status: 'pending' }), T0 + 9_000)).toBe(9_000)
    expect(nodeTookMs(ended, node({ status: 'pending' }), T0 + 9_000)).toBe(500)
  })

  it('is unknown for a node not created yet', () => {
    expect(nodeTookMs(running, node({ status: 'uncreated', createdAtMs: undefined }), T0 + 9_000)).toBeUndefined()
  })
})

describe('history entries', () => {
  it.each([
    [{ errorClass: 'Error', message: 'Error: card declined' }, 'Error: card declined'],
    [
      { errorClass: 'DeadlineExceeded', message: 'max_wait_time_ts exceeded' },
      'DeadlineExceeded: max_wait_time_ts exceeded',
    ],
    [{ errorClass: 'TypeError' }, 'TypeError'],
  ])('say the error class once: %j', (fields, text) => {
    expect(errorText(fields)).toBe(text)
  })

  it("show an event's content while the node keeps it, and say when a later event replaced it", () => {
    const detail = instance([
      node({ context: { node_event: { event_ts: 9, event_content: { decision: 'approved' } } } }),
    ])
    expect(eventContent(entry({ kind: 'event', nodeId: 'review', eventTs: 9 }), detail)).toEqual({
      state: 'stored',
      content: { decision: 'approved' },
    })
    expect(eventContent(entry({ kind: 'event', nodeId: 'review', eventTs: 4 }), detail)).toEqual({
      state: 'replaced',
      byEventTs: 9,
    })
    expect(eventContent(entry({ kind: 'event', nodeId: 'review', eventTs: 4, superseded: true }), detail)).toEqual({
      state: 'superseded',
    })
  })

  it('make a waterfall: each status a segment to the next change, events and errors as marks', () => {
    const detail = instance([node({})], { status: 'completed', updatedAtMs: T0 + 1_000 })
    const chart = waterfall(
      detail,
      [
        entry({ kind: 'created', atMs: T0 - 10 }),
        entry({ nodeId: 'review', status: 'running', atMs: T0 }),
        entry({ nodeId: 'review', status: 'pending', atMs: T0 + 100 }),
        entry({ kind: 'event', nodeId: 'review', eventTs: 3, atMs: T0 + 500 }),
        entry({ nodeId: 'review', status: 'completed', atMs: T0 + 600 }),
      ],
      ['review'],
      T0 + 99_999,
    )
    expect(chart.startMs).toBe(T0 - 10)
    expect(chart.endMs).toBe(T0 + 1_000)
    expect(chart.rows[0]?.segments).toEqual([
      { status: 'running', fromMs: T0, toMs: T0 + 100 },
      { status: 'pending', fromMs: T0 + 100, toMs: T0 + 600 },
      { status: 'completed', fromMs: T0 + 600, toMs: T0 + 600 },
    ])
    expect(chart.rows[0]?.marks).toEqual([{ kind: 'event', atMs: T0 + 500, text: 'event (eventTs 3)' }])
  })
})
