import { type CancelParams, cancelParamsSchema } from '../../schemas/engine-params.js'
import { isTerminalInstanceStatus, isTerminalNodeStatus } from '../../schemas/statuses.js'
import { IllegalStateError } from '../errors.js'
import { writeAct } from '../leased-operation.js'
import type { HistoryEntry, InstanceState, NodeRecord } from '../store.js'
import type { OperationDeps, OperationResult } from './deps.js'
import { changedSinceRead, mustGet } from './deps.js'
import { parseParams } from './parse.js'

/**
 * The check of a cancel, from the stored record: a canceled instance answers at once (a cancel is idempotent), a
 * completed, failed or timed-out one refuses; undefined when the instance is live and must be canceled.
 */
export const cancelCheck = (record: InstanceState): OperationResult | undefined => {
  if (record.status === 'canceled') return { instanceId: record.id, status: record.status, changed: false }
  if (isTerminalInstanceStatus(record.status)) {
    throw new IllegalStateError(`workflow instance '${record.id}' is ${record.status} and cannot be canceled`, {
      instanceId: record.id,
      status: record.status,
    })
  }
  return undefined
}

/** Cancels a non-terminal instance and its non-terminal nodes. Idempotent on a canceled instance. */
export const cancel = async (deps: OperationDeps, params: CancelParams): Promise<OperationResult> => {
  const p = parseParams(cancelParamsSchema, params)
  const read = await mustGet(deps, p.instanceId)
  const settled = cancelCheck(read)
  if (settled) return settled
  return deps.leases.perform({
    instanceId: read.id,
    remainingTimeMs: p.remainingTimeMs,
    // It turned terminal since it was read: a canceled one answers as canceled, anything else refuses.
    refused: (refusal) => cancelCheck(refusal.record) ?? changedSinceRead(refusal.record),
    act: (session) => {
      const record = session.record
      const now = deps.clock.nowMs()
      const nodes: Record<string, NodeRecord> = {}
      for (const [nodeId, node] of Object.entries(record.nodes)) {
        if (isTerminalNodeStatus(node.status)) continue
        node.status = 'canceled'
        node.updatedAtMs = now
        delete node.nextAttemptAtMs
        delete node.attemptStarted
        nodes[nodeId] = node
      }
      const history: HistoryEntry[] = [{ atMs: now, kind: 'cancel', origin: p.origin ?? 'engine' }]
      const change = { updatedAtMs: now, nodes, status: 'canceled' as const, history }
      return writeAct(change, { status: 'canceled', dueAtMs: null }, (): OperationResult => {
        deps.logger.log('info', 'workflow instance canceled', {
          instanceId: read.id,
          workflowType: record.workflowType,
        })
        return { instanceId: read.id, status: 'canceled', changed: true }
      })
    },
  })
}
