import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/adapters/memory/memory-store.js'
import { API_SCOPES, scopeOf, withOpenApiRoute } from '../../src/api/openapi.js'
import { apiRoutes } from '../../src/api/routes/api-routes.js'
import { dashboardRoutes } from '../../src/api/routes/dashboard.js'
import { docsRoutes } from '../../src/api/routes/docs.js'
import { Engine } from '../../src/core/engine.js'
import { createIdGenerator, mathRandom, systemClock } from '../../src/system/defaults.js'
import { CHILD_PROCESS_TIMEOUT_MS } from '../support/timeouts.js'
import { lintTemplates } from './cfn-lint.js'
import { oslsPackage, type PackageResult, parseServerlessYaml, serverlessYaml } from './serverless-config.js'
import { type CfnResource, loadPackagedService, refOf, type Template } from './template.js'

/**
 * Secure by default: which stages require authorisation, the JWT scopes of each route group, throttling and access
 * logs, read from templates packaged by osls for several stages and parameters.
 */

const JWT_PARAMS = ['--param=auth=jwt', '--param=jwtIssuerUrl=https://issuer.example.com', '--param=jwtAudience=api']

/** The variants this file packages (each in its own copy of the service, in parallel). */
const VARIANTS = {
  dev: ['--stage', 'dev'],
  prod: ['--stage', 'prod'],
  prodJwt: ['--stage', 'prod', ...JWT_PARAMS, '--param=throttleRateLimit=5', '--param=throttleBurstLimit=10'],
  prodNone: ['--stage', 'prod', '--param=auth=none'],
} as const satisfies Record<string, readonly string[]>
type Variant = keyof typeof VARIANTS

const results = {} as Record<Variant, PackageResult>
const lintDir = mkdtempSync(join(tmpdir(), 'tickflow-lint-'))

beforeAll(async () => {
  const entries = Object.entries(VARIANTS) as [Variant, readonly string[]][]
  // Two at a time: the machines have two cores, and each packaging runs esbuild.
  const queue = [...entries]
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      results[next[0]] = await oslsPackage([...next[1]])
    }
  }
  await Promise.all([worker(), worker()])
}, 2 * CHILD_PROCESS_TIMEOUT_MS)

afterAll(() => {
  rmSync(lintDir, { recursive: true, force: true })
})

const packaged = (variant: Variant): Template => {
  const result = results[variant]
  if (!result?.template) throw new Error(`${variant} did not package:\n${result?.output}`)
  return result.template
}

const resourcesOf = (template: Template, type: string): [string, CfnResource][] =>
  Object.entries(template.Resources).filter(([, resource]) => resource.Type === type)

interface GatewayRoute {
  routeKey: string
  authorizationType: string
  scopes: string[]
  authorizerId?: string | undefined
}

const routesOf = (template: Template): GatewayRoute[] =>
  resourcesOf(template, 'AWS::ApiGatewayV2::Route').map(([, route]) => {
    const p = route.Properties ?? {}
    return {
      routeKey: String(p.RouteKey),
      authorizationType: String(p.AuthorizationType ?? 'NONE'),
      scopes: ((p.AuthorizationScopes as string[] | undefined) ?? []).slice().sort(),
      ...(refOf(p.AuthorizerId) ? { authorizerId: refOf(p.AuthorizerId) } : {}),
    }
  })

const CALLBACK_ROUTE = 'POST /callbacks/{token}'

const READ_PATHS = [
  '/workflows',
  '/workflows/{proxy+}',
  '/workflow-types',
  '/workflow-types/{proxy+}',
  '/openapi.json',
  '/docs',
  '/docs/{proxy+}',
  '/',
  '/dashboard/{proxy+}',
]
const ROUTE_KEYS = [
  ...READ_PATHS.map((path) => `GET ${path}`),
  ...READ_PATHS.map((path) => `HEAD ${path}`),
  'POST /workflows',
  'POST /workflows/{proxy+}',
  'ANY /schedules',
  'ANY /schedules/{proxy+}',
  CALLBACK_ROUTE,
].sort()

/** The one route of the public callbacks group: its token is its credential (README, "Security"). */
const isCallbackRoute = (route: GatewayRoute): boolean => route.routeKey === CALLBACK_ROUTE

