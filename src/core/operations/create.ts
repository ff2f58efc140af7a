import { type CreateParams, createParamsSchema } from '../../schemas/engine-params.js'
import type { InstanceStatus } from '../../schemas/statuses.js'
import { hash53 } from '../definition.js'
import { IdempotencyConflictError } from '../errors.js'
import { canonicalJson, type JsonObject } from '../json.js'
import { passAct } from '../leased-operation.js'
import type { PassResult } from '../pass.js'
import { type HistoryEntry, InstanceExistsError, type InstanceRecord } from '../store.js'
import type { OperationDeps } from './deps.js'
import { checkedInput, parseParams } from './parse.js'

export interface CreateResult {
  instanceId: string
  status: InstanceStatus
  /** False when an idempotent create found the same request already stored. */
  created: boolean
  pass?: PassResult
}

/** The fingerprint of a create with a client-chosen id: the same request maps to the same instance. */
export const requestHashOf = (request: {
  type: string
  businessId: string | undefined
  input: JsonObject
  startAtMs: number | undefined
}): string =>
  hash53(
    canonicalJson({
      type: request.type,
      businessId: request.businessId ?? null,
      input: request.input,
      startAtMs: request.startAtMs ?? null,
    }),
  )

/**
 * The check of a create whose id is taken, from the stored record alone: the same request with a client-chosen id
 * answers what is stored; anything else is a conflict.
 */
export const replayOf = (existing: InstanceRecord, record: InstanceRecord, clientId: boolean): CreateResult => {
  if (!clientId || existing.requestHash !== record.requestHash) throw new IdempotencyConflictError(record.id)
  return { instanceId: record.id, status: existing.status, created: false }
}

/**
 * Creates an instance of a registered type. With `run` (the default) it is created running and stored by the first
 * write of an explicit pass, together with the first attempts it starts; without, it is stored `init` and due at its
 * start time.
 */
export const create = async (deps: OperationDeps, params: CreateParams): Promise<CreateResult> => {
  const p = parseParams(createParamsSchema, params)
  const definition = deps.registry.definition(p.workflowType)
  const input = checkedInput(p.context ?? {}, 'context', deps.limits)
  const now = deps.clock.nowMs()
  const id = p.id ?? deps.ids.newInstanceId()
  const record: InstanceRecord = {
    id,
    workflowType: definition.type,
    status: 'init',
    input,
    createdAtMs: now,
    updatedAtMs: now,
    definitionVersion: definition.version,
    nodes: {},
    events: {},
    eventSeq: 0,
    fence: 0,
  }
  const history: HistoryEntry[] = deps.history ? [{ atMs: now, kind: 'created', origin: p.origin ?? 'engine' }] : []
  if (p.businessId !== undefined) record.businessId = p.businessId
  if (p.id !== undefined) {
    record.requestHash = requestHashOf({
      type: definition.type,
      businessId: p.businessId,
      input,
      startAtMs: p.startAtMs,
    })
  }
  const replay = (error: unknown): CreateResult => {
    if (!(error instanceof InstanceExistsError)) throw error
    return replayOf(error.existing, record, p.id !== undefined)
  }
  const stored = async (): Promise<void> => {
    // Stored after the instance, so that a refused create stores nothing; the snapshot only matters once a later
    // deployment changes the definition, and any create of this version stores it again.
    await deps.definitions.remember(definition)
    deps.logger.log('info', 'workflow instance created', { instanceId: id, workflowType: definition.type })
  }

  if (p.run === false) {
    record.dueAtMs = p.startAtMs ?? now
    if (p.startAtMs !== undefined && p.startAtMs > now) record.startAtMs = p.startAtMs
    try {
      await deps.leases.storeNew(record, history, stored)
    } catch (error) {
      return replay(error)
    }
    return { instanceId: id, status: 'init', created: true }
  }

  // Created running, and stored by the pass's first write together with the first attempts it starts.
  record.status = 'running'
  const session = deps.leases.unborn(record, history, p.remainingTimeMs, stored)
  try {
    return await deps.leases.under(session, {
      act: () =>
        passAct(
          { mode: 'explicit' },
          (pass): CreateResult => ({ instanceId: id, status: pass.status, created: true, pass }),
        ),
      // The instance is stored and another runner took it over: the caller must learn its id, not a conflict.
      afterLeaseLost: (current) => ({ instanceId: id, status: current?.status ?? 'running', created: true }),
    })
  } catch (error) {
    if (!session.stored) return replay(error)
    throw error
  }
}
