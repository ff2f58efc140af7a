import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger'
import type { Logger } from '../../core/ports.js'

/**
 * The engine's Logger port over Powertools Logger: JSON lines with the Lambda context, cold start and request id
 * (added by its middy middleware), the service, and the fields the engine passes (instanceId, workflowType, nodeId).
 * The level is the port's: `warn` is a WARN line, `error` an ERROR line.
 */
export const powertoolsLogger = (logger: PowertoolsLogger): Logger => ({
  log(level, message, fields) {
    if (fields === undefined) logger[level](message)
    else logger[level](message, { ...fields })
  },
})
