import { createServer, request as httpRequest, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LocalRuntime, startLocalRuntime } from '../../src/local/runtime.js'
import { type Browser, launchBrowser } from '../support/browser.js'
import { dynamoEndpoint, uniqueTableName } from '../support/dynamodb.js'

/**
 * The local runtime as a developer's browser meets it while other sites are open in other tabs: a page of another
 * site (`evil.test`, served on this machine) tries to change instances through the browser, frame the dashboard,
 * or reach the API under a name of its own (DNS rebinding). Debian's chromium through playwright-core.
 */

const mermaidFile = join(
  dirname(createRequire(import.meta.url).resolve('mermaid/package.json')),
  'dist',
  'mermaid.min.js',
)

/** Pages another site would serve: each does one thing to the URL it is given. */
const EVIL_PAGES: Record<string, (target: string, body: string) => string> = {
  // An empty form, submitted as soon as the page loads: the classic cross-site request forgery.
  '/form': (target) =>
    `<!doctype html><form method="POST" action="${target}"></form><script>document.forms[0].submit()</script>`,
  // A no-cors fetch: the browser sends it (text/plain, no preflight) and hides the answer from the page.
  '/no-cors': (target, body) =>
    `<!doctype html><script>fetch(${JSON.stringify(target)}, {method: 'POST', mode: 'no-cors', headers: {'content-type': 'text/plain'}, body: ${JSON.stringify(body)}}).then(() => { document.title = 'sent' }, () => { document.title = 'failed' })</script>`,
  '/frame': (target) => `<!doctype html><iframe src="${target}" width="800" height="600"></iframe>`,
}

const serveEvilPages = (): Server =>
  createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://evil.test')
    const page = EVIL_PAGES[url.pathname]
    if (!page) {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    response.end(page(url.searchParams.get('target') ?? '', url.searchParams.get('body') ?? ''))
  })

/** A request with a Host header of the caller's choosing (fetch does not let one set it). */
const withHost = (url: string, host: string, method = 'GET'): Promise<number> =>
  new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method, headers: { host } }, (answer) => {
      answer.resume()
      resolve(answer.statusCode ?? 0)
    })
    outgoing.on('error', reject)
    outgoing.end()
  })

