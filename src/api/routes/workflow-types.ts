import type { NodeDefinition, WorkflowDefinition } from '../../core/definition.js'
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
