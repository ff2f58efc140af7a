import { readFileSync } from 'node:fs'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { localDynamoDbClientConfig, startDynamoDbLocal } from '../src/local/dynamodb-local.js'

interface Capacity {
  CapacityUnits?: number
  Table?: { CapacityUnits?: number }
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>
}

const READS = /^(Get|Query|Scan|BatchGet)/

/**
 * Counts requests and consumed capacity of every command a DynamoDB client sends: it adds
 * ReturnConsumedCapacity=INDEXES to each request, so table and index units are reported apart.
 */
export class CapacityMeter {
  requests = new Map<string, number>()
  tableWriteUnits = 0
  indexWriteUnits = new Map<string, number>()
  readUnits = 0
  /** Read units as AWS bills them: every read request costs at least 0.5 (an eventually consistent read). */
  billedReadUnits = 0
  /** Items a query or scan examined, before any filter. */
  scannedItems = 0

  attach(client: DynamoDBClient): this {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        ;(args.input as Record<string, unknown>).ReturnConsumedCapacity = 'INDEXES'
        const result = await next(args)
        const output = result.output as { ConsumedCapacity?: Capacity | Capacity[]; ScannedCount?: number }
        this.record(String(context.commandName), output.ConsumedCapacity)
        this.scannedItems += output.ScannedCount ?? 0
        return result
      },
      { step: 'initialize', name: 'capacityMeter' },
    )
    return this
  }

  reset(): void {
    this.requests.clear()
    this.tableWriteUnits = 0
    this.indexWriteUnits.clear()
    this.readUnits = 0
    this.billedReadUnits = 0
    this.scannedItems = 0
  }

  record(command: string, consumed: Capacity | Capacity[] | undefined): void {
    this.requests.set(command, (this.requests.get(command) ?? 0) + 1)
    for (const capacity of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      if (READS.test(command)) {
        this.readUnits += capacity.CapacityUnits ?? 0
        this.billedReadUnits += Math.max(0.5, capacity.CapacityUnits ?? 0)
        continue
      }
      this.tableWriteUnits += capacity.Table?.CapacityUnits ?? capacity.CapacityUnits ?? 0
      for (const [name, units] of Object.entries(capacity.GlobalSecondaryIndexes ?? {})) {
        this.indexWriteUnits.set(name, (this.indexWriteUnits.get(name) ?? 0) + (units.CapacityUnits ?? 0))
      }
    }
  }

  get writeUnits(): number {
    return this.tableWriteUnits + [...this.indexWriteUnits.values()].reduce((a, b) => a + b, 0)
  }

  get requestCount(): number {
    return [...this.requests.values()].reduce((a, b) => a + b, 0)
  }
}

/** DynamoDB Local for a measurement: the one at DYNAMODB_ENDPOINT, or one started (and stopped) here. */
export const withDynamoDb = async (
  fn: (config: ReturnType<typeof localDynamoDbClientConfig>, server?: { pid: number }) => Promise<void>,
) => {
  const external = process.env.DYNAMODB_ENDPOINT
  const local = external ? undefined : await startDynamoDbLocal()
  try {
    const pid = local?.pid
    await fn(localDynamoDbClientConfig(external ?? (local?.endpoint as string)), pid ? { pid } : undefined)
  } finally {
    await local?.stop()
  }
}

/**
 * The CPU a process has used so far (user + system, ms), from /proc (Linux); undefined where there is none. The
 * benches read DynamoDB Local's with it: the server's work per request, beside the client's.
 */
export const processCpuMs = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces, in parentheses): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

/** Linux's USER_HZ, 100 on every platform Node supports there. */
const CLOCK_TICKS_PER_SECOND = 100
