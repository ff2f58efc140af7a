import { execFile } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { z } from 'zod'

/**
 * One `npm start` per data directory. DynamoDB Local keeps its tables in one SQLite file under the directory; two
 * servers on the same file, or a second runtime sharing the first one's server, corrupt each other's view of it. The
 * lock is a file created exclusively (`wx`) holding the owner's pid and its DynamoDB Local's pid, so that the next
 * start can tell a live owner (refused) from a dead one (its lock is stale, and the DynamoDB Local it left behind,
 * an orphan after `kill -9`, is stopped).
 */

export const LOCK_FILE = 'tickflow.lock'

const lockSchema = z.object({
  v: z.literal(1),
  pid: z.number().int().positive(),
  startedAtMs: z.number(),
  url: z.string().optional(),
  dynamodbPid: z.number().int().positive().optional(),
})

type LockContent = z.infer<typeof lockSchema>

export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError'
  readonly code = 'DATA_DIR_IN_USE'
}

export interface DataDirLock {
  path: string
  /** Adds what the next start needs to find this runtime's DynamoDB Local and URL. */
  update(change: { dynamodbPid?: number | undefined; url?: string }): Promise<void>
  /** Removes the lock if it is still this process's. */
  release(): Promise<void>
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const run = promisify(execFile)

/**
 * The DynamoDB Local processes whose `-dbPath` is `dbPath`, found with `ps` (Linux and macOS); none where `ps` is
 * missing, in which case only the pid recorded in the lock is known.
 */
export const dynamoDbLocalsOn = async (dbPath: string): Promise<{ pid: number; command: string }[]> => {
  let stdout: string
  try {
    ;({ stdout } = await run('ps', ['-eo', 'pid=,args='], { maxBuffer: 16 * 1024 * 1024 }))
  } catch {
    return []
  }
  const found: { pid: number; command: string }[] = []
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(.*)$/.exec(line)
    if (!match) continue
    const command = match[2] as string
    if (!command.includes('DynamoDBLocal.jar')) continue
    const args = command.split(/\s+/)
    const at = args.indexOf('-dbPath')
    if (at >= 0 && args[at + 1] === dbPath) found.push({ pid: Number(match[1]), command })
  }
  return found
}

/**
 * Whether `pid` is alive and still a Node process (the lock's owner), not a pid the system gave to another program
 * after the owner died. Without `ps`, a live pid is taken as the owner.
 */
const isTickflow = async (pid: number): Promise<boolean> => {
  if (!isAlive(pid)) return false
  try {
    const { stdout } = await run('ps', ['-p', String(pid), '-o', 'args='])
    return stdout.trim() === '' || /\bnode\b|tsx|tickflow/.test(stdout)
  } catch (error) {
    // ps exits 1 when the pid is gone; a missing ps leaves the live pid as the owner.
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
  }
}

const stopProcess = async (pid: number): Promise<void> => {
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  for (let waited = 0; waited < 5000 && isAlive(pid); waited += 100) await delay(100)
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      return
    }
    for (let waited = 0; waited < 2000 && isAlive(pid); waited += 100) await delay(100)
  }
}