/**
 * The route API Gateway (HTTP API) selects for a request: an exact path before a greedy `{proxy+}` one, the longest
 * greedy prefix first, a route of the request's method before `ANY`; `$default` only when nothing else matches.
 */
const selectRoute = (routes: GatewayRoute[], method: string, path: string): GatewayRoute | undefined => {
  const ranked = routes
    .map((route) => {
      const [routeMethod = '', routePath = ''] = route.routeKey.split(' ')
      if (route.routeKey === '$default') return { route, rank: [0, 0, 0] }
      if (routeMethod !== 'ANY' && routeMethod !== method) return undefined
      const methodRank = routeMethod === 'ANY' ? 1 : 2
      if (routePath === path) return { route, rank: [3, routePath.length, methodRank] }
      const greedy = /^(.*)\/\{proxy\+\}$/.exec(routePath)
      if (greedy && path.startsWith(`${greedy[1]}/`) && path.length > (greedy[1] as string).length + 1) {
        return { route, rank: [2, (greedy[1] as string).length, methodRank] }
      }
      return undefined
    })
    .filter((candidate): candidate is { route: GatewayRoute; rank: number[] } => candidate !== undefined)
    .sort((a, b) => b.rank[0]! - a.rank[0]! || b.rank[1]! - a.rank[1]! || b.rank[2]! - a.rank[2]!)
  return ranked[0]?.route
}

/** Every route the api function serves (the same table its OpenAPI document is generated from), and HEAD on GETs. */
const servedRoutes = withOpenApiRoute(
  [
    ...dashboardRoutes(),
    ...apiRoutes({
      engine: new Engine({
        store: new MemoryStore(),
        clock: systemClock,
        ids: createIdGenerator(systemClock),
        random: mathRandom,
        logger: { log: () => {} },
      }),
      clock: systemClock,
      sleep: (ms) => sleep(ms),
      waitPollMs: 10,
    }),
    ...docsRoutes(),
  ],
  'test',
)
const appRoutes = [
  ...servedRoutes,
  ...servedRoutes.filter((route) => route.method === 'GET').map((route) => ({ ...route, method: 'HEAD' as const })),
]
const EXAMPLE_PARAMS: Record<string, string> = {
  id: '01JDQ7Y3M1T0ZB5N0M6Q0XH0AA',
  node: 'review',
  name: 'nightly',
  type: 'approval',
  asset: 'app.js',
}
const examplePath = (template: string): string =>
  template.replace(/\{(\w+)\}/g, (_, name: string) => EXAMPLE_PARAMS[name] ?? name)

