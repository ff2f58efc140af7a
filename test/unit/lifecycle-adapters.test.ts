import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge'
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm'
import { mockClient } from 'aws-sdk-client-mock'
import { describe, expect, it } from 'vitest'
import { EventBridgePublisher } from '../../src/adapters/eventbridge/eventbridge-publisher.js'
import { callbackTokensFrom, secretsOf } from '../../src/adapters/secrets/callback-secret.js'
import { callbackTokens } from '../../src/core/callback-token.js'
import type { LifecycleEvent } from '../../src/core/lifecycle-events.js'
import { publishedDetailSchema } from '../../src/schemas/lifecycle-events.js'

const anEvent = (n: number): LifecycleEvent => ({
  id: `i-1:1.${n}`,
  detailType: 'Workflow Instance Status Change',
  detail: {
    version: 1,
    eventId: `i-1:1.${n}`,
    instanceId: 'i-1',
    workflowType: 'order',
    definitionVersion: 'v1',
    status: 'running',
    createdAtMs: Date.UTC(2026, 0, 1),
    timeMs: Date.UTC(2026, 0, 1) + n,
  },
})

describe('the EventBridge publisher', () => {
  it('puts ten events a request, with the documented source, detail type and detail', async () => {
    const eventBridge = mockClient(EventBridgeClient)
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [] })
    const publisher = new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: 'tickflow-prod' })

    expect(
      await publisher.publish(
        Array.from({ length: 12 }, (_, n) => anEvent(n)),
        { resent: true },
      ),
    ).toEqual({
      failed: [],
    })

    const calls = eventBridge.commandCalls(PutEventsCommand)
    expect(calls.map((call) => call.args[0].input.Entries?.length)).toEqual([10, 2])
    const entry = calls[0]?.args[0].input.Entries?.[0]
    expect(entry).toMatchObject({
      EventBusName: 'tickflow-prod',
      Source: 'tickflow',
      DetailType: 'Workflow Instance Status Change',
      Time: new Date(Date.UTC(2026, 0, 1)),
    })
    const detail = JSON.parse(String(entry?.Detail))
    expect(publishedDetailSchema.parse(detail)).toMatchObject({
      eventId: 'i-1:1.0',
      createdAt: '2026-01-01T00:00:00.000Z',
      time: '2026-01-01T00:00:00.000Z',
      resent: true,
    })
  })

  it('reports the entries EventBridge refused, by event id', async () => {
    const eventBridge = mockClient(EventBridgeClient)
    eventBridge.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ EventId: 'a' }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }, { EventId: 'c' }],
    })
    const publisher = new EventBridgePublisher({ client: new EventBridgeClient({}), eventBusName: 'bus' })
    expect(await publisher.publish([anEvent(0), anEvent(1), anEvent(2)], { resent: false })).toEqual({
      failed: ['i-1:1.1'],
    })
  })
})

describe('the callback secret', () => {
  const claims = { instanceId: 'i-1', nodeId: 'pay', attempt: 1, call: 1, fence: 2 }
  const current = 'c'.repeat(40)
  const previous = 'p'.repeat(40)

  it('is a secret, or the current and previous of a rotation', () => {
    expect(secretsOf(`  ${current}\n`)).toEqual([current])
    expect(secretsOf(JSON.stringify({ current, previous }))).toEqual([current, previous])
    expect(() => secretsOf('{"previous": "x"}')).toThrow(/no "current"/)
  })

  it('is fetched from Secrets Manager once, and opens tokens of the previous secret during a rotation', async () => {
    const secrets = mockClient(SecretsManagerClient)
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ current, previous }) })
    const tokens = callbackTokensFrom({ kind: 'secrets-manager', secretId: 'arn:aws:secretsmanager:x' })
    const old = await callbackTokens([previous]).issue(claims)
    expect(await tokens.open(old)).toEqual(claims)
    expect(await tokens.open(await tokens.issue(claims))).toEqual(claims)
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1)
  })

  it('is read from an SSM SecureString, decrypted, and refused when too short', async () => {
    const ssm = mockClient(SSMClient)
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: 'short' } })
    const tokens = callbackTokensFrom({ kind: 'ssm', name: '/tickflow/callback' })
    await expect(tokens.issue(claims)).rejects.toThrow(/at least 32 characters/)
    expect(ssm.commandCalls(GetParameterCommand)[0]?.args[0].input).toEqual({
      Name: '/tickflow/callback',
      WithDecryption: true,
    })
  })
})

describe('callback tokens', () => {
  const tokens = callbackTokens(['s'.repeat(32)])
  const claims = { instanceId: '01JX0000000000000000000000', nodeId: 'capture', attempt: 2, call: 7, fence: 300 }

  it('round-trip their claims, the same token for the same call, and hide them', async () => {
    const token = await tokens.issue(claims)
    expect(await tokens.open(token)).toEqual(claims)
    expect(await tokens.issue(claims)).toBe(token)
    expect(await tokens.issue({ ...claims, call: 8 })).not.toBe(token)
    // 85 bytes: a 26-character id and a short node id fill two 32-byte blocks.
    expect(token).toHaveLength(114)
    expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain('capture')
  })

  it('open nothing altered anywhere, nor anything of another secret', async () => {
    const token = Buffer.from(await tokens.issue(claims), 'base64url')
    for (let byte = 0; byte < token.length; byte++) {
      const altered = Buffer.from(token)
      altered[byte] = (altered[byte] as number) ^ 0x10
      expect(await tokens.open(altered.toString('base64url')), `byte ${byte}`).toBeUndefined()
    }
    expect(await callbackTokens(['o'.repeat(32)]).open(token.toString('base64url'))).toBeUndefined()
    expect(await tokens.open('')).toBeUndefined()
    expect(await tokens.open('x'.repeat(400))).toBeUndefined()
  })
})
