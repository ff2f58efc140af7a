import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DynamoDbStore } from '../../src/adapters/dynamodb/dynamodb-store.js'
import { defineWorkflow } from '../../src/core/builder.js'
import { Engine } from '../../src/core/engine.js'
import { StoreError } from '../../src/core/errors.js'
import { NotReadyError } from '../../src/core/worker-signals.js'
import { newDynamoClient } from '../support/dynamodb.js'
import { interceptRequests } from '../support/exchanges.js'
import { createTestTable, FakeClock, fixedRandom, sequentialIds, type TestTable } from '../support/harness.js'
import { invariantViolations } from '../support/invariant.js'

/**
 * An event is stored without the lease (README, "Events"): one over 1 KB lives in an item of its own, deleted when a
 * later event replaces it. A pass that took its lease before the replacement and reads the content after finds the
 * item gone: it ends with a retryable refusal (503: the instance is due for the new event), never an internal error.
 */
let table: TestTable
const clients: ReturnType<typeof newDynamoClient>[] = []

beforeAll(async () => {
  table = await createTestTable('event-replaced-mid-pass')
})

afterAll(() => {
  for (const client of clients) client.destroy()
})

describe('an event replaced between a pass acquisition and its read of the content', () => {
  it('ends the pass with a retryable refusal; the next pass checks the new event', async () => {
    const clock = new FakeClock()
    const seen: unknown[] = []
    const workflow = defineWorkflow({
      type: 'replaced-mid-pass',
      nodes: {
        review: {
          run: () => {},
          check: (ctx) => {
            seen.push((ctx.event?.content as { ok?: boolean } | undefined)?.ok)
            if ((ctx.event?.content as { ok?: boolean } | undefined)?.ok !== true) throw new NotReadyError(3600)
          },
        },
      },
    })
    const engineOn = (client: ReturnType<typeof newDynamoClient>) => {
      const engine = new Engine({
        store: new DynamoDbStore({ tableName: table.tableName, client }),
        clock,
        ids: sequentialIds('replaced'),
        random: fixedRandom(0),
      })
      engine.register(workflow)
      return engine
    }
    const api = engineOn(table.client)
    const { instanceId } = await api.create({ workflowType: 'replaced-mid-pass' })
    const pad = 'p'.repeat(3000) // over 1 KB: the content is stored in an item of its own
    await api.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 1, content: { ok: false, pad } })

    const client = newDynamoClient()
    clients.push(client)
    let acquired = false
    let replaced = false
    interceptRequests(client, async (exchange, send) => {
      if (acquired && !replaced) {
        replaced = true
        await api.addNodeEvent({ instanceId, nodeId: 'review', eventTs: 2, content: { ok: true, pad } })
      }
      if (/ADD f :one/.test(String((exchange.input as { UpdateExpression?: string }).UpdateExpression ?? ''))) {
        acquired = true
      }
      return send()
    })
    const refused = await engineOn(client)
      .runWorkflow(instanceId)
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect(replaced).toBe(true)
    expect(refused).toBeInstanceOf(StoreError)
    expect(refused).toMatchObject({ retryable: true, httpStatus: 503 })
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])

    const next = await api.runWorkflow(instanceId, { mode: 'due' })
    expect(next.status).toBe('completed')
    expect(seen.at(-1)).toBe(true)
    expect(await invariantViolations(table, clock.nowMs(), { instanceIds: [instanceId] })).toEqual([])
  })
})
