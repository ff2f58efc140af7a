import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { ApiResponse } from '../http.js'
import { HttpError } from '../http-errors.js'
import { type Route, route } from '../router.js'
import { errorAnswer, STATIC_FILE } from './route-answers.js'

/**
 * The dashboard's files: the bundle `npm run build:dashboard` writes, nothing else. It draws its graphs itself
 * (src/dashboard/graph-view.ts): Mermaid's renderer needs inline styles, which the page's CSP refuses.
 */
const ASSETS = {
  'app.js': { contentType: 'text/javascript; charset=utf-8' },
  'app.css': { contentType: 'text/css; charset=utf-8' },
} as const

type AssetName = keyof typeof ASSETS

export const DASHBOARD_BUNDLE_DIR = join('dist', 'dashboard')

const page = (assetPrefix: string): string => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>tickflow</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="${assetPrefix}app.css">
  </head>
  <body>
    <main id="app"><p class="muted">Loading…</p></main>
    <script src="${assetPrefix}app.js"></script>
  </body>
</html>
`

/**
 * The bundle's folder: found upwards from this module, so that it is the repository's `dist/dashboard` locally and
 * the copy packaged next to the api function's bundle on Lambda (serverless.yml adds it to the zip).
 */
const bundleDir = (): string | undefined => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = join(dir, DASHBOARD_BUNDLE_DIR)
    if (existsSync(join(candidate, 'app.js'))) return candidate
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

const ONE_HOUR_SECONDS = 3_600

/**
 * `GET /` (the dashboard: one page over this API, served from the package, no CDN) and the files it loads. The
 * page talks to the API with relative URLs, so it works under a stage or base path, behind the API's own auth.
 */
export const dashboardRoutes = (): Route[] => {
  const cache = new Map<AssetName, string>()
  const read = (name: AssetName): string => {
    const cached = cache.get(name)
    if (cached !== undefined) return cached
    const dir = bundleDir()
    if (dir === undefined) {
      throw new HttpError(503, 'DASHBOARD_NOT_BUILT', 'the dashboard is not built: run `npm run build:dashboard`')
    }
    const text = readFileSync(join(dir, name), 'utf8')
    cache.set(name, text)
    return text
  }
  return [
    route({
      method: 'GET',
      path: '/',
      operationId: 'getDashboard',
      summary: 'The dashboard: instances, workflow types, schedules',
      tag: 'documentation',
      responses: { 200: { description: 'the dashboard page', contentType: 'text/html', schema: z.string() } },
      handle: async () => ({
        statusCode: 200,
        headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
        body: page('dashboard/'),
      }),
    }),
    route({
      method: 'GET',
      path: '/dashboard/{asset}',
      operationId: 'getDashboardAsset',
      summary: 'A script or style sheet of the dashboard',
      tag: 'documentation',
      params: z.strictObject({ asset: z.enum(Object.keys(ASSETS) as [AssetName, ...AssetName[]]) }),
      responses: {
        200: STATIC_FILE,
        400: errorAnswer('not a file of the dashboard'),
        503: errorAnswer('the dashboard was not built'),
      },
      handle: async ({ params }): Promise<ApiResponse> => ({
        statusCode: 200,
        headers: {
          'content-type': ASSETS[params.asset].contentType,
          'cache-control': `public, max-age=${ONE_HOUR_SECONDS}`,
        },
        body: read(params.asset),
      }),
    }),
  ]
}
