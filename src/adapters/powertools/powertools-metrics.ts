import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger'
import { MetricUnit, type Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics'
import type { Metrics, MetricUnit as PortUnit } from '../../core/metrics.js'

const UNITS: Record<PortUnit, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  Count: MetricUnit.Count,
  Milliseconds: MetricUnit.Milliseconds,
}

/**
 * The engine's Metrics port over Powertools Metrics (CloudWatch EMF on stdout). A metric without dimensions is
 * stored and published with the others when the invocation ends (the `logMetrics` middleware); one with dimensions
 * (workflowType, errorClass, queue) is published at once as its own EMF line, so dimensions never mix.
 */
export const powertoolsMetrics = (metrics: PowertoolsMetrics): Metrics => ({
  add(name, value, unit, dimensions) {
    if (dimensions === undefined || Object.keys(dimensions).length === 0) {
      metrics.addMetric(name, UNITS[unit], value)
      return
    }
    const single = metrics.singleMetric()
    for (const [key, dimension] of Object.entries(dimensions)) single.addDimension(key, dimension)
    single.addMetric(name, UNITS[unit], value)
  },
})

/**
 * Where Powertools Metrics sends its own warnings: an invocation that counted nothing (an API read) is routine,
 * so that one goes to debug; the others stay warnings.
 */
export const metricsDiagnostics = (logger: PowertoolsLogger) => ({
  debug: (...args: unknown[]) => logger.debug(String(args[0])),
  info: (...args: unknown[]) => logger.info(String(args[0])),
  warn: (...args: unknown[]) =>
    String(args[0]).startsWith('No application metrics to publish')
      ? logger.debug(String(args[0]))
      : logger.warn(String(args[0])),
  error: (...args: unknown[]) => logger.error(String(args[0])),
})
