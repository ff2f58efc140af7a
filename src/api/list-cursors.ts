import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { ValidationError } from '../core/errors.js'
import type { InstanceStatus } from '../schemas/statuses.js'

/** What a list cursor is bound to: every filter and the order, not the page size. */
export interface ListBinding {
  workflowType?: string | undefined
  status?: readonly InstanceStatus[] | undefined
  businessId?: string | undefined
  createdFromMs?: number | undefined
  createdToMs?: number | undefined
  parked?: boolean | undefined
  order?: 'asc' | 'desc' | undefined
  /** A history cursor: the instance whose history it pages. */
  history?: string | undefined
}

/**
 * Used when no secret is configured. It makes cursors tamper-evident and bound to their query, but anyone who
 * reads this source can forge one: set `CURSOR_SECRET` where that matters (see the README).
 */
export const DEFAULT_CURSOR_SECRET = 'tickflow-default-cursor-secret'

const VERSION = 'c1'
const FIELD = 'query.cursor'

/** One text per query, whatever the spelling: statuses sorted and deduplicated, the default order made explicit. */
const canonicalQuery = (binding: ListBinding): string =>
  JSON.stringify([
    binding.workflowType ?? null,
    binding.status === undefined ? null : [...new Set(binding.status)].sort(),
    binding.businessId ?? null,
    binding.createdFromMs ?? null,
    binding.createdToMs ?? null,
    binding.order ?? 'desc',
    binding.parked ?? null,
    // Only history cursors name it, so that list cursors issued before stay valid.
    ...(binding.history === undefined ? [] : [{ history: binding.history }]),
  ])

const fingerprint = (query: string): string => createHash('sha256').update(query).digest('base64url').slice(0, 12)

/**
 * Wraps a store's position in a cursor bound to the query it was made for, with an HMAC over both. Both stores'
 * positions pass through here, so the binding is written once: a cursor used with other filters or another
 * order, altered, or made by a deployment with another secret is refused with a 400 naming `query.cursor`, never
 * answered with a silently wrong page.
 */
export class ListCursors {
  readonly #secret: string

  constructor(secret: string = DEFAULT_CURSOR_SECRET) {
    this.#secret = secret
  }

  #mac(payload: string, query: string): Buffer {
    return createHmac('sha256', this.#secret).update(`${VERSION}.${payload}.${query}`).digest().subarray(0, 16)
  }

  /** The cursor a client gets for a store position. */
  seal(position: string, binding: ListBinding): string {
    const query = canonicalQuery(binding)
    const payload = Buffer.from(JSON.stringify({ p: position, q: fingerprint(query) })).toString('base64url')
    return `${VERSION}.${payload}.${this.#mac(payload, query).toString('base64url')}`
  }

  /** The store position of a cursor, if it was sealed here for this very query; a 400 otherwise. */
  open(cursor: string, binding: ListBinding): string {
    const [version, payload, mac, ...rest] = cursor.split('.')
    if (version !== VERSION || !payload || !mac || rest.length > 0) {
      throw new ValidationError(`${FIELD}: not a cursor this service issued`, FIELD)
    }
    const query = canonicalQuery(binding)
    const expected = this.#mac(payload, query)
    const given = Buffer.from(mac, 'base64url')
    // base64url decoding ignores what it cannot read: compare the text too, so that no alteration slips through.
    const intact =
      given.length === expected.length && timingSafeEqual(given, expected) && given.toString('base64url') === mac
    const decoded = this.#decode(payload)
    if (intact && decoded !== undefined) return decoded.p
    if (decoded !== undefined && decoded.q !== fingerprint(query)) {
      throw new ValidationError(
        `${FIELD}: the cursor was made for another query (filters or order differ); repeat the query it came from, or start again without a cursor`,
        FIELD,
      )
    }
    throw new ValidationError(`${FIELD}: the cursor was altered or issued by another deployment`, FIELD)
  }

  #decode(payload: string): { p: string; q: string } | undefined {
    try {
      const value: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
      if (typeof value !== 'object' || value === null) return undefined
      const { p, q } = value as Record<string, unknown>
      return typeof p === 'string' && typeof q === 'string' ? { p, q } : undefined
    } catch {
      return undefined
    }
  }
}
