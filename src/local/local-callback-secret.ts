import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The local runtime's callback secret: `CALLBACK_SECRET` when set; else one made on the first start and kept in
 * `<data dir>/callback-secret` (readable by its owner only), so that tokens handed out stay valid across restarts;
 * a run in memory keeps nothing and makes a new one.
 */
export const localCallbackSecret = async (options: {
  given: string | undefined
  dataDir: string
  inMemory: boolean
}): Promise<string> => {
  if (options.given) return options.given
  const made = randomBytes(32).toString('base64url')
  if (options.inMemory) return made
  const path = join(options.dataDir, 'callback-secret')
  const kept = await readFile(path, 'utf8').catch(() => undefined)
  if (kept !== undefined && kept.trim().length >= 32) return kept.trim()
  await mkdir(options.dataDir, { recursive: true })
  await writeFile(path, `${made}\n`, { mode: 0o600 })
  await chmod(path, 0o600)
  return made
}
