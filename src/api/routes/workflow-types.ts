import type { WorkflowDefinition } from '../../core/definition.js'
import type { Engine } from '../../core/engine.js'
import { typePathSchema, workflowTypeSchema, workflowTypesResponseSchema } from '../../schemas/http-api.js'
import { definitionGraph } from '../graph.js'
import { json } from '../http.js'
import { type Route, route } from '../router.js'
import { BAD_REQUEST, TYPE_NOT_FOUND } from './route-answers.js'
import type { ApiDeps } from './route-deps.js'

/** `/workflow-types…`: the registered workflow definitions, with their graphs. */
export const workflowTypeRoutes = ({ engine }: ApiDeps): Route[] => [
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
  })),
  mermaid: definitionGraph(definition),
})
