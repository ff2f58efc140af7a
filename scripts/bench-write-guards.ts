/**
 * What DynamoDB Local charges for each part of the engine's step write. One real instance of the hot-path workflow
 * runs first: its item is read inside node 2's worker (node 1 stored, node 2 running) and the write that stores node
 * 2 and starts node 3 is captured as sent. Copies of that item then take, in turns round by round (the items put back
 * before each variant, each variant on the same copies, 16 workers, each item updated by one worker only):
 *
 * - `raw`: the raw conditional update of one number (the store's ceiling in `bench-hot-path.ts`);
 * - `content`: only what a step must store — its two node records, its history entries set, the time — under the
 *   lease's condition;
 * - `content, history appended`: the same with the entries appended to the history, as an append-only history must;
 * - `engine`: the write as the engine sends it, its guards included (its place in the instance's writes, the budget's
 *   total and room, the event counter); and as a writer sends it that does not know whether the item holds a
 *   history list and a total (`if_not_exists`, and the room term allowing for no total);
 * - `guards trimmed`: the engine's write with the budget's total set rather than added and no room term: the least
 *   a writer that knows the total exactly could send;
 * - `place folded into the event counter`: the trimmed write without `ws`, conditioned on and moving `es` alone;
 * - the engine's write with its history entries stored otherwise: the whole history set (a writer that knows it
 *   whole could), or each entry set at its index.
 *
 * Prints DynamoDB Local's CPU per update (its process, from /proc) and updates per second, each ÷ the raw update's.
 *   GUARDS_ROUNDS (7; the first is a warm-up and not counted), GUARDS_UPDATES (5 per item per round)
 */
