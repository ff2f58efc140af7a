import { z } from 'zod'
import type { CallbackArrival, CallbackOutcome, CallbackWait } from '../../core/callbacks.js'
import type { InstanceChange } from '../../core/instance-change.js'
import type { JsonValue } from '../../core/json.js'
import type { WorkerFailure } from '../../core/records.js'
import { invert } from './codes.js'

/**
 * How callbacks are laid out on the instance item (README, "Table layout"): a node's wait is a short map `cw` in
 * its record, its times in ms after the instance's creation like the record's own; what arrives without the lease
 * is an entry of the instance item's map `cb` (one per node, absolute times: it is written without reading the
 * item), its content (output, or error and cause) over INLINE_ARRIVAL_BYTES in an input item of its own. Only the item's own writes touch `cb`: the lease holder
 * removes what it consumed — each on the condition that it is still the one it read — and deletes an output's item
 * with it, `putCallback` sets one node's entry.
 */

const OUTCOME_CODES = { success: 's', failure: 'f', timeout: 't', 'heartbeat-timeout': 'h' } as const
const OUTCOMES = invert<CallbackOutcome>(OUTCOME_CODES)

export const storedWaitSchema = z.object({
  c: z.number().int(),
  f: z.number().int(),
  r: z.number(),
  t: z.number(),
  hs: z.number().int().optional(),
  hb: z.number().optional(),
  o: z.enum(['s', 'f', 't', 'h']).optional(),
  fp: z.string().optional(),
  d: z.number().optional(),
  hd: z.number().optional(),
  /** The worker's failure that closed it (see CallbackWait.workerFailure): name, message, signal. */
  wf: z.object({ n: z.string(), m: z.string(), k: z.enum(['e', 'f', 'c', 'n']), r: z.number().optional() }).optional(),
})
export type StoredWait = z.infer<typeof storedWaitSchema>

/**
 * A wait as its node record stores it, its times relative to `baseMs` (the instance's creation). An open wait also
 * stores its deadlines as absolute times, for the condition of a completion's write to compare with its own clock
 * (see putCallbackParams): `d`, its timeout or the earlier deadline of its node or instance (`closesAtMs`, read back
 * from `d` when earlier than the timeout); `hd`, its heartbeat deadline as the lease holder knows it (heartbeats
 * stored since, in `cb`, extend it there), not read back: the relative times say the same.
 */
export const waitToItem = (wait: CallbackWait, baseMs: number): StoredWait => {
  const item: StoredWait = {
    c: wait.call,
    f: wait.fence,
    r: wait.requestedAtMs - baseMs,
    t: wait.timeoutAtMs - baseMs,
  }
  if (wait.outcome === undefined) item.d = Math.min(wait.timeoutAtMs, wait.closesAtMs ?? wait.timeoutAtMs)
  if (wait.heartbeatSeconds !== undefined) item.hs = wait.heartbeatSeconds
  if (wait.heartbeatAtMs !== undefined) item.hb = wait.heartbeatAtMs - baseMs
  if (wait.outcome === undefined && wait.heartbeatSeconds !== undefined) {
    item.hd = Math.max(wait.requestedAtMs, wait.heartbeatAtMs ?? 0) + wait.heartbeatSeconds * 1000
  }
  if (wait.outcome !== undefined) item.o = OUTCOME_CODES[wait.outcome]
  if (wait.fingerprint !== undefined) item.fp = wait.fingerprint
  if (wait.workerFailure !== undefined) {
    const { name, message, signal, retryAfterSeconds } = wait.workerFailure
    item.wf = { n: name, m: message, k: FAILURE_SIGNAL_CODES[signal] }
    if (retryAfterSeconds !== undefined) item.wf.r = retryAfterSeconds
  }
  return item
}

const FAILURE_SIGNAL_CODES = {
  error: 'e',
  'failed-with-failed': 'f',
  'failed-with-continue': 'c',
  'not-ready': 'n',
} as const
const FAILURE_SIGNALS = invert<WorkerFailure['signal']>(FAILURE_SIGNAL_CODES)

export const waitFromItem = (item: StoredWait, baseMs: number): CallbackWait => {
  const wait: CallbackWait = {
    call: item.c,
    fence: item.f,
    requestedAtMs: baseMs + item.r,
    timeoutAtMs: baseMs + item.t,
  }
  if (item.d !== undefined && item.d < wait.timeoutAtMs) wait.closesAtMs = item.d
  if (item.hs !== undefined) wait.heartbeatSeconds = item.hs
  if (item.hb !== undefined) wait.heartbeatAtMs = baseMs + item.hb
  if (item.o !== undefined) wait.outcome = OUTCOMES[item.o] as CallbackOutcome
  if (item.fp !== undefined) wait.fingerprint = item.fp
  if (item.wf !== undefined) {
    wait.workerFailure = {
      name: item.wf.n,
      message: item.wf.m,
      signal: FAILURE_SIGNALS[item.wf.k] as WorkerFailure['signal'],
    }
    if (item.wf.r !== undefined) wait.workerFailure.retryAfterSeconds = item.wf.r
  }
  return wait
}

