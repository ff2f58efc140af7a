import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger'
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware'
import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics'
import middy from '@middy/core'
import type { Context } from 'aws-lambda'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { LocalQueue } from '../../src/adapters/memory/local-queue.js'
import { powertoolsLogger } from '../../src/adapters/powertools/powertools-logger.js'
import { metricsDiagnostics, powertoolsMetrics } from '../../src/adapters/powertools/powertools-metrics.js'
import { LockConflictError } from '../../src/core/errors.js'
import { InProcessMetrics, MetricName } from '../../src/core/metrics.js'
import { runTick } from '../../src/core/tick.js'
import { sqsConsumer } from '../../src/handlers/sqs-batch.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { orderWorkflow } from '../../src/workflows/order.js'
import { createTestTable, FakeClock, newTestEngine, type TestTable } from '../support/harness.js'
import { runMessageBody, sqsRecord } from '../support/sqs-records.js'

/**
 * What a Lambda function writes through Powertools: JSON log lines that carry the Lambda context and the ids of
 * the instance and node, and CloudWatch EMF lines holding the engine's metrics.
 */

let table: TestTable
beforeAll(async () => {
  table = await createTestTable('observability')
})

/** Everything written to stdout and stderr meanwhile (Powertools writes its JSON there), as parsed lines. */
let written: string[] = []
const originals = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) }
beforeEach(() => {
  written = []
  const capture = (chunk: unknown) => {
    written.push(String(chunk))
    return true
  }
  process.stdout.write = capture as typeof process.stdout.write
  process.stderr.write = capture as typeof process.stderr.write
})
afterEach(() => {
  process.stdout.write = originals.out
  process.stderr.write = originals.err
})

const jsonLines = (): Record<string, unknown>[] =>
  written
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)

const lambdaContext = (requestId: string): Context =>
  ({
    functionName: 'tickflow-test-worker',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tickflow-test-worker',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    getRemainingTimeInMillis: () => 30_000,
  }) as unknown as Context

const newPowertools = (level: 'DEBUG' | 'INFO' = 'INFO') => {
  const logger = new PowertoolsLogger({ serviceName: 'tickflow-test', logLevel: level })
  const emf = new PowertoolsMetrics({
    namespace: 'tickflow',
    serviceName: 'tickflow-test',
    logger: metricsDiagnostics(logger),
  })
  return { logger, emf }
}

describe('log lines through Powertools Logger', () => {
  it('carry the Lambda context, and the instance, type and node ids on every line of a pass', async () => {
    const { logger } = newPowertools()
    const { engine } = newTestEngine(table, { logger: powertoolsLogger(logger) })
    engine.register(orderWorkflow)
    const handler = middy(async () => engine.create({ workflowType: 'order', context: { lines: [] } })).use(
      injectLambdaContext(logger),
    )

    const created = await handler({}, lambdaContext('req-1'))

    const lines = jsonLines().filter((line) => line.instanceId === created.instanceId)
    expect(lines.map((line) => line.message)).toEqual(
      expect.arrayContaining(['node error', 'workflow instance failed', 'workflow instance created']),
    )
    for (const line of jsonLines()) {
      expect(line, String(line.message)).toMatchObject({
        function_request_id: 'req-1',
        function_name: 'tickflow-test-worker',
        cold_start: expect.any(Boolean),
        service: 'tickflow-test',
        instanceId: created.instanceId,
        workflowType: 'order',
      })
    }
    const nodeLines = lines.filter(
      (line) => line.message === 'node error' || line.message === 'workflow instance failed',
    )
    for (const line of nodeLines) expect(line.nodeId).toBe('validate')
  })

  it('carry the instance and type ids on the lines of a pass run from the run queue', async () => {
    const { logger } = newPowertools()
    const clock = new FakeClock()
    const { engine } = newTestEngine(table, { logger: powertoolsLogger(logger), clock })
    engine.register(approvalWorkflow)
    const created = await engine.create({ workflowType: 'approval', context: { requester: 'ada' } })
    await engine.addNodeEvent({
      instanceId: created.instanceId,
      nodeId: 'review',
      eventTs: 1,
      content: { decision: 'approved' },
    })
    written = []
    const consumer = sqsConsumer('run', {
      engine,
      logger: powertoolsLogger(logger),
      deadLetters: new LocalQueue({ name: 'dlq' }),
      maxReceiveCount: 5,
    })

    await consumer({ Records: [runRecord(created.instanceId)] } as never)

    const lines = jsonLines()
    expect(lines.map((line) => line.message)).toContain('run message processed')
    for (const line of lines) {
      expect(line, String(line.message)).toMatchObject({ instanceId: created.instanceId, workflowType: 'approval' })
    }
  })

  it('write the level the engine chose, and a line with a severity has the level it names', async () => {
    const { logger } = newPowertools()
    const { engine } = newTestEngine(table, { logger: powertoolsLogger(logger) })
    engine.register(orderWorkflow)

    await engine.create({ workflowType: 'order', context: { lines: [] } })

    const failure = jsonLines().find((line) => line.message === 'node error')
    expect(failure).toMatchObject({ level: 'WARN' })
    const failed = jsonLines().find((line) => line.message === 'workflow instance failed')
    expect(failed).toMatchObject({ level: 'WARN' })
    for (const line of jsonLines()) {
      if (typeof line.severity === 'string') {
        expect(line.level).toBe(line.severity === 'warning' ? 'WARN' : 'ERROR')
      }
    }
  })

  it('at info level, write nothing for a skipped wake-up or an empty tick', async () => {
    const { logger } = newPowertools('INFO')
    const clock = new FakeClock()
    const { engine, store } = newTestEngine(table, { logger: powertoolsLogger(logger), clock })
    engine.register(approvalWorkflow)
    const created = await engine.create({ workflowType: 'approval', context: { requester: 'ada' } })
    written = []

    // The review waits 60 s: a wake-up now finds nothing due, and a tick now finds nothing due.
    const consumer = sqsConsumer('run', {
      engine,
      logger: powertoolsLogger(logger),
      deadLetters: new LocalQueue({ name: 'dlq' }),
      maxReceiveCount: 5,
    })
    await consumer({ Records: [runRecord(created.instanceId)] } as never)
    await runTick(
      { store, queue: new LocalQueue({ name: 'run' }), clock, logger: powertoolsLogger(logger) },
      { remainingTimeMs: 10_000 },
    )

    expect(jsonLines().filter((line) => line.level === 'INFO')).toEqual([])
  })
})

