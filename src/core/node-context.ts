import type { CallbackHandle, CallbackOptions } from './callbacks.js'
import { ValidationError } from './errors.js'
import { FORBIDDEN_KEYS, isJsonObject, type JsonObject, type JsonValue } from './json.js'

/** Top-level keys of a node context that the engine owns. */
export const CONTEXT_KEYS = {
  preNodeContext: 'pre_node_context',
  workflowContext: 'workflow_context',
  nodeEvent: 'node_event',
  system: 'system',
  reason: 'reason',
} as const

export type ContextPath = string | readonly string[]

const toSegments = (path: ContextPath): readonly string[] => (typeof path === 'string' ? [path] : path)

const assertSegments = (segments: readonly string[], allowEmpty: boolean): void => {
  if (!allowEmpty && segments.length === 0) throw new ValidationError('a context path needs at least one key', 'path')
  segments.forEach((segment, index) => {
    if (typeof segment !== 'string') {
      throw new ValidationError(`context path segment ${index} must be a string`, `path[${index}]`)
    }
    if (FORBIDDEN_KEYS.has(segment)) {
      throw new ValidationError(`context path segment '${segment}' is forbidden`, `path[${index}]`)
    }
  })
}

/** Facts about the execution a worker is called for. */
export interface ExecutionInfo {
  readonly instanceId: string
  readonly workflowType: string
  readonly nodeId: string
  readonly businessId: string | undefined
  /** 1 for the first execution of `run`; grows with every restart of the node. */
  readonly attempt: number
  /** `instanceId:nodeId:attempt`: pass it to downstream systems so a repeated `run` is not applied twice. */
  readonly idempotencyKey: string
  readonly step: 'run' | 'check'
  /** Fires before the attempt's lease ends: stop, or the attempt is counted as failed anyway. */
  readonly signal?: AbortSignal
}

const NEVER_ABORTED = new AbortController().signal

/** What the engine lends a worker call beyond its data (see `NodeContext.callback`). */
export interface ExecutionHooks {
  callback?(options: CallbackOptions): Promise<CallbackHandle>
}

/**
 * A node's context: JSON data read and written by path. Every value handed out is the stored data itself, so
 * workers should use `set` to change it; every write is checked for forbidden keys.
 */
export class NodeContext {
  readonly #data: JsonObject

  readonly #hooks: ExecutionHooks

  constructor(
    data: JsonObject,
    readonly info: ExecutionInfo,
    hooks: ExecutionHooks = {},
  ) {
    this.#data = data
    this.#hooks = hooks
  }

  /**
   * Asks for a callback: a token (and the URL to post it to) that lets a third party complete this node without API
   * credentials. Hand it out and return: the node then waits — not retried, not polled — until the token is used,
   * a heartbeat is missed, or `timeoutSeconds` pass (a failed attempt). Asking again in the same call gives the same
   * token. See the README, "Callbacks".
   */
  callback(options: CallbackOptions): Promise<CallbackHandle> {
    if (!this.#hooks.callback) {
      return Promise.reject(new Error('callbacks are not configured for this engine (give it callback tokens)'))
    }
    return this.#hooks.callback(options)
  }

  get instanceId(): string {
    return this.info.instanceId
  }
  /** Aborted shortly before the lease of this attempt ends; pass it to fetch and SDK calls. */
  get signal(): AbortSignal {
    return this.info.signal ?? NEVER_ABORTED
  }
  get nodeId(): string {
    return this.info.nodeId
  }
  get idempotencyKey(): string {
    return this.info.idempotencyKey
  }

  get(...path: string[]): JsonValue | undefined {
    assertSegments(path, true)
    let current: JsonValue | undefined = this.#data
    for (const segment of path) {
      if (!isJsonObject(current) || !Object.hasOwn(current, segment)) return undefined
      current = current[segment]
    }
    return current
  }

  has(...path: string[]): boolean {
    return this.get(...path) !== undefined
  }

  getString(...path: string[]): string | undefined {
    const value = this.get(...path)
    return typeof value === 'string' ? value : undefined
  }

  getNumber(...path: string[]): number | undefined {
    const value = this.get(...path)
    return typeof value === 'number' ? value : undefined
  }

  getInteger(...path: string[]): number | undefined {
    const value = this.get(...path)
    return typeof value === 'number' && Number.isInteger(value) ? value : undefined
  }

  getBoolean(...path: string[]): boolean | undefined {
    const value = this.get(...path)
    return typeof value === 'boolean' ? value : undefined
  }

  getObject(...path: string[]): JsonObject | undefined {
    const value = this.get(...path)
    return isJsonObject(value) ? value : undefined
  }

  /** The instance input, as copied into this node when it was created. */
  get workflowContext(): JsonObject {
    return this.getObject(CONTEXT_KEYS.workflowContext) ?? {}
  }

  /** The output of a direct predecessor. */
  predecessor(nodeId: string): JsonObject | undefined {
    return this.getObject(CONTEXT_KEYS.preNodeContext, nodeId)
  }

  /** The external event delivered to this node, if any. */
  get event(): { eventTs: number; content: JsonValue } | undefined {
    const event = this.getObject(CONTEXT_KEYS.nodeEvent)
    if (!event || typeof event.event_ts !== 'number') return undefined
    return { eventTs: event.event_ts, content: event.event_content ?? null }
  }

  /** Sets a value, creating intermediate objects. A non-object on the way is replaced by an object. */
  set(path: ContextPath, value: JsonValue): void {
    const segments = toSegments(path)
    assertSegments(segments, false)
    let current: JsonObject = this.#data
    for (const segment of segments.slice(0, -1)) {
      const next = Object.hasOwn(current, segment) ? current[segment] : undefined
      if (isJsonObject(next)) {
        current = next
      } else {
        const created: JsonObject = {}
        current[segment] = created
        current = created
      }
    }
    current[segments[segments.length - 1] as string] = value
  }

  delete(...path: string[]): void {
    assertSegments(path, false)
    let current: JsonValue | undefined = this.#data
    for (const segment of path.slice(0, -1)) {
      if (!isJsonObject(current) || !Object.hasOwn(current, segment)) return
      current = current[segment]
    }
    if (isJsonObject(current)) delete current[path[path.length - 1] as string]
  }

  /** The whole context as plain data (the live object: copy it before keeping it elsewhere). */
  toJSON(): JsonObject {
    return this.#data
  }
}
