import { ItemTooLargeError, StoreError } from '../core/errors.js'

/**
 * The one place where AWS SDK errors become engine errors, for every adapter (DynamoDB, SQS, EventBridge
 * Scheduler): callers never see SDK types, and the SDK error is kept as `cause`.
 */
export type AwsService = 'dynamodb' | 'sqs' | 'scheduler'

interface AwsError {
  name?: string
  message?: string
  Code?: string
  $retryable?: unknown
  $metadata?: { httpStatusCode?: number }
}

/** Throttling and transient faults, whichever service says them. */
const RETRYABLE = new Set([
  'ThrottlingException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'KmsThrottled',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'InternalServerException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  // DynamoDB: a transaction raced another; Scheduler: a concurrent change to the same schedule.
  'TransactionConflictException',
  'ConflictException',
])

/** The resource the adapter was configured with does not exist. */
const NOT_FOUND: Record<AwsService, { names: ReadonlySet<string>; code: string; what: string }> = {
  dynamodb: { names: new Set(['ResourceNotFoundException']), code: 'TABLE_NOT_FOUND', what: 'table' },
  sqs: {
    names: new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue', 'InvalidAddress']),
    code: 'QUEUE_NOT_FOUND',
    what: 'queue',
  },
  scheduler: { names: new Set(['ResourceNotFoundException']), code: 'SCHEDULER_RESOURCE_NOT_FOUND', what: 'schedule' },
}

/** Denied access or a broken key: a deployment problem that no retry cures. */
const MISCONFIGURED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'InvalidSecurity',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'KmsAccessDenied',
  'KmsDisabled',
  'KmsInvalidKeyUsage',
  'KmsInvalidState',
  'KmsNotFound',
  'KmsOptInRequired',
])

export interface AwsErrorContext {
  service: AwsService
  operation: string
  /** The table, queue URL or schedule name the request was about. */
  resource: string
  /** Overrides whether the failure is worth retrying (a dead-letter send always is). */
  retryable?: boolean
}

const describe = (aws: AwsError): string => `${aws.name ?? 'Error'}: ${aws.message ?? ''}`.trim()

/** Classifies an AWS SDK error (or anything a client threw) into a StoreError with a stable code. */
export const classifyAwsError = (error: unknown, context: AwsErrorContext): StoreError => {
  const { service, operation, resource } = context
  const aws = (typeof error === 'object' && error !== null ? error : {}) as AwsError
  const name = aws.name ?? 'Error'
  const notFound = NOT_FOUND[service]
  if (notFound.names.has(name) || (aws.Code !== undefined && notFound.names.has(aws.Code))) {
    return new StoreError(
      `${operation}: ${notFound.what} '${resource}' does not exist (${describe(aws)})`,
      context.retryable ?? false,
      { cause: error, code: notFound.code },
    )
  }
  if (MISCONFIGURED.has(name) && service === 'sqs') {
    return new StoreError(
      `${operation}: queue '${resource}' cannot be used (${describe(aws)})`,
      context.retryable ?? false,
      {
        cause: error,
        code: 'QUEUE_MISCONFIGURED',
      },
    )
  }
  const status = aws.$metadata?.httpStatusCode
  // An error object without any HTTP status never got an answer (connection refused or reset, a timeout).
  const unanswered = status === undefined && error instanceof Error
  const retryable =
    context.retryable ??
    (RETRYABLE.has(name) || Boolean(aws.$retryable) || (status !== undefined && status >= 500) || unanswered)
  return new StoreError(`${operation} on '${resource}' failed: ${describe(aws)}`, retryable, { cause: error })
}

/**
 * DynamoDB's refusals of a request for its size: an item over 400 KB (PutItem, UpdateItem), an expression or its
 * attribute values over their limits. DynamoDB answers them as ValidationException; only the message tells them
 * from other validation failures.
 */
const SIZE_REFUSALS = [
  /item size has exceeded the maximum allowed size/i,
  /item size to update has exceeded the maximum allowed size/i,
  /expression size has exceeded the maximum allowed size/i,
  /expression attribute (names|values) size has exceeded/i,
  /exceeds? the maximum (allowed )?size/i,
]

export const isSizeRefusal = (error: unknown): boolean => {
  const aws = (typeof error === 'object' && error !== null ? error : {}) as AwsError
  return aws.name === 'ValidationException' && SIZE_REFUSALS.some((pattern) => pattern.test(aws.message ?? ''))
}

/** classifyAwsError for DynamoDB, where a size refusal is the caller's payload, not a store fault. */
export const classifyDynamoDbError = (
  error: unknown,
  context: Omit<AwsErrorContext, 'service'>,
): StoreError | ItemTooLargeError => {
  if (isSizeRefusal(error)) {
    const refusal = (error as AwsError).message ?? ''
    return new ItemTooLargeError(`${context.operation}: DynamoDB refused the write as too large: ${refusal}`, refusal, {
      cause: error,
    })
  }
  return classifyAwsError(error, { ...context, service: 'dynamodb' })
}