describe('authorisation per stage', () => {
  it('dev: open (auth none, declared by the stage), with a warning when packaging', () => {
    const routes = routesOf(packaged('dev'))
    expect(routes.map((route) => route.routeKey).sort()).toEqual(ROUTE_KEYS)
    expect(routes.filter((route) => route.authorizationType !== 'NONE')).toEqual([])
    expect(results.dev.output).toContain("Warning: tickflow: the HTTP API of stage 'dev' has no authorisation")
  })

  it('only dev and local declare auth none; the default for every other stage is iam', () => {
    const params = parseServerlessYaml(serverlessYaml()).params as Record<string, { auth?: string }>
    const open = Object.entries(params)
      .filter(([, values]) => values.auth === 'none')
      .map(([stage]) => stage)
    expect(open.sort()).toEqual(['dev', 'local'])
    expect(params.default?.auth).toBe('iam')
  })

  it.each(['prod'] as const)('%s: every route but the callbacks route requires IAM (SigV4), no warning', (variant) => {
    const template = packaged(variant)
    const routes = routesOf(template)
    expect(routes.map((route) => route.routeKey).sort()).toEqual(ROUTE_KEYS)
    for (const route of routes.filter((r) => !isCallbackRoute(r))) {
      expect(route.authorizationType, route.routeKey).toBe('AWS_IAM')
    }
    expect(routes.find(isCallbackRoute)?.authorizationType).toBe('NONE')
    expect(results[variant].output).not.toContain('has no authorisation')
  })

  it('ci (a stage serverless.yml does not name; the package npm test checks) requires IAM on every route but the callbacks route', () => {
    const routes = routesOf(loadPackagedService().template)
    expect(routes.map((route) => route.routeKey).sort()).toEqual(ROUTE_KEYS)
    for (const route of routes.filter((r) => !isCallbackRoute(r))) {
      expect(route.authorizationType, route.routeKey).toBe('AWS_IAM')
    }
  })

  it.each(['dev', 'prod', 'prodJwt'] as const)(
    '%s: POST /callbacks/{token} is public, and nothing else is reachable under /callbacks',
    (variant) => {
      const routes = routesOf(packaged(variant))
      expect(routes.find(isCallbackRoute)).toEqual({ routeKey: CALLBACK_ROUTE, authorizationType: 'NONE', scopes: [] })
      for (const [method, path] of [
        ['GET', '/callbacks/x'],
        ['POST', '/callbacks'],
        ['POST', '/callbacks/x/y'],
        ['DELETE', '/callbacks/x'],
      ] as const) {
        expect(selectRoute(routes, method, path), `${method} ${path}`).toBeUndefined()
      }
    },
  )

  it('prod: --param="auth=none" is refused, because the stage does not declare it', () => {
    expect(results.prodNone.ok).toBe(false)
    expect(results.prodNone.template).toBeUndefined()
    expect(results.prodNone.output).toContain("auth=none is refused on stage 'prod'")
  })

  it('no route is a catch-all: a request outside the route groups never reaches the function', () => {
    for (const variant of ['dev', 'prod', 'prodJwt'] as const) {
      const keys = routesOf(packaged(variant)).map((route) => route.routeKey)
      expect(keys, variant).not.toContain('$default')
      expect(keys, variant).not.toContain('ANY /{proxy+}')
      expect(keys, variant).not.toContain('ANY /')
    }
  })
})

describe('jwt scopes per route group', () => {
  it('every route uses the jwt authorizer of the configured issuer and audience', () => {
    const template = packaged('prodJwt')
    const authorizers = resourcesOf(template, 'AWS::ApiGatewayV2::Authorizer')
    expect(authorizers).toHaveLength(1)
    const [authorizerId, authorizer] = authorizers[0] as [string, CfnResource]
    expect(authorizer.Properties?.AuthorizerType).toBe('JWT')
    expect(authorizer.Properties?.JwtConfiguration).toEqual({ Issuer: 'https://issuer.example.com', Audience: ['api'] })
    for (const route of routesOf(template).filter((r) => !isCallbackRoute(r))) {
      expect(route.authorizationType, route.routeKey).toBe('JWT')
      expect(route.authorizerId, route.routeKey).toBe(authorizerId)
      expect(route.scopes, route.routeKey).toHaveLength(1)
    }
  })

  it.each(appRoutes.map((route) => [`${route.method} ${route.path}`, route] as const))(
    '%s lands on a route that requires exactly its group’s scope',
    (_, route) => {
      const selected = selectRoute(routesOf(packaged('prodJwt')), route.method, examplePath(route.path))
      expect(selected, 'a gateway route serves it').toBeDefined()
      expect(selected?.scopes).toEqual([scopeOf(route)])
    },
  )

  it('the three groups are read, write and schedules, and each scope guards some route', () => {
    const used = new Set(routesOf(packaged('prodJwt')).flatMap((route) => route.scopes))
    expect([...used].sort()).toEqual(Object.values(API_SCOPES).sort())
    expect(scopeOf({ method: 'GET', path: '/workflows/{id}' })).toBe(API_SCOPES.read)
    expect(scopeOf({ method: 'POST', path: '/workflows/{id}/cancel' })).toBe(API_SCOPES.write)
    expect(scopeOf({ method: 'GET', path: '/schedules' })).toBe(API_SCOPES.schedules)
    expect(scopeOf({ method: 'DELETE', path: '/schedules/{name}' })).toBe(API_SCOPES.schedules)
  })

  it('a read token cannot reach a write or schedule route through a neighbouring path', () => {
    const routes = routesOf(packaged('prodJwt'))
    for (const [method, path] of [
      ['POST', '/workflows/'],
      ['POST', '/workflows//x/cancel'],
      ['POST', '/schedules/'],
      ['DELETE', '/workflows/x'],
      ['PUT', '/workflows'],
    ] as const) {
      const selected = selectRoute(routes, method, path)
      expect(selected?.scopes ?? [], `${method} ${path}`).not.toContain(API_SCOPES.read)
    }
  })

  it('the OpenAPI document declares both schemes and each operation’s scope', async () => {
    const openapi = appRoutes.find((route) => route.path === '/openapi.json')
    const reply = await openapi?.handle({ params: {}, query: {}, body: undefined, request: {} as never })
    const document = JSON.parse(String(reply?.body)) as {
      components: { securitySchemes: Record<string, { type: string; scheme?: string }> }
      paths: Record<string, Record<string, { security: Record<string, string[]>[] }>>
    }
    expect(document.components.securitySchemes.jwt).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(document.components.securitySchemes.sigv4).toMatchObject({ type: 'apiKey' })
    // HEAD is answered on every GET route without an operation of its own (the document's description says so).
    for (const route of servedRoutes) {
      const operation = document.paths[route.path]?.[route.method.toLowerCase()]
      expect(operation?.security, `${route.method} ${route.path}`).toEqual([{ jwt: [scopeOf(route)] }, { sigv4: [] }])
    }
  })
})

