import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'

/** Debian's chromium, driven by playwright-core (`npx playwright install` downloads nothing here). */
export const CHROMIUM = '/usr/bin/chromium'

/** Screenshots of the dashboard (git-ignored). */
export const ARTIFACTS = join(process.cwd(), 'artifacts', 'dashboard')

export interface Browser {
  context: BrowserContext
  page: Page
  close(): Promise<void>
}

/**
 * One headless chromium with a fresh profile; `hostRules` maps host names to addresses (`MAP evil.test 127.0.0.1`)
 * so that a test can open pages of other sites that are served on this machine.
 */
export const launchBrowser = async (
  options: { width?: number; height?: number; hostRules?: string[] } = {},
): Promise<Browser> => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`)
  mkdirSync(ARTIFACTS, { recursive: true })
  const profile = mkdtempSync(join(tmpdir(), 'tickflow-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: options.width ?? 1360, height: options.height ?? 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(options.hostRules?.length ? [`--host-resolver-rules=${options.hostRules.join(', ')}`] : []),
    ],
  })
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