/**
 * An arrival: call and fence, a heartbeat time, a completion (status, output inline `o` or in `or`, …), and `b`, what
 * it counts for in the instance's stored bytes (`b` of the item) until a write consumes it.
 */
export const storedArrivalSchema = z.object({
  c: z.number().int(),
  f: z.number().int(),
  hb: z.number().optional(),
  s: z.enum(['s', 'f']).optional(),
  o: z.string().optional(),
  or: z.string().optional(),
  e: z.string().optional(),
  ca: z.string().optional(),
  er: z.string().optional(),
  at: z.number().optional(),
  fp: z.string().optional(),
  b: z.number().optional(),
})
export type StoredArrival = z.infer<typeof storedArrivalSchema>
export const storedArrivalsSchema = z.record(z.string(), storedArrivalSchema)

/**
 * An arrival as `cb` stores it; `lay` lays out its content as JSON text — inline, or in an item of its own (see
 * ItemPlanner.arrivalContent) —: a success's output (`o` or `or`), a failure's error and cause (`e` and `ca`, or
 * `er` for both).
 */
export const arrivalToItem = (
  arrival: CallbackArrival,
  lay: (text: string) => { text: string } | { ref: string },
): StoredArrival => {
  const item: StoredArrival = { c: arrival.call, f: arrival.fence }
  if (arrival.heartbeatAtMs !== undefined) item.hb = arrival.heartbeatAtMs
  if (arrival.storedBytes) item.b = arrival.storedBytes
  const completion = arrival.completion
  if (!completion) return item
  item.at = completion.atMs
  item.fp = completion.fingerprint
  if (completion.status === 'success') {
    item.s = 's'
    if (completion.output !== undefined) {
      const laid = lay(JSON.stringify(completion.output))
      if ('text' in laid) item.o = laid.text
      else item.or = laid.ref
    }
    return item
  }
  item.s = 'f'
  const failure: { e?: string; ca?: string } = {}
  if (completion.error !== undefined) failure.e = completion.error
  if (completion.cause !== undefined) failure.ca = completion.cause
  if (failure.e === undefined && failure.ca === undefined) return item
  const laid = lay(JSON.stringify(failure))
  if ('ref' in laid) item.er = laid.ref
  else Object.assign(item, failure)
  return item
}

const storedFailureSchema = z.object({ e: z.string().optional(), ca: z.string().optional() })

/** An arrival as the engine reads it; `content` reads the side item its content is in, when it is not inline. */
export const arrivalFromItem = (item: StoredArrival, content: (ref: string) => string | undefined): CallbackArrival => {
  const arrival: CallbackArrival = { call: item.c, fence: item.f }
  if (item.hb !== undefined) arrival.heartbeatAtMs = item.hb
  if (item.b !== undefined) arrival.storedBytes = item.b
  if (item.s === undefined) return arrival
  const at = { atMs: item.at ?? 0, fingerprint: item.fp ?? '' }
  if (item.s === 'f') {
    const text = item.er === undefined ? undefined : content(item.er)
    const failure = text === undefined ? { e: item.e, ca: item.ca } : storedFailureSchema.parse(JSON.parse(text))
    arrival.completion = {
      status: 'failure',
      ...(failure.e === undefined ? {} : { error: failure.e }),
      ...(failure.ca === undefined ? {} : { cause: failure.ca }),
      ...at,
    }
    return arrival
  }
  const text = item.or === undefined ? item.o : content(item.or)
  arrival.completion = {
    status: 'success',
    ...(text === undefined ? {} : { output: JSON.parse(text) as JsonValue }),
    ...at,
  }
  return arrival
}

/** The item an arrival's content is in, if it is not inline. */
export const arrivalSideKey = (arrival: StoredArrival): string | undefined => arrival.or ?? arrival.er

/** The side items the arrivals refer to. */
export const arrivalSideKeys = (arrivals: Record<string, StoredArrival> | undefined): string[] =>
  Object.values(arrivals ?? {}).flatMap((arrival) => {
    const sk = arrivalSideKey(arrival)
    return sk === undefined ? [] : [sk]
  })

/** The parts of an update being built that a change's callback fields add to. */
interface Parts {
  values: Record<string, unknown>
  set: string[]
}

/**
 * What a fenced write does to `cb`: a write that opens a wait makes sure the map exists (an early arrival may not have
 * made it), so that the arrivals to come can each set their entry. The arrivals the pass consumed are removed after
 * the write, each on the condition that it is still the one the pass read (see clearArrivalsParams): an arrival
 * stored since — the next attempt's early completion — is never removed with them.
 */
export const callbackParts = (parts: Parts, change: InstanceChange): void => {
  const opens = Object.values(change.nodes ?? {}).some((node) => node.callback && node.callback.outcome === undefined)
  if (opens) {
    parts.values[':noCb'] = {}
    parts.set.push('cb = if_not_exists(cb, :noCb)')
  }
}
