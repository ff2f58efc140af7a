import { z } from 'zod'
import type { NodeDefinition, WorkflowDefinition } from '../core/definition.js'
import type { Engine, InstanceDetail } from '../core/engine.js'
import { LockConflictError, ValidationError } from '../core/errors.js'
import type { PassResult } from '../core/pass.js'
import type { Clock } from '../core/ports.js'
import { isTerminalInstanceStatus } from '../core/statuses.js'
import {
  countQuerySchema,
  countResponseSchema,
  createBodySchema,
  createResponseSchema,
  errorResponseSchema,
  eventBodySchema,
  eventResponseSchema,
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
  nodePathSchema,
  operationResponseSchema,
  passResultSchema,
  putScheduleBodySchema,
  restartInstanceBodySchema,
  restartNodeBodySchema,
  runBodySchema,
  runBusyResponseSchema,
  schedulePathSchema,
  scheduleSchema,
  schedulesResponseSchema,
  typePathSchema,
  workflowTypeSchema,
  workflowTypesResponseSchema,
} from '../schemas/http-api.js'
import { definitionGraph, instanceGraph } from './graph.js'
import { type ApiRequest, json, text } from './http.js'
import { ListCursors } from './list-cursors.js'
import { type ResponseSpec, type Route, route } from './router.js'

export interface ApiDeps {
  engine: Engine
  clock: Clock
  sleep(ms: number): Promise<void>
  /** How often a long-poll re-reads the instance's status. */
  waitPollMs: number
  /** The HMAC key of list cursors; a built-in default when absent (see ListCursors). */
  cursorSecret?: string
}

const error = (description: string): ResponseSpec => ({ description, schema: errorResponseSchema })
/** An error answer described once, under `components.responses`, and referred to by every route that gives it. */
const shared = (name: string, description: string): ResponseSpec => ({ name, description, schema: errorResponseSchema })
const BAD_REQUEST = shared('BadRequest', 'invalid request: `error.details.field` names the field')
const TOO_LARGE = shared('PayloadTooLarge', 'the body or a context is too large')
const NOT_JSON = shared('UnsupportedMediaType', 'the body is not application/json')
const INSTANCE_NOT_FOUND = shared('InstanceNotFound', 'unknown instance')
const TYPE_NOT_FOUND = shared('WorkflowTypeNotFound', 'unknown workflow type')
const SCHEDULE_NOT_FOUND = shared('ScheduleNotFound', 'unknown schedule')
const NO_SCHEDULER = shared('NoScheduler', 'this deployment has no scheduler')
const INSTANCE_CONFLICT = shared(
  'InstanceConflict',
  'the instance is locked by another runner, or the operation is not allowed in its state',
)
/** What a request with a body may be refused for, before any route sees it. */
const BODY_ERRORS: Record<number, ResponseSpec> = { 400: BAD_REQUEST, 413: TOO_LARGE, 415: NOT_JSON }
const INSTANCE_READ_ERRORS: Record<number, ResponseSpec> = { 400: BAD_REQUEST, 404: INSTANCE_NOT_FOUND }
const INSTANCE_WRITE_ERRORS: Record<number, ResponseSpec> = {
  ...BODY_ERRORS,
  404: INSTANCE_NOT_FOUND,
  409: INSTANCE_CONFLICT,
}

/** A node's control-flow rules as the config spells them (only those it sets, besides its join rule). */
const nodeRules = (node: NodeDefinition) => ({
  ...(node.when ? { when: node.when.source } : {}),
  ...(node.choice
    ? {
        choice: [
          ...node.choice.rules.map((rule) => ({ when: rule.when.source, next: rule.next })),
          { default: node.choice.default },
        ],
      }
    : {}),
  trigger: node.trigger,
  optional: node.optional,
  ...(node.runTimeoutSeconds !== undefined ? { runTimeoutSeconds: node.runTimeoutSeconds } : {}),
  ...(node.timeoutSeconds !== undefined ? { timeoutSeconds: node.timeoutSeconds } : {}),
})