describe('the local runtime and its dashboard against other websites', () => {
  let runtime: LocalRuntime
  let evil: Server
  let evilUrl: string
  let runtimePort: number
  let browser: Browser
  let page: Page

  beforeAll(async () => {
    runtime = await startLocalRuntime({
      port: 0,
      host: '127.0.0.1',
      inMemory: true,
      dataDir: '.data',
      dynamodbEndpoint: dynamoEndpoint(),
      tableName: uniqueTableName('dashboard-security'),
      tickIntervalMs: 1_000,
      pumpIntervalMs: 100,
      logLevel: 'error',
      print: () => {},
    })
    runtimePort = Number(new URL(runtime.url).port)
    evil = serveEvilPages()
    await new Promise<void>((listening) => evil.listen(0, '127.0.0.1', () => listening()))
    evilUrl = `http://evil.test:${(evil.address() as AddressInfo).port}`
    // Both names resolve to this machine, as a site's own DNS (or a rebinding one) can make them.
    browser = await launchBrowser({ hostRules: ['MAP evil.test 127.0.0.1', 'MAP rebound.test 127.0.0.1'] })
    page = browser.page
    page.on('dialog', (dialog) => void dialog.accept())
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    evil?.closeAllConnections()
    await new Promise((closed) => evil?.close(closed))
    await runtime?.stop()
  })

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const answer = await fetch(`${runtime.url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })
    const text = await answer.text()
    return { status: answer.status, body: (text ? JSON.parse(text) : undefined) as T }
  }

  const createApproval = async (extra: Record<string, unknown> = {}): Promise<string> => {
    const created = await api<{ instanceId: string }>('POST', '/workflows', {
      workflowType: 'approval',
      context: { requester: 'ada' },
      ...extra,
    })
    expect(created.status).toBe(201)
    return created.body.instanceId
  }

  const statusOf = async (id: string): Promise<string> =>
    (await api<{ status: string }>('GET', `/workflows/${encodeURIComponent(id)}`)).body.status

  const evilPage = (name: string, target: string, body = '') =>
    `${evilUrl}${name}?${new URLSearchParams({ target, body })}`

  it('ignores a form another site submits to cancel an instance', async () => {
    const id = await createApproval()
    const target = `${runtime.url}/workflows/${id}/cancel`
    const answer = page.waitForResponse(target)
    await page.goto(evilPage('/form', target))
    expect((await answer).status()).toBe(403)
    expect(await statusOf(id)).toBe('running')
  })

  it('ignores a no-cors POST another site sends to the local events queue', async () => {
    const id = await createApproval({ businessId: 'PO-CSRF' })
    const forged = { workflowType: 'approval', businessId: 'PO-CSRF', nodeId: 'review', eventTs: 5 }
    await page.goto(
      evilPage(
        '/no-cors',
        `${runtime.url}/_local/queues/events`,
        JSON.stringify({ ...forged, content: { decision: 'approved' } }),
      ),
    )
    await expect.poll(() => page.title()).toBe('sent')
    // The queue is first in, first out: had the forged approval been queued, it would decide before this one.
    const genuine = await api('POST', '/_local/queues/events', {
      ...forged,
      eventTs: 6,
      content: { decision: 'rejected' },
    })
    expect(genuine.status).toBe(202)
    const done = await api<{ nodes: { id: string; context?: { decision?: string } }[] }>(
      'GET',
      `/workflows/${id}?wait=terminal&timeoutSeconds=20`,
    )
    expect(done.body.nodes.find((node) => node.id === 'approve')?.context?.decision).toBe('rejected')
  })

  it("still lets the dashboard's own page cancel an instance", async () => {
    const id = await createApproval()
    await page.goto(`${runtime.url}/#/instances/${id}`)
    await page.getByRole('button', { name: 'Cancel instance' }).click()
    await expect.poll(() => statusOf(id), { timeout: 10_000 }).toBe('canceled')
  })

  it('answers no host name it does not serve: a rebound name gets 421 in the browser and from curl', async () => {
    const answer = await page.goto(`http://rebound.test:${runtimePort}/`)
    expect(answer?.status()).toBe(421)
    expect(await withHost(`${runtime.url}/workflows`, 'evil.test')).toBe(421)
    expect(await withHost(`${runtime.url}/workflows`, `evil.test:${runtimePort}`, 'POST')).toBe(421)
    for (const host of [`127.0.0.1:${runtimePort}`, `localhost:${runtimePort}`, 'localhost']) {
      expect({ host, status: await withHost(`${runtime.url}/workflows`, host) }).toEqual({ host, status: 200 })
    }
  })

  it('sends nosniff, a CSP without framing, X-Frame-Options and no referrer on the page, an asset and JSON', async () => {
    const page0 = await page.goto(`${runtime.url}/`)
    const responses = [
      ['/', page0?.headers() ?? {}],
      ['/dashboard/app.js', Object.fromEntries((await fetch(`${runtime.url}/dashboard/app.js`)).headers)],
      ['/workflows', Object.fromEntries((await fetch(`${runtime.url}/workflows`)).headers)],
    ] as const
    for (const [path, headers] of responses) {
      expect({ path, nosniff: headers['x-content-type-options'] }).toEqual({ path, nosniff: 'nosniff' })
      expect({ path, frame: headers['x-frame-options'] }).toEqual({ path, frame: 'DENY' })
      expect({ path, referrer: headers['referrer-policy'] }).toEqual({ path, referrer: 'no-referrer' })
      expect(headers['content-security-policy'], path).toContain("frame-ancestors 'none'")
    }
    const csp = String(page0?.headers()['content-security-policy'])
    expect(csp).toMatch(/script-src 'self'(;|$)/)
    expect(csp).toMatch(/style-src 'self'(;|$)/)
    expect(csp).not.toContain('unsafe-inline')
  })

  it('serves the docs page under the same CSP, and it works: Swagger UI draws every operation', async () => {
    const refused: string[] = []
    const listen = (message: { text(): string }) => {
      if (/Content Security Policy/i.test(message.text())) refused.push(message.text())
    }
    page.on('console', listen)
    try {
      await page.goto(`${runtime.url}/docs`)
      await expect.poll(() => page.locator('.opblock').count(), { timeout: 10_000 }).toBeGreaterThan(10)
      expect(refused).toEqual([])
    } finally {
      page.off('console', listen)
    }
  })

  it('cannot be framed by another site', async () => {
    await page.goto(evilPage('/frame', `${runtime.url}/`))
    const frame = page.frames().find((candidate) => candidate !== page.mainFrame())
    await expect.poll(() => frame?.url()).toMatch(/^chrome-error:/)
  })

  it('writes valid Mermaid for an instance whose id ends in ":"', async () => {
    const id = await createApproval({ id: 'po-2026:' })
    const text = await (await fetch(`${runtime.url}/workflows/${encodeURIComponent(id)}/graph`)).text()
    const checker = await browser.context.newPage()
    try {
      await checker.setContent('<!doctype html><body></body>')
      await checker.addScriptTag({ path: mermaidFile })
      const parsed = await checker.evaluate(async (graph) => {
        try {
          await (globalThis as unknown as { mermaid: { parse(text: string): Promise<unknown> } }).mermaid.parse(graph)
          return 'parsed'
        } catch (error) {
          return String(error)
        }
      }, text)
      expect(parsed).toBe('parsed')
    } finally {
      await checker.close()
    }
  })
})
