import { describe, expect, it } from 'vitest'
import { parseLocalSettings, SettingsError } from '../../src/local/settings.js'

describe('the settings of npm start', () => {
  it('has a default for everything', () => {
    expect(parseLocalSettings([], {})).toEqual({
      port: 3000,
      host: '127.0.0.1',
      tickIntervalSeconds: 5,
      logLevel: 'info',
      dynamodbEndpoint: undefined,
      tableName: 'tickflow',
      dataDir: '.data',
      inMemory: false,
      allowedHosts: [],
    })
  })

  it('reads every variable, and lets the command line win', () => {
    const env = {
      PORT: '4000',
      HOST: '0.0.0.0',
      TICK_INTERVAL_SECONDS: '2',
      LOG_LEVEL: 'debug',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000',
      TABLE_NAME: 'flows',
      TICKFLOW_DATA_DIR: '/var/tickflow',
      TICKFLOW_IN_MEMORY: '0',
      ALLOWED_HOSTS: 'tickflow, tickflow.internal ,',
    }
    expect(parseLocalSettings(['--port', '5000', '--in-memory'], env)).toEqual({
      port: 5000,
      host: '0.0.0.0',
      tickIntervalSeconds: 2,
      logLevel: 'debug',
      dynamodbEndpoint: 'http://127.0.0.1:8000',
      tableName: 'flows',
      dataDir: '/var/tickflow',
      inMemory: true,
      allowedHosts: ['tickflow', 'tickflow.internal'],
    })
  })

  it('takes an empty variable as unset', () => {
    expect(parseLocalSettings([], { PORT: '', DYNAMODB_ENDPOINT: '' })).toMatchObject({ port: 3000 })
  })

  it.each([['::1'], ['localhost'], ['192.168.1.10'], ['my-host.example.com']])('accepts HOST=%s', (host) => {
    expect(parseLocalSettings([], { HOST: host })).toMatchObject({ host })
  })

  it('refuses an ALLOWED_HOSTS entry that is no host name', () => {
    expect(() => parseLocalSettings([], { ALLOWED_HOSTS: 'ok.example, http://evil/' })).toThrow(/ALLOWED_HOSTS/)
  })

  it('lists every problem in one error', () => {
    try {
      parseLocalSettings(['--port', 'x'], { PORT: '1.5', TICK_INTERVAL_SECONDS: '3601', LOG_LEVEL: 'INFO' })
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(SettingsError)
      expect((error as SettingsError).problems.map((problem) => problem.split('=')[0]?.split(' ')[0])).toEqual([
        'PORT',
        'TICK_INTERVAL_SECONDS',
        'LOG_LEVEL',
        '--port',
      ])
    }
  })

  it('answers help', () => {
    expect(parseLocalSettings(['--help'], {})).toBe('help')
  })
})
