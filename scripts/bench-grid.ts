/**
 * The size grid of `npm run bench`: DynamoDB requests, write and read units per node step for linear synchronous
 * workflows of 5, 20 and 100 nodes whose nodes each store a 100 B, 4 KB or 32 KB output, and what a million such
 * steps cost on demand. A shape that cannot complete (the instance outgrows its budget) is marked with where it
 * stopped. BENCH_GRID_INSTANCES (default 3) sets the instances per cell.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { MAX_INSTANCE_BYTES } from '../src/adapters/dynamodb/write-layout.js'
import { defineWorkflow } from '../src/core/builder.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { num, usd } from './bench-support.js'
import { CapacityMeter } from './capacity-meter.js'

export const GRID_NODES = [5, 20, 100] as const
export const GRID_OUTPUTS = [
  { label: '100 B', bytes: 100 },
  { label: '4 KB', bytes: 4 * 1024 },
  { label: '32 KB', bytes: 32 * 1024 },
] as const

export interface GridPrices {
  writeRequestUnit: number
  readRequestUnit: number
}

export interface GridCell {
  nodes: number
  output: string
  instances: number
  /** Node steps completed over all instances of the cell. */
  steps: number
  completed: number
  /** Where an instance that could not complete stopped, and why. */
  stopped?: string
  requestsPerStep: number
  writeUnitsPerStep: number
  tableWriteUnitsPerStep: number
  readUnitsPerStep: number
  dollarsPerMillionSteps: number
}

/** A linear workflow of `nodes` nodes, each storing an output of about `bytes` bytes (as JSON). */
const linear = (nodes: number, bytes: number) => {
  const ids = Array.from({ length: nodes }, (_, i) => `n${String(i + 1).padStart(3, '0')}`)
  const run = (ctx: NodeContext) => ctx.set('out', 'x'.repeat(Math.max(0, bytes - 10)))
  return defineWorkflow({
    type: `grid-${nodes}-${bytes}`,
    nodes: Object.fromEntries(
      ids.map((id, i) => [id, { ...(i + 1 < nodes ? { next: [ids[i + 1] as string] } : {}), run }]),
    ) as Record<string, { next?: string[]; run: (ctx: NodeContext) => void }>,
  })
}

export const runSizeGrid = async (
  clientConfig: DynamoDBClientConfig,
  prices: GridPrices,
  instances: number,
  progress: (message: string) => void,
): Promise<GridCell[]> => {
  const tableName = `bench-grid-${Date.now()}`
  const metered = new DynamoDBClient(clientConfig)
  const plain = new DynamoDBClient(clientConfig)
  const meter = new CapacityMeter().attach(metered)
  await ensureTable(plain, tableName)
  // The largest budget the engine accepts, so that the grid shows what the layout itself can hold.
  const limits = { maxInstanceBytes: MAX_INSTANCE_BYTES }
  const engine = new Engine({
    store: new DynamoDbStore({ tableName, client: metered }),
    clock: systemClock,
    ids: createIdGenerator(),
    random: mathRandom,
    limits,
  })
  const reader = new Engine({
    store: new DynamoDbStore({ tableName, client: plain }),
    clock: systemClock,
    ids: createIdGenerator(),
    random: mathRandom,
    limits,
  })
  const cells: GridCell[] = []
  for (const nodes of GRID_NODES) {
    for (const output of GRID_OUTPUTS) {
      const workflow = linear(nodes, output.bytes)
      engine.register(workflow)
      reader.register(workflow)
      // One instance outside the meter stores the definition snapshot, a one-time cost per version.
      await engine.create({ workflowType: workflow.config.id, context: { warm: true } })
      meter.reset()
      let steps = 0
      let completed = 0
      let stopped: string | undefined
      for (let i = 0; i < instances; i++) {
        const result = await engine.create({ workflowType: workflow.config.id, context: { i } })
        const detail = await reader.get(result.instanceId)
        const done = detail.nodes.filter((node) => !['root', 'end'].includes(node.id) && node.status === 'completed')
        steps += done.length
        if (result.status === 'completed') {
          completed += 1
          continue
        }
        const failed = detail.nodes.find((node) => node.status === 'failed')
        const error = String((failed?.context?.system as { last_error?: string } | undefined)?.last_error ?? '')
        stopped ??= `${result.status} at node ${done.length + 1} of ${nodes}${error ? `: ${error.slice(0, 90)}` : ''}`
      }
      const per = (value: number) => (steps ? value / steps : Number.NaN)
      const writeUnits = per(meter.writeUnits)
      const readUnits = per(meter.billedReadUnits)
      const cell: GridCell = {
        nodes,
        output: output.label,
        instances,
        steps,
        completed,
        requestsPerStep: per(meter.requestCount),
        writeUnitsPerStep: writeUnits,
        tableWriteUnitsPerStep: per(meter.tableWriteUnits),
        readUnitsPerStep: readUnits,
        dollarsPerMillionSteps: 1e6 * (writeUnits * prices.writeRequestUnit + readUnits * prices.readRequestUnit),
        ...(stopped ? { stopped } : {}),
      }
      cells.push(cell)
      progress(
        `grid: ${nodes} nodes × ${output.label}: ${completed}/${instances} completed, ${num(cell.writeUnitsPerStep, 2)} WCU per step`,
      )
    }
  }
  metered.destroy()
  plain.destroy()
  return cells
}

/** The grid as a Markdown table. */
export const gridTable = (cells: readonly GridCell[]): string[] => [
  '| nodes | output per node | completes | requests / node | WCU / node (table) | RCU / node | DynamoDB $ per million node steps |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...cells.map((cell) =>
    [
      '',
      cell.nodes,
      cell.output,
      cell.completed === cell.instances
        ? `yes (${cell.instances}/${cell.instances})`
        : `**no** (${cell.completed}/${cell.instances}): ${(cell.stopped ?? '').replaceAll('|', '\\|')}`,
      num(cell.requestsPerStep, 2),
      `${num(cell.writeUnitsPerStep, 2)} (${num(cell.tableWriteUnitsPerStep, 2)})`,
      num(cell.readUnitsPerStep, 2),
      usd(cell.dollarsPerMillionSteps),
      '',
    ]
      .join(' | ')
      .trim(),
  ),
]
