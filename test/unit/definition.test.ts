import { describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { descendantsOf, loadDefinition } from '../../src/core/definition.js'
import { DefinitionError, RegistrationError } from '../../src/core/errors.js'
import { evaluateCondition } from '../../src/core/expressions.js'
import { Registry } from '../../src/core/registry.js'
import { approvalWorkflow } from '../../src/workflows/approval.js'
import { orderWorkflow } from '../../src/workflows/order.js'
import { subscriptionBillingWorkflow } from '../../src/workflows/subscription.js'

const node = (id: string, next: string[] = [], extra: Record<string, unknown> = {}) => ({
  id,
  next_nodes: next,
  ...extra,
})

describe('loading a workflow definition', () => {
  it('adds root before first-level nodes and end after leaves, in definition order', () => {
    const definition = loadDefinition({ id: 'flow', nodes: [node('a', ['b', 'c']), node('b'), node('c')] })
    expect(definition.nodes.map((n) => n.id)).toEqual(['root', 'a', 'b', 'c', 'end'])
    expect(definition.byId.get('root')?.next).toEqual(['a'])
    expect(definition.byId.get('a')?.prev).toEqual(['root'])
    expect(definition.byId.get('end')?.prev).toEqual(['b', 'c'])
    expect(definition.byId.get('b')?.next).toEqual(['end'])
  })

  it('gives two start nodes root as their common predecessor', () => {
    const definition = loadDefinition({ id: 'flow', nodes: [node('a', ['j']), node('b', ['j']), node('j')] })
    expect(definition.byId.get('root')?.next).toEqual(['a', 'b'])
    expect(definition.byId.get('j')?.prev).toEqual(['a', 'b'])
  })

  it.each([
    ['a cycle', [node('a', ['b']), node('b', ['a'])], /cycle through nodes 'a', 'b'/],
    ['a cycle root cannot reach', [node('a'), node('x', ['y']), node('y', ['z']), node('z', ['x'])], /cycle/],
    ['a self loop', [node('a', ['a'])], /lists itself/],
    ['an unknown next node', [node('a', ['nope'])], /unknown next node 'nope'/],
    ['the reserved id root', [node('root')], /'root' is reserved/],
    ['the reserved id end', [node('a', ['end']), node('end')], /'end' is reserved/],
    ['a duplicate id', [node('a'), node('a')], /'a' is used twice/],
    ['a negative fail_max_count', [node('a', [], { fail_max_count: -1 })], /fail_max_count/],
    ['a fractional max_wait_time_ts', [node('a', [], { max_wait_time_ts: 1.5 })], /max_wait_time_ts/],
    ['a string limit', [node('a', [], { fail_max_count: '3' })], /fail_max_count/],
    ['a misspelt key', [node('a', [], { next_node: ['b'] })], /next_node/],
    ['an id with spaces', [node('a b')], /nodes\[0\]\.id/],
    ['the id __proto__', [node('__proto__')], /nodes\[0\]\.id.*every JavaScript object/],
    [
      'the id constructor',
      [node('a', ['constructor']), node('constructor')],
      /nodes\[1\]\.id.*every JavaScript object/,
    ],
    ['the id toString', [node('toString')], /nodes\[0\]\.id.*every JavaScript object/],
  ])('rejects %s with a DefinitionError naming it', (_, nodes, message) => {
    expect(() => loadDefinition({ id: 'flow', nodes })).toThrow(DefinitionError)
    expect(() => loadDefinition({ id: 'flow', nodes })).toThrow(message)
  })

  it('rejects a workflow without nodes', () => {
    expect(() => loadDefinition({ id: 'flow', nodes: [] })).toThrow(/at least one node/)
  })

  it('gives the same version to the same graph whatever the key order, and another to a changed graph', () => {
    const a = loadDefinition({
      id: 'flow',
      nodes: [
        { id: 'a', next_nodes: ['b'] },
        { next_nodes: [], id: 'b' },
      ],
    })
    const b = loadDefinition({
      nodes: [
        { next_nodes: ['b'], id: 'a' },
        { id: 'b', next_nodes: [] },
      ],
      id: 'flow',
    })
    const c = loadDefinition({ id: 'flow', nodes: [node('a', ['b']), node('b', [], { fail_max_count: 2 })] })
    expect(a.version).toBe(b.version)
    expect(c.version).not.toBe(a.version)
  })

  it('lists a node and its descendants in definition order', () => {
    const definition = loadDefinition({
      id: 'flow',
      nodes: [node('a', ['b', 'c']), node('b', ['d']), node('c', ['d']), node('d'), node('x')],
    })
    expect(descendantsOf(definition, 'b')).toEqual(['b', 'd', 'end'])
    expect(descendantsOf(definition, 'a')).toEqual(['a', 'b', 'c', 'd', 'end'])
  })
})

describe('the TypeScript builder', () => {
  it('produces the same definition as the equivalent JSON config', () => {
    const module = defineWorkflow({
      type: 'order',
      nodes: {
        validate: { next: ['charge', 'reserve'], run: () => {} },
        charge: { next: ['ship'], failMaxCount: 3, run: () => {} },
        reserve: { next: ['ship'], maxWaitTimeSeconds: 60, run: () => {}, check: () => {} },
        ship: { run: () => {} },
      },
    })
    const fromJson = loadDefinition({
      id: 'order',
      nodes: [
        node('validate', ['charge', 'reserve']),
        node('charge', ['ship'], { fail_max_count: 3 }),
        node('reserve', ['ship'], { max_wait_time_ts: 60 }),
        node('ship'),
      ],
    })
    expect(loadDefinition(module.config).version).toBe(fromJson.version)
    expect(Object.keys(module.workers)).toEqual(['validate', 'charge', 'reserve', 'ship'])
    expect(module.workers.reserve.check).toBeTypeOf('function')
    expect(module.workers.ship.check).toBeUndefined()
  })

  it('type-checks next node ids against the declared nodes', () => {
    defineWorkflow({
      type: 'typed',
      nodes: {
        a: {
          // @ts-expect-error 'c' is not a node of this workflow
          next: ['c'],
          run: () => {},
        },
        b: { run: () => {} },
      },
    })
    expect(true).toBe(true)
  })
})

describe('the registry', () => {
  it('refuses a second worker for the same node', () => {
    const registry = new Registry()
    registry.registerDefinition({ id: 'flow', nodes: [node('a')] })
    registry.registerWorker('flow', 'a', { run: () => {} })
    expect(() => registry.registerWorker('flow', 'a', { run: () => {} })).toThrow(RegistrationError)
  })

  it('refuses another definition under a registered type, but accepts the same one again', () => {
    const registry = new Registry()
    registry.registerDefinition({ id: 'flow', nodes: [node('a')] })
    expect(() => registry.registerDefinition({ id: 'flow', nodes: [node('a')] })).not.toThrow()
    expect(() => registry.registerDefinition({ id: 'flow', nodes: [node('b')] })).toThrow(RegistrationError)
  })

  it('reports nodes without a worker when the definition is first used', () => {
    const registry = new Registry()
    registry.registerDefinition({ id: 'flow', nodes: [node('a', ['b']), node('b')] })
    registry.registerWorker('flow', 'a', { run: () => {} })
    expect(() => registry.definition('flow')).toThrow(/no worker for node\(s\) 'b'/)
  })

  it('keeps registrations per registry object, not in module globals', () => {
    const one = new Registry()
    const two = new Registry()
    one.registerDefinition({ id: 'flow', nodes: [node('a')] })
    expect(two.hasDefinition('flow')).toBe(false)
  })
})

describe('conditions, choices, join rules, failure modes and deadlines in a definition', () => {
  const base = () => [node('review', ['approve', 'reject']), node('approve', ['notify']), node('reject', ['notify'])]
  const withNode = (id: string, extra: Record<string, unknown>) =>
    [...base(), node('notify')].map((n) => (n.id === id ? { ...n, ...extra } : n))
  const load = (nodes: unknown[], extra: Record<string, unknown> = {}) =>
    loadDefinition({ id: 'approval-flow', nodes, ...extra })
  const choice = [{ when: '$output.approved = true', next: 'approve' }, { default: 'reject' }]

  it.each([
    ['approval', approvalWorkflow, '041c66b12bc00a'],
    ['order', orderWorkflow, '0bb68e2392d4ac'],
    ['subscription-billing', subscriptionBillingWorkflow, '05dc8bc090dbf2'],
  ])('keeps the version of the shipped %s workflow, which uses none of them', (_, module, version) => {
    expect(loadDefinition(module.config).version).toBe(version)
  })

  it('gives a node without them the defaults: no condition, no choice, the default join rule, no deadline', () => {
    const definition = load([...base(), node('notify')])
    const notify = definition.byId.get('notify')
    expect(notify).toMatchObject({
      when: undefined,
      choice: undefined,
      trigger: 'none_failed_min_one_success',
      optional: false,
      runTimeoutSeconds: undefined,
      timeoutSeconds: undefined,
    })
    expect(definition.onFailure).toBe('fail_fast')
    expect(definition.timeoutSeconds).toBeUndefined()
    for (const id of ['root', 'end']) expect(definition.byId.get(id)?.trigger).toBe('none_failed_min_one_success')
  })

  it('carries every field of the config, with its expressions compiled', async () => {
    const definition = load(
      [
        { ...node('review', ['approve', 'reject']), choice, timeout_seconds: 3600 },
        { ...node('approve', ['notify']), when: '$input.amount > 1000', run_timeout_seconds: 30, optional: true },
        node('reject', ['notify']),
        { ...node('notify'), trigger: 'all_done' },
      ],
      { on_failure: 'isolate', timeout_seconds: 86_400 },
    )
    const approve = definition.byId.get('approve')
    expect(approve?.when?.source).toBe('$input.amount > 1000')
    expect(approve).toMatchObject({ optional: true, runTimeoutSeconds: 30, trigger: 'none_failed_min_one_success' })
    expect(definition.byId.get('review')?.timeoutSeconds).toBe(3600)
    expect(definition.byId.get('notify')?.trigger).toBe('all_done')
    expect(definition.onFailure).toBe('isolate')
    expect(definition.timeoutSeconds).toBe(86_400)

    const review = definition.byId.get('review')?.choice
    expect(review?.default).toBe('reject')
    expect(review?.rules.map((rule) => [rule.when.source, rule.next])).toEqual([['$output.approved = true', 'approve']])
    const rule = review?.rules[0]
    if (!rule || !approve?.when) throw new Error('the expressions were not compiled')
    const bindings = {
      input: { amount: 1500 },
      nodes: {},
      context: {},
      instance: { id: 'wf-1', type: 'approval-flow', version: definition.version, createdAtMs: 0 },
    }
    const env = { clock: { nowMs: () => 0 }, random: { next: () => 0 } }
    expect(await evaluateCondition(approve.when, bindings, env)).toEqual({ ok: true, value: true })
    expect(await evaluateCondition(rule.when, { ...bindings, output: { approved: false } }, env)).toEqual({
      ok: true,
      value: false,
    })
  })

  it('keeps "default": null as a choice that takes no branch', () => {
    const definition = load(
      withNode('review', { choice: [choice[0], { when: 'false', next: 'reject' }, { default: null }] }),
    )
    expect(definition.byId.get('review')?.choice?.default).toBeNull()
    expect(definition.byId.get('review')?.choice?.rules.map((rule) => rule.next)).toEqual(['approve', 'reject'])
  })

  it.each([
    ['when', { when: 'true' }],
    ['choice', { choice }],
    ['trigger', { trigger: 'all_success' }],
    ['the default trigger, written out', { trigger: 'none_failed_min_one_success' }],
    ['optional', { optional: false }],
    ['run_timeout_seconds', { run_timeout_seconds: 60 }],
    ['timeout_seconds', { timeout_seconds: 60 }],
  ])('changes the version when a node sets %s', (_, extra) => {
    const plain = load([...base(), node('notify')]).version
    expect(load(withNode('review', extra)).version).not.toBe(plain)
  })

  it.each([
    ['on_failure', { on_failure: 'isolate' }],
    ['timeout_seconds', { timeout_seconds: 60 }],
  ])('changes the version when the workflow sets %s', (_, extra) => {
    expect(load([...base(), node('notify')], extra).version).not.toBe(load([...base(), node('notify')]).version)
  })

  it('tells a choice with a default apart from one without a branch', () => {
    const toReject = load(withNode('review', { choice })).version
    const toNone = load(
      withNode('review', { choice: [choice[0], { when: 'true', next: 'reject' }, { default: null }] }),
    )
    expect(toNone.version).not.toBe(toReject)
  })

  it('round-trips through a stored snapshot (JSON) with the same version and rules', () => {
    const original = load(
      [
        {
          ...node('review', ['approve', 'reject']),
          choice: [choice[0], { when: 'false', next: 'reject' }, { default: null }],
        },
        { ...node('approve', ['notify']), when: '$input.amount > 1000', optional: true, run_timeout_seconds: 5 },
        { ...node('reject', ['notify']), timeout_seconds: 9 },
        { ...node('notify'), trigger: 'all_done' },
      ],
      { on_failure: 'isolate', timeout_seconds: 600 },
    )
    const restored = new Registry().definitionFromSnapshot(JSON.parse(JSON.stringify(original.config)))
    expect(restored.version).toBe(original.version)
    expect(restored.config).toEqual(original.config)
    const summary = (definition: typeof original) =>
      definition.nodes.map((n) => ({
        id: n.id,
        when: n.when?.source,
        choice: n.choice && { rules: n.choice.rules.map((r) => [r.when.source, r.next]), default: n.choice.default },
        trigger: n.trigger,
        optional: n.optional,
        runTimeoutSeconds: n.runTimeoutSeconds,
        timeoutSeconds: n.timeoutSeconds,
      }))
    expect(summary(restored)).toEqual(summary(original))
    expect(summary(restored)[1]?.choice).toEqual({
      rules: [
        ['$output.approved = true', 'approve'],
        ['false', 'reject'],
      ],
      default: null,
    })
    expect([restored.onFailure, restored.timeoutSeconds]).toEqual(['isolate', 600])
  })

  it.each(['none_failed_min_one_success', 'all_success', 'all_done'])('accepts the trigger %s', (trigger) => {
    expect(load(withNode('notify', { trigger })).byId.get('notify')?.trigger).toBe(trigger)
  })

  it.each(['fail_fast', 'isolate'])('accepts on_failure %s', (mode) => {
    expect(load([...base(), node('notify')], { on_failure: mode }).onFailure).toBe(mode)
  })

  it.each([
    ['an unknown trigger', withNode('notify', { trigger: 'any_success' }), /nodes\[3\]\.trigger \(node 'notify'\)/],
    ['an unknown on_failure', [...base(), node('notify')], /on_failure/, { on_failure: 'continue' }],
    ['a string optional', withNode('approve', { optional: 'yes' }), /nodes\[1\]\.optional \(node 'approve'\)/],
    ['a zero run_timeout_seconds', withNode('approve', { run_timeout_seconds: 0 }), /run_timeout_seconds.*positive/],
    ['a negative timeout_seconds', withNode('approve', { timeout_seconds: -5 }), /timeout_seconds.*positive/],
    ['a fractional timeout_seconds', withNode('approve', { timeout_seconds: 1.5 }), /timeout_seconds.*integer/],
    ['a string timeout_seconds', withNode('approve', { timeout_seconds: '60' }), /nodes\[1\]\.timeout_seconds/],
    ['a year-long run_timeout_seconds', withNode('approve', { run_timeout_seconds: 367 * 86_400 }), /366 days/],
    [
      'a zero workflow timeout_seconds',
      [...base(), node('notify')],
      /^.*: timeout_seconds: must be a positive/,
      {
        timeout_seconds: 0,
      },
    ],
    ['an empty when', withNode('approve', { when: '' }), /nodes\[1\]\.when \(node 'approve'\): must not be empty/],
    ['a numeric when', withNode('approve', { when: 1 }), /nodes\[1\]\.when/],
    [
      'a rule without next',
      withNode('review', { choice: [{ when: 'true' }, { default: null }] }),
      /choice\[0\].*"when"/,
    ],
    [
      'an entry with both a rule and a default',
      withNode('review', { choice: [{ when: 'true', next: 'approve', default: 'reject' }] }),
      /nodes\[0\]\.choice\[0\] \(node 'review'\): must be \{"when": expression, "next": node id\} or \{"default"/,
    ],
  ])('refuses %s, naming the node and field', (_, nodes, message, extra?: Record<string, unknown>) => {
    expect(() => load(nodes, extra)).toThrow(DefinitionError)
    expect(() => load(nodes, extra)).toThrow(message)
  })

  it.each([
    ['a choice without a default', [choice[0]], /node 'review' choice needs a default as its last entry/],
    ['an empty choice', [], /node 'review' choice needs a default/],
    ['a choice with only a default', [{ default: 'reject' }], /node 'review' choice needs at least one rule/],
    [
      'a default before a rule',
      [{ default: 'reject' }, choice[0]],
      /node 'review' choice\[0\]: the default must be the last entry, and the only one/,
    ],
    [
      'two defaults',
      [choice[0], { default: 'reject' }, { default: null }],
      /node 'review' choice\[1\]: the default must be the last entry/,
    ],
    [
      'a rule whose target is not a successor',
      [{ when: 'true', next: 'notify' }, choice[1]],
      /node 'review' choice\[0\]\.next 'notify' is not one of its next_nodes/,
    ],
    [
      'a default that is not a successor',
      [choice[0], { default: 'notify' }],
      /node 'review' choice\[1\]\.default 'notify' is not one of its next_nodes/,
    ],
    [
      'a rule whose target is no node at all',
      [{ when: 'true', next: 'nowhere' }, choice[1]],
      /choice\[0\]\.next 'nowhere' is not one of its next_nodes/,
    ],
    [
      'a successor the choice never names',
      [choice[0], { default: null }],
      /node 'review' choice does not name its next node\(s\) 'reject'/,
    ],
  ])('refuses %s at load', (_, entries, message) => {
    expect(() => load(withNode('review', { choice: entries }))).toThrow(DefinitionError)
    expect(() => load(withNode('review', { choice: entries }))).toThrow(message)
  })

  it.each([
    ['when', withNode('approve', { when: '$input.amount >' }), 'approve', 'when', 'S0207', 15],
    [
      'choice[1].when',
      withNode('review', { choice: [choice[0], { when: '$output.x = = 1', next: 'reject' }, { default: null }] }),
      'review',
      'choice[1].when',
      'S0211',
      13,
    ],
  ])(
    'refuses a syntax error in %s with the node, the field and the position',
    (_, nodes, nodeId, field, code, position) => {
      let error: unknown
      try {
        load(nodes)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(DefinitionError)
      const definitionError = error as DefinitionError
      expect(definitionError.message).toMatch(`node '${nodeId}' ${field}: ${code} at position ${position}: `)
      expect(definitionError.details).toMatchObject({ workflowType: 'approval-flow', nodeId, field, code, position })
    },
  )

  it('refuses a condition over 4 KB at load', () => {
    const long = `$input.a = "${'x'.repeat(4096)}"`
    expect(() => load(withNode('approve', { when: long }))).toThrow(
      /node 'approve' when: EXPRESSION_TOO_LONG: the expression is 4109 bytes, over the limit of 4096/,
    )
  })
})

describe('conditions, choices, join rules, failure modes and deadlines in the builder', () => {
  it('produces the same definition as the equivalent JSON config', () => {
    const module = defineWorkflow({
      type: 'approval-flow',
      onFailure: 'isolate',
      timeoutSeconds: 86_400,
      nodes: {
        review: {
          next: ['approve', 'reject'],
          choice: [{ when: '$output.approved', next: 'approve' }, { default: 'reject' }],
          timeoutSeconds: 3600,
          run: () => {},
        },
        approve: {
          next: ['notify'],
          when: '$input.amount > 1000',
          optional: true,
          runTimeoutSeconds: 30,
          run: () => {},
        },
        reject: { next: ['notify'], run: () => {} },
        notify: { trigger: 'all_done', run: () => {} },
      },
    })
    const fromJson = loadDefinition({
      id: 'approval-flow',
      on_failure: 'isolate',
      timeout_seconds: 86_400,
      nodes: [
        node('review', ['approve', 'reject'], {
          choice: [{ when: '$output.approved', next: 'approve' }, { default: 'reject' }],
          timeout_seconds: 3600,
        }),
        node('approve', ['notify'], { when: '$input.amount > 1000', optional: true, run_timeout_seconds: 30 }),
        node('reject', ['notify']),
        node('notify', [], { trigger: 'all_done' }),
      ],
    })
    const fromCode = loadDefinition(module.config)
    expect(fromCode.version).toBe(fromJson.version)
    expect(fromCode.config).toEqual(fromJson.config)
    expect(fromCode.byId.get('approve')).toMatchObject({ optional: true, runTimeoutSeconds: 30 })
    expect(fromCode.byId.get('approve')?.when?.source).toBe('$input.amount > 1000')
    expect(fromCode.byId.get('review')?.choice?.default).toBe('reject')
    expect(fromCode.byId.get('notify')?.trigger).toBe('all_done')
    expect([fromCode.onFailure, fromCode.timeoutSeconds]).toEqual(['isolate', 86_400])
  })

  it('leaves out what is not set, so a workflow keeps its version', () => {
    const module = defineWorkflow({ type: 'plain', nodes: { a: { next: ['b'], run: () => {} }, b: { run: () => {} } } })
    expect(module.config).toEqual({
      id: 'plain',
      nodes: [
        { id: 'a', next_nodes: ['b'] },
        { id: 'b', next_nodes: [] },
      ],
    })
  })

  it('validates choices at registration like a JSON config', () => {
    const module = defineWorkflow({
      type: 'no-default',
      nodes: {
        a: { next: ['b'], choice: [{ when: 'true', next: 'b' }], run: () => {} },
        b: { run: () => {} },
      },
    })
    expect(() => new Registry().registerDefinition(module.config)).toThrow(/node 'a' choice needs a default/)
  })

  it('type-checks choice targets against the declared nodes', () => {
    defineWorkflow({
      type: 'typed',
      nodes: {
        a: {
          next: ['b'],
          choice: [
            // @ts-expect-error 'c' is not a node of this workflow
            { when: 'true', next: 'c' },
            // @ts-expect-error 'd' is not a node of this workflow
            { default: 'd' },
          ],
          run: () => {},
        },
        b: { run: () => {} },
      },
    })
    defineWorkflow({
      type: 'typed',
      nodes: {
        a: {
          next: ['b'],
          // @ts-expect-error a trigger outside the vocabulary
          trigger: 'any_success',
          run: () => {},
        },
        b: { run: () => {} },
      },
    })
    expect(true).toBe(true)
  })
})
