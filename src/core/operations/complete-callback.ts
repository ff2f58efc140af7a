import { type CallbackAnswer, callbackCompletionSchema } from '../../schemas/callbacks.js'
import type { CallbackClaims } from '../callback-token.js'
import {
  type CallbackArrival,
  type CallbackCompletion,
  CallbackGoneError,
  CallbackNotFoundError,
  completionFingerprint,
} from '../callbacks.js'
import { InstanceNotFoundError, PayloadTooLargeError } from '../errors.js'
import { jsonSizeBytes } from '../json.js'
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
  return { ...at, completion: { ...completion, atMs: nowMs, fingerprint: completionFingerprint(completion) } }
}

/**
 * Completes (or keeps alive) the callback a token names, with no other credential than the token: one conditional
 * write beside the node, without the lease, so it is stored even while a pass runs — or before the worker that asked
 * for it has returned. The same completion again answers the same; a token that does not open is
 * CallbackNotFoundError whatever was wrong with it; a genuine one that can no longer be used, CallbackGoneError.
 */
export const completeCallback = async (
  deps: OperationDeps,
  params: { token: string; completion: unknown },
): Promise<CallbackAnswer> => {
  const claims = await deps.callbacks?.tokens.open(params.token)
  if (!claims) throw new CallbackNotFoundError()
  const completion = checkedCompletion(deps, params.completion)
  try {
    await deps.leases.storeCallback(claims, arrivalOf(claims, completion, deps.clock.nowMs()))
  } catch (error) {
    if (error instanceof InstanceNotFoundError) throw new CallbackGoneError('this callback can no longer be completed')
    throw error
  }
  return { accepted: true, status: completion.status }
}