describe('throttling and access logs', () => {
  const stageOf = (template: Template) => {
    const stages = resourcesOf(template, 'AWS::ApiGatewayV2::Stage')
    expect(stages).toHaveLength(1)
    return (stages[0]?.[1].Properties ?? {}) as {
      DefaultRouteSettings?: { ThrottlingRateLimit?: number; ThrottlingBurstLimit?: number }
      AccessLogSettings?: { Format?: string; DestinationArn?: unknown }
    }
  }

  it('the HTTP API stage throttles every route by default: 50 requests/s, burst 100', () => {
    for (const variant of ['dev', 'prod'] as const) {
      expect(stageOf(packaged(variant)).DefaultRouteSettings, variant).toMatchObject({
        ThrottlingRateLimit: 50,
        ThrottlingBurstLimit: 100,
      })
    }
    expect(stageOf(loadPackagedService().template).DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: 50,
      ThrottlingBurstLimit: 100,
    })
  })

  it('the callbacks route is throttled on its own: 10 requests/s, burst 20', () => {
    for (const variant of ['dev', 'prod', 'prodJwt'] as const) {
      const settings = (stageOf(packaged(variant)) as { RouteSettings?: Record<string, unknown> }).RouteSettings
      expect(settings, variant).toEqual({
        [CALLBACK_ROUTE]: { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 },
      })
    }
  })

  it('the limits are parameters (command-line values arrive as strings, which CloudFormation converts)', () => {
    const settings = stageOf(packaged('prodJwt')).DefaultRouteSettings
    expect(Number(settings?.ThrottlingRateLimit)).toBe(5)
    expect(Number(settings?.ThrottlingBurstLimit)).toBe(10)
  })

  it('every request is access-logged with its caller, never its query, body or token; kept like the function logs', () => {
    const template = packaged('prod')
    const settings = stageOf(template).AccessLogSettings
    const format = JSON.parse(String(settings?.Format)) as Record<string, string>
    expect(format).toMatchObject({
      routeKey: '$context.routeKey',
      status: '$context.status',
      ip: '$context.identity.sourceIp',
      iamCaller: '$context.identity.userArn',
      jwtSubject: '$context.authorizer.claims.sub',
    })
    expect(Object.values(format).filter((value) => /querystring|body|header|token/i.test(value))).toEqual([])
    const groups = resourcesOf(template, 'AWS::Logs::LogGroup').map(([, group]) => group.Properties ?? {})
    const apiLog = groups.find((group) => group.LogGroupName === '/aws/http-api/tickflow-prod')
    expect(apiLog?.RetentionInDays).toBe(90)
  })
})

describe('cfn-lint on the other variants', () => {
  it(
    'the dev (auth none) and jwt templates report no error and no warning',
    () => {
      const paths = (['dev', 'prodJwt'] as const).map((variant) => {
        const path = join(lintDir, `${variant}.json`)
        writeFileSync(path, JSON.stringify(packaged(variant), null, 2))
        return path
      })
      expect(lintTemplates(paths).map((f) => `${f.rule} ${f.message} (${f.where})`)).toEqual([])
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )
})
