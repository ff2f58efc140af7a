import { type ApiResponse, json } from './http.js'
import { HttpError } from './http-errors.js'

/**
 * What keeps other websites out, for the API handler (deployed and local) and the local HTTP server: which requests a
 * browser may send for a page (cross-site request forgery), which host names the local runtime answers (DNS
 * rebinding), and the headers that keep every answer from being sniffed, framed or followed by a referrer.
 * README, "Security": "Browsers and other websites".
 */

type Headers = Record<string, string | string[] | number | boolean | undefined> | undefined

const headerOf = (headers: Headers, name: string): string | undefined => {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) return Array.isArray(value) ? value.join(',') : String(value)
  }
  return undefined
}

/** Methods that change nothing: any page may send them, CORS decides whether it reads the answer. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** The header the dashboard sends with every change: a form cannot set it, a cross-site script needs a preflight. */
export const CLIENT_HEADER = 'x-requested-with'

const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

export interface BrowserRequestPolicy {
  /** Origins CORS allows (`CORS_ALLOWED_ORIGINS`), `*` for any: their pages may change things like the API's own. */
  allowedOrigins: readonly string[]
}

/** `scheme://host[:port]` of an Origin header, lower case, default port dropped; undefined for `null` or garbage. */
const normalOrigin = (origin: string): URL | undefined => {
  try {
    const url = new URL(origin)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}

/** Whether the page's origin is the API itself: the same host and port the request was sent to. */
const isOwnOrigin = (origin: URL, host: string | undefined): boolean => {
  if (host === undefined) return false
  try {
    return new URL(`${origin.protocol}//${host}`).host === origin.host
  } catch {
    return false
  }
}

const refusal = (field: string, message: string, details: Record<string, unknown>): ApiResponse =>
  json(403, { error: new HttpError(403, 'CROSS_SITE_REQUEST_REFUSED', message, { field, ...details }).toJSON() })

/**
 * The answer to a state-changing request a browser sent for a page that may not make it, or undefined to let it
 * through. A browser marks every such request with `Origin` (all current browsers, on every POST and DELETE) or at
 * least `Sec-Fetch-Site`; a request with neither comes from a client that is no browser (curl, the CLI, an SDK, an
 * external system), which no website can drive, and is left to the API's other checks. A browser request must come
 * from the API's own origin (or one CORS allows) and be JSON or carry `X-Requested-With`, which no form and no
 * no-cors request can send: so neither another site nor markup injected into the dashboard can change anything.
 */
export const browserRequestRefusal = (
  request: { method: string; headers: Headers },
  policy: BrowserRequestPolicy,
): ApiResponse | undefined => {
  if (SAFE_METHODS.has(request.method.toUpperCase())) return undefined
  const origin = headerOf(request.headers, 'origin')
  const site = headerOf(request.headers, 'sec-fetch-site')?.toLowerCase()
  if (origin === undefined && site === undefined) return undefined
  if (origin !== undefined) {
    const parsed = normalOrigin(origin)
    const allowed =
      policy.allowedOrigins.includes('*') ||
      policy.allowedOrigins.some((candidate) => candidate.toLowerCase() === origin.toLowerCase()) ||
      (parsed !== undefined && isOwnOrigin(parsed, headerOf(request.headers, 'host')))
    if (!allowed) {
      return refusal('origin', `a page of ${origin} may not change anything here (only this API's own pages may)`, {
        origin,
      })
    }
  } else if (site !== 'same-origin' && site !== 'none') {
    return refusal('sec-fetch-site', `a page of another site (Sec-Fetch-Site: ${site}) may not change anything here`, {
      secFetchSite: site,
    })
  }
  const contentType = headerOf(request.headers, 'content-type') ?? ''
  if (!JSON_CONTENT_TYPE.test(contentType) && !headerOf(request.headers, CLIENT_HEADER)) {
    return refusal(
      'content-type',
      `a change sent by a browser must be JSON (content-type: application/json) or carry ${CLIENT_HEADER}, which a form cannot send`,
      { received: contentType },
    )
  }
  return undefined
}

/** Host names of the loopback interface: always served by the local runtime. */
const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '::1'] as const
/** Addresses that mean "every interface": not a name a browser would send. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]'])

const bare = (host: string): string =>
  host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')

/**
 * The host names the local runtime answers: the loopback names, the address it listens on, the names it was told
 * to serve (`ALLOWED_HOSTS`), and, when it listens on every interface, the addresses of this machine's interfaces.
 */
export const servedHostNames = (
  listenHost: string,
  options: { allowedHosts?: readonly string[]; interfaceAddresses?: readonly string[] } = {},
): Set<string> => {
  const names = new Set<string>(LOOPBACK_HOSTS)
  if (WILDCARD_HOSTS.has(listenHost)) for (const address of options.interfaceAddresses ?? []) names.add(bare(address))
  else names.add(bare(listenHost))
  for (const host of options.allowedHosts ?? []) names.add(bare(host))
  return names
}

/** The name part of a Host header (`[::1]:3000` → `::1`), or undefined when it is no host. */
const hostName = (host: string): string | undefined => {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/i.exec(host.trim())
  return match ? bare(match[1] as string) : undefined
}

/**
 * 421 for a request whose Host the local runtime does not serve, else undefined. A page of another site can make its
 * own name resolve to 127.0.0.1 (DNS rebinding) and then read and write the API as if it were its own origin: the
 * only sign of it is its name in the Host header.
 */
export const hostRefusal = (host: string | undefined, served: ReadonlySet<string>): ApiResponse | undefined => {
  const name = host === undefined ? undefined : hostName(host)
  if (name !== undefined && served.has(name)) return undefined
  const error = new HttpError(
    421,
    'HOST_NOT_SERVED',
    `this server does not answer for ${host === undefined ? 'a request without Host' : `host ${host}`}; it serves ${[...served].join(', ')} (ALLOWED_HOSTS adds names)`,
    { field: 'host', ...(host === undefined ? {} : { host }) },
  )
  return json(421, { error: error.toJSON() })
}

/** The page's policy: its own scripts, style sheets and API calls, nothing inline, nothing from elsewhere. */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** Anything else (JSON, scripts, style sheets) is no document: it may load nothing and be framed by nobody. */
const RESOURCE_POLICY = "default-src 'none'; frame-ancestors 'none'"

/** The headers every answer carries, whatever its route or status. */
export const securityHeaders = (contentType: string | undefined): Record<string, string> => ({
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': /^text\/html\b/i.test(contentType ?? '') ? PAGE_POLICY : RESOURCE_POLICY,
})

/** An answer with the security headers added (its own headers win, so a route may set a stricter policy). */
export const withSecurityHeaders = <T extends { headers?: Headers }>(answer: T): T => {
  const own = Object.fromEntries(
    Object.entries(answer.headers ?? {}).flatMap(([name, value]) =>
      value === undefined ? [] : [[name.toLowerCase(), value]],
    ),
  )
  return { ...answer, headers: { ...securityHeaders(headerOf(answer.headers, 'content-type')), ...own } } as T
}
