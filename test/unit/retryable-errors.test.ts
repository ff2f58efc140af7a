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
  it.each<[string, unknown, string]>([
    ['a request refused for itself', new InstanceNotFoundError('wf-1'), 'dead'],
    ['a lost lease', new LeaseLostError('wf-1', 3), 'dead'],
    ['a busy instance', new LockConflictError('wf-1', undefined), 'retry'],
    ['a throttled store', new StoreError('throttled', true), 'retry'],
    ['a missing table (a deployment fixes it, not the message)', new StoreError('no table', false), 'retry'],
    ['a missing worker', new RegistrationError('no worker'), 'retry'],
    ['an error of no kind', new TypeError('boom'), 'retry'],
    ['a thrown string', 'boom', 'retry'],
  ])('answers %s with %s', (_, error, kind) => {
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
