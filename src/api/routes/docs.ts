import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import type { ApiResponse } from '../http.js'
import { type Route, route } from '../router.js'
import { errorAnswer, STATIC_FILE } from './route-answers.js'

/** The files of `swagger-ui-dist` the docs page loads, with their content types; nothing else is served. */
const DIST_ASSETS = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
} as const

/** Points Swagger UI at the document next to the page, wherever the API is mounted (stage, base path). */
const INITIALIZER = `// tickflow: Swagger UI for this API's own OpenAPI document, found relative to this script.
const spec = new URL('../openapi.json', document.currentScript.src).href
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: spec,
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    // Nothing from elsewhere: no badge from the public validator (the page's CSP would block it anyway).
    validatorUrl: null,
    // "Try it out" changes things like the dashboard does: as a script, which a form or another site cannot be.
    requestInterceptor: (request) => {
      request.headers['X-Requested-With'] = 'tickflow-docs'
      return request
    },
  })
})
`

const page = (assetPrefix: string): string => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>tickflow API</title>
    <link rel="stylesheet" href="${assetPrefix}swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${assetPrefix}swagger-ui-bundle.js"></script>
    <script src="${assetPrefix}swagger-initializer.js"></script>
  </body>
</html>
`

/**
 * Where swagger-ui-dist is: the repository's node_modules locally, the copy packaged next to the bundle on
 * Lambda (serverless.yml adds exactly the served files to the api function's zip).
 */
const distDir = (): string => dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))

const ONE_DAY_SECONDS = 86_400

/** `GET /docs` (Swagger UI, served from this package, no CDN) and the files it loads. */
export const docsRoutes = (): Route[] => {
  const cache = new Map<string, string>()
  const asset = (name: keyof typeof DIST_ASSETS): string => {
    let text = cache.get(name)
    if (text === undefined) {
      text = readFileSync(join(distDir(), name), 'utf8')
      cache.set(name, text)
    }
    return text
  }
  const file = (body: string, contentType: string, maxAgeSeconds: number): ApiResponse => ({
    statusCode: 200,
    headers: { 'content-type': contentType, 'cache-control': `public, max-age=${maxAgeSeconds}` },
    body,
  })
  const assetNames = ['swagger-initializer.js', ...Object.keys(DIST_ASSETS)] as [string, ...string[]]
  return [
    route({
      method: 'GET',
      path: '/docs',
      operationId: 'getDocsPage',
      summary: 'This API in Swagger UI',
      tag: 'documentation',
      responses: { 200: { description: 'the docs page', contentType: 'text/html', schema: z.string() } },
      // Asset URLs relative to the page, so that the page works under a stage or base path, with or without `/`.
      handle: async ({ request }) => ({
        statusCode: 200,
        headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
        body: page(request.path.endsWith('/') ? '' : 'docs/'),
      }),
    }),
    route({
      method: 'GET',
      path: '/docs/{asset}',
      operationId: 'getDocsAsset',
      summary: 'A script or style sheet of the docs page',
      tag: 'documentation',
      params: z.strictObject({ asset: z.enum(assetNames) }),
      responses: {
        200: STATIC_FILE,
        400: errorAnswer('not a file of the docs page'),
      },
      handle: async ({ params }) => {
        const name = params.asset
        if (name === 'swagger-initializer.js') return file(INITIALIZER, 'text/javascript; charset=utf-8', 300)
        const distName = name as keyof typeof DIST_ASSETS
        return file(asset(distName), DIST_ASSETS[distName], ONE_DAY_SECONDS)
      },
    }),
  ]
}