const readLock = async (path: string): Promise<LockContent | undefined> => {
  try {
    const parsed = lockSchema.safeParse(JSON.parse(await readFile(path, 'utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

/** Creates the lock file with `content`; false when one exists already (thrown on the last try). */
const tryCreateLock = async (path: string, content: LockContent, lastTry: boolean): Promise<boolean> => {
  try {
    const handle = await open(path, 'wx')
    try {
      await handle.writeFile(`${JSON.stringify(content)}\n`)
    } finally {
      await handle.close()
    }
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || lastTry) throw error
    return false
  }
}

/**
 * The lock file exists: refuses when its owner is alive, else stops what the dead owner left running on `dbPath`
 * and removes the stale lock.
 */
const clearStaleLock = async (
  path: string,
  dataDir: string,
  dbPath: string,
  print: (line: string) => void,
): Promise<void> => {
  const held = await readLock(path)
  if (held?.pid === process.pid) {
    throw new DataDirInUseError(`the data directory ${dataDir} is already in use by a runtime of this process`)
  }
  if (held !== undefined && (await isTickflow(held.pid))) {
    throw new DataDirInUseError(
      [
        `the data directory ${dataDir} is in use by another tickflow (pid ${held.pid}${held.url ? `, ${held.url}` : ''}, started ${new Date(held.startedAtMs).toISOString()}).`,
        `Stop it first (Ctrl-C in its terminal, or kill ${held.pid}), or start this one elsewhere:`,
        '  TICKFLOW_DATA_DIR=.data-2 npm start     or     npm start -- --in-memory',
      ].join('\n'),
    )
  }
  // The owner is gone (killed, or the machine restarted): whatever DynamoDB Local it left on the files is ours.
  const orphans = new Set((await dynamoDbLocalsOn(dbPath)).map((found) => found.pid))
  if (held?.dynamodbPid !== undefined && isAlive(held.dynamodbPid) && orphans.size === 0) {
    // Without `ps`, trust the pid the dead owner recorded.
    orphans.add(held.dynamodbPid)
  }
  for (const pid of orphans) {
    await stopProcess(pid)
    print(
      `stopped an orphaned DynamoDB Local (pid ${pid}) left on ${dataDir} by a tickflow that did not stop cleanly${held ? ` (pid ${held.pid})` : ''}`,
    )
  }
  await rm(path, { force: true })
}

/** A DynamoDB Local no tickflow started runs on the files: refused (and the lock given back), never stopped. */
const refuseForeignDynamoDb = async (path: string, dbPath: string): Promise<void> => {
  const foreign = await dynamoDbLocalsOn(dbPath)
  if (foreign.length === 0) return
  await rm(path, { force: true })
  const pids = foreign.map((found) => found.pid).join(', ')
  throw new DataDirInUseError(
    [
      `a DynamoDB Local that tickflow does not own (pid ${pids}) is running on ${dbPath}.`,
      `Stop it first (kill ${pids}), or point tickflow at it with DYNAMODB_ENDPOINT=http://127.0.0.1:PORT.`,
    ].join('\n'),
  )
}

/** The held lock: its content can be updated, and it is given back on `release` or when the process exits. */
const heldLock = (path: string, initial: LockContent): DataDirLock => {
  let content = initial
  let released = false
  // A process that exits without `release` (an uncaught error, process.exit) still frees the directory.
  const releaseOnExit = () => {
    try {
      if (JSON.parse(readFileSync(path, 'utf8')).pid === process.pid) rmSync(path, { force: true })
    } catch {
      // Already gone.
    }
  }
  process.once('exit', releaseOnExit)
  return {
    path,
    update: async (change) => {
      content = {
        ...content,
        ...(change.dynamodbPid === undefined ? {} : { dynamodbPid: change.dynamodbPid }),
        ...(change.url === undefined ? {} : { url: change.url }),
      }
      await writeFile(path, `${JSON.stringify(content)}\n`)
    },
    release: async () => {
      if (released) return
      released = true
      process.off('exit', releaseOnExit)
      const held = await readLock(path)
      if (held?.pid === process.pid) await rm(path, { force: true })
    },
  }
}

/**
 * Takes the lock on `dataDir` (created if missing), whose DynamoDB Local keeps its files in `dbPath`.
 * - Another live runtime holds it: DataDirInUseError naming its pid and URL.
 * - A dead runtime holds it: its DynamoDB Local, if still running, is stopped and reported through `print`.
 * - No runtime holds it, but a DynamoDB Local runs on `dbPath` (started by hand, or orphaned by a runtime that died
 *   before it could record it): DataDirInUseError naming that process, which is left alone.
 */
export const lockDataDir = async (
  dataDir: string,
  dbPath: string,
  print: (line: string) => void,
): Promise<DataDirLock> => {
  const dir = resolve(dataDir)
  const path = join(dir, LOCK_FILE)
  await mkdir(dir, { recursive: true })
  const content: LockContent = { v: 1, pid: process.pid, startedAtMs: Date.now() }
  for (let attempt = 0; !(await tryCreateLock(path, content, attempt >= 3)); attempt++) {
    await clearStaleLock(path, dataDir, dbPath, print)
  }
  await refuseForeignDynamoDb(path, dbPath)
  return heldLock(path, content)
}
