import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb'
import { localDynamoDbClientConfig } from '../../src/local/dynamodb-local.js'
import { dynamoEndpoint } from '../support/dynamodb.js'
import { drain, interceptRequests } from '../support/exchanges.js'

/** A client of the shared DynamoDB Local of its own, so that middlewares added to it touch no other test. */
export const newLocalClient = (config: Partial<DynamoDBClientConfig> = {}): DynamoDBClient =>
  new DynamoDBClient({ ...localDynamoDbClientConfig(dynamoEndpoint()), ...config })

/** How a store sends its writes: direct (a client as the SDK made it) or through the SDK (a client with middleware). */
export type Way = 'direct' | 'through the SDK'
export const WAYS: readonly Way[] = ['direct', 'through the SDK']

/** A middleware that does nothing: a store on this client sends its writes through the SDK (see HttpWire). */
export const sendThroughTheSdk = (client: DynamoDBClient): void => {
  client.middlewareStack.add((next) => (args) => next(args), { step: 'initialize', name: 'passThrough' })
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** A float in [0, 1) that depends only on `text` (FNV-1a, then mixed): the same call always gets the same fate. */
export const hashUnit = (text: string): number => {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  return seededRandom(hash)()
}

/** Seeded Fisher-Yates. */
export const shuffle = <T>(items: readonly T[], random: () => number): T[] => {
  const result = [...items]
  for (let index = result.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1))
    ;[result[index], result[other]] = [result[other] as T, result[index] as T]
  }
  return result
}

/** An error shaped like the AWS SDK's service exceptions, which its retry strategy classifies by name and status. */
export const awsError = (name: string, httpStatusCode: number, message: string): Error =>
  Object.assign(new Error(message), {
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode, attempts: 1, totalRetryDelay: 0 },
  })

interface MiddlewareArgs {
  input?: Record<string, unknown>
}

/** The instance or definition key of a request (`I#…`, `D#…`), marshalled or not; undefined for queries. */
export const requestKey = (args: unknown): string | undefined => {
  const input = (args as MiddlewareArgs).input
  const item = (input?.Key ?? input?.Item) as { pk?: unknown } | undefined
  const pk = item?.pk
  if (typeof pk === 'string') return pk
  const marshalled = (pk as { S?: unknown } | undefined)?.S
  return typeof marshalled === 'string' ? marshalled : undefined
}

/** What a DynamoDB request does for the store, told from its expressions (for the fault report). */
export const requestKind = (commandName: string, args: unknown): string => {
  const input = (args as MiddlewareArgs).input ?? {}
  const update = typeof input.UpdateExpression === 'string' ? input.UpdateExpression : ''
  const key = requestKey(args) ?? ''
  switch (commandName) {
    case 'PutItemCommand':
      return key.startsWith('D#') ? 'putDefinition' : 'createInstance'
    case 'GetItemCommand':
      return key.startsWith('D#') ? 'getDefinition' : 'getInstance'
    case 'QueryCommand':
      return input.IndexName === 'due' ? 'queryDue' : 'list'
    case 'UpdateItemCommand':
      if (update.includes('ADD f :one')) return 'acquireLease'
      if (update.includes('e.#node')) return 'putEvent'
      if (update.startsWith('REMOVE lo,')) return 'releaseLease'
      // A fenced write of a pass or operation (writeUnderLeaseParams): it always sets the time of the change first.
      if (update.startsWith('SET ua = :ua')) return /\blo\b/.test(update) ? 'releasingWrite' : 'write'
      return 'markDue'
    default:
      return commandName
  }
}

/** The cause chain of an error, outermost first. */
export const causes = (error: unknown): unknown[] => {
  const chain: unknown[] = []
  let current: unknown = error
  while (current !== undefined && current !== null && chain.length < 10) {
    chain.push(current)
    current = (current as { cause?: unknown }).cause
  }
  return chain
}

export const errorName = (error: unknown): string => (error instanceof Error ? error.name : typeof error)

/** The runner is dead: nothing it sends from now on reaches DynamoDB. */
export class Crash extends Error {
  override readonly name = 'Crash'
}

/**
 * `before`: requests 1..k are answered, request k+1 and every later one fail before they are sent.
 * `after`: requests 1..k-1 are answered, request k is executed by DynamoDB but the runner dies before it reads the
 * answer, and every later request fails.
 */
export type CrashMode = 'before' | 'after'

export interface CrashState {
  /** Requests the runner tried to send, the fatal one included. */
  calls: number
  /** Of those, the writes the store sent direct (not through the SDK). */
  directWrites: number
  dead: boolean
  /** Resolves when the runner dies (to stop waiting for work that will never finish, such as a hung worker). */
  readonly died: Promise<void>
  /** Kills the runner now, whatever it is doing (a Lambda stopped at its timeout). */
  kill(): void
}

/**
 * A client of its own that counts the runner's requests and kills it at the k-th; k = Infinity never kills it. A
 * Crash is no fault the SDK or the store retries: a dead runner's request is not sent again.
 */
export const crashingClient = (
  k: number,
  mode: CrashMode,
  options: { way?: Way } = {},
): { client: DynamoDBClient; state: CrashState } => {
  const client = newLocalClient()
  if (options.way === 'through the SDK') sendThroughTheSdk(client)
  let resolveDied: () => void = () => {}
  const died = new Promise<void>((resolve) => {
    resolveDied = resolve
  })
  const state: CrashState = {
    calls: 0,
    directWrites: 0,
    dead: false,
    died,
    kill: () => {
      state.dead = true
      resolveDied()
    },
  }
  // At the HTTP handler: below the SDK's retries and below the store's direct writes, every request is counted and
  // can be the fatal one, whichever way it is sent.
  interceptRequests(client, async (exchange, send) => {
    state.calls += 1
    if (!exchange.viaSdk) state.directWrites += 1
    if (state.dead) throw new Crash(`request ${state.calls}: the runner is dead`)
    if (mode === 'before' && state.calls > k) {
      state.kill()
      throw new Crash(`killed before request ${state.calls}`)
    }
    const call = state.calls
    // The answer — a result or a refusal such as a failed condition — is read only if the runner still lives.
    const answer = await send().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    )
    const dies = state.dead || (mode === 'after' && call >= k)
    if (dies && 'result' in answer) await drain(answer.result)
    // Killed meanwhile (a hung worker's Lambda timed out): the answer is never read.
    if (state.dead) throw new Crash(`request ${call}: the runner died before it read the answer`)
    if (mode === 'after' && call >= k) {
      state.kill()
      throw new Crash(`killed after request ${call} was executed, before its answer was read`)
    }
    if ('error' in answer) throw answer.error
    return answer.result
  })
  return { client, state }
}
