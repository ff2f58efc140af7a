import { describe, expect, it } from 'vitest'
import {
  type CompiledExpression,
  compileExpression,
  type EvaluationEnvironment,
  EXPRESSION_LIMITS,
  type ExpressionBindings,
  ExpressionErrorCode,
  evaluateCondition,
  evaluateExpression,
} from '../../src/core/expressions.js'
import type { Clock, Random } from '../../src/core/ports.js'

const NOON = Date.UTC(2026, 0, 1, 12, 0, 0)

/** A clock that stands still unless told to move, like the engine's test clocks. */
const fakeClock = (ms = NOON): Clock & { ms: number } => ({
  ms,
  nowMs() {
    return this.ms
  },
})

/** A stopwatch that advances by `stepMs` each time it is read: each evaluation step "takes" that long. */
const steppingStopwatch = (stepMs: number) => {
  let ms = 0
  let reads = 0
  return {
    nowMs: () => {
      reads++
      ms += stepMs
      return ms
    },
    get reads() {
      return reads
    },
  }
}

const sequenceRandom = (...values: number[]): Random => {
  let i = 0
  return { next: () => values[i++ % values.length] as number }
}

const environment = (overrides: Partial<EvaluationEnvironment> = {}): EvaluationEnvironment => ({
  clock: fakeClock(),
  random: sequenceRandom(0.5),
  ...overrides,
})

const bindings: ExpressionBindings = {
  input: { amount: 1500, customer: { vip: true }, lines: [{ sku: 'a' }, { sku: 'b' }] },
  nodes: {
    charge: { status: 'completed', output: { total: 99.5 } },
    review: { status: 'skipped', reason: 'condition_false' },
  },
  context: { workflow_context: { amount: 1500 }, pre_node_context: { charge: { total: 99.5 } } },
  instance: { id: 'wf-1', type: 'order', version: 'abc', businessId: 'order-42', createdAtMs: NOON - 60_000 },
}

const compiled = (source: string): CompiledExpression => {
  const outcome = compileExpression(source)
  if (!outcome.ok) throw new Error(`${source} did not compile: ${outcome.message}`)
  return outcome.value
}

const evaluate = (source: string, env = environment(), over: Partial<ExpressionBindings> = {}) =>
  evaluateExpression(compiled(source), { ...bindings, ...over }, env)

describe('compiling an expression', () => {
  it('keeps the source of an expression that parses', () => {
    const outcome = compileExpression('$input.amount > 1000')
    expect(outcome).toEqual({ ok: true, value: { source: '$input.amount > 1000' } })
  })

  it.each([
    ['$input.amount >', 'S0207', 15, 'Unexpected end of expression'],
    ['$input.amount = = 3', 'S0211', 17, '"=" cannot be used as a unary operator'],
    ['"unterminated', 'S0101', 13, 'String literal must be terminated'],
    ['$count($input.lines', 'S0203', 19, 'Expected ")"'],
    ['', 'S0207', 0, 'Unexpected end of expression'],
  ])('refuses %j with JSONata code %s at position %i', (source, code, position, message) => {
    const outcome = compileExpression(source)
    expect(outcome.ok).toBe(false)
    if (outcome.ok) return
    expect(outcome.code).toBe(code)
    expect(outcome.position).toBe(position)
    expect(outcome.message).toContain(message)
  })

  it(`accepts ${EXPRESSION_LIMITS.maxSourceBytes} bytes and refuses one more`, () => {
    const padding = (bytes: number) => `true /*${'x'.repeat(bytes - 'true /**/'.length)}*/`
    expect(compileExpression(padding(4096)).ok).toBe(true)
    expect(compileExpression(padding(4097))).toMatchObject({
      ok: false,
      code: ExpressionErrorCode.tooLong,
      message: 'the expression is 4097 bytes, over the limit of 4096',
    })
  })

  it('counts the limit in bytes of UTF-8, not in characters', () => {
    // 1,366 three-byte characters: 1,366 characters but 4,098 bytes.
    const source = `"${'€'.repeat(1366)}" != ""`
    expect(source.length).toBeLessThan(4096)
    expect(compileExpression(source)).toMatchObject({ ok: false, code: ExpressionErrorCode.tooLong })
  })
})