const runRecord = (instanceId: string, body?: string) =>
  sqsRecord(body ?? runMessageBody(instanceId), { messageId: `m-${instanceId}` })

describe('metrics in CloudWatch EMF through Powertools Metrics', () => {
  it('hold passes, nodes completed and failed by type, worker errors by class, lease conflicts, due count, tick lag and dead letters', async () => {
    const { logger, emf } = newPowertools()
    const metrics = powertoolsMetrics(emf)
    const clock = new FakeClock()
    const { engine, store } = newTestEngine(table, { logger: powertoolsLogger(logger), metrics, clock })
    engine.register(orderWorkflow)
    engine.register(approvalWorkflow)

    // A failed order, and an approval whose first node completes and whose review waits.
    await engine.create({ workflowType: 'order', context: { lines: [] } })
    const approval = await engine.create({ workflowType: 'approval', context: { requester: 'ada' } })
    // Another runner holds the approval: a pass now is a lease conflict.
    await store.acquireLease(approval.instanceId, 'someone-else', clock.nowMs(), clock.nowMs() + 30_000, {})
    await expect(engine.runWorkflow(approval.instanceId)).rejects.toBeInstanceOf(LockConflictError)
    // Two minutes later the tick finds the approval overdue.
    clock.advanceSeconds(120)
    await runTick(
      { store, queue: new LocalQueue({ name: 'run' }), clock, logger: powertoolsLogger(logger), metrics },
      { remainingTimeMs: 10_000 },
    )
    // A message that can never succeed is dead-lettered.
    const consumer = sqsConsumer('run', {
      engine,
      logger: powertoolsLogger(logger),
      metrics,
      deadLetters: new LocalQueue({ name: 'dlq' }),
      maxReceiveCount: 5,
    })
    await consumer({ Records: [runRecord('x', 'not json')] } as never)
    emf.publishStoredMetrics()

    const emfLines = jsonLines().filter((line) => '_aws' in line)
    const values = new Map<string, Record<string, unknown>[]>()
    for (const line of emfLines) {
      const directive = (line._aws as { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] })
        .CloudWatchMetrics[0]
      expect(directive?.Namespace).toBe('tickflow')
      for (const metric of directive?.Metrics ?? []) values.set(metric.Name, [...(values.get(metric.Name) ?? []), line])
    }
    expect([...values.keys()].sort()).toEqual(Object.values(MetricName).sort())
    const one = (name: string, where: Record<string, unknown>) =>
      values.get(name)?.find((line) => Object.entries(where).every(([key, value]) => line[key] === value))
    expect(one('Passes', { workflowType: 'order', service: 'tickflow-test' })).toBeDefined()
    expect(one('NodesFailed', { workflowType: 'order', NodesFailed: 1 })).toBeDefined()
    expect(one('NodesCompleted', { workflowType: 'approval' })).toBeDefined()
    expect(one('WorkerErrors', { workflowType: 'order', errorClass: 'FailedWithFailedError' })).toBeDefined()
    expect(one('LeaseConflicts', { kind: 'held', LeaseConflicts: 1 })).toBeDefined()
    expect(Number(one('DueInstances', {})?.DueInstances)).toBeGreaterThanOrEqual(1)
    expect(Number(one('OldestTickLagMs', {})?.OldestTickLagMs)).toBeGreaterThanOrEqual(60_000)
    expect(one('DeadLetters', { queue: 'run', DeadLetters: 1 })).toBeDefined()
  })

  it('are counted the same by the in-process implementation the tests use', async () => {
    const metrics = new InProcessMetrics()
    const { engine } = newTestEngine(table, { metrics })
    engine.register(orderWorkflow)

    await engine.create({ workflowType: 'order', context: { lines: [{ sku: 'A', quantity: 1, price: 2 }] } })
    await engine.create({ workflowType: 'order', context: { lines: [] } })

    expect(metrics.sum(MetricName.nodesCompleted, { workflowType: 'order' })).toBe(4 + 0)
    expect(metrics.sum(MetricName.nodesFailed, { workflowType: 'order' })).toBe(1)
    expect(metrics.sum(MetricName.workerErrors, { errorClass: 'FailedWithFailedError' })).toBe(1)
    expect(metrics.sum(MetricName.passes)).toBeGreaterThanOrEqual(2)
  })
})
