import { describe, expect, it } from 'vitest'
import { defineWorkflow } from '../../src/core/builder.js'
import { descendantsOf, loadDefinition } from '../../src/core/definition.js'
import { DefinitionError, RegistrationError } from '../../src/core/errors.js'
import { Registry } from '../../src/core/registry.js'

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
