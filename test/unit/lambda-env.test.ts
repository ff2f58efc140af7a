import { describe, expect, it } from 'vitest'
import { parseLambdaEnv } from '../../src/schemas/env.js'

describe('the environment of a function', () => {
  it('names every missing or malformed variable', () => {
    expect(() => parseLambdaEnv({})).toThrow(/TABLE_NAME/)
    expect(() => parseLambdaEnv({ TABLE_NAME: 'ok-table', DYNAMODB_ENDPOINT: 'not a url' })).toThrow(
      /DYNAMODB_ENDPOINT/,
    )
    expect(() => parseLambdaEnv({ TABLE_NAME: 'ok-table', LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/)
  })

  it('refuses a tracing switch other than on or off, naming the variable', () => {
    expect(() => parseLambdaEnv({ TABLE_NAME: 'tickflow-dev', TRACING: 'yes' })).toThrow(/TRACING/)
  })

  it('applies defaults', () => {
    expect(parseLambdaEnv({ TABLE_NAME: 'tickflow-dev' })).toEqual({
      TABLE_NAME: 'tickflow-dev',
      LOG_LEVEL: 'info',
      MAX_RECEIVE_COUNT: 5,
      TRACING: 'off',
      POWERTOOLS_SERVICE_NAME: 'tickflow',
      POWERTOOLS_METRICS_NAMESPACE: 'tickflow',
      RETENTION_DAYS: 30,
    })
  })
})
