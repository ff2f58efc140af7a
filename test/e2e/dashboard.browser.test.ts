import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LocalRuntime, startLocalRuntime } from '../../src/local/runtime.js'
import { workflows } from '../../src/workflows/index.js'
import { dynamoEndpoint, uniqueTableName } from '../support/dynamodb.js'

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core) against the local runtime: what a
 * person does from the page, with the API's answers drawn. Screenshots go to artifacts/dashboard/ (git-ignored).
 */

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = join(process.cwd(), 'artifacts', 'dashboard')

describe('the dashboard in a browser', () => {
  let runtime: LocalRuntime
  let browser: BrowserContext
  let page: Page
  let profile: string

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`)
    mkdirSync(ARTIFACTS, { recursive: true })
    runtime = await startLocalRuntime({
      port: 0,
      host: '127.0.0.1',
      inMemory: true,
      dataDir: '.data',
      dynamodbEndpoint: dynamoEndpoint(),
      tableName: uniqueTableName('dashboard'),
      tickIntervalMs: 1_000,
      pumpIntervalMs: 100,
      logLevel: 'error',
      print: () => {},
    })
    profile = mkdtempSync(join(tmpdir(), 'tickflow-chromium-'))
    // A fresh profile (user-data-dir) per run; playwright-core takes it as the persistent context's folder.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1360, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = browser.pages()[0] ?? (await browser.newPage())
    // Every action asks for confirmation; the person says yes.
    page.on('dialog', (dialog) => void dialog.accept())
    // Nothing may come from anywhere but the API: no CDN, no internet.
    await page.route('**/*', (routed) =>
      routed.request().url().startsWith(runtime.url) ? routed.continue() : routed.abort(),
    )
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await runtime?.stop()
    if (profile) rmSync(profile, { recursive: true, force: true })
  })

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })

  const nodeStatus = (node: string) => page.locator(`tr[data-node="${node}"]`).getAttribute('data-status')

  it('creates an approval, sends its event, draws the graph completed and sees the history list the event', async () => {
    await page.goto(`${runtime.url}/`)
    await page.locator('form[aria-label="new instance"] select[name="workflowType"]').selectOption('approval')
    await page
      .locator('form[aria-label="new instance"] textarea[name="context"]')
      .fill('{"requester": "ada", "amount": 120}')
    await page.locator('form[aria-label="new instance"] button[type="submit"]').click()

    await page.waitForURL(/#\/instances\/[0-9A-Z]+$/)
    await expect.poll(() => nodeStatus('review'), { timeout: 10_000 }).toBe('pending')
    await page.locator('.graph svg').waitFor()
    await shot('1-approval-waiting')

    await page.locator('tr[data-node="review"] details[data-key="event-review"] summary').click()
    await page.locator('tr[data-node="review"] textarea[name="event-review"]').fill('{"decision": "approved"}')
    await page.locator('tr[data-node="review"] details[data-key="event-review"] button').click()
    await expect.poll(() => page.locator('.action-result').textContent()).toContain('event sent to review')

    await expect.poll(() => nodeStatus('approve'), { timeout: 15_000 }).toBe('completed')
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 5_000 }).toBe('completed')
    // The graph is redrawn with every node in the completed style.
    await expect.poll(() => page.locator('.graph svg g.node.completed').count(), { timeout: 5_000 }).toBe(5)
    await shot('2-approval-completed')

    // The history lists the event sent from the page, with its origin and a readable time, and the end.
    const history = page.locator('section[data-panel="history"] ol.timeline')
    const event = history.locator('li[data-kind="event"]')
    await expect.poll(() => event.count(), { timeout: 5_000 }).toBe(1)
    await expect.poll(() => event.textContent()).toContain('review')
    expect(await event.textContent()).toContain('from api')
    expect(await event.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/)
    // Times to the millisecond (a pass's steps share a second), and the event's own time readable.
    expect(await event.locator('time').textContent()).toMatch(/\d\d:\d\d:\d\d\.\d{3} /)
    expect(await event.textContent()).toMatch(/event time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(eventTs \d+\)/)
    await expect
      .poll(() => history.locator('li[data-kind="finished"]').textContent(), { timeout: 5_000 })
      .toContain('completed')
    await page.locator('section[data-panel="history"]').scrollIntoViewIfNeeded()
    await shot('2b-approval-history')
  })

  it('shows a failed order with its failure, restarts it with a new context, and sees it run again', async () => {
    const created = await fetch(`${runtime.url}/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflowType: 'order', businessId: 'ORDER-7', context: { lines: [] } }),
    })
    const { instanceId } = (await created.json()) as { instanceId: string }

    await page.goto(`${runtime.url}/#/instances?workflowType=order`)
    await page.locator(`tr[data-id="${instanceId}"] a`).waitFor()
    await expect.poll(() => page.locator('.count[data-status="failed"] strong').textContent()).toBe('1')
    await shot('3-instances')
    await page.locator(`tr[data-id="${instanceId}"] a`).click()

    await expect(page.locator('[data-summary="failure"]').textContent()).resolves.toContain('Failed at node validate')
    expect(await nodeStatus('validate')).toBe('failed')
    await shot('4-order-failed')

    await page.locator('details.action summary').click()
    await page
      .locator('textarea[name="restart-context"]')
      .fill('{"lines": [{"sku": "A-1", "quantity": 2, "price": 9.5}]}')
    await page.locator('details.action button').click()

    await expect.poll(() => nodeStatus('ship'), { timeout: 15_000 }).toBe('completed')
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 5_000 }).toBe('completed')
    expect(await page.locator('[data-summary="failure"]').count()).toBe(0)
    await shot('5-order-restarted')
  })

  it('lists the local dead letters with their reason and redrives one', async () => {
    const sent = await fetch(`${runtime.url}/_local/queues/events`, { method: 'POST', body: 'not an event' })
    expect(sent.status).toBe(202)

    await page.goto(`${runtime.url}/#/dead-letters`)
    const panel = page.locator('section[data-panel="tickflow-events-dlq"]')
    const row = panel.locator('tbody tr')
    // The page fetches the queues after it loads: read once the panel is drawn, with its rows.
    const reloaded = async <T>(read: () => Promise<T>): Promise<T> => {
      await page.reload()
      await panel.waitFor()
      return read()
    }
    await expect.poll(() => reloaded(() => row.count()), { timeout: 10_000 }).toBe(1)
    const firstId = await row.locator('code').textContent()
    expect(await row.locator('.reason').textContent()).toMatch(/\S/)
    await shot('8-dead-letters')

    await row.locator('button').click()
    await expect.poll(() => page.locator('.message.ok').textContent()).toContain('to tickflow-events')
    // The poison goes round again: back on the queue, then dead-lettered anew under a new id.
    await expect.poll(() => reloaded(() => row.locator('code').textContent()), { timeout: 10_000 }).not.toBe(firstId)
  })

  it('follows the lifecycle events, and shows a node waiting for a callback', async () => {
    await page.goto(`${runtime.url}/#/events`)
    await page.locator('table.events').waitFor()
    const created = await fetch(`${runtime.url}/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ workflowType: 'payment', context: { amount: 12 } }),
    })
    const { instanceId } = (await created.json()) as { instanceId: string }
    const row = page.locator('table.events tbody tr', { hasText: instanceId })
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1)
    expect(await row.textContent()).toContain('running')
    await shot('9-events')

    await page.goto(`${runtime.url}/#/instances/${instanceId}`)
    await expect
      .poll(() => page.locator('tr[data-node="capture"]').textContent(), { timeout: 10_000 })
      .toContain('waiting for a callback')
  })

  it('shows the workflow types with their graphs, and the schedules', async () => {
    await page.goto(`${runtime.url}/#/types`)
    // One graph per registered workflow type.
    await expect.poll(() => page.locator('.graph svg').count(), { timeout: 10_000 }).toBe(workflows.length)
    await shot('6-types')

    await page.goto(`${runtime.url}/#/schedules`)
    await page.locator('input[name="name"]').fill('nightly')
    await page.locator('input[name="expression"]').fill('cron(0 2 * * ? *)')
    await page.locator('form[aria-label="new schedule"] button[type="submit"]').click()
    await page.locator('tr[data-schedule="nightly"]').waitFor()
    // A refusal is shown as the API gives it.
    await page.locator('input[name="name"]').fill('broken')
    await page.locator('input[name="expression"]').fill('every day')
    await page.locator('form[aria-label="new schedule"] button[type="submit"]').click()
    await expect.poll(() => page.locator('.message.error').textContent()).toMatch(/^400 /)
    await shot('7-schedules')
    await page.locator('tr[data-schedule="nightly"] button.danger').click()
    await expect.poll(() => page.locator('tr[data-schedule="nightly"]').count()).toBe(0)
  })
})
