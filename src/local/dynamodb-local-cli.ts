import { parseArgs } from 'node:util'
import { ensureDynamoDbLocal, startDynamoDbLocal } from './dynamodb-local.js'

const USAGE = `usage:
  dynamodb-local-cli install                          download DynamoDB Local into the cache
  dynamodb-local-cli start [--port N] [--db-path DIR] run it until SIGINT/SIGTERM (in memory unless --db-path)`

// Progress goes to stderr so that stdout carries only the result a script may want to capture.
const log = (msg: string) => process.stderr.write(`[dynamodb-local] ${msg}\n`)

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      'db-path': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [command, ...rest] = positionals
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (rest.length > 0 || (command !== 'install' && command !== 'start')) {
    process.stderr.write(`${USAGE}\n`)
    return 2
  }

  if (command === 'install') {
    const { emulatorDir } = await ensureDynamoDbLocal({ log })
    process.stdout.write(`${emulatorDir}\n`)
    return 0
  }

  let port: number | undefined
  if (values.port !== undefined) {
    port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) {
      process.stderr.write(`invalid --port ${values.port}\n`)
      return 2
    }
  }
  const dynamo = await startDynamoDbLocal({ port, dbPath: values['db-path'], log })
  process.stdout.write(`${dynamo.endpoint}\n`)
  log(`use it from tests with DYNAMODB_ENDPOINT=${dynamo.endpoint}; Ctrl-C to stop`)

  const reason = await new Promise<NodeJS.Signals | 'exited'>((resolvePromise) => {
    const onSignal = (signal: NodeJS.Signals) => resolvePromise(signal)
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    void dynamo.exited.then(() => resolvePromise('exited'))
  })
  if (reason === 'exited') {
    const { code, signal } = await dynamo.exited
    log(`DynamoDB Local exited on its own (${signal ?? `code ${code}`})`)
    return 1
  }
  log(`${reason}: stopping`)
  await dynamo.stop()
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)
