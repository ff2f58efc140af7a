import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../core/ports.js'
import { type ApiLambda, type ServeOptions, serveApi } from './http-server.js'

/** The HTTP port is taken: said before anything else starts, with what to do about it. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError'
  readonly code = 'PORT_IN_USE'
}

const portHint = (host: string, port: number): string =>
  [
    `PORT ${port} on ${host} is already in use (another tickflow, or another server).`,
    `Pick another port: PORT=${port === 3000 ? 3001 : 3000} npm start, or npm start -- --port 0 for a free one;`,
    `or find what listens there: lsof -i :${port} (macOS/Linux) or ss -ltnp 'sport = :${port}' (Linux).`,
  ].join('\n')

/** Binds the HTTP port first, so that a port in use is reported before DynamoDB Local is started for nothing. */
const listen = (server: Server, port: number, host: string): Promise<void> =>
  new Promise<void>((listening, failed) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') failed(new PortInUseError(portHint(host, port), { cause: error }))
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        failed(new Error(`HOST ${host} is not an address of this machine (${error.code})`, { cause: error }))
      } else failed(error)
    })
    server.listen(port, host, () => listening())
  })

/** Until the engine is wired, requests are answered 503 rather than left hanging. */
const starting: ApiLambda = async () => ({
  statusCode: 503,
  headers: { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' },
  body: JSON.stringify({ error: { code: 'STARTING', message: 'tickflow is starting', details: {} } }),
})

export interface HttpFront {
  url: string
  /** From now on, requests go to `api`. */
  serve(api: ApiLambda): void
  /** Closes every connection and the server (once, however often it is called). */
  close(): Promise<void>
}

/**
 * The local runtime's HTTP server, listening at once and answering 503 until it is given the API to serve; it
 * answers only the host names it serves and refuses other sites' changes (`security`, see `http-server.ts`).
 */
export const openHttpFront = async (
  port: number,
  host: string,
  logger: Logger,
  security: ServeOptions = { host },
): Promise<HttpFront> => {
  let api = starting
  const server = serveApi(
    (event, context) => api(event, context),
    (error) => logger.log('error', 'request failed', { error: String(error) }),
    security,
  )
  await listen(server, port, host)
  let closing: Promise<void> | undefined
  const { port: bound } = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    serve: (next) => {
      api = next
    },
    close: () => {
      closing ??= new Promise<void>((closed) => {
        server.closeAllConnections()
        server.close(() => closed())
      })
      return closing
    },
  }
}
