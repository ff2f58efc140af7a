import jsonata from 'jsonata'
import type { NodeStatus, SkipReason } from '../schemas/statuses.js'
import type { JsonObject, JsonValue } from './json.js'
import type { Clock, Random } from './ports.js'

/**
 * Conditions (`when`) and choice rules are JSONata expressions, the language Step Functions uses. They are compiled
 * once, when a definition loads, and evaluated by the engine with guardrails, so that a workflow author's expression
 * can neither hang a pass nor make the engine depend on the wall clock or `Math.random`.
 */
export const EXPRESSION_LIMITS = {
  /** Longest source text, in bytes of UTF-8. Refused when the definition loads. */
  maxSourceBytes: 4096,
  /** Longest evaluation, measured on the environment's stopwatch (see `EvaluationEnvironment`). */
  timeoutMs: 100,
  /**
   * Deepest nesting of JSONata's evaluator: each level of the expression and each call of a function takes a few, so
   * this allows about a hundred nested calls of a recursive function.
   */
  maxStackDepth: 500,
  /** Longest sequence (JSONata's lists: path results, ranges) an evaluation may build. */
  maxSequenceLength: 100_000,
} as const

/**
 * Codes of the failures this module reports itself. Every other code is JSONata's own: `S0xxx` for syntax errors
 * (at load), `T`/`D` codes at evaluation, among them `D1011` (stack too deep), `D1012` (timeout) and `D2015`
 * (sequence too long). See https://docs.jsonata.org/errors.
 */
export const ExpressionErrorCode = {
  /** The source is over `EXPRESSION_LIMITS.maxSourceBytes`. */
  tooLong: 'EXPRESSION_TOO_LONG',
  /** A condition returned something other than `true` or `false`, or nothing. */
  notBoolean: 'EXPRESSION_NOT_BOOLEAN',
  /** The evaluator threw something that is not a JSONata error (a bug, or a host limit such as memory). */
  failed: 'EXPRESSION_FAILED',
} as const