import '../src/local/quiet-sdk.js'
import { performance } from 'node:perf_hooks'
import {
  type AttributeValue,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb'
import { DynamoDbStore } from '../src/adapters/dynamodb/dynamodb-store.js'
import { HttpWire } from '../src/adapters/dynamodb/http-wire.js'
import { instanceKey } from '../src/adapters/dynamodb/keys.js'
import { ensureTable } from '../src/adapters/dynamodb/table.js'
import { Engine } from '../src/core/engine.js'
import type { NodeContext } from '../src/core/node-context.js'
import { createIdGenerator, mathRandom, systemClock } from '../src/system/defaults.js'
import { hotPathContext, hotPathOutput, linearFive } from './bench-hot-path.js'
import { inTurns, num, rawItem, rawUpdateInput } from './bench-support.js'
import { processCpuMs, withDynamoDb } from './capacity-meter.js'

const WORKERS = 16
const ITEMS = WORKERS * 20
const ROUNDS = Number(process.env.GUARDS_ROUNDS ?? 7)
const UPDATES_PER_ITEM = Number(process.env.GUARDS_UPDATES ?? 5)

/** `text` with `from` replaced by `to`; throws when `from` is not in it (the write's form changed: update this). */
const swap = (text: string, from: string, to: string): string => {
  if (!text.includes(from)) throw new Error(`the step write no longer holds '${from}': ${text}`)
  return text.replace(from, to)
}

await withDynamoDb(async (config, server) => {
  const client = new DynamoDBClient(config)
  const stamp = Date.now()
  const tableName = `write-guards-${stamp}`
  const copies = `write-guards-copies-${stamp}`
  await ensureTable(client, tableName)
  await ensureTable(client, copies)

  // One instance, its item read before the captured write and that write as sent.
  let midItem: Record<string, AttributeValue> | undefined
  const sent: UpdateItemCommandInput[] = []
  const store = new DynamoDbStore({ tableName, client })
  const engine = new Engine({ store, clock: systemClock, ids: createIdGenerator(), random: mathRandom })
  engine.register(
    linearFive('write-guards', (n) => async (ctx: NodeContext) => {
      for (const [key, value] of Object.entries(hotPathOutput(n))) ctx.set(key, value)
      if (n !== 2) return
      const key = instanceKey(ctx.instanceId)
      const read = await client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { pk: { S: key.pk }, sk: { S: key.sk } },
          ConsistentRead: true,
        }),
      )
      midItem = read.Item
    }),
  )
  // A middleware makes the store send through the SDK, where the write can be captured.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UpdateItemCommand') sent.push(structuredClone(args.input) as UpdateItemCommandInput)
      return next(args)
    },
    { step: 'initialize', name: 'writeGuardsCapture' },
  )
  const created = await engine.create({ workflowType: 'write-guards', context: hotPathContext(0) })
  if (created.status !== 'completed') throw new Error(`the instance ended ${created.status}`)
  const template = midItem
  const write = sent.find(
    (input) =>
      /n\.#n0 = :n0, n\.#n1 = :n1/.test(input.UpdateExpression ?? '') &&
      input.ExpressionAttributeNames?.['#n0'] === 'step2',
  )
  if (!template || !write) throw new Error('the mid-run item or the step write was not captured')
  const values = write.ExpressionAttributeValues as Record<string, AttributeValue>
  const numberOf = (name: string) => Number((values[name] as { N: string }).N)
  const wseq = numberOf(':wseq')
  const es = numberOf(':es')
  if (template.ws?.N !== String(wseq) || template.es?.N !== String(es)) {
    throw new Error('the item read is not the one the captured write expects')
  }

  const keyOf = (i: number) => ({ pk: { S: `W#${String(i).padStart(30, '0')}` }, sk: { S: instanceKey('').sk } })
  const versions = Array.from({ length: ITEMS }, () => 1)
  const updates = Array.from({ length: ITEMS }, () => 0)
  const putBack = async () => {
    await inTurns(ITEMS, WORKERS, ITEMS, async (_, i) => {
      await client.send(new PutItemCommand({ TableName: copies, Item: rawItem(template, keyOf(i)) }))
    })
    versions.fill(1)
    updates.fill(0)
  }

  const engineExpression = write.UpdateExpression as string
  const engineCondition = write.ConditionExpression as string
  // The write as a writer sends it that does not know whether the item holds a history list and a total yet.
  const unknownExpression = swap(
    swap(engineExpression, 'list_append(h, :h)', 'list_append(if_not_exists(h, :noH), :h)'),
    'b = b + :bytes',
    'b = if_not_exists(b, :bytesBase) + :bytes',
  )
  const unknownCondition = swap(engineCondition, 'b <= :room', '(attribute_not_exists(b) OR b <= :room)')
  const unknownValues = { ...values, ':noH': { L: [] }, ':bytesBase': template.b as AttributeValue }
  const trimmedExpression = swap(engineExpression, 'b = b + :bytes', 'b = :total')
  const trimmedCondition = swap(engineCondition, ' AND b <= :room', '')
  const foldedExpression = swap(trimmedExpression, 'ws = :wseqNext', 'es = :esNext')
  const foldedCondition = swap(trimmedCondition, ' AND ws = :wseq', '')
  const { ':bytes': bytes, ':room': _room, ...trimmedValues } = values
  const total = (k: number) => ({
    N: String(Number((template.b as { N: string }).N) + (k + 1) * Number((bytes as { N: string }).N)),
  })
  const { ':wseq': _wseq, ':wseqNext': _wseqNext, ':es': _es, ...foldedValues } = trimmedValues
  const contentValues = Object.fromEntries(
    [':ua', ':h', ':n0', ':n1', ':owner', ':fence'].map((name) => [name, values[name] as AttributeValue]),
  )
  const on = (i: number) => ({
    TableName: copies,
    Key: keyOf(i),
    ExpressionAttributeNames: write.ExpressionAttributeNames,
  })
  // The history as it stands after k appends of this write's entries: what a writer that knows it whole could set.
  const entries = (values[':h'] as { L: AttributeValue[] }).L
  const before = (template.h as { L: AttributeValue[] }).L
  const wholeAfter = (k: number) => ({ L: [...before, ...Array.from({ length: k + 1 }, () => entries).flat()] })
  const { ':h': _h, ...indexValues } = values
  const appendedAt = (k: number) =>
    entries.map((_, e) => `h[${before.length + k * entries.length + e}] = :h${e}`).join(', ')
  const entryValues = Object.fromEntries(entries.map((entry, e) => [`:h${e}`, entry]))
  /** A variant of the engine's write: its k-th on an item is at its k-th place in the item's writes. */
  const engineWrite =
    (expression: (k: number) => string, condition: string, valuesAt: (k: number) => Record<string, AttributeValue>) =>
    (i: number, k: number) => ({
      ...write,
      ...on(i),
      UpdateExpression: expression(k),
      ConditionExpression: condition,
      ExpressionAttributeValues: valuesAt(k),
    })
  const placeAt = (k: number) => ({ ':wseq': { N: String(wseq + k) }, ':wseqNext': { N: String(wseq + k + 1) } })
  const variants: [string, (i: number, k: number) => object][] = [
    ['raw conditional update of one number', (i) => rawUpdateInput(copies, keyOf(i), versions[i] as number)],
    [
      "a step's content (node records, history set, time; the lease's condition)",
      (i) => ({
        ...on(i),
        UpdateExpression: 'SET ua = :ua, h = :h, n.#n0 = :n0, n.#n1 = :n1',
        ConditionExpression: 'lo = :owner AND f = :fence',
        ExpressionAttributeValues: contentValues,
      }),
    ],
    [
      'the same, the history appended',
      (i) => ({
        ...on(i),
        UpdateExpression: 'SET ua = :ua, h = list_append(h, :h), n.#n0 = :n0, n.#n1 = :n1',
        ConditionExpression: 'lo = :owner AND f = :fence',
        ExpressionAttributeValues: contentValues,
      }),
    ],
    [
      "the engine's step write, as sent",
      engineWrite(
        () => engineExpression,
        engineCondition,
        (k) => ({ ...values, ...placeAt(k) }),
      ),
    ],
    [
      'the same, not knowing that the item holds a history list and a total (if_not_exists, the room term with it)',
      engineWrite(
        () => unknownExpression,
        unknownCondition,
        (k) => ({ ...unknownValues, ...placeAt(k) }),
      ),
    ],
    [
      'its guards trimmed (the total set rather than added, no room term)',
      engineWrite(
        () => trimmedExpression,
        trimmedCondition,
        (k) => ({ ...trimmedValues, ...placeAt(k), ':total': total(k) }),
      ),
    ],
    [
      'trimmed, its place folded into the event counter',
      engineWrite(
        () => foldedExpression,
        foldedCondition,
        (k) => ({
          ...foldedValues,
          ':es': { N: String(es + k) },
          ':esNext': { N: String(es + k + 1) },
          ':total': total(k),
        }),
      ),
    ],
    [
      "the engine's write, the whole history set",
      engineWrite(
        () => swap(engineExpression, 'list_append(h, :h)', ':h'),
        engineCondition,
        (k) => ({ ...values, ':h': wholeAfter(k), ...placeAt(k) }),
      ),
    ],
    [
      "the engine's write, the entries set at their indexes",
      engineWrite(
        (k) => swap(engineExpression, 'h = list_append(h, :h)', appendedAt(k)),
        engineCondition,
        (k) => ({ ...indexValues, ...entryValues, ...placeAt(k) }),
      ),
    ],
  ]

  const clients = Array.from({ length: WORKERS }, () => new DynamoDBClient(config))
  const wires = clients.map((each) => new HttpWire(each))
  const totals = variants.map(() => ({ serverMs: 0, wallMs: 0, updates: 0 }))
  const count = ITEMS * UPDATES_PER_ITEM
  for (let round = 0; round < ROUNDS; round++) {
    process.stderr.write(`[write guards] round ${round + 1}/${ROUNDS}\n`)
    // Each round starts at another variant: none always follows the same one (DynamoDB Local's heap, its caches).
    for (let turn = 0; turn < variants.length; turn++) {
      const index = (round + turn) % variants.length
      const [, make] = variants[index] as (typeof variants)[number]
      await putBack()
      const serverAt = processCpuMs(server?.pid)
      const start = performance.now()
      await inTurns(count, WORKERS, ITEMS, async (worker, i) => {
        const wire = wires[worker] as HttpWire
        const how = await wire.usable()
        if (!how) throw new Error('a client as the SDK makes it must send direct')
        await wire.send(how, 'UpdateItem', make(i, updates[i] as number))
        updates[i] = (updates[i] as number) + 1
        versions[i] = (versions[i] as number) + 1
      })
      const wallMs = performance.now() - start
      const serverMs = (processCpuMs(server?.pid) ?? 0) - (serverAt ?? 0)
      if (round === 0) continue
      const into = totals[index] as (typeof totals)[number]
      into.serverMs += serverMs
      into.wallMs += wallMs
      into.updates += count
    }
  }
  const [raw] = totals as [(typeof totals)[number]]
  const perUpdate = (t: (typeof totals)[number]) => t.serverMs / t.updates
  const perSecond = (t: (typeof totals)[number]) => t.updates / (t.wallMs / 1000)
  console.log(
    `| update (${num(ROUNDS - 1)} rounds of ${num(count)}, ${WORKERS} workers) | DynamoDB Local's CPU per update (ms) | ÷ raw | updates/s | ÷ raw |`,
  )
  console.log('| --- | --- | --- | --- | --- |')
  for (const [index, [name]] of variants.entries()) {
    const t = totals[index] as (typeof totals)[number]
    const cpu = server ? num(perUpdate(t), 3) : 'not measured'
    const cpuRatio = server ? num(perUpdate(t) / perUpdate(raw), 2) : '—'
    console.log(`| ${name} | ${cpu} | ${cpuRatio} | ${num(perSecond(t))} | ${num(perSecond(t) / perSecond(raw), 2)} |`)
  }
  for (const each of [client, ...clients]) each.destroy()
})