describe('evaluating an expression', () => {
  it('reads $input, $nodes, $context and $instance', async () => {
    expect(await evaluate('$input.customer.vip')).toEqual({ ok: true, value: true })
    expect(await evaluate('$nodes.charge.output.total')).toEqual({ ok: true, value: 99.5 })
    expect(await evaluate('$nodes.review.reason')).toEqual({ ok: true, value: 'condition_false' })
    expect(await evaluate('$context.pre_node_context.charge.total')).toEqual({ ok: true, value: 99.5 })
    expect(await evaluate('$instance.businessId & "@" & $instance.version')).toEqual({
      ok: true,
      value: 'order-42@abc',
    })
  })

  it('reads $output only when it is bound (choice rules)', async () => {
    expect(await evaluate('$output.decision')).toEqual({ ok: true, value: undefined })
    expect(await evaluate('$output.decision', environment(), { output: { decision: 'approve' } })).toEqual({
      ok: true,
      value: 'approve',
    })
  })

  it('has no root document: a bare path finds nothing', async () => {
    expect(await evaluate('amount')).toEqual({ ok: true, value: undefined })
  })

  it('reports an evaluation error with its JSONata code and position', async () => {
    expect(await evaluate('$input.amount + "x"')).toMatchObject({ ok: false, code: 'T2002', position: 15 })
    expect(await evaluate('$nope()')).toMatchObject({ ok: false, code: 'T1006', position: 6, token: 'nope' })
    expect(await evaluate('$error("no approver")')).toMatchObject({
      ok: false,
      code: 'D3137',
      message: 'no approver',
    })
  })

  it('refuses an expression that was not compiled here', async () => {
    expect(await evaluateExpression({ source: 'true' }, bindings, environment())).toMatchObject({
      ok: false,
      code: ExpressionErrorCode.failed,
    })
  })
})

describe('the guardrails', () => {
  it('stops a runaway expression once the stopwatch passes the timeout', async () => {
    // Tail calls do not deepen JSONata's stack: only the timeout can stop this one.
    const stopwatch = steppingStopwatch(1)
    const outcome = await evaluate(
      '($loop := function($n) { $n > 0 ? $loop($n - 1) : 0 }; $loop(1000000000))',
      environment({ stopwatch }),
    )
    expect(outcome).toMatchObject({ ok: false, code: 'D1012', message: expect.stringContaining('100 milliseconds') })
    // Read once for the start, then once per step until 100 ms are past.
    expect(stopwatch.reads).toBe(EXPRESSION_LIMITS.timeoutMs + 2)
  })

  it('lets an expression finish that stays within the timeout', async () => {
    const stopwatch = steppingStopwatch(1)
    expect(await evaluate('$count($input.lines) = 2', environment({ stopwatch }))).toEqual({ ok: true, value: true })
    expect(stopwatch.reads).toBeLessThan(EXPRESSION_LIMITS.timeoutMs)
  })

  it('measures the timeout on the clock when no stopwatch is given', async () => {
    const clock = fakeClock()
    const advancing: Clock = {
      nowMs: () => {
        clock.ms += 10
        return clock.ms
      },
    }
    const outcome = await evaluate('$sum([1..100].($ * 2))', environment({ clock: advancing }))
    expect(outcome).toMatchObject({ ok: false, code: 'D1012' })
  })

  it('stops deep recursion with a stack overflow error', async () => {
    const outcome = await evaluate('($depth := function($n) { $n > 0 ? 1 + $depth($n - 1) : 0 }; $depth(100000))')
    expect(outcome).toMatchObject({ ok: false, code: 'D1011' })
  })

  it('allows moderate recursion', async () => {
    const outcome = await evaluate('($depth := function($n) { $n > 0 ? 1 + $depth($n - 1) : 0 }; $depth(50))')
    expect(outcome).toEqual({ ok: true, value: 50 })
  })

  it('bounds the length of a sequence', async () => {
    const outcome = await evaluate(`$count([1..${EXPRESSION_LIMITS.maxSequenceLength + 1}])`)
    expect(outcome).toMatchObject({ ok: false, code: 'D2015' })
    expect(await evaluate('$count([1..1000])')).toEqual({ ok: true, value: 1000 })
  })
})

