import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { createApiHandler } from '../../src/api/handler.js'
import { Engine } from '../../src/core/engine.js'
import { silentLogger } from '../../src/core/ports.js'
import { serveApi } from '../../src/local/http-server.js'
import { FakeClock, fixedRandom, sequentialIds } from '../support/harness.js'

const clock = new FakeClock()
const engine = new Engine({ store: new MemoryStore(), clock, ids: sequentialIds(), random: fixedRandom() })
const handler = createApiHandler({ engine, logger: silentLogger, clock, sleep: async () => {}, waitPollMs: 10 })
const distDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))

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

/** The URLs a page loads: scripts, styles and icons, resolved against the page's own URL. */
const assetsOf = (html: string, pageUrl: string): string[] =>
  [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map(
    (match) => new URL(match[1] as string, pageUrl).href,
  )

describe('the API docs page at /docs', () => {
  it.each(['/docs', '/docs/'])(
    'serves Swagger UI at %s with every asset from this API, none from a CDN',
    async (path) => {
      const page = await fetch(`${baseUrl}${path}`)
      expect(page.status).toBe(200)
      expect(page.headers.get('content-type')).toMatch(/^text\/html/)
      const html = await page.text()
      expect(html).toContain('swagger-ui')
      const assets = assetsOf(html, `${baseUrl}${path}`)
      expect(assets.length).toBeGreaterThanOrEqual(3)
      for (const asset of assets) {
        expect(asset.startsWith(`${baseUrl}/docs/`)).toBe(true)
        const reply = await fetch(asset)
        expect({ asset, status: reply.status }).toEqual({ asset, status: 200 })
        expect(reply.headers.get('cache-control')).toMatch(/max-age=\d+/)
      }
      expect(html).not.toMatch(/https?:\/\//)
    },
  )

  it('serves the swagger-ui-dist files byte for byte, with their content types', async () => {
    for (const [name, type] of [
      ['swagger-ui-bundle.js', /^text\/javascript/],
      ['swagger-ui.css', /^text\/css/],
    ] as const) {
      const reply = await fetch(`${baseUrl}/docs/${name}`)
      expect(reply.headers.get('content-type')).toMatch(type)
      expect(Buffer.from(await reply.arrayBuffer()).equals(readFileSync(join(distDir, name)))).toBe(true)
    }
  })

  it('points Swagger UI at this API document, relative to where it is served', async () => {
    const script = await (await fetch(`${baseUrl}/docs/swagger-initializer.js`)).text()
    expect(script).toContain('SwaggerUIBundle')
    expect(script).toContain('../openapi.json')
    const spec = await fetch(new URL('../openapi.json', `${baseUrl}/docs/swagger-initializer.js`))
    expect(spec.status).toBe(200)
    expect(((await spec.json()) as { openapi: string }).openapi).toBe('3.1.0')
  })

  it('marks every request of "Try it out" as a script\'s, so that its changes pass the cross-site check', async () => {
    const script = await (await fetch(`${baseUrl}/docs/swagger-initializer.js`)).text()
    let config: { requestInterceptor(request: { headers: Record<string, string> }): unknown } | undefined
    const onLoad: (() => void)[] = []
    const SwaggerUIBundle = Object.assign((options: typeof config) => (config = options), { presets: { apis: {} } })
    runInNewContext(script, {
      SwaggerUIBundle,
      document: { currentScript: { src: `${baseUrl}/docs/swagger-initializer.js` } },
      window: { addEventListener: (_: string, listener: () => void) => onLoad.push(listener) },
      URL,
    })
    for (const listener of onLoad) listener()
    expect(config?.requestInterceptor({ headers: {} })).toEqual({ headers: { 'X-Requested-With': 'tickflow-docs' } })
  })

  it.each(['index.html', 'swagger-ui.js.map', '..%2Fpackage.json', 'package.json'])(
    'serves no other file of the package (%s)',
    async (name) => {
      const reply = await fetch(`${baseUrl}/docs/${name}`)
      expect([400, 404]).toContain(reply.status)
    },
  )
})
