import { describe, expect, it } from 'vitest'
import { deliveryOfError } from '../../src/core/consumer.js'
import {
  IdempotencyConflictError,
  IllegalStateError,
  InstanceNotFoundError,
  ItemTooLargeError,
  LeaseLostError,
  LockConflictError,
  NotConfiguredError,
  PayloadTooLargeError,
  RegistrationError,
  StoreError,
  type TickflowError,
  ValidationError,
} from '../../src/core/errors.js'

/** Retryability is a property of the failure: the queue consumer reads it (and whose fault it is) from the error. */
describe('an error', () => {
  it.each<[string, TickflowError, boolean]>([
    ['a refused parameter', new ValidationError('bad', 'context'), false],
    ['an unknown instance', new InstanceNotFoundError('wf-1'), false],
    ['an illegal state', new IllegalStateError('finished'), false],
    ['an idempotency conflict', new IdempotencyConflictError('wf-1'), false],
    ['a payload over the budget', new PayloadTooLargeError('big', 'context', 2, 1), false],
    ['an item DynamoDB refused as too large', new ItemTooLargeError('big', 'Item size'), false],
    ['a lost lease (another runner has the work)', new LeaseLostError('wf-1', 3), false],
    ['a missing worker', new RegistrationError('no worker'), false],
    ['a missing scheduler', new NotConfiguredError('no scheduler'), false],
    ['a missing table', new StoreError('no table', false, { code: 'TABLE_NOT_FOUND' }), false],
    ['a busy instance', new LockConflictError('wf-1', undefined), true],
    ['a throttled store', new StoreError('throttled', true), true],
  ])('says whether %s is retryable', (_, error, retryable) => {
    expect(error.retryable).toBe(retryable)
  })
})

describe('deliveryOfError', () => {
  it.each<{ what: string; error: unknown; kind: string }>([
    { what: 'a request refused for itself', error: new InstanceNotFoundError('wf-1'), kind: 'dead' },
    { what: 'a lost lease', error: new LeaseLostError('wf-1', 3), kind: 'dead' },
    { what: 'a busy instance', error: new LockConflictError('wf-1', undefined), kind: 'retry' },
    { what: 'a throttled store', error: new StoreError('throttled', true), kind: 'retry' },
    {
      what: 'a missing table (a deployment fixes it, not the message)',
      error: new StoreError('no table', false),
      kind: 'retry',
    },
    { what: 'a missing worker', error: new RegistrationError('no worker'), kind: 'retry' },
    { what: 'an error of no kind', error: new TypeError('boom'), kind: 'retry' },
    { what: 'a thrown string', error: 'boom', kind: 'retry' },
  ])('answers $what with $kind', ({ error, kind }) => {
    expect(deliveryOfError(error).kind).toBe(kind)
  })

  it('names a dead letter by its code, a store failure by its code and anything else by its class', () => {
    expect(deliveryOfError(new InstanceNotFoundError('wf-1'))).toEqual({
      kind: 'dead',
      reason: "INSTANCE_NOT_FOUND: workflow instance 'wf-1' does not exist",
    })
    expect(deliveryOfError(new StoreError('throttled', true))).toEqual({
      kind: 'retry',
      reason: 'STORE_UNAVAILABLE: throttled',
    })
    expect(deliveryOfError(new RegistrationError('no worker'))).toEqual({
      kind: 'retry',
      reason: 'RegistrationError: no worker',
    })
  })
})
