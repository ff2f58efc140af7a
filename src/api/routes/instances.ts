import { z } from 'zod'
import type { InstanceDetail } from '../../core/engine.js'
import { LockConflictError, ValidationError } from '../../core/errors.js'
import type { PassResult } from '../../core/pass.js'
import {
  countQuerySchema,
  countResponseSchema,
  createBodySchema,
  createResponseSchema,
  getQuerySchema,
  graphQuerySchema,
  graphResponseSchema,
  historyQuerySchema,
  historyResponseSchema,
  instanceDetailSchema,
  instancePathSchema,
  listQuerySchema,
  listResponseSchema,
  MAX_WAIT_SECONDS,
  operationResponseSchema,
  passResultSchema,
  restartInstanceBodySchema,
  runBodySchema,
  runBusyResponseSchema,
} from '../../schemas/http-api.js'
import { isTerminalInstanceStatus } from '../../schemas/statuses.js'
import { instanceGraph } from '../graph.js'
import { json, text } from '../http.js'
import { ListCursors } from '../list-cursors.js'
import { type Route, route } from '../router.js'
import {
  BAD_REQUEST,
  BODY_ERRORS,
  errorAnswer,
  INSTANCE_READ_ERRORS,
  INSTANCE_WRITE_ERRORS,
  TYPE_NOT_FOUND,
} from './route-answers.js'
import { type ApiDeps, remaining } from './route-deps.js'

/** `/workflows…`: create, list, count, read (with long-poll), history, graph, run, cancel and restart instances. */
export const instanceRoutes = (deps: ApiDeps): Route[] => {
  const cursors = new ListCursors(deps.cursorSecret)
  return [
    createRoute(deps),
    listRoute(deps, cursors),
    countRoute(deps),
    getRoute(deps),
    historyRoute(deps, cursors),
    graphRoute(deps),
    runRoute(deps),
    cancelRoute(deps),
    restartRoute(deps),
  ]
}

/**
 * Watches the instance's status with small reads until it is terminal or the time is up, then reads the whole
 * instance once; answers as soon as it is terminal.
 */
export const waitForTerminal = async (
  deps: ApiDeps,
  instanceId: string,
  timeoutMs: number,
  remainingTimeMs?: () => number,
): Promise<InstanceDetail> => {
  const budget = Math.min(timeoutMs, (remainingTimeMs?.() ?? Number.POSITIVE_INFINITY) - 1_000)
  const deadline = deps.clock.nowMs() + budget
  let view = await deps.engine.getStatus(instanceId)
  while (!isTerminalInstanceStatus(view.status)) {
    const left = deadline - deps.clock.nowMs()
    if (left <= 0) break
    await deps.sleep(Math.min(deps.waitPollMs, left))
    view = await deps.engine.getStatus(instanceId, view)
  }
  return deps.engine.get(instanceId)
}

/** How long a run waits for a pass that holds the instance before it answers 202. */
export const BUSY_RUN_WAIT_MS = 10_000

/**
 * An explicit run of an instance another pass holds (an event's wake-up, the tick) waits for that pass within a
 * bound and then runs; when the pass is still running at the bound it answers that a pass is running.
 */
export const runWhenFree = async (
  deps: ApiDeps,
  run: () => Promise<PassResult>,
  remainingTimeMs: (() => number) | undefined,
): Promise<{ result: PassResult } | { busy: LockConflictError }> => {
  const budget = Math.min(BUSY_RUN_WAIT_MS, (remainingTimeMs?.() ?? Number.POSITIVE_INFINITY) / 2)
  const deadline = deps.clock.nowMs() + budget
  for (;;) {
    try {
      return { result: await run() }
    } catch (error) {
      if (!(error instanceof LockConflictError)) throw error
      const left = deadline - deps.clock.nowMs()
      if (left <= 0) return { busy: error }
      await deps.sleep(Math.min(deps.waitPollMs, left))
    }
  }
}

const createRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'POST',
    path: '/workflows',
    tag: 'workflows',
    operationId: 'createWorkflow',
    summary: 'Create a workflow instance (and run it unless run is false); idempotent with a client-chosen id',
    body: createBodySchema,
    responses: {
      201: { description: 'created', schema: createResponseSchema },
      200: { description: 'the same request was already stored (idempotent replay)', schema: createResponseSchema },
      ...BODY_ERRORS,
      404: TYPE_NOT_FOUND,
      409: errorAnswer('an instance with this id exists with a different request'),
    },
    handle: async ({ body, request }) => {
      const result = await engine.create({ ...body, ...remaining(request), origin: 'api' })
      return json(
        result.created ? 201 : 200,
        { instanceId: result.instanceId, status: result.status, created: result.created },
        { location: `/workflows/${encodeURIComponent(result.instanceId)}` },
      )
    },
  })

const listRoute = ({ engine }: ApiDeps, cursors: ListCursors) =>
  route({
    method: 'GET',
    path: '/workflows',
    tag: 'workflows',
    operationId: 'listWorkflows',
    summary: 'List instances, newest first, filtered by type, status, business id and creation time',
    query: listQuerySchema,
    responses: { 200: { description: 'a page of instances', schema: listResponseSchema }, 400: BAD_REQUEST },
    handle: async ({ query }) => {
      const { cursor, limit, ...binding } = query
      const position = cursor === undefined ? undefined : cursors.open(cursor, binding)
      const page = await engine.list({ ...query, ...(position === undefined ? {} : { cursor: position }) })
      return json(200, page.cursor === undefined ? page : { ...page, cursor: cursors.seal(page.cursor, binding) })
    },
  })

const countRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'GET',
    path: '/workflows/count',
    tag: 'workflows',
    operationId: 'countWorkflows',
    summary: 'Count instances with the same filters as the list',
    query: countQuerySchema,
    responses: { 200: { description: 'the count', schema: countResponseSchema }, 400: BAD_REQUEST },
    handle: async ({ query }) => json(200, await engine.count(query)),
  })

const getRoute = (deps: ApiDeps) =>
  route({
    method: 'GET',
    path: '/workflows/{id}',
    tag: 'workflows',
    operationId: 'getWorkflow',
    summary: `An instance with every node in definition order; wait=terminal long-polls up to ${MAX_WAIT_SECONDS} s`,
    params: instancePathSchema,
    query: getQuerySchema,
    responses: { 200: { description: 'the instance', schema: instanceDetailSchema }, ...INSTANCE_READ_ERRORS },
    handle: async ({ params, query, request }) => {
      if (query.wait !== 'terminal') return json(200, await deps.engine.get(params.id))
      const timeoutMs = (query.timeoutSeconds ?? MAX_WAIT_SECONDS) * 1000
      return json(200, await waitForTerminal(deps, params.id, timeoutMs, request.remainingTimeMs))
    },
  })

const historyRoute = ({ engine }: ApiDeps, cursors: ListCursors) =>
  route({
    method: 'GET',
    path: '/workflows/{id}/history',
    tag: 'workflows',
    operationId: 'getWorkflowHistory',
    summary: 'The history of an instance, oldest first, paged: node status changes, events, errors, restarts, cancels',
    params: instancePathSchema,
    query: historyQuerySchema,
    responses: {
      200: { description: 'a page of history entries', schema: historyResponseSchema },
      ...INSTANCE_READ_ERRORS,
    },
    handle: async ({ params, query }) => {
      const binding = { history: params.id }
      const position = query.cursor === undefined ? undefined : cursors.open(query.cursor, binding)
      const afterSeq = position === undefined ? undefined : Number(position)
      if (afterSeq !== undefined && !Number.isSafeInteger(afterSeq)) {
        throw new ValidationError('query.cursor: not a cursor this service issued', 'query.cursor')
      }
      const page = await engine.history(params.id, {
        ...(query.limit === undefined ? {} : { limit: query.limit }),
        ...(afterSeq === undefined ? {} : { afterSeq }),
      })
      const items = page.entries.map(({ replacesTs: _replaces, seq, atMs, ...entry }) => ({
        seq: seq ?? 0,
        at: new Date(atMs).toISOString(),
        atMs,
        ...entry,
      }))
      return json(200, {
        items,
        dropped: page.dropped,
        ...(page.nextAfterSeq === undefined ? {} : { cursor: cursors.seal(String(page.nextAfterSeq), binding) }),
      })
    },
  })

const graphRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'GET',
    path: '/workflows/{id}/graph',
    tag: 'workflows',
    operationId: 'getWorkflowGraph',
    summary: 'A Mermaid flowchart of the instance, nodes styled by status (text, or JSON with format=json)',
    params: instancePathSchema,
    query: graphQuerySchema,
    responses: {
      200: {
        description: 'the Mermaid flowchart source as text/plain, or with format=json as a JSON object',
        contentType: 'text/plain',
        schema: z.string().meta({ description: 'Mermaid flowchart source' }),
        alternatives: { 'application/json': graphResponseSchema },
      },
      ...INSTANCE_READ_ERRORS,
    },
    handle: async ({ params, query }) => {
      const detail = await engine.get(params.id)
      // The instance's own version: its graph shows the conditions and choices it runs with.
      const graph = instanceGraph(detail, await engine.definitionOf(detail))
      return query.format === 'json' ? json(200, { format: 'mermaid', graph }) : text(200, graph)
    },
  })

const runRoute = (deps: ApiDeps) =>
  route({
    method: 'POST',
    path: '/workflows/{id}/run',
    tag: 'workflows',
    operationId: 'runWorkflow',
    summary: 'Run one pass now (explicit: every waiting node; due: only what is due)',
    params: instancePathSchema,
    body: runBodySchema,
    responses: {
      200: { description: 'the pass result', schema: passResultSchema },
      202: {
        description: `another pass holds the instance and was still running after ${BUSY_RUN_WAIT_MS / 1000} s (Retry-After)`,
        schema: runBusyResponseSchema,
      },
      ...INSTANCE_WRITE_ERRORS,
    },
    handle: async ({ params, body, request }) => {
      const run = () =>
        deps.engine.runWorkflow(params.id, { ...(body?.mode ? { mode: body.mode } : {}), ...remaining(request) })
      const outcome = await runWhenFree(deps, run, request.remainingTimeMs)
      if ('result' in outcome) return json(200, outcome.result)
      return busyAnswer(deps, params.id, outcome.busy)
    },
  })

/** 202: the instance and when the pass that holds it will have let it go. */
const busyAnswer = async ({ engine }: ApiDeps, instanceId: string, busy: LockConflictError) => {
  const detail = await engine.get(instanceId)
  return json(
    202,
    {
      instanceId,
      status: detail.status,
      busy: true,
      ...(busy.leaseUntilMs === undefined ? {} : { leaseUntilMs: busy.leaseUntilMs }),
      retryAfterSeconds: busy.retryAfterSeconds,
    },
    { 'retry-after': String(busy.retryAfterSeconds) },
  )
}

const cancelRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'POST',
    path: '/workflows/{id}/cancel',
    tag: 'workflows',
    operationId: 'cancelWorkflow',
    summary: 'Cancel a non-terminal instance; a second cancel answers changed=false',
    params: instancePathSchema,
    responses: { 200: { description: 'canceled', schema: operationResponseSchema }, ...INSTANCE_WRITE_ERRORS },
    handle: async ({ params, request }) =>
      json(200, await engine.cancel(params.id, { ...remaining(request), origin: 'api' })),
  })

const restartRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'POST',
    path: '/workflows/{id}/restart',
    tag: 'workflows',
    operationId: 'restartWorkflow',
    summary: 'Restart a failed, canceled or timed-out instance, optionally with a new input',
    params: instancePathSchema,
    body: restartInstanceBodySchema,
    responses: { 200: { description: 'restarted', schema: operationResponseSchema }, ...INSTANCE_WRITE_ERRORS },
    handle: async ({ params, body, request }) => {
      const { pass: _pass, ...result } = await engine.restartInstance({
        instanceId: params.id,
        ...body,
        ...remaining(request),
        origin: 'api',
      })
      return json(200, result)
    },
  })
