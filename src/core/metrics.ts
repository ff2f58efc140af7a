/**
 * The metrics port: what the engine counts, not who publishes it (Powertools EMF in Lambda, nothing by default, an
 * in-process list in tests). Names and units are fixed here so that dashboards and alarms can rely on them.
 */
export const MetricName = {
  /** Passes run over an instance (dimension workflowType). */
  passes: 'Passes',
  /** Nodes completed in a pass (dimension workflowType). */
  nodesCompleted: 'NodesCompleted',
  /** Nodes failed for good in a pass (dimension workflowType). */
  nodesFailed: 'NodesFailed',
  /** Errors thrown by workers, NotReady excluded (dimensions workflowType, errorClass). */
  workerErrors: 'WorkerErrors',
  /** Another runner held the instance (kind held) or took it over (kind lost). */
  leaseConflicts: 'LeaseConflicts',
  /** Instances found due by one tick. */
  dueInstances: 'DueInstances',
  /** How late the most overdue instance a tick found was; 0 when none. */
  oldestTickLagMs: 'OldestTickLagMs',
  /** 1 when a tick ran out of time before it read every shard to the end (instances left unread), else 0. */
  incompleteTicks: 'IncompleteTicks',
  /** Messages sent to a dead-letter queue (dimension queue). */
  deadLetters: 'DeadLetters',
} as const
export type MetricName = (typeof MetricName)[keyof typeof MetricName]

export type MetricUnit = 'Count' | 'Milliseconds'

export interface Metrics {
  add(name: MetricName, value: number, unit: MetricUnit, dimensions?: Readonly<Record<string, string>>): void
}

export const noMetrics: Metrics = { add: () => {} }

export interface MetricPoint {
  name: MetricName
  value: number
  unit: MetricUnit
  dimensions: Readonly<Record<string, string>>
}

/** Keeps every point in memory: for tests and for reading what a run counted. */
export class InProcessMetrics implements Metrics {
  readonly points: MetricPoint[] = []

  add(name: MetricName, value: number, unit: MetricUnit, dimensions: Readonly<Record<string, string>> = {}): void {
    this.points.push({ name, value, unit, dimensions: { ...dimensions } })
  }

  /** The sum of a metric over the points whose dimensions include `where`. */
  sum(name: MetricName, where: Readonly<Record<string, string>> = {}): number {
    return this.points
      .filter((point) => point.name === name)
      .filter((point) => Object.entries(where).every(([key, value]) => point.dimensions[key] === value))
      .reduce((total, point) => total + point.value, 0)
  }
}
