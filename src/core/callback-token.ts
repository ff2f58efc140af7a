import { createCipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

/**
 * Callback tokens: an opaque capability that lets a third party complete one waiting node without API credentials.
 *
 * Format (version 1), base64url without padding:
 *
 *     version (1 byte) | key id (4) | synthetic IV (16) | AES-256-CTR(claims, zero-padded to 32-byte blocks)
 *
 * The IV is HMAC-SHA256(mac key, version | key id | padded claims), cut to 16 bytes: deterministic authenticated
 * encryption (the SIV construction). It authenticates (a changed bit anywhere changes the IV the receiver computes)
 * and hides the claims (instance, node, attempt, call and fence are encrypted; the length shows only a 32-byte size
 * class). Being deterministic, it needs no randomness: the same call of the same attempt gets the same token. The
 * keys are derived with HKDF-SHA256 from the deployment's secret; the key id names which secret issued a token, so
 * that a rotated secret can still open the tokens of the previous one.
 */

export interface CallbackClaims {
  instanceId: string
  nodeId: string
  /** The node's attempt (1 + restarts). */
  attempt: number
  /** The worker call that asked for the callback (the node's `calls` when it was launched). */
  call: number
  /** The fence of the lease the call ran under. */
  fence: number
}

/**
 * Issues and opens callback tokens; `open` answers undefined for anything it did not issue, in the same time.
 * Asynchronous, so that a deployment may fetch its secret (SSM, Secrets Manager) on first use.
 */
export interface CallbackTokens {
  issue(claims: CallbackClaims): Promise<string>
  open(token: string): Promise<CallbackClaims | undefined>
}

const VERSION = 1
const HEADER_BYTES = 5
const IV_BYTES = 16
const BLOCK_BYTES = 32
const MAX_CLAIMS_BYTES = 256
/** The longest token `open` looks at: longer input is refused before any work, whoever made it. */
export const MAX_TOKEN_CHARS = Math.ceil(((HEADER_BYTES + IV_BYTES + MAX_CLAIMS_BYTES) * 4) / 3)
/** A secret shorter than this is refused: the keys are only as strong as it. */
export const MIN_SECRET_CHARS = 32

interface KeySet {
  id: Buffer
  enc: Buffer
  mac: Buffer
}

const derive = (secret: string, info: string): Buffer =>
  Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'tickflow/callback-token/v1', info, 32))

const keySet = (secret: string): KeySet => {
  if (secret.length < MIN_SECRET_CHARS) {
    throw new Error(`a callback secret must be at least ${MIN_SECRET_CHARS} characters`)
  }
  const mac = derive(secret, 'mac')
  return { id: createHmac('sha256', mac).update('key id').digest().subarray(0, 4), enc: derive(secret, 'enc'), mac }
}

const pushVarint = (out: number[], value: number): void => {
  let rest = value
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
}

const encodeClaims = (claims: CallbackClaims): Buffer => {
  const bytes: number[] = []
  for (const text of [claims.instanceId, claims.nodeId]) {
    const encoded = Buffer.from(text, 'utf8')
    if (encoded.length === 0 || encoded.length > 128) throw new Error('callback claims: an id of 1-128 bytes')
    bytes.push(encoded.length, ...encoded)
  }
  for (const value of [claims.attempt, claims.call, claims.fence]) {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error('callback claims: a whole number')
    pushVarint(bytes, value)
  }
  const padded = Buffer.alloc(Math.ceil(bytes.length / BLOCK_BYTES) * BLOCK_BYTES)
  Buffer.from(bytes).copy(padded)
  return padded
}

/** The claims of a padded plaintext, or undefined when it is not one this module wrote. */
const decodeClaims = (plain: Buffer): CallbackClaims | undefined => {
  let at = 0
  const text = (): string | undefined => {
    const length = plain[at] ?? 0
    if (length === 0 || at + 1 + length > plain.length) return undefined
    const value = plain.subarray(at + 1, at + 1 + length).toString('utf8')
    at += 1 + length
    return value
  }
  const varint = (): number | undefined => {
    let value = 0
    for (let shift = 1; at < plain.length && shift < 2 ** 56; shift *= 0x80) {
      const byte = plain[at++] as number
      value += (byte & 0x7f) * shift
      if (byte < 0x80) return value
    }
    return undefined
  }
  const instanceId = text()
  const nodeId = text()
  const attempt = varint()
  const call = varint()
  const fence = varint()
  if (instanceId === undefined || nodeId === undefined) return undefined
  if (attempt === undefined || call === undefined || fence === undefined) return undefined
  if (plain.subarray(at).some((byte) => byte !== 0)) return undefined
  return { instanceId, nodeId, attempt, call, fence }
}

const ctr = (key: Buffer, iv: Buffer, data: Buffer): Buffer => {
  const cipher = createCipheriv('aes-256-ctr', key, iv)
  return Buffer.concat([cipher.update(data), cipher.final()])
}

const syntheticIv = (keys: KeySet, header: Buffer, plain: Buffer): Buffer =>
  createHmac('sha256', keys.mac).update(header).update(plain).digest().subarray(0, IV_BYTES)

/**
 * The tokens of one deployment: `secrets[0]` issues them, every secret opens the ones it issued (the previous secret
 * of a rotation). Opening does the same work for any input of a plausible length — an unknown key id is opened
 * with the current key and fails its check — so that an answer's timing does not tell a forged token from a
 * tampered one.
 */
export const callbackTokens = (secrets: readonly string[]): CallbackTokens => {
  if (secrets.length === 0) throw new Error('callback tokens need a secret')
  const keys = secrets.map(keySet)
  const current = keys[0] as KeySet
  return {
    async issue(claims) {
      const plain = encodeClaims(claims)
      const header = Buffer.concat([Buffer.from([VERSION]), current.id])
      const iv = syntheticIv(current, header, plain)
      return Buffer.concat([header, iv, ctr(current.enc, iv, plain)]).toString('base64url')
    },
    async open(token) {
      if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) {
        return undefined
      }
      const raw = Buffer.from(token, 'base64url')
      const body = raw.length - HEADER_BYTES - IV_BYTES
      if (body < BLOCK_BYTES || body > MAX_CLAIMS_BYTES || body % BLOCK_BYTES !== 0) return undefined
      const header = raw.subarray(0, HEADER_BYTES)
      const iv = raw.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
      const id = header.subarray(1)
      const key = keys.find((candidate) => timingSafeEqual(candidate.id, id)) ?? current
      const plain = ctr(key.enc, iv, raw.subarray(HEADER_BYTES + IV_BYTES))
      const expected = syntheticIv(key, header, plain)
      const authentic = timingSafeEqual(expected, iv) && header[0] === VERSION
      const claims = decodeClaims(plain)
      return authentic ? claims : undefined
    },
  }
}
