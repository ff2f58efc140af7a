import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { beforeAll, describe, expect, it } from 'vitest'
import { apiEvent, lambdaContext } from '../support/api-events.js'
import { dynamoEndpoint } from '../support/dynamodb.js'
import { createTestTable, type TestTable } from '../support/harness.js'

let table: TestTable

beforeAll(async () => {
  table = await createTestTable('api-entry')
  // What the deployment sets; the SDK reads region and credentials from the environment like in Lambda.
  Object.assign(process.env, {
    TABLE_NAME: table.tableName,
    DYNAMODB_ENDPOINT: dynamoEndpoint(),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    LOG_LEVEL: 'error',
  })
})

describe('the api function entry point', () => {
  it('builds its engine from the environment at cold start and serves the registered workflows', async () => {
    const { handler } = await import('../../functions/api.js')
    const created = (await handler(
      apiEvent('POST', '/workflows', { body: { workflowType: 'approval', context: { requester: 'ada' } } }),
      lambdaContext(),
    )) as APIGatewayProxyStructuredResultV2
    expect(created.statusCode).toBe(201)
    const { instanceId } = JSON.parse(String(created.body))
    const types = (await handler(
      apiEvent('GET', '/workflow-types'),
      lambdaContext(),
    )) as APIGatewayProxyStructuredResultV2
    expect(JSON.parse(String(types.body)).items.map((item: { type: string }) => item.type)).toContain('approval')
    const fetched = (await handler(
      apiEvent('GET', `/workflows/${instanceId}`),
      lambdaContext(),
    )) as APIGatewayProxyStructuredResultV2
    expect(JSON.parse(String(fetched.body)).nodes.find((node: { id: string }) => node.id === 'review').status).toBe(
      'pending',
    )
  })
})
