/** Small pure helpers of `npm run bench`: statistics, DynamoDB item sizes, number formatting, a worker pool. */
import { type AttributeValue, type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb'
import type { InstanceRecord } from '../src/core/store.js'
import { ulid } from '../src/system/defaults.js'

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8')

/** About one byte per two significant digits, plus one (leading and trailing zeros do not count). */
const numberSize = (value: string): number => {
  const digits = value.replace(/^[-+]/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '')
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1
}

/** Size of one attribute value by DynamoDB's rules ("Item sizes and formats" in the DynamoDB developer guide). */
export const attributeValueSize = (value: AttributeValue): number => {
  if (value.S !== undefined) return utf8(value.S)
  if (value.N !== undefined) return numberSize(value.N)
  if (value.B !== undefined) return value.B.byteLength
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1
  // A list or map costs 3 bytes, plus 1 byte per element.
  if (value.L !== undefined) return 3 + value.L.reduce((sum, element) => sum + 1 + attributeValueSize(element), 0)
  if (value.M !== undefined) {
    return (
      3 +
      Object.entries(value.M).reduce((sum, [name, element]) => sum + 1 + utf8(name) + attributeValueSize(element), 0)
    )
  }
  if (value.SS !== undefined) return value.SS.reduce((sum, element) => sum + utf8(element), 0)
  if (value.NS !== undefined) return value.NS.reduce((sum, element) => sum + numberSize(element), 0)
  if (value.BS !== undefined) return value.BS.reduce((sum, element) => sum + element.byteLength, 0)
  return 0
}

/** Item size as DynamoDB bills it: attribute names plus values. */
export const itemSizeBytes = (item: Record<string, AttributeValue>): number =>
  Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + attributeValueSize(value), 0)

/** Nearest-rank percentile of unsorted samples. */
export const percentile = (samples: readonly number[], p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

export const mean = (samples: readonly number[]): number =>
  samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : Number.NaN

/** `1,234.5` style, with exactly `digits` decimals. */
export const num = (value: number, digits = 0): string =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** Dollars with enough decimals to show small amounts. */
export const usd = (value: number): string => `$${num(value, value >= 10 ? 2 : value >= 0.1 ? 3 : 4)}`

/**
 * Runs `count` jobs on `concurrency` workers that take the next job as soon as they are free; the worker index is
 * passed along so each worker can use its own client.
 */
export const pool = async (
  count: number,
  concurrency: number,
  job: (index: number, worker: number) => Promise<void>,
): Promise<void> => {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        const index = next++
        await job(index, worker)
      }
    }),
  )
}

/**
 * An instance written straight to the store, for measuring the tick: waiting for a later time (in the due index, not
 * due), finished (not in the index), or due a second ago.
 */
export const syntheticInstance = (
  nowMs: number,
  kind: 'waiting' | 'completed' | 'due',
  workflowType = 'synthetic',
): InstanceRecord => ({
  id: ulid(nowMs),
  workflowType,
  status: kind === 'completed' ? 'completed' : 'running',
  input: { n: 1 },
  createdAtMs: nowMs,
  updatedAtMs: nowMs,
  definitionVersion: 'v1',
  nodes: {},
  events: {},
  eventSeq: 0,
  fence: 0,
  ...(kind === 'waiting' ? { dueAtMs: nowMs + 3_600_000 } : kind === 'due' ? { dueAtMs: nowMs - 1_000 } : {}),
})

/**
 * The store's own cost, as the benchmarks compare the engine with it: `count` conditional UpdateItems
 * (`SET fence = :next, updatedAtMs = :now` if `fence = :expected`) spread over `clients.length` workers, worker w
 * updating in turn only the items w, w + n, w + 2n, … of `items` (so no condition ever fails for a race). `versions`
 * holds each item's fence, which the items must carry (see `rawItem`).
 */
export const rawConditionalUpdates = async (
  clients: readonly DynamoDBClient[],
  tableName: string,
  keyOf: (item: number) => Record<string, AttributeValue>,
  versions: number[],
  count: number,
): Promise<void> => {
  const workers = clients.length
  await inTurns(count, workers, versions.length, async (worker, i) => {
    const version = versions[i] as number
    await (clients[worker] as DynamoDBClient).send(new UpdateItemCommand(rawUpdateInput(tableName, keyOf(i), version)))
    versions[i] = version + 1
  })
}

/**
 * A middleware that does nothing: a store on this client sends through the SDK, as one whose client carries
 * middleware of its own does (README, "The direct wire").
 */
export const throughTheSdk = (client: DynamoDBClient): void => {
  client.middlewareStack.add((next) => (args) => next(args), { step: 'initialize', name: 'passThrough' })
}

/** The raw conditional update of an item whose `fence` is at `version`: it moves it on by one. */
export const rawUpdateInput = (tableName: string, key: Record<string, AttributeValue>, version: number) => ({
  TableName: tableName,
  Key: key,
  UpdateExpression: 'SET fence = :next, updatedAtMs = :now',
  ConditionExpression: 'fence = :expected',
  ExpressionAttributeValues: {
    ':next': { N: String(version + 1) },
    ':expected': { N: String(version) },
    ':now': { N: String(Date.now()) },
  },
})

/** A copy of `template` under `key` that `rawConditionalUpdates` can update: with a `fence` at 1. */
export const rawItem = (
  template: Record<string, AttributeValue>,
  key: Record<string, AttributeValue>,
): Record<string, AttributeValue> => ({ ...template, ...key, fence: { N: '1' } })

/**
 * `count` calls of `fn` over `workers` concurrent workers, worker w taking in turn the items w, w + workers, … below
 * `items`: no two workers ever work on one item.
 */
export const inTurns = async (
  count: number,
  workers: number,
  items: number,
  fn: (worker: number, item: number) => Promise<void>,
): Promise<void> => {
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      const own = Array.from({ length: Math.ceil((items - worker) / workers) }, (__, k) => worker + k * workers)
      const mine = Math.floor(count / workers) + (worker < count % workers ? 1 : 0)
      for (let k = 0; k < mine; k++) await fn(worker, own[k % own.length] as number)
    }),
  )
}
