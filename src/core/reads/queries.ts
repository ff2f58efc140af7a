import type { z } from 'zod'
import {
  type CountParams,
  countParamsSchema,
  instanceIdSchema,
  type ListParams,
  listParamsSchema,
} from '../../schemas/engine-params.js'
import { InstanceNotFoundError, ValidationError } from '../errors.js'
import type { OperationDeps } from '../operations/deps.js'
import { parseParams } from '../operations/parse.js'
import type { CountQuery, CountResult, HistoryPage, InstanceStatusView, ListPage, NodeEventRecord } from '../store.js'

/** The most index entries a count reads. */
export const COUNT_READ_LIMIT = 10_000

type ReadDeps = Pick<OperationDeps, 'store' | 'registry'>

const filtersOf = (deps: ReadDeps, p: z.output<typeof countParamsSchema>): CountQuery => ({
  workflowTypes: p.workflowType ? [p.workflowType] : deps.registry.workflowTypes(),
  ...(p.status === undefined ? {} : { statuses: Array.isArray(p.status) ? p.status : [p.status] }),
  ...(p.businessId === undefined ? {} : { businessId: p.businessId }),
  ...(p.createdFromMs === undefined ? {} : { createdFromMs: p.createdFromMs }),
  ...(p.createdToMs === undefined ? {} : { createdToMs: p.createdToMs }),
  ...(p.parked === undefined ? {} : { parked: p.parked }),
})

/** Lists instances, newest first by default, filtered by type, status, business id and creation time. */
export const listInstances = async (deps: ReadDeps, params: ListParams = {}): Promise<ListPage> => {
  const p = parseParams(listParamsSchema, params)
  return deps.store.listInstances({
    ...filtersOf(deps, p),
    ...(p.cursor === undefined ? {} : { cursor: p.cursor }),
    limit: p.limit ?? 50,
    order: p.order ?? 'desc',
  })
}

/**
 * Counts instances, reading at most COUNT_READ_LIMIT index entries: a count costs the same however many instances
 * there are; beyond the bound it answers `complete: false` (shown as "10,000+").
 */
export const countInstances = async (deps: ReadDeps, params: CountParams = {}): Promise<CountResult> =>
  deps.store.countInstances(filtersOf(deps, parseParams(countParamsSchema, params)), COUNT_READ_LIMIT)

/**
 * The status alone, from a small read: what a long-poll watches before reading the whole instance. Pass the
 * previous view back to let the store read a smaller copy.
 */
export const instanceStatus = async (
  deps: ReadDeps,
  instanceId: string,
  previous?: InstanceStatusView,
): Promise<InstanceStatusView> => {
  const id = parseParams(instanceIdSchema, instanceId)
  const view = await deps.store.getInstanceStatus(id, previous)
  if (!view) throw new InstanceNotFoundError(id)
  return view
}

/**
 * A page of the instance's history, oldest first: the entries after `afterSeq` (a seq of an earlier page), at
 * most `limit` (1-500, default 100). Throws InstanceNotFoundError for an unknown instance.
 */
export const instanceHistory = async (
  deps: ReadDeps,
  instanceId: string,
  options: { limit?: number; afterSeq?: number } = {},
): Promise<HistoryPage> => {
  const id = parseParams(instanceIdSchema, instanceId)
  const limit = options.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw new ValidationError('limit: must be an integer from 1 to 500', 'limit')
  }
  const page = await deps.store.readHistory(id, {
    limit,
    ...(options.afterSeq === undefined ? {} : { afterSeq: options.afterSeq }),
  })
  if (!page) throw new InstanceNotFoundError(id)
  return page
}

/** The newest instance of a type and business id still running, else the newest one; undefined when none. */
export const findByBusinessId = async (
  deps: ReadDeps,
  workflowType: string,
  businessId: string,
): Promise<string | undefined> => {
  const filters = { workflowType, businessId }
  let cursor: string | undefined
  do {
    const page = await listInstances(deps, {
      ...filters,
      status: ['init', 'running'],
      limit: 50,
      ...(cursor ? { cursor } : {}),
    })
    if (page.items[0]) return page.items[0].id
    cursor = page.cursor
  } while (cursor !== undefined)
  let newest: string | undefined
  cursor = undefined
  do {
    const page = await listInstances(deps, { ...filters, limit: 1, ...(cursor ? { cursor } : {}) })
    newest = page.items[0]?.id
    cursor = newest === undefined ? page.cursor : undefined
  } while (cursor !== undefined)
  return newest
}

/** The stored event of a node, for telling a re-delivered event from a different one. */
export const storedEvent = async (
  deps: ReadDeps,
  instanceId: string,
  nodeId: string,
): Promise<NodeEventRecord | undefined> => (await deps.store.getInstance(instanceId))?.events[nodeId]
