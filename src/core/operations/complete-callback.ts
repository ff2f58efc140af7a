import { type CallbackAnswer, callbackCompletionSchema } from '../../schemas/callbacks.js'
import type { CallbackClaims } from '../callback-token.js'
import {
  type CallbackArrival,
  type CallbackCompletion,
  CallbackGoneError,
  type CallbackGuard,
  CallbackNotFoundError,
  type CallbackResult,
  callbackOutputRefusal,
  completionFingerprint,
  waitsFor,
} from '../callbacks.js'
import { InstanceNotFoundError, PayloadTooLargeError } from '../errors.js'
import { jsonSizeBytes } from '../json.js'
import { callbackArrivalBytes, growthBudget, instanceStoredBytes } from '../limits.js'
import type { OperationDeps } from './deps.js'
import { checkedJson, parseParams } from './parse.js'

/** The completion as stored: its output checked like any JSON the engine keeps, within the node's own limit. */
const checkedCompletion = (deps: OperationDeps, input: unknown): CallbackCompletion => {
  const completion = parseParams(callbackCompletionSchema, input)
  if (completion.status !== 'success' || completion.output === undefined) return completion as CallbackCompletion
  const output = checkedJson(completion.output, 'output', deps.limits)
  const size = jsonSizeBytes(output)
  if (size > deps.limits.maxNodeContextBytes) {
    throw new PayloadTooLargeError(
      `output is ${size} bytes, over the node limit of ${deps.limits.maxNodeContextBytes}`,
      'output',
      size,
      deps.limits.maxNodeContextBytes,
    )
  }
  return { status: 'success', output }
}

const arrivalOf = (claims: CallbackClaims, completion: CallbackCompletion, nowMs: number): CallbackArrival => {
  const at = { call: claims.call, fence: claims.fence }
  if (completion.status === 'heartbeat') return { ...at, heartbeatAtMs: nowMs }
  return {
    ...at,
    completion: { ...completion, atMs: nowMs, fingerprint: completionFingerprint(completion) },
    storedBytes: callbackArrivalBytes(claims.nodeId, completion),
  }
}

/**
 * What a completion is checked against before it is stored, from the instance as read (lazily: sizes, not the
 * large payloads): an output must fit its node together with what the node already stores, once merged as
 * `callback_output` — known here when the node waits for this very call (a completion that arrives before the
 * worker returned is checked when it settles) —; the guard then holds the instance to its budget in the write
 * itself. A failure may use the headroom kept for recording failures; an output may not.
 */
const completionGuard = async (
  deps: OperationDeps,
  claims: CallbackClaims,
  completion: CallbackResult,
): Promise<CallbackGuard> => {
  const record = await deps.store.getInstance(claims.instanceId, { lazy: true })
  if (!record) throw new InstanceNotFoundError(claims.instanceId)
  const node = record.nodes[claims.nodeId]
  if (
    node !== undefined &&
    waitsFor(node, claims) &&
    completion.status === 'success' &&
    completion.output !== undefined
  ) {
    const unread = record.unread?.nodes[claims.nodeId]
    const refusal = callbackOutputRefusal(
      claims.nodeId,
      node,
      completion.output,
      deps.limits.maxNodeContextBytes,
      unread,
    )
    if (refusal) throw refusal
  }
  const heartbeatSeconds = node !== undefined && waitsFor(node, claims) ? node.callback?.heartbeatSeconds : undefined
  return {
    maxBytes: completion.status === 'success' ? growthBudget(deps.limits) : deps.limits.maxInstanceBytes,
    baseBytes: record.storedBytes ?? instanceStoredBytes(record),
    ...(heartbeatSeconds === undefined ? {} : { heartbeatSeconds }),
  }
}

/**
 * Completes (or keeps alive) the callback a token names, with no other credential than the token: one conditional
 * write beside the node, without the lease, so it is stored even while a pass runs — or before the worker that asked
 * for it has returned. A completion is read against first (its sizes: see completionGuard) and refused with
 * PayloadTooLargeError, storing nothing, when its node or its instance has no room for it. The same completion
 * again answers the same; a token that does not open is CallbackNotFoundError whatever was wrong with it; a genuine
 * one that can no longer be used, CallbackGoneError.
 */
export const completeCallback = async (
  deps: OperationDeps,
  params: { token: string; completion: unknown },
): Promise<CallbackAnswer> => {
  const claims = await deps.callbacks?.tokens.open(params.token)
  if (!claims) throw new CallbackNotFoundError()
  const completion = checkedCompletion(deps, params.completion)
  try {
    const guard = completion.status === 'heartbeat' ? undefined : await completionGuard(deps, claims, completion)
    await deps.leases.storeCallback(claims, arrivalOf(claims, completion, deps.clock.nowMs()), guard)
  } catch (error) {
    if (error instanceof InstanceNotFoundError) throw new CallbackGoneError('this callback can no longer be completed')
    throw error
  }
  return { accepted: true, status: completion.status }
}
