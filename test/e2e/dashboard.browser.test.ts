import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LIST_REFRESH_MS } from '../../src/dashboard/refresh.js'
import { type LocalRuntime, startLocalRuntime } from '../../src/local/runtime.js'
import { ARTIFACTS, type Browser, launchBrowser } from '../support/browser.js'
import { dynamoEndpoint, uniqueTableName } from '../support/dynamodb.js'

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core) against the local runtime: what an
 * operator does from the page, with the API's answers drawn. Screenshots of every view, light and dark, go to
 * artifacts/dashboard/ (git-ignored).
 */

describe('the dashboard in a browser', () => {
  let runtime: LocalRuntime
  let browser: Browser
  let page: Page
  const dialogs: string[] = []
  /** What the browser refused under the page's CSP: nothing, ever (no inline style, no foreign script). */
  const refused: string[] = []

  beforeAll(async () => {
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
    browser = await launchBrowser()
    page = browser.page
    // A read of an element that never comes fails in its own step, well within the test's time, instead of the test
    // timing out with no step named.
    page.setDefaultTimeout(10_000)
    // Every action asks for confirmation; the operator says yes (and the test reads what was asked).
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message())
      void dialog.accept()
    })
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) refused.push(message.text())
    })
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'])
    // Nothing may come from anywhere but the API: no CDN, no internet.
    await browser.context.route('**/*', (routed) =>
      routed.request().url().startsWith(runtime.url) ? routed.continue() : routed.abort(),
    )
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await runtime?.stop()
  })

  const shot = async (name: string) => {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })
  }
  /** The same view in the light and the dark scheme. */
  const shots = async (name: string) => {
    await shot(`${name}-light`)
    await page.emulateMedia({ colorScheme: 'dark' })
    await shot(`${name}-dark`)
    await page.emulateMedia({ colorScheme: 'light' })
  }

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const answer = await fetch(`${runtime.url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
    const text = await answer.text()
    return (text ? JSON.parse(text) : undefined) as T
  }
  const create = async (body: Record<string, unknown>): Promise<string> =>
    (await api<{ instanceId: string }>('POST', '/workflows', body)).instanceId
  const statusOf = async (id: string) =>
    (await api<{ status: string }>('GET', `/workflows/${encodeURIComponent(id)}`)).status

  const graphNode = (node: string) => page.locator(`.graph [data-node="${node}"]`)
  const nodeRowStatus = (node: string) =>
    page.locator(`table.nodes tr[data-node="${node}"]`).getAttribute('data-status')
  const nodePanel = () => page.locator('section[data-panel="node"]')

  it('creates an approval, opens the waiting node from the graph: what it waits for, its input and output', async () => {
    await page.goto(`${runtime.url}/`)
    await page.locator('details[data-panel="new instance"] summary').click()
    const form = page.locator('form[aria-label="new instance"]')
    await form.locator('select[name="workflowType"]').selectOption('approval')
    await form.locator('textarea[name="context"]').fill('{"requester": "ada", "amount": 120}')
    await form.locator('button[type="submit"]').click()
    await page.waitForURL(/#\/instances\/[0-9A-Z]+$/)

    await expect.poll(() => graphNode('review').getAttribute('data-status'), { timeout: 10_000 }).toBe('pending')
    await graphNode('review').click()
    await expect.poll(() => page.url()).toMatch(/\?node=review$/)
    const panel = nodePanel()
    await expect.poll(() => panel.locator('h2').textContent()).toContain('Wait for a reviewer')
    // A waiting node says what it waits for and since when, not "next attempt in 59 s".
    const state = await panel.locator('.node-state').textContent()
    expect(state).toMatch(/^waiting for its check since \d\d:\d\d:\d\d/)
    expect(state).toContain('no event received yet')
    // Input: the context it ran with; output: what its worker stored, each in a JSON viewer.
    const input = panel.locator('[data-section="input"] .j-tree')
    expect(await input.textContent()).toContain('"requester": "ada"')
    expect(await input.textContent()).toContain('"submit"')
    expect(await panel.locator('[data-section="output"] .j-tree').textContent()).toContain('"review_status": "pending"')
    // Highlighted by type, folding: the predecessors' outputs start folded below the second level.
    expect(await input.locator('.j-string').first().textContent()).toBe('"ada"')
    const folded = input.locator('details.j-node:not([open])')
    expect(await folded.count()).toBeGreaterThan(0)
    await panel.locator('[data-section="input"] button', { hasText: 'Expand all' }).click()
    expect(await folded.count()).toBe(0)
    // Copy puts the whole value on the clipboard, as JSON.
    await panel.locator('[data-section="output"] button[data-copy]').click()
    await expect.poll(() => panel.locator('[data-section="output"] .j-status').textContent()).toBe('copied')
    expect(JSON.parse(await page.evaluate<string>('navigator.clipboard.readText()'))).toEqual({
      review_status: 'pending',
    })
    // Events are offered to the waiting node; the node not started yet takes one early, said so.
    expect(await panel.locator('form[data-action="event"] h3').textContent()).toMatch(/^Send an event —/)
    // The instance is running: a node restart needs no force, and the form does not offer it.
    expect(await panel.locator('input[name="force-review"]').count()).toBe(0)
    await shots('2-instance-waiting')

    // The table opens a node too.
    await page.locator('table.nodes tr[data-node="approve"]').click()
    await expect.poll(() => panel.locator('h2').textContent()).toContain('Record the decision')
    expect(await panel.locator('.node-state strong').textContent()).toBe('not started')
    expect(await panel.locator('form[data-action="event"] h3').textContent()).toMatch(/^Send an event early/)
  })

  it("shows the event form's refusal next to its button, then sends the event and sees it in the history", async () => {
    const id = await create({ workflowType: 'approval', context: { requester: 'bo' } })
    await page.goto(`${runtime.url}/#/instances/${id}?node=review`)
    const form = nodePanel().locator('form[data-action="event"]')
    await form.waitFor()
    const box = form.locator('textarea')
    const send = form.locator('button[type="submit"]')

    await box.fill('{"decision": ')
    await send.click()
    const error = form.locator('.message.error')
    await expect.poll(() => error.textContent()).toMatch(/not valid JSON/)
    // Next to the button that caused it: on the same line or right below, not somewhere up the page.
    const [buttonBox, errorBox] = [await send.boundingBox(), await error.boundingBox()]
    expect(Math.abs((errorBox?.y ?? 1e9) - (buttonBox?.y ?? 0))).toBeLessThan(60)
    await shots('3-event-refused')

    await box.fill('{"decision": "approved"}')
    await send.click()
    // In the form, or after it once the event has completed the node (the form then goes).
    await expect
      .poll(() => nodePanel().locator('.message.ok').allTextContents())
      .toEqual([expect.stringMatching(/^event sent \(eventTs \d+\)/)])
    expect(dialogs.at(-1)).toBe('Send this event to node review?')
    await expect.poll(() => nodeRowStatus('approve'), { timeout: 15_000 }).toBe('completed')
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 5_000 }).toBe('completed')
    await expect.poll(() => page.locator('.graph [data-status="completed"]').count()).toBe(3)
    // Now completed, the node takes no more events; its restart needs force, and the form says why.
    await expect.poll(() => nodePanel().locator('form[data-action="event"]').count()).toBe(0)
    const force = nodePanel().locator('label.force')
    expect(await force.textContent()).toContain('needed because the instance is completed')
    expect(await nodePanel().locator('form[data-action="restart"] button[type="submit"]').isDisabled()).toBe(true)

    // The history shows the event with its content, the time since the entry before, and the end.
    const history = page.locator('section[data-panel="history"]')
    const event = history.locator('li[data-kind="event"]')
    await expect.poll(() => event.count(), { timeout: 5_000 }).toBe(1)
    expect(await event.textContent()).toContain('"decision": "approved"')
    expect(await event.textContent()).toContain('from api')
    expect(await event.locator('time').getAttribute('datetime')).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(await event.locator('.delta').textContent()).toMatch(/^\+\d/)
    await expect.poll(() => history.locator('li[data-kind="finished"]').textContent()).toContain('completed')
    // Filters: by kind, and by node.
    await history.locator('input[name="kind-node"]').uncheck()
    expect(await history.locator('li[data-kind="node"]').count()).toBe(0)
    await history.locator('input[name="kind-node"]').check()
    await history.locator('select[name="history-node"]').selectOption('review')
    const nodes = await history
      .locator('li[data-node]')
      .evaluateAll((items) => items.map((item) => item.getAttribute('data-node')))
    expect(new Set(nodes)).toEqual(new Set(['review']))
    await history.locator('select[name="history-node"]').selectOption('')
    // The waterfall: a row per node, a bar per status it went through, the event as a mark.
    await history.locator('button[data-mode="waterfall"]').click()
    expect(await history.locator('.wf-row').count()).toBe(3)
    expect(await history.locator('.wf-row[data-node="review"] .wf-bar.status-pending').count()).toBe(1)
    expect(await history.locator('.wf-row[data-node="review"] .mark-event').count()).toBe(1)
    await history.scrollIntoViewIfNeeded()
    await shots('4-history-waterfall')
    await history.locator('button[data-mode="timeline"]').click()
  })

  it('still says the event was sent when the node took it and completed before the page read it again', async () => {
    const id = await create({ workflowType: 'approval', context: { requester: 'cy' } })
    await page.goto(`${runtime.url}/#/instances/${id}?node=review`)
    const form = nodePanel().locator('form[data-action="event"]')
    await form.waitFor()
    // The API's answer reaches the page only once the event has run the instance to its end.
    const events = `${runtime.url}/workflows/${id}/nodes/review/events`
    await page.route(events, async (routed) => {
      const answer = await routed.fetch()
      await expect.poll(() => statusOf(id), { timeout: 10_000 }).toBe('completed')
      await routed.fulfill({ response: answer })
    })
    try {
      await form.locator('textarea').fill('{"decision": "approved"}')
      await form.locator('button[type="submit"]').click()
      await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 5_000 }).toBe('completed')
      await expect.poll(() => nodePanel().locator('form[data-action="event"]').count()).toBe(0)
      expect(await nodePanel().locator('.message.ok').allTextContents()).toEqual([
        expect.stringMatching(/^event sent \(eventTs \d+\): the node runs again now$/),
      ])
    } finally {
      await page.unroute(events)
    }
  })

  it('shows a failed order with its failure and its error once, restarts it with a new context', async () => {
    const id = await create({ workflowType: 'order', businessId: 'ORDER-7', context: { lines: [] } })
    await page.goto(`${runtime.url}/#/instances/${id}`)
    await expect.poll(() => page.locator('[data-summary="failure"]').textContent()).toContain('Failed at node validate')
    await graphNode('validate').click()
    const attempts = nodePanel().locator('[data-section="attempts"] tr[data-kind="error"]')
    await expect.poll(() => attempts.count()).toBe(1)
    const text = (await attempts.textContent()) ?? ''
    // The class is said once (the stored message starts with it).
    expect(text.match(/Error:/g)?.length ?? 0).toBeLessThanOrEqual(1)
    await shots('5-order-failed')

    await page.locator('.actions details.action summary').click()
    await page
      .locator('textarea[name="restart-context"]')
      .fill('{"lines": [{"sku": "A-1", "quantity": 2, "price": 9.5}]}')
    await page.locator('form.restart-instance button[type="submit"]').click()
    await expect.poll(() => nodeRowStatus('ship'), { timeout: 15_000 }).toBe('completed')
    await expect.poll(() => page.locator('h1 .badge').textContent(), { timeout: 5_000 }).toBe('completed')
    expect(await page.locator('[data-summary="failure"]').count()).toBe(0)
  })

  it('draws the graph of an instance whose id ends in ":"', async () => {
    const id = await create({ workflowType: 'approval', id: 'po-2026:', context: {} })
    await page.goto(`${runtime.url}/#/instances/${encodeURIComponent(id)}`)
    await expect.poll(() => graphNode('review').count(), { timeout: 10_000 }).toBe(1)
    expect(await page.locator('h1 code').textContent()).toBe('po-2026:')
  })

  it('refreshes the list by itself: a cancel made elsewhere shows after one refresh interval', async () => {
    const id = await create({ workflowType: 'approval', businessId: 'LIVE-1', context: {} })
    // The page's own clock: one interval is exactly one interval, however busy the machine.
    const timed = await browser.context.newPage()
    try {
      await timed.clock.install()
      await timed.goto(`${runtime.url}/#/instances?businessId=LIVE-1`)
      const row = timed.locator(`tr[data-id="${id}"]`)
      await expect.poll(() => row.getAttribute('data-status')).toBe('running')
      expect(await timed.locator('input[name="live"]').isChecked()).toBe(true)
      await api('POST', `/workflows/${id}/cancel`)
      await timed.clock.fastForward(LIST_REFRESH_MS)
      await expect.poll(() => row.getAttribute('data-status')).toBe('canceled')
      // Its end comes from its detail, read once it is finished.
      await expect.poll(() => row.locator('td[data-column="ended"] time').count()).toBe(1)

      // Paused, it reads nothing more.
      const reads: string[] = []
      timed.on('request', (request) => {
        if (new URL(request.url()).pathname === '/workflows') reads.push(request.url())
      })
      await timed.locator('input[name="live"]').uncheck()
      await timed.clock.fastForward(3 * LIST_REFRESH_MS)
      // Live again, it reads at once: one read, which the page sends after the click returns. Three more would show
      // that it read while paused.
      await timed.locator('input[name="live"]').check()
      await expect.poll(() => reads.length).toBeGreaterThan(0)
      expect(reads).toHaveLength(1)
    } finally {
      await timed.close()
    }
  })

  it('cancels 3 selected instances at once, confirmed with the count, and lists a refusal per instance', async () => {
    const ids = await Promise.all(
      [1, 2, 3].map(() => create({ workflowType: 'approval', businessId: 'BULK', context: {} })),
    )
    await page.goto(`${runtime.url}/#/instances?businessId=BULK`)
    await expect.poll(() => page.locator('table.instances tbody tr').count()).toBe(3)
    await page.locator('table.instances thead input[type="checkbox"]').check()
    const cancel = page.locator('button[data-bulk="cancel"]')
    expect(await cancel.textContent()).toBe('Cancel 3')
    await cancel.click()
    expect(dialogs.at(-1)).toBe('Cancel 3 instances?')
    await expect
      .poll(() => page.locator('.bulk .message.ok').textContent(), { timeout: 10_000 })
      .toBe('canceled 3 of 3')
    for (const id of ids) expect(await statusOf(id)).toBe('canceled')
    await expect.poll(() => page.locator('table.instances tbody tr[data-status="canceled"]').count()).toBe(3)
    await shots('1-instances-bulk')

    // A restart of two, one of which was restarted elsewhere meanwhile: that one is refused, and named.
    await page.locator('input[name="live"]').uncheck()
    await page.locator(`tr[data-id="${ids[0]}"] input[type="checkbox"]`).check()
    await page.locator(`tr[data-id="${ids[1]}"] input[type="checkbox"]`).check()
    await api('POST', `/workflows/${ids[1]}/restart`, {})
    await page.locator('button[data-bulk="restart"]').click()
    expect(dialogs.at(-1)).toBe('Restart 2 instances?')
    const outcome = page.locator('.bulk .message.warn')
    await expect.poll(() => outcome.textContent(), { timeout: 10_000 }).toContain('restarted 1 of 2; refused:')
    expect(await outcome.locator('li').allTextContents()).toEqual([
      expect.stringMatching(new RegExp(`^${ids[1]}: 409 `)),
    ])
    await page.locator('input[name="live"]').check()
  })

  it('sorts, pages back and forth, and changes the page size', async () => {
    for (const n of [1, 2, 3]) await create({ workflowType: 'order', businessId: 'PAGED', context: { n, lines: [] } })
    const ids = () =>
      page.locator('table.instances tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-id')))
    await page.goto(`${runtime.url}/#/instances?businessId=PAGED`)
    await expect.poll(() => ids().then((list) => list.length)).toBe(3)
    const newestFirst = await ids()
    // Creation order is the API's (across pages); another column sorts the page shown.
    await page.locator('th[data-column="created"] a').click()
    await expect.poll(ids).toEqual([...newestFirst].reverse())
    await page.locator('th[data-column="id"] a').click()
    await expect.poll(ids).toEqual([...newestFirst].sort())
    await page.locator('th[data-column="id"] a').click()
    await expect.poll(ids).toEqual([...newestFirst].sort().reverse())

    // One per page: next, next, previous, previous.
    await page.goto(`${runtime.url}/#/instances?businessId=PAGED&limit=1`)
    const pageNumber = () => page.locator('.pager .page').textContent()
    await expect.poll(ids).toEqual([newestFirst[0]])
    await page.locator('.pager a[rel="next"]').click()
    await expect.poll(ids).toEqual([newestFirst[1]])
    expect(await pageNumber()).toBe('page 2')
    await page.locator('.pager a[rel="next"]').click()
    await expect.poll(ids).toEqual([newestFirst[2]])
    expect(await pageNumber()).toBe('page 3')
    await page.locator('.pager a[rel="prev"]').click()
    await expect.poll(ids).toEqual([newestFirst[1]])
    await page.locator('.pager a[rel="prev"]').click()
    await expect.poll(ids).toEqual([newestFirst[0]])
    expect(await pageNumber()).toBe('page 1')

    await page.locator('select[name="limit"]').selectOption('25')
    await expect.poll(() => ids().then((list) => list.length)).toBe(3)
    expect(page.url()).not.toContain('limit=')
  })

  it('lists the local dead letters with their reason and redrives one', async () => {
    const sent = await fetch(`${runtime.url}/_local/queues/events`, { method: 'POST', body: 'not an event' })
    expect(sent.status).toBe(202)
    await page.goto(`${runtime.url}/#/dead-letters`)
    const panel = page.locator('section[data-panel="tickflow-events-dlq"]')
    const row = panel.locator('tbody tr')
    const reloaded = async <T>(read: () => Promise<T>): Promise<T> => {
      await page.reload()
      await panel.waitFor()
      return read()
    }
    await expect.poll(() => reloaded(() => row.count()), { timeout: 10_000 }).toBe(1)
    const firstId = await row.locator('code').textContent()
    expect(await row.locator('.reason').textContent()).toMatch(/\S/)
    await shots('8-dead-letters')
    await row.locator('button').click()
    await expect.poll(() => panel.locator('.message.ok').first().textContent()).toContain('to tickflow-events')
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
    await shots('9-events')

    await page.goto(`${runtime.url}/#/instances/${instanceId}`)
    await expect
      .poll(() => page.locator('tr[data-node="capture"]').textContent(), { timeout: 10_000 })
      .toContain('waiting for a callback')
  })

  it('shows the workflow types with their graphs, and the schedules', async () => {
    await page.goto(`${runtime.url}/#/types`)
    await expect.poll(() => page.locator('.graph .gnode').count(), { timeout: 10_000 }).toBeGreaterThan(8)
    await shots('6-types')

    await page.goto(`${runtime.url}/#/schedules`)
    await page.locator('input[name="name"]').fill('nightly')
    await page.locator('input[name="expression"]').fill('cron(0 2 * * ? *)')
    const form = page.locator('form[aria-label="new schedule"]')
    await form.locator('button[type="submit"]').click()
    await page.locator('tr[data-schedule="nightly"]').waitFor()
    await page.locator('input[name="name"]').fill('broken')
    await page.locator('input[name="expression"]').fill('every day')
    await form.locator('button[type="submit"]').click()
    // A refusal shows as the API gives it, next to the button.
    await expect.poll(() => form.locator('.message.error').textContent()).toMatch(/^400 /)
    await shots('7-schedules')
    await page.locator('tr[data-schedule="nightly"] button.danger').click()
    await expect.poll(() => page.locator('tr[data-schedule="nightly"]').count()).toBe(0)
  })

  it('lets a success message go once it is stale, and keeps an error until what it refused changes', async () => {
    // The page's own clock, run forward: no test waits the 8 s a success stays.
    const timed = await browser.context.newPage()
    try {
      await timed.clock.install()
      timed.on('dialog', (dialog) => void dialog.accept())
      await timed.goto(`${runtime.url}/#/schedules`)
      const form = timed.locator('form[aria-label="new schedule"]')
      await timed.locator('input[name="name"]').fill('hourly')
      await timed.locator('input[name="expression"]').fill('rate(1 hour)')
      await form.locator('button[type="submit"]').click()
      await expect.poll(() => form.locator('.message.ok').textContent()).toBe('stored hourly')
      await timed.clock.fastForward(9_000)
      await expect.poll(() => form.locator('.message').count()).toBe(0)

      await timed.locator('input[name="expression"]').fill('every day')
      await form.locator('button[type="submit"]').click()
      await expect.poll(() => form.locator('.message.error').count()).toBe(1)
      await timed.clock.fastForward(30_000)
      expect(await form.locator('.message.error').count()).toBe(1)
    } finally {
      await timed.close()
      await api('DELETE', '/schedules/hourly')
    }
  })

  it('never scrolls sideways from 900 px wide, on any view', async () => {
    const id = await create({
      workflowType: 'subscription-billing',
      context: { customer: 'c-1', amount: 30, declines: 1 },
    })
    await page.setViewportSize({ width: 900, height: 900 })
    try {
      for (const view of [
        '#/instances',
        `#/instances/${id}?node=collect`,
        '#/types',
        '#/schedules',
        '#/dead-letters',
      ]) {
        await page.goto(`${runtime.url}/${view}`)
        await page.locator('main h1').first().waitFor()
        await page.waitForLoadState('networkidle')
        const [scroll, client] = await page.evaluate<number[]>(
          '[document.documentElement.scrollWidth, document.documentElement.clientWidth]',
        )
        expect({ view, scroll }).toEqual({ view, scroll: client })
        if (view.includes('?node=')) await shots('9-instance-900px')
      }
    } finally {
      await page.setViewportSize({ width: 1360, height: 900 })
    }
  })

  it('follows a dark system setting', async () => {
    await page.emulateMedia({ colorScheme: 'dark' })
    try {
      await page.goto(`${runtime.url}/#/instances`)
      await page.locator('table.instances').waitFor()
      const [r, g, b] = await page.evaluate<number[]>(
        '(getComputedStyle(document.body).backgroundColor.match(/\\d+/g) ?? []).map(Number)',
      )
      expect((r ?? 255) + (g ?? 255) + (b ?? 255)).toBeLessThan(3 * 60)
      await shot('10-dark-instances')
    } finally {
      await page.emulateMedia({ colorScheme: 'light' })
    }
  })

  it('loads the list page in under 300 KB, the instance page too: no graph library', async () => {
    const weigh = async (url: string): Promise<number> => {
      const fresh = await browser.context.newPage()
      try {
        const cdp = await browser.context.newCDPSession(fresh)
        await cdp.send('Network.enable')
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
        let bytes = 0
        cdp.on('Network.loadingFinished', (event: { encodedDataLength: number }) => {
          bytes += event.encodedDataLength
        })
        await fresh.goto(url)
        await fresh.locator('main h1').first().waitFor()
        await fresh.waitForLoadState('networkidle')
        return bytes
      } finally {
        await fresh.close()
      }
    }
    const list = await weigh(`${runtime.url}/#/instances`)
    const id = await create({ workflowType: 'approval', context: {} })
    const instance = await weigh(`${runtime.url}/#/instances/${id}`)
    expect(list).toBeLessThan(300_000)
    expect(instance).toBeLessThan(300_000)
  })

  it('ran every view without one thing refused by its CSP', () => {
    expect(refused).toEqual([])
  })
})