describe('time and randomness', () => {
  it('reads $now() and $millis() from the injected clock', async () => {
    const clock = fakeClock()
    expect(await evaluate('$millis()', environment({ clock }))).toEqual({ ok: true, value: NOON })
    expect(await evaluate('$now()', environment({ clock }))).toEqual({ ok: true, value: '2026-01-01T12:00:00.000Z' })
    clock.ms += 86_400_000
    expect(await evaluate('$now("[Y0001]-[M01]-[D01]")', environment({ clock }))).toEqual({
      ok: true,
      value: '2026-01-02',
    })
    expect(await evaluate('$now("[H01]:[m01]", "+0200")', environment({ clock }))).toEqual({
      ok: true,
      value: '14:00',
    })
  })

  it('keeps one time for the whole evaluation, as JSONata does', async () => {
    const clock = fakeClock()
    let reads = 0
    const counting: Clock = {
      nowMs: () => {
        reads++
        return clock.nowMs()
      },
    }
    const stopwatch = steppingStopwatch(0)
    expect(await evaluate('$millis() = $millis()', environment({ clock: counting, stopwatch }))).toEqual({
      ok: true,
      value: true,
    })
    expect(reads).toBe(1)
  })

  it('completes a partial date in $toMillis from the injected clock', async () => {
    expect(await evaluate('$toMillis("13:30", "[H]:[m]")', environment())).toEqual({
      ok: true,
      value: Date.UTC(2026, 0, 1, 13, 30),
    })
  })

  it('compares a deadline in the input with the clock', async () => {
    const source = '$toMillis($input.due) < $millis()'
    const input = { due: '2026-01-01T11:00:00Z' }
    expect(await evaluate(source, environment({ clock: fakeClock(NOON) }), { input })).toEqual({
      ok: true,
      value: true,
    })
    expect(await evaluate(source, environment({ clock: fakeClock(NOON - 7_200_000) }), { input })).toEqual({
      ok: true,
      value: false,
    })
  })

  it('draws $random() and $shuffle() from the injected randomness', async () => {
    expect(await evaluate('$random()', environment({ random: sequenceRandom(0.25) }))).toEqual({
      ok: true,
      value: 0.25,
    })
    // Fisher-Yates inside out with j = floor(r * (i + 1)): r = 0 always puts the newest element first.
    expect(await evaluate('$shuffle([1, 2, 3, 4])', environment({ random: sequenceRandom(0) }))).toEqual({
      ok: true,
      value: [4, 1, 2, 3],
    })
    expect(await evaluate('$shuffle([1, 2, 3, 4])', environment({ random: sequenceRandom(0.99) }))).toEqual({
      ok: true,
      value: [1, 2, 3, 4],
    })
  })

  it('keeps overlapping evaluations of one expression apart', async () => {
    const expression = compiled('$millis()')
    const [early, late] = await Promise.all([
      evaluateExpression(expression, bindings, environment({ clock: fakeClock(1_000) })),
      evaluateExpression(expression, bindings, environment({ clock: fakeClock(2_000) })),
    ])
    expect(early).toEqual({ ok: true, value: 1_000 })
    expect(late).toEqual({ ok: true, value: 2_000 })
  })
})

describe('evaluating a condition', () => {
  const condition = (source: string, over: Partial<ExpressionBindings> = {}) =>
    evaluateCondition(compiled(source), { ...bindings, ...over }, environment())

  it.each([
    ['$input.amount > 1000', true],
    ['$input.amount > 2000', false],
    ['$nodes.review.status = "skipped"', true],
    ['$exists($input.missing)', false],
  ])('returns the boolean of %s', async (source, value) => {
    expect(await condition(source)).toEqual({ ok: true, value })
  })

  it.each([
    ['$input.amount', 'a number: 1500'],
    ['$input.customer', 'an object: {"vip":true}'],
    ['$input.lines.sku', 'an array: ["a","b"]'],
    ['"true"', 'a string: "true"'],
    ['null', 'null: null'],
    ['function($x) { $x }', 'a function'],
    ['$input.missing', 'no value (undefined)'],
    ['amount > 1000', 'no value (undefined)'],
  ])('refuses %s, which is not a boolean, naming what it got', async (source, got) => {
    const outcome = await condition(source)
    expect(outcome).toMatchObject({ ok: false, code: ExpressionErrorCode.notBoolean })
    if (!outcome.ok) expect(outcome.message).toContain(`expected true or false, got ${got}`)
  })

  it('shortens a long value in the message', async () => {
    const outcome = await condition('$input.text', { input: { text: 'y'.repeat(500) } })
    expect(outcome.ok).toBe(false)
    if (!outcome.ok) expect(outcome.message.length).toBeLessThan(150)
  })

  it('passes an evaluation error through unchanged', async () => {
    expect(await condition('$input.amount > "x"')).toMatchObject({ ok: false, code: 'T2009' })
  })
})
