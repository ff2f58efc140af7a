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
  const stack: object[] = []
  const visit = (current: unknown, path: (string | number)[]): void => {
    if (current === null || typeof current === 'string' || typeof current === 'boolean') return
    if (typeof current === 'number') {
      if (!Number.isFinite(current)) {
        throw new ValidationError(`${describePath(field, path)} must be a finite number`, describePath(field, path))
      }
      return
    }
    if (typeof current !== 'object') {
      throw new ValidationError(
        `${describePath(field, path)} is a ${typeof current}; only JSON data can be stored`,
        describePath(field, path),
      )
    }
    if (stack.includes(current)) {
      throw new ValidationError(`${describePath(field, path)} contains a cycle`, describePath(field, path))
    }
    if (stack.length >= limits.maxDepth) {
      throw new ValidationError(
        `${describePath(field, path)} is nested deeper than ${limits.maxDepth} levels`,
        describePath(field, path),
      )
    }
    stack.push(current)
    if (Array.isArray(current)) {
      current.forEach((item, index) => {
        visit(item, [...path, index])
      })
    } else {
      if (!isPlainObject(current)) {
        throw new ValidationError(
          `${describePath(field, path)} is a class instance; only plain JSON objects can be stored`,
          describePath(field, path),
        )
      }
      for (const key of Object.keys(current)) {
        if (FORBIDDEN_KEYS.has(key)) {
          throw new ValidationError(
            `${describePath(field, [...path, key])} uses the forbidden key '${key}'`,
            describePath(field, [...path, key]),
          )
        }
        const item = (current as Record<string, unknown>)[key]
        if (item !== undefined) visit(item, [...path, key])
      }
    }
    stack.pop()
  }
  visit(value, [])
  return value as JsonValue
}

/** Deep copy through JSON: drops `undefined` members, the same way the value will look after storage. */
export const cloneJson = <T extends JsonValue>(value: T): T => JSON.parse(JSON.stringify(value)) as T

export const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const encoder = new TextEncoder()

/** Size of a value serialised as JSON, in UTF-8 bytes: what the store keeps for it. */
export const jsonSizeBytes = (value: unknown): number => encoder.encode(JSON.stringify(value) ?? '').byteLength

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
