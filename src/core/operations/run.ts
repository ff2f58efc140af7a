import { type RunParams, runParamsSchema } from '../../schemas/engine-params.js'
import { passAct, type Refusal } from '../leased-operation.js'
import type { PassResult } from '../pass.js'
import type { OperationDeps } from './deps.js'
import { parseParams } from './parse.js'

/** What a pass reports when the acquisition was refused: nothing ran, and why. */
export const skippedPass = (instanceId: string, refusal: Refusal): PassResult => {
  const { record } = refusal
  return {
    instanceId,
    workflowType: record.workflowType,
    status: record.status,
    executed: [],
    dueAtMs: refusal.kind === 'terminal' ? null : (record.dueAtMs ?? null),
    eventArrived: false,
    skipped: refusal.kind === 'terminal' ? 'terminal' : record.parked ? 'parked' : 'not-due',
    ...(record.parked ? { parked: { code: record.parked.code, reason: record.parked.reason } } : {}),
  }
}

/**
 * One pass over the instance. `explicit` (default) executes every waiting node now; `due` only what is due (the
 * tick's and wake-ups' mode). A terminal instance is left unchanged and its status returned.
 */
export const runWorkflow = async (deps: OperationDeps, params: RunParams): Promise<PassResult> => {
  const p = parseParams(runParamsSchema, params)
  const mode = p.mode ?? 'explicit'
  return deps.leases.perform({
    instanceId: p.instanceId,
    remainingTimeMs: p.remainingTimeMs,
    dueOnly: mode === 'due',
    refused: (refusal) => skippedPass(p.instanceId, refusal),
    act: () => passAct({ mode }, (pass) => pass),
  })
}
