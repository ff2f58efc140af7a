import type { InstanceRecord, NodeRecord } from '../../src/core/store.js'

/** The time stored fixtures are created at. */
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)

/** A stored node record: running, never failed, first attempt, unless overridden. */
export const aNode = (overrides: Partial<NodeRecord> = {}): NodeRecord => ({
  status: 'running',
  failCount: 0,
  createdAtMs: T0,
  updatedAtMs: T0,
  attempt: 1,
  waits: 0,
  output: {},
  ...overrides,
})

/** A stored instance record of type `orders`, running with no nodes yet, unless overridden. */
export const anInstance = (id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord => ({
  id,
  workflowType: 'orders',
  status: 'running',
  input: {},
  createdAtMs: T0,
  updatedAtMs: T0,
  definitionVersion: 'v1',
  nodes: {},
  events: {},
  eventSeq: 0,
  fence: 0,
  ...overrides,
})