/** Why an expression could not be compiled or evaluated: data, never an exception. */
export interface ExpressionFailure {
  readonly ok: false
  readonly code: string
  /** JSONata's position: the character offset just past the offending token (1 = the first character). */
  readonly position?: number
  /** The offending token, when JSONata names one. */
  readonly token?: string
  readonly message: string
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | ExpressionFailure

/** A compiled expression: plain data outside (its source), the evaluator kept in a module-private table. */
export interface CompiledExpression {
  readonly source: string
}

/** What a condition sees of one direct predecessor. Conditions are evaluated once every predecessor is terminal. */
export interface PredecessorBinding {
  readonly status: NodeStatus
  /**
   * What the predecessor wrote: its context without `pre_node_context`, `workflow_context` and `system` (the same
   * view as a successor's `pre_node_context`). Present for `completed` and `failed` nodes; a skipped or canceled
   * node has none.
   */
  readonly output?: JsonObject
  /** Why it was skipped, for a `skipped` predecessor. */
  readonly reason?: SkipReason
}

export interface InstanceBinding {
  readonly id: string
  readonly type: string
  /** The definition version the instance runs. */
  readonly version: string
  readonly businessId?: string
  readonly createdAtMs: number
}

/**
 * The variables an expression can read. There is no root document: a path starts at one of these (`$input.amount`,
 * `$nodes.charge.output.total`, `$nodes.review.status = "skipped"`).
 */
export interface ExpressionBindings {
  /** `$input`: the instance input (`workflow_context`). */
  readonly input: JsonValue
  /** `$nodes`: the node's direct predecessors by id. */
  readonly nodes: Readonly<Record<string, PredecessorBinding>>
  /** `$context`: the context the node's worker would receive (`pre_node_context`, `workflow_context`, `node_event`). */
  readonly context: JsonObject
  /** `$instance`: `{id, type, version, businessId, createdAtMs}`. */
  readonly instance: InstanceBinding
  /** `$output`: for a choice rule, what the deciding node wrote (its context without the reserved keys). */
  readonly output?: JsonObject
}

export interface EvaluationEnvironment {
  /** The engine's clock: `$now()`, `$millis()` and JSONata's date defaults read it once per evaluation. */
  readonly clock: Clock
  /** The engine's randomness: `$random()` and `$shuffle()` draw from it. */
  readonly random: Random
  /**
   * A monotonic millisecond source the timeout is measured on. It defaults to `clock`, which is right for the system
   * clock; a test clock that stands still would never time an expression out, so tests that need the timeout inject
   * one that advances as it is read, and production may inject `performance.now`.
   */
  readonly stopwatch?: Pick<Clock, 'nowMs'>
}

/** One evaluation's state, found by the hooks through JSONata's environment (the bindings of the call). */
interface EvaluationState {
  readonly nowMs: number
  readonly random: Random
  readonly stopwatch: Pick<Clock, 'nowMs'>
  readonly deadlineMs: number
  timeSet: boolean
}

/**
 * The binding that carries an evaluation's state. `:` cannot appear in a JSONata variable name, so no expression can
 * read or shadow it.
 */
const STATE = 'tickflow:evaluation'
/** JSONata calls the function bound to this symbol before it evaluates any part of an expression. */
const EVALUATE_ENTRY = Symbol.for('jsonata.__evaluate_entry')

/** What JSONata throws: a plain object, not an Error. */
interface JsonataError {
  code: string
  position?: number
  token?: string
  message?: string
  value?: unknown
}

type Environment = jsonata.Environment
type Focus = jsonata.Focus

const programs = new WeakMap<CompiledExpression, jsonata.Expression>()

const utf8 = new TextEncoder()

const stateOf = (environment: Environment): EvaluationState => environment.lookup(STATE) as EvaluationState

/**
 * Runs before every step of an evaluation. The first step sets JSONata's evaluation timestamp (which `$toMillis`
 * uses to complete a partial date) to the engine's clock; every step checks the deadline. JSONata's own `timeout`
 * option reads the wall clock, which a test cannot control, so the timeout is kept here instead.
 */
const onEvaluateEntry = (node: jsonata.ExprNode, _input: unknown, environment: Environment): void => {
  const state = stateOf(environment)
  if (!state.timeSet) {
    environment.timestamp.setTime(state.nowMs)
    state.timeSet = true
  }
  if (state.stopwatch.nowMs() > state.deadlineMs) {
    const error: JsonataError = { code: 'D1012', value: EXPRESSION_LIMITS.timeoutMs }
    if (node.position !== undefined) error.position = node.position
    throw error
  }
}

/** JSONata's `$fromMillis`, to format `$now(picture, timezone)` exactly as JSONata would. */
const fromMillis = (focus: Focus, millis: number, picture?: string, timezone?: string): string => {
  const defined = focus.environment.lookup('fromMillis') as {
    implementation: (this: Focus, ...args: unknown[]) => string
  }
  return defined.implementation.call(focus, millis, picture, timezone)
}

/** `$shuffle` as JSONata implements it (inside-out Fisher-Yates), with the engine's randomness. */
const shuffle = (array: unknown[] | undefined, random: Random): unknown[] | undefined => {
  if (array === undefined || array.length <= 1) return array
  const result: unknown[] = new Array(array.length)
  for (let i = 0; i < array.length; i++) {
    const j = Math.floor(random.next() * (i + 1))
    if (i !== j) result[i] = result[j]
    result[j] = array[i]
  }
  return result
}

const isJsonataError = (error: unknown): error is JsonataError =>
  typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'

const failure = (code: string, message: string, position?: number, token?: string): ExpressionFailure => ({
  ok: false,
  code,
  message,
  ...(position !== undefined ? { position } : {}),
  ...(token !== undefined ? { token } : {}),
})

/** JSONata's errors become data with their code and position; anything else is reported without its internals. */
const toFailure = (error: unknown): ExpressionFailure => {
  if (isJsonataError(error)) {
    return failure(
      error.code,
      error.message ?? error.code,
      typeof error.position === 'number' ? error.position : undefined,
      typeof error.token === 'string' ? error.token : undefined,
    )
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return failure(ExpressionErrorCode.failed, message)
}

/** Parses an expression: a syntax error comes back with JSONata's code and position. */
export const compileExpression = (source: string): Outcome<CompiledExpression> => {
  const bytes = utf8.encode(source).byteLength
  if (bytes > EXPRESSION_LIMITS.maxSourceBytes) {
    return failure(
      ExpressionErrorCode.tooLong,
      `the expression is ${bytes} bytes, over the limit of ${EXPRESSION_LIMITS.maxSourceBytes}`,
    )
  }
  let program: jsonata.Expression
  try {
    program = jsonata(source, {
      stack: EXPRESSION_LIMITS.maxStackDepth,
      sequence: EXPRESSION_LIMITS.maxSequenceLength,
    })
  } catch (error) {
    return toFailure(error)
  }
  // The hooks and functions are bound once per compiled expression and find each evaluation's state in its own
  // bindings, so evaluations of one expression may overlap.
  ;(program.assign as (name: string | symbol, value: unknown) => void)(EVALUATE_ENTRY, onEvaluateEntry)
  program.registerFunction(
    'now',
    function (this: Focus, picture?: string, timezone?: string) {
      return fromMillis(this, stateOf(this.environment).nowMs, picture, timezone)
    },
    '<s?s?:s>',
  )
  program.registerFunction(
    'millis',
    function (this: Focus) {
      return stateOf(this.environment).nowMs
    },
    '<:n>',
  )
  program.registerFunction(
    'random',
    function (this: Focus) {
      return stateOf(this.environment).random.next()
    },
    '<:n>',
  )
  program.registerFunction(
    'shuffle',
    function (this: Focus, array?: unknown[]) {
      return shuffle(array, stateOf(this.environment).random)
    },
    '<a:a>',
  )
  const compiled: CompiledExpression = Object.freeze({ source })
  programs.set(compiled, program)
  return { ok: true, value: compiled }
}

/** Evaluates a compiled expression over `bindings`; every failure, the guardrails' included, is an outcome. */
export const evaluateExpression = async (
  expression: CompiledExpression,
  bindings: ExpressionBindings,
  environment: EvaluationEnvironment,
): Promise<Outcome<unknown>> => {
  const program = programs.get(expression)
  if (!program) return failure(ExpressionErrorCode.failed, 'the expression was not compiled by compileExpression')
  const stopwatch = environment.stopwatch ?? environment.clock
  const state: EvaluationState = {
    nowMs: environment.clock.nowMs(),
    random: environment.random,
    stopwatch,
    deadlineMs: stopwatch.nowMs() + EXPRESSION_LIMITS.timeoutMs,
    timeSet: false,
  }
  const variables: Record<string, unknown> = {
    input: bindings.input,
    nodes: bindings.nodes,
    context: bindings.context,
    instance: bindings.instance,
    [STATE]: state,
  }
  if (bindings.output !== undefined) variables.output = bindings.output
  try {
    return { ok: true, value: await program.evaluate(undefined, variables) }
  } catch (error) {
    return toFailure(error)
  }
}

const isFunction = (value: unknown): boolean =>
  typeof value === 'function' ||
  (typeof value === 'object' &&
    value !== null &&
    ((value as { _jsonata_lambda?: unknown })._jsonata_lambda === true ||
      (value as { _jsonata_function?: unknown })._jsonata_function === true))

/** How a value is named in an error: its JSON type and a short rendering. */
const describeValue = (value: unknown): string => {
  if (value === undefined) {
    return 'no value (undefined): a path starts at a variable such as $input, $nodes, $context or $instance'
  }
  if (isFunction(value)) return 'a function'
  const type = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`.replace(/^a o/, 'an o')
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return `${type}: ${text.length > 80 ? `${text.slice(0, 77)}...` : text}`
}

/**
 * Evaluates a condition (`when`, a choice rule's `when`), which must return `true` or `false`: anything else,
 * `undefined` included, is a failure naming what it got. JSONata's truthiness is not applied, so that `$input.count`
 * is not silently read as "present and non-zero".
 */
export const evaluateCondition = async (
  expression: CompiledExpression,
  bindings: ExpressionBindings,
  environment: EvaluationEnvironment,
): Promise<Outcome<boolean>> => {
  const outcome = await evaluateExpression(expression, bindings, environment)
  if (!outcome.ok) return outcome
  if (typeof outcome.value === 'boolean') return { ok: true, value: outcome.value }
  return failure(ExpressionErrorCode.notBoolean, `expected true or false, got ${describeValue(outcome.value)}`)
}
