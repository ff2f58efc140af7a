/**
 * The engine's error hierarchy. Every error has a literal `name`, a stable `code`, the HTTP status it maps to
 * where it reaches the API, whether a retry may cure it (`retryable`), optional `details` for the caller, and a
 * chained `cause`. The HTTP status says whose fault it is (4xx: the request's, 5xx: the system's); `retryable` says
 * whether sending the same request again, unchanged, may succeed. The queue consumer and the API read both.
 */
export type ErrorDetails = Record<string, unknown>

export abstract class TickflowError extends Error {
  abstract override readonly name: string
  abstract readonly code: string
  abstract readonly httpStatus: number
  /**
   * The same request may succeed when it is tried again, unchanged (Temporal's `nonRetryable`, inverted): a busy
   * instance, a store that is throttled or briefly unavailable. False by default: a refused request stays refused,
   * and a missing table or worker needs a deployment first.
   */
  readonly retryable: boolean = false
  readonly details: ErrorDetails

  constructor(message: string, details: ErrorDetails = {}, options?: ErrorOptions) {
    super(message, options)
    this.details = details
  }

  toJSON(): { code: string; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

/** Invalid parameters: `details.field` names the offending field (dotted path). */
export class ValidationError extends TickflowError {
  override readonly name = 'ValidationError'
  readonly code = 'VALIDATION_ERROR'
  readonly httpStatus = 400
  constructor(
    message: string,
    readonly field: string,
    details: ErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, { field, ...details }, options)
  }
}

/** A workflow definition that cannot be loaded (cycle, unknown next node, reserved or duplicate id, bad limit). */
export class DefinitionError extends TickflowError {
  override readonly name = 'DefinitionError'
  readonly code = 'INVALID_DEFINITION'
  readonly httpStatus = 400
}

/** A programming error in how the engine is set up: duplicate registration, worker missing for a node. */
export class RegistrationError extends TickflowError {
  override readonly name = 'RegistrationError'
  readonly code = 'REGISTRATION_ERROR'
  readonly httpStatus = 500
}

export class InstanceNotFoundError extends TickflowError {
  override readonly name = 'InstanceNotFoundError'
  readonly code = 'INSTANCE_NOT_FOUND'
  readonly httpStatus = 404
  constructor(readonly instanceId: string) {
    super(`workflow instance '${instanceId}' does not exist`, { instanceId })
  }
}

export class WorkflowTypeNotFoundError extends TickflowError {
  override readonly name = 'WorkflowTypeNotFoundError'
  readonly code = 'WORKFLOW_TYPE_NOT_FOUND'
  readonly httpStatus = 404
  constructor(readonly workflowType: string) {
    super(`workflow type '${workflowType}' is not registered`, { workflowType })
  }
}

export class NodeNotFoundError extends TickflowError {
  override readonly name = 'NodeNotFoundError'
  readonly code = 'NODE_NOT_FOUND'
  readonly httpStatus = 404
  constructor(
    readonly workflowType: string,
    readonly nodeId: string,
  ) {
    super(`workflow type '${workflowType}' has no node '${nodeId}'`, { workflowType, nodeId })
  }
}

/** Another runner holds the instance lease; the caller may try again later. */
export class LockConflictError extends TickflowError {
  override readonly name = 'LockConflictError'
  readonly code = 'LOCK_CONFLICT'
  readonly httpStatus = 409
  /** The lease ends: the API says when (`Retry-After`). */
  override readonly retryable = true
  /** Whole seconds until the lease ends (at least 1): what a caller should wait before it tries again. */
  readonly retryAfterSeconds: number
  constructor(
    readonly instanceId: string,
    readonly leaseUntilMs: number | undefined,
    nowMs?: number,
  ) {
    const retryAfterSeconds =
      leaseUntilMs === undefined || nowMs === undefined
        ? 1
        : Math.min(900, Math.max(1, Math.ceil((leaseUntilMs - nowMs) / 1000)))
    super(`workflow instance '${instanceId}' is being worked on by another runner`, {
      instanceId,
      ...(leaseUntilMs === undefined ? {} : { leaseUntilMs }),
      retryAfterSeconds,
    })
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** Our lease was taken over (it expired and another runner acquired it): this runner must stop writing. */
export class LeaseLostError extends TickflowError {
  override readonly name = 'LeaseLostError'
  readonly code = 'LEASE_LOST'
  readonly httpStatus = 409
  constructor(
    readonly instanceId: string,
    readonly fence: number,
  ) {
    super(`lease on workflow instance '${instanceId}' (fence ${fence}) was lost; the pass stopped`, {
      instanceId,
      fence,
    })
  }
}

/** The operation is not allowed in the instance's or node's current state. */
export class IllegalStateError extends TickflowError {
  override readonly name = 'IllegalStateError'
  readonly code = 'ILLEGAL_STATE'
  readonly httpStatus = 409
}

/**
 * An attempt of a worker that ended without an outcome: its runner died, it hung past its lease, or the lease was
 * lost. It counts as a failed attempt, like an error the worker threw.
 */
export class AttemptInterruptedError extends Error {
  override readonly name = 'AttemptInterruptedError'
}

/** A create with a client-chosen id that already exists with a different request. */
export class IdempotencyConflictError extends TickflowError {
  override readonly name = 'IdempotencyConflictError'
  readonly code = 'IDEMPOTENCY_CONFLICT'
  readonly httpStatus = 409
  constructor(readonly instanceId: string) {
    super(`workflow instance '${instanceId}' already exists with a different request`, { instanceId })
  }
}

/** An external event older than the one already stored for the node. */
export class StaleEventError extends TickflowError {
  override readonly name = 'StaleEventError'
  readonly code = 'STALE_EVENT'
  readonly httpStatus = 409
  constructor(
    readonly instanceId: string,
    readonly nodeId: string,
    readonly eventTs: number,
    readonly storedEventTs: number,
  ) {
    super(`event for node '${nodeId}' has event_ts ${eventTs}, older than the stored ${storedEventTs}`, {
      instanceId,
      nodeId,
      eventTs,
      storedEventTs,
    })
  }
}

/** A context, event or instance that would exceed the size budget. Nothing is stored. */
export class PayloadTooLargeError extends TickflowError {
  override readonly name = 'PayloadTooLargeError'
  readonly code = 'PAYLOAD_TOO_LARGE'
  readonly httpStatus = 413
  constructor(
    message: string,
    readonly field: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(message, { field, sizeBytes, limitBytes })
  }
}

/**
 * The store refused a write for its size: DynamoDB's item limit (400 KB) or one of its request limits (expression
 * sizes). Nothing of that write was stored. A retry would be refused the same way, so it is never a retryable
 * StoreError: the API answers 413, and a pass fails the node whose outcome made the write too large.
 */
export class ItemTooLargeError extends TickflowError {
  override readonly name = 'ItemTooLargeError'
  readonly code = 'PAYLOAD_TOO_LARGE'
  readonly httpStatus = 413
  constructor(
    message: string,
    /** What the store said, e.g. "Item size has exceeded the maximum allowed size". */
    readonly refusal: string,
    options?: ErrorOptions,
  ) {
    super(message, { refusal }, options)
  }
}

export class ScheduleNotFoundError extends TickflowError {
  override readonly name = 'ScheduleNotFoundError'
  readonly code = 'SCHEDULE_NOT_FOUND'
  readonly httpStatus = 404
  constructor(readonly scheduleName: string) {
    super(`schedule '${scheduleName}' does not exist`, { schedule: scheduleName })
  }
}

/** A feature whose infrastructure this deployment was not given (e.g. recurring schedules without a scheduler). */
export class NotConfiguredError extends TickflowError {
  override readonly name = 'NotConfiguredError'
  readonly code = 'NOT_CONFIGURED'
  readonly httpStatus = 501
}

/**
 * Infrastructure failure of the store (throttling, service error, missing table). `retryable` is the adapter's
 * classification of the failure (throttling and 5xx are, a missing table or denied access are not); a retryable
 * one answers 503, another 500.
 */
export class StoreError extends TickflowError {
  override readonly name = 'StoreError'
  readonly code: string
  readonly httpStatus: number
  constructor(
    message: string,
    override readonly retryable: boolean,
    options?: ErrorOptions & { code?: string },
  ) {
    super(message, {}, options)
    this.code = options?.code ?? (retryable ? 'STORE_UNAVAILABLE' : 'STORE_ERROR')
    this.httpStatus = retryable ? 503 : 500
  }
}

export const isTickflowError = (error: unknown): error is TickflowError => error instanceof TickflowError
