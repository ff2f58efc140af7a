import {
  eventBodySchema,
  eventResponseSchema,
  nodePathSchema,
  operationResponseSchema,
  restartNodeBodySchema,
} from '../../schemas/http-api.js'
import { json } from '../http.js'
import { type Route, route } from '../router.js'
import { errorAnswer, INSTANCE_WRITE_ERRORS } from './route-answers.js'
import { type ApiDeps, remaining } from './route-deps.js'

/** `/workflows/{id}/nodes/{node}/…`: one node of an instance, its restart and its external events. */
export const nodeRoutes = (deps: ApiDeps): Route[] => [restartNodeRoute(deps), sendEventRoute(deps)]

const restartNodeRoute = ({ engine }: ApiDeps) =>
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
      404: errorAnswer('unknown instance or node'),
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
  })

const sendEventRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'POST',
    path: '/workflows/{id}/nodes/{node}/events',
    tag: 'nodes',
    operationId: 'sendNodeEvent',
    summary:
      'Send an external event to a node (versioned by eventTs; the instance becomes due at once, unless it is parked)',
    params: nodePathSchema,
    body: eventBodySchema,
    responses: {
      202: { description: 'stored', schema: eventResponseSchema },
      ...INSTANCE_WRITE_ERRORS,
      404: errorAnswer('unknown instance or node'),
      409: errorAnswer('an event with a newer eventTs is stored, or the node or instance is terminal'),
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
  })
