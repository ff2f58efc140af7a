import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { createApiHandler } from '../../src/api/handler.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { serveApi } from '../../src/local/http-server.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

/** The dashboard's page and files as the API serves them (the bundle is built by `npm run build:dashboard`). */

const clock = new FakeClock()
const engine = new Engine({ store: new MemoryStore(), clock, ids: sequentialIds(), random: fixedRandom() })
const handler = createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 10 })

let server: ReturnType<typeof serveApi>
let baseUrl: string

beforeAll(async () => {
  server = serveApi(handler, () => {})
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((closed) => server.close(closed))
})

describe('the dashboard at /', () => {
  it('serves a page whose every script and style sheet comes from this API, none from a CDN', async () => {
    const page = await fetch(`${baseUrl}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await page.text()
    const links = [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map(
      (match) => new URL(match[1] as string, `${baseUrl}/`).href,
    )
    // The icon is empty, inline: a browser would otherwise ask for /favicon.ico on every load.
    expect(links.filter((link) => link.startsWith('data:'))).toEqual(['data:,'])
    const assets = links.filter((link) => !link.startsWith('data:'))
    expect(assets.sort()).toEqual(['app.css', 'app.js'].map((name) => `${baseUrl}/dashboard/${name}`).sort())
    for (const asset of assets) {
      const answer = await fetch(asset)
      expect(answer.status, asset).toBe(200)
      expect(answer.headers.get('content-type'), asset).toMatch(
        asset.endsWith('.css') ? /^text\/css/ : /^text\/javascript/,
      )
    }
  })

  it('serves no graph library: the dashboard draws its graphs itself, without inline styles', async () => {
    const answer = await fetch(`${baseUrl}/dashboard/mermaid.min.js`)
    expect(answer.status).toBe(400)
    const script = await (await fetch(`${baseUrl}/dashboard/app.js`)).text()
    expect(script.length).toBeLessThan(150_000)
  })

  it('refuses any other file name with a 400 naming the path parameter', async () => {
    const answer = await fetch(`${baseUrl}/dashboard/..%2Fpackage.json`)
    expect(answer.status).toBe(400)
    expect(((await answer.json()) as { error: { details: { field: string } } }).error.details.field).toBe('path.asset')
  })
})
