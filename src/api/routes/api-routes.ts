import type { Route } from '../router.js'
import { instanceRoutes } from './instances.js'
import { nodeRoutes } from './nodes.js'
import type { ApiDeps } from './route-deps.js'
import { scheduleRoutes } from './schedules.js'
import { workflowTypeRoutes } from './workflow-types.js'

export type { ApiDeps } from './route-deps.js'

/** Every route of the HTTP API's resources, in the order the OpenAPI document lists them. */
export const apiRoutes = (deps: ApiDeps): Route[] => [
  ...instanceRoutes(deps),
  ...nodeRoutes(deps),
  ...scheduleRoutes(deps),
  ...workflowTypeRoutes(deps),
]
