import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

/** moto_server (Python moto 5.2.1, on the machines this project is built on) for the deploy rehearsal. */

export const MOTO_VERSION = '5.2.1'
export const MISSING_MOTO_HINT =
  `moto_server is not installed: the deploy rehearsal creates the packaged stack on it. Install it with ` +
  `\`pipx install 'moto[server]==${MOTO_VERSION}'\` (or \`pip install 'moto[server]==${MOTO_VERSION}'\`) and make ` +
  'sure `moto_server` is on PATH.'

export interface Moto {
  endpoint: string
  stop(): Promise<void>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const motoVersion = (): string | undefined => {
  const result = spawnSync('python3', ['-c', 'import moto; print(moto.__version__)'], { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.trim() : undefined
}

/** Starts moto_server on a free port and waits until it answers; `stop` ends that process only. */
export const startMoto = async (timeoutMs = 20_000): Promise<Moto> => {
  const port = await freePort()
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let output = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4096)
  })
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(MISSING_MOTO_HINT) : error),
    )
    child.once('exit', (code) => reject(new Error(`moto_server exited (${code}) before it was ready: ${output}`)))
  })
  spawnError.catch(() => {})
  const endpoint = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  const ready = (async () => {
    while (Date.now() < deadline) {
      try {
        const response = await fetch(`${endpoint}/moto-api/`)
        if (response.ok) return
      } catch {
        // not listening yet
      }
      await delay(100)
    }
    throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms: ${output}`)
  })()
  try {
    await Promise.race([ready, spawnError])
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  }
  return {
    endpoint,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([exited, delay(3_000)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}