const describeType = (engine: Engine, definition: WorkflowDefinition) => ({
  type: definition.type,
  name: definition.name,
  version: definition.version,
  nodes: definition.nodes.map((node) => ({
    id: node.id,
    name: node.name,
    predecessors: node.prev,
    successors: node.next,
    failMaxCount: node.failMaxCount,
    maxWaitTimeSeconds: node.maxWaitTimeSeconds,
    hasCheck: engine.hasCheck(definition.type, node.id),
    ...nodeRules(node),
  })),
  onFailure: definition.onFailure,
  ...(definition.timeoutSeconds !== undefined ? { timeoutSeconds: definition.timeoutSeconds } : {}),
  mermaid: definitionGraph(definition),
})

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

/** The Lambda's remaining time, for sizing the lease of a pass the request runs; undefined outside Lambda. */
const remaining = (request: ApiRequest): { remainingTimeMs?: number } => {
  const ms = request.remainingTimeMs?.()
  return ms === undefined ? {} : { remainingTimeMs: Math.max(1, Math.floor(ms)) }
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

/** Every route of the HTTP API. The OpenAPI document is generated from this table. */
export const apiRoutes = (deps: ApiDeps): Route[] => {
  const { engine } = deps
  const cursors = new ListCursors(deps.cursorSecret)
  return [
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
        409: error('an instance with this id exists with a different request'),
      },
      handle: async ({ body, request }) => {
        const result = await engine.create({ ...body, ...remaining(request), origin: 'api' })
        return json(
          result.created ? 201 : 200,
          { instanceId: result.instanceId, status: result.status, created: result.created },
          { location: `/workflows/${encodeURIComponent(result.instanceId)}` },
        )
      },
    }),
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
    }),
    route({
      method: 'GET',
      path: '/workflows/count',
      tag: 'workflows',
      operationId: 'countWorkflows',
      summary: 'Count instances with the same filters as the list',
      query: countQuerySchema,
      responses: { 200: { description: 'the count', schema: countResponseSchema }, 400: BAD_REQUEST },
      handle: async ({ query }) => json(200, await engine.count(query)),
    }),
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
        if (query.wait !== 'terminal') return json(200, await engine.get(params.id))
        const timeoutMs = (query.timeoutSeconds ?? MAX_WAIT_SECONDS) * 1000
        return json(200, await waitForTerminal(deps, params.id, timeoutMs, request.remainingTimeMs))
      },
    }),
    route({
      method: 'GET',
      path: '/workflows/{id}/history',
      tag: 'workflows',
      operationId: 'getWorkflowHistory',
      summary:
        'The history of an instance, oldest first, paged: node status changes, events, errors, restarts, cancels',
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
    }),
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
    }),
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
        const outcome = await runWhenFree(
          deps,
          () =>
            engine.runWorkflow(params.id, {
              ...(body?.mode ? { mode: body.mode } : {}),
              ...remaining(request),
            }),
          request.remainingTimeMs,
        )
        if ('result' in outcome) return json(200, outcome.result)
        const { busy } = outcome
        const detail = await engine.get(params.id)
        return json(
          202,
          {
            instanceId: params.id,
            status: detail.status,
            busy: true,
            ...(busy.leaseUntilMs === undefined ? {} : { leaseUntilMs: busy.leaseUntilMs }),
            retryAfterSeconds: busy.retryAfterSeconds,
          },
          { 'retry-after': String(busy.retryAfterSeconds) },
        )
      },
    }),
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
    }),
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
    }),
    route({
      method: 'POST',
      path: '/workflows/{id}/nodes/{node}/restart',
      tag: 'nodes',
      operationId: 'restartNode',
      summary: 'Restart a node and its descendants (force: also on a terminal instance)',
      params: nodePathSchema,
      body: restartNodeBodySchema,
      responses: {
        200: { description: 'restarted', schema: operationResponseSchema },
        ...INSTANCE_WRITE_ERRORS,
        404: error('unknown instance or node'),
      },
      handle: async ({ params, body, request }) => {
        const { pass: _pass, ...result } = await engine.restartNode({
          instanceId: params.id,
          nodeId: params.node,
          ...body,
          ...remaining(request),
          origin: 'api',
        })
        return json(200, result)
      },
    }),
    route({
      method: 'POST',
      path: '/workflows/{id}/nodes/{node}/events',
      tag: 'nodes',
      operationId: 'sendNodeEvent',
      summary: 'Send an external event to a node (versioned by eventTs; the instance becomes due at once)',
      params: nodePathSchema,
      body: eventBodySchema,
      responses: {
        202: { description: 'stored', schema: eventResponseSchema },
        ...INSTANCE_WRITE_ERRORS,
        404: error('unknown instance or node'),
        409: error('an event with a newer eventTs is stored, or the node or instance is terminal'),
      },
      handle: async ({ params, body }) =>
        json(
          202,
          await engine.addNodeEvent({
            instanceId: params.id,
            nodeId: params.node,
            eventTs: body.eventTs,
            content: body.content ?? null,
            origin: 'api',
          }),
        ),
    }),
    route({
      method: 'POST',
      path: '/schedules',
      tag: 'schedules',
      operationId: 'putSchedule',
      summary: 'Create or replace a recurring schedule that starts a workflow type on a cron or rate expression',
      body: putScheduleBodySchema,
      responses: {
        200: { description: 'stored', schema: scheduleSchema },
        ...BODY_ERRORS,
        404: TYPE_NOT_FOUND,
        501: NO_SCHEDULER,
      },
      handle: async ({ body }) => json(200, await engine.putSchedule(body)),
    }),
    route({
      method: 'GET',
      path: '/schedules',
      tag: 'schedules',
      operationId: 'listSchedules',
      summary: 'The recurring schedules',
      responses: {
        200: { description: 'schedules', schema: schedulesResponseSchema },
        501: NO_SCHEDULER,
      },
      handle: async () => json(200, { items: await engine.listSchedules() }),
    }),
    route({
      method: 'GET',
      path: '/schedules/{name}',
      tag: 'schedules',
      operationId: 'getSchedule',
      summary: 'One recurring schedule',
      params: schedulePathSchema,
      responses: {
        200: { description: 'the schedule', schema: scheduleSchema },
        400: BAD_REQUEST,
        404: SCHEDULE_NOT_FOUND,
        501: NO_SCHEDULER,
      },
      handle: async ({ params }) => json(200, await engine.getSchedule(params.name)),
    }),
    route({
      method: 'DELETE',
      path: '/schedules/{name}',
      tag: 'schedules',
      operationId: 'deleteSchedule',
      summary: 'Delete a recurring schedule (instances it started are not touched)',
      params: schedulePathSchema,
      responses: {
        204: { description: 'deleted' },
        400: BAD_REQUEST,
        404: SCHEDULE_NOT_FOUND,
        501: NO_SCHEDULER,
      },
      handle: async ({ params }) => {
        await engine.deleteSchedule(params.name)
        return { statusCode: 204, headers: {}, body: '' }
      },
    }),
    route({
      method: 'GET',
      path: '/workflow-types',
      tag: 'workflow-types',
      operationId: 'listWorkflowTypes',
      summary: 'The registered workflow types with their graphs',
      responses: { 200: { description: 'workflow types', schema: workflowTypesResponseSchema } },
      handle: async () =>
        json(200, { items: engine.workflowTypes().map((definition) => describeType(engine, definition)) }),
    }),
    route({
      method: 'GET',
      path: '/workflow-types/{type}',
      tag: 'workflow-types',
      operationId: 'getWorkflowType',
      summary: 'One workflow type with its graph',
      params: typePathSchema,
      responses: {
        200: { description: 'the workflow type', schema: workflowTypeSchema },
        400: BAD_REQUEST,
        404: TYPE_NOT_FOUND,
      },
      handle: async ({ params }) => {
        return json(200, describeType(engine, engine.workflowType(params.type)))
      },
    }),
  ]
}
