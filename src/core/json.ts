import { issuePath } from '../schemas/zod-issues.js'
import { ValidationError } from './errors.js'

/** Plain JSON data as the engine stores it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject
export type JsonObject = { [key: string]: JsonValue }

/** Keys that would reach an object's prototype if written by path. Rejected anywhere in stored data. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

export interface JsonLimits {
  /** Deepest nesting of objects and arrays allowed in user data. */
  maxDepth: number
}

/** `field` and the path below it, as every field is named (`context.lines[2]`). */
const describePath = (field: string, path: readonly (string | number)[]): string => issuePath(path, field)

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * Checks that `value` is plain JSON data (no functions, class instances, non-finite numbers, cycles or forbidden
 * keys) within the depth limit. Throws a ValidationError naming the offending path under `field`.
 */
export const assertJsonValue = (value: unknown, field: string, limits: JsonLimits): JsonValue => {
  // One path, pushed and popped as the walk goes: named only when something is wrong.
  const path: (string | number)[] = []
  const stack: object[] = []
  const fail = (message: (where: string) => string): never => {
    const where = describePath(field, path)
    throw new ValidationError(message(where), where)
  }
  const visit = (current: unknown): void => {
    if (current === null || typeof current === 'string' || typeof current === 'boolean') return
    if (typeof current === 'number') {
      if (!Number.isFinite(current)) fail((where) => `${where} must be a finite number`)
      return
    }
    if (typeof current !== 'object') {
      fail((where) => `${where} is a ${typeof current}; only JSON data can be stored`)
      return
    }
    if (stack.includes(current)) fail((where) => `${where} contains a cycle`)
    if (stack.length >= limits.maxDepth) fail((where) => `${where} is nested deeper than ${limits.maxDepth} levels`)
    stack.push(current)
    if (Array.isArray(current)) {
      for (let index = 0; index < current.length; index++) {
        path.push(index)
        visit(current[index])
        path.pop()
      }
    } else {
      if (!isPlainObject(current)) {
        fail((where) => `${where} is a class instance; only plain JSON objects can be stored`)
      }
      for (const key in current) {
        if (!Object.hasOwn(current, key)) continue
        path.push(key)
        if (FORBIDDEN_KEYS.has(key)) fail((where) => `${where} uses the forbidden key '${key}'`)
        const item = (current as Record<string, unknown>)[key]
        if (item !== undefined) visit(item)
        path.pop()
      }
    }
    stack.pop()
  }
  visit(value)
  return value as JsonValue
}

/** Deep copy through JSON: drops `undefined` members, the same way the value will look after storage. */
export const cloneJson = <T extends JsonValue>(value: T): T => JSON.parse(JSON.stringify(value)) as T

export const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** The UTF-8 length of a string, counted without encoding it. */
export const utf8Bytes = (text: string): number => {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    if (code < 0x800) bytes += 1
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      // A surrogate pair: 4 bytes for 2 UTF-16 units.
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2
        i++
      } else bytes += 2
    } else bytes += 2
  }
  return bytes
}

/** Size of a value serialised as JSON, in UTF-8 bytes: what the store keeps for it. */
export const jsonSizeBytes = (value: unknown): number => utf8Bytes(JSON.stringify(value) ?? '')

const payloadTexts = new WeakMap<object, { text: string; bytes: number }>()

const measuredPayload = (value: object): { text: string; bytes: number } => {
  let measured = payloadTexts.get(value)
  if (measured === undefined) {
    const text = JSON.stringify(value)
    measured = { text, bytes: utf8Bytes(text) }
    payloadTexts.set(value, measured)
  }
  return measured
}

/**
 * The JSON text of a stored payload (a node's output or overrides, an event's content), serialised once per payload
 * object however often it is sized and encoded: the engine never changes a payload in place — it replaces it —, so
 * the text kept for an object cannot go stale. Anything else goes through `JSON.stringify` each time.
 */
export const payloadText = (value: JsonValue): string =>
  typeof value === 'object' && value !== null ? measuredPayload(value).text : JSON.stringify(value)

/** `jsonSizeBytes` of a stored payload, measured once per payload object (see `payloadText`). */
export const payloadBytes = (value: JsonValue): number =>
  typeof value === 'object' && value !== null ? measuredPayload(value).bytes : jsonSizeBytes(value)

/** Structural equality of two JSON values (key order ignored). */
export const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => jsonEquals(item, b[index]))
  }
  const aKeys = Object.keys(a).filter((key) => (a as Record<string, unknown>)[key] !== undefined)
  const bKeys = Object.keys(b).filter((key) => (b as Record<string, unknown>)[key] !== undefined)
  return (
    aKeys.length === bKeys.length &&
    aKeys.every((key) => jsonEquals((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
  )
}

export interface CanonicalJsonOptions {
  /**
   * Leave out object members whose value is null (as well as undefined): for data where null means "not set", so
   * that `{a: null}` and `{}` are the same text (a workflow config's `fail_max_count: null`).
   */
  omitNullMembers?: boolean
}

/**
 * JSON text that depends on the data only, not on the order its keys were written in: object keys sorted (UTF-16
 * code units), no white space. What a hash of data is computed on (a create's request hash, a definition's version),
 * so its output must never change for data it has hashed before: both hashes are stored.
 *
 * An undefined object member or array item counts as null (`{"a":null}`), unless `omitNullMembers` leaves it out.
 */
export const canonicalJson = (value: unknown, options: CanonicalJsonOptions = {}): string => {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item, options)).join(',')}]`
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    const record = value as Record<string, unknown>
    const kept = options.omitNullMembers
      ? keys.filter((key) => record[key] !== undefined && record[key] !== null)
      : keys
    return `{${kept.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key], options)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}
