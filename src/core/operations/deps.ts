import type { InstanceStatus } from '../../schemas/statuses.js'
import type { CallbackTokens } from '../callback-token.js'
import type { Definitions } from '../definitions.js'
import { IllegalStateError, InstanceNotFoundError } from '../errors.js'
import type { LeasedOperations } from '../leased-operation.js'
import type { Limits } from '../limits.js'
import type { PassResult } from '../pass.js'
import type { Clock, IdGenerator, Logger } from '../ports.js'
import type { Registry } from '../registry.js'
import type { InstanceRecord, InstanceState, InstanceStore } from '../store.js'

/** What every operation is given: the engine's ports, its limits, the lease lifecycle and the definitions. */
export interface OperationDeps {
  store: InstanceStore
  clock: Clock
  ids: IdGenerator
  logger: Logger
  limits: Limits
  leases: LeasedOperations
  definitions: Definitions
  registry: Registry
  /** Whether operations record history entries (the engine's `history` option). */
  history: boolean
  /** The deployment's callback tokens; without them no callback can be asked for or completed. */
  callbacks?: { tokens: CallbackTokens }
}

/** An operation's result on an instance. */
export interface OperationResult {
  instanceId: string
  status: InstanceStatus
  /** False when the operation found nothing to change (a second cancel). */
  changed: boolean
  pass?: PassResult
}

export const mustGet = async (
  deps: Pick<OperationDeps, 'store'>,
  instanceId: string,
  options: { lazy?: boolean } = {},
): Promise<InstanceRecord> => {
  const record = await deps.store.getInstance(instanceId, options)
  if (!record) throw new InstanceNotFoundError(instanceId)
  return record
}

/** The refusal of an operation whose instance turned terminal (or live again) between its read and its lease. */
export const changedSinceRead = (record: InstanceState): never => {
  throw new IllegalStateError(
    `workflow instance '${record.id}' is ${record.status} (it changed since it was read; try again)`,
    { instanceId: record.id, status: record.status },
  )
}
