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
      DUE_PLACE_HORIZON_SECONDS: 3_600,
    })
  })

  it('takes the due-place horizon in whole seconds up to a day, naming the variable otherwise', () => {
    expect(parseLambdaEnv({ TABLE_NAME: 't-1', DUE_PLACE_HORIZON_SECONDS: '0' }).DUE_PLACE_HORIZON_SECONDS).toBe(0)
    for (const bad of ['-1', '1.5', '86401', 'soon']) {
      expect(() => parseLambdaEnv({ TABLE_NAME: 't-1', DUE_PLACE_HORIZON_SECONDS: bad })).toThrow(
        /DUE_PLACE_HORIZON_SECONDS/,
      )
    }
  })
})
