/**
 * The control-flow section of `npm run bench`: what a node skipped by its condition costs. A 20-node workflow whose
 * every other node is skipped by a condition (`when`) against the 10-node workflow of the nodes that run, created
 * with run, sequentially on one engine: DynamoDB requests and write units per instance. A skip is stored with the
 * write that decides it (the outcome of the node before it), never in a write of its own.
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { defineWorkflow } from '../src/core/builder.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { CapacityMeter } from './capacity-meter.js'

const RUNNING = 10

type Spec = { next?: string[]; when?: string; run: (ctx: NodeContext) => void }

/**
 * Where the skipped nodes are: `interleaved`, each step also leads to a side node whose condition is false (each skip
 * decided with the outcome of the step before it, then carried in every later write of the instance item); `tail`,
 * the last step leads to ten such nodes (all decided with the last outcome); `none`, the ten steps alone.
 */
export type SkipShape = 'none' | 'interleaved' | 'tail'

const workflow = (type: string, shape: SkipShape) => {
  const step = (i: number) => `step${String(i).padStart(2, '0')}`
  const side = (i: number) => `side${String(i).padStart(2, '0')}`
  const sides = Array.from({ length: RUNNING }, (_, i) => side(i + 1))
  const nodes: Record<string, Spec> = {}
  for (let i = 1; i <= RUNNING; i++) {
    const next = [
      ...(i < RUNNING ? [step(i + 1)] : shape === 'tail' ? sides : []),
      ...(shape === 'interleaved' ? [side(i)] : []),
    ]
    nodes[step(i)] = { ...(next.length ? { next } : {}), run: (ctx) => ctx.set('step', i) }
  }
  // Only for large orders: never here.
  if (shape !== 'none')
    for (const id of sides) nodes[id] = { when: '$input.amount > 1000', run: (ctx) => ctx.set('side', id) }
  return defineWorkflow({ type, nodes })
}

export interface ShapeCost {
  shape: SkipShape
  /** Per instance. */
  requests: number
  writeUnits: number
  tableWriteUnits: number
  /** Skipped nodes per instance (checked on the last instance). */
  skipped: number
}

const SHAPES: readonly SkipShape[] = ['none', 'interleaved', 'tail']

/**
 * Runs `instances` of each shape, interleaved (so that all see the same machine), with history on as deployed; a
 * short warm-up first. One engine and client per shape, each metered on its own.
 */
export const measureSkipCost = async (
  clientConfig: DynamoDBClientConfig,
  instances: number,
  progress: (message: string) => void,
): Promise<ShapeCost[]> => {
  const setup = new DynamoDBClient(clientConfig)
  const tableName = `bench-skips-${Date.now()}`
  await ensureTable(setup, tableName)
  const runs = SHAPES.map((shape) => {
    const client = new DynamoDBClient(clientConfig)
    const meter = new CapacityMeter().attach(client)
    const engine = new Engine({
      store: new DynamoDbStore({ tableName, client }),
      clock: systemClock,
      ids: createIdGenerator(),
      random: mathRandom,
    })
    engine.register(workflow(`bench-skips-${shape}`, shape))
    const run = async () => {
      const created = await engine.create({ workflowType: `bench-skips-${shape}`, context: { amount: 12.5 } })
      if (created.status !== 'completed') throw new Error(`instance ${created.instanceId} ended ${created.status}`)
      return created.instanceId
    }
    return { shape, client, meter, engine, run, last: '' }
  })
  for (let i = 0; i < 5; i++) for (const run of runs) await run.run()
  for (const run of runs) run.meter.reset()
  progress(`skips: ${instances} instances of each shape (${SHAPES.join(', ')}), interleaved`)
  for (let i = 0; i < instances; i++) for (const run of runs) run.last = await run.run()
  const costs: ShapeCost[] = []
  for (const { shape, meter, engine, last, client } of runs) {
    const figures = {
      requests: meter.requestCount / instances,
      writeUnits: meter.writeUnits / instances,
      tableWriteUnits: meter.tableWriteUnits / instances,
    }
    const skipped = (await engine.get(last)).nodes.filter((node) => node.status === 'skipped').length
    costs.push({ shape, ...figures, skipped })
    client.destroy()
  }
  setup.destroy()
  return costs
}

const fixed = (value: number, digits = 2) => value.toFixed(digits)

/** The rows of the section: what, result, notes. */
export const skipCostRows = (costs: readonly ShapeCost[]): [string, string, string][] => {
  const of = (shape: SkipShape) => costs.find((cost) => cost.shape === shape) as ShapeCost
  const none = of('none')
  const rows: [string, string, string][] = []
  for (const shape of ['interleaved', 'tail'] as const) {
    const cost = of(shape)
    const extra = cost.writeUnits - none.writeUnits
    rows.push([
      `20 nodes, ${cost.skipped} skipped by their condition (${shape === 'tail' ? 'at the tail' : 'interleaved'}) ÷ the 10 that run alone: WCU per instance`,
      `${fixed(cost.writeUnits)} ÷ ${fixed(none.writeUnits)}`,
      `${extra <= 0 ? 'no more' : `${fixed(extra)} more (${fixed((100 * extra) / none.writeUnits, 0)} %)`}; write requests ${fixed(cost.requests)} ÷ ${fixed(none.requests)} (a skip is stored by the write that decides it); table ${fixed(cost.tableWriteUnits)} ÷ ${fixed(none.tableWriteUnits)}; ${shape === 'tail' ? 'the ten skips travel in the last write' : 'each skip stays in the instance item for every later write (its packed record and history entry, about 27 bytes), billed per KB'}`,
    ])
  }
  return rows
}
