import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto'
import { defaultProvider } from '@aws-sdk/credential-provider-node'
import { SignatureV4 } from '@smithy/signature-v4'

type SourceData = string | ArrayBuffer | ArrayBufferView

const bytes = (data: SourceData): Uint8Array | string =>
  typeof data === 'string'
    ? data
    : data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)

/** SHA-256 and HMAC-SHA256 from node:crypto, in the shape the signer takes. */
export class NodeSha256 {
  #hash: Hash | Hmac
  readonly #secret: SourceData | undefined
  constructor(secret?: SourceData) {
    this.#secret = secret
    this.#hash = this.#fresh()
  }
  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(this.#secret))
  }
  update(data: Uint8Array | string): void {
    this.#hash.update(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength))
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest())
  }
  reset(): void {
    this.#hash = this.#fresh()
  }
}

export interface SignableRequest {
  method: string
  url: URL
  headers: Record<string, string>
  body?: string
}

export type Signer = (request: SignableRequest) => Promise<Record<string, string>>

/** The region of an `execute-api` URL (`https://abc.execute-api.eu-west-1.amazonaws.com`), if it is one. */
export const regionOfApiUrl = (url: URL): string | undefined =>
  /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(url.hostname)?.[1]

/**
 * Signs requests for an HTTP API with IAM authorisation (service `execute-api`), with the credentials of the
 * standard chain: environment, shared config and SSO profiles (AWS_PROFILE), web identity, container and instance
 * roles. Returns the headers to send.
 */
export const sigV4Signer = (region: string, options: { signingDate?: () => Date } = {}): Signer => {
  const signer = new SignatureV4({ service: 'execute-api', region, credentials: defaultProvider(), sha256: NodeSha256 })
  return async ({ method, url, headers, body }) => {
    const query: Record<string, string | string[]> = {}
    for (const [name, value] of url.searchParams) {
      const previous = query[name]
      query[name] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value]
    }
    const signed = await signer.sign(
      {
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port === '' ? {} : { port: Number(url.port) }),
        path: url.pathname,
        query,
        headers: { ...headers, host: url.host },
        ...(body === undefined ? {} : { body }),
      },
      options.signingDate ? { signingDate: options.signingDate() } : {},
    )
    return signed.headers as Record<string, string>
  }
}
