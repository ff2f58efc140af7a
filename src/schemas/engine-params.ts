import { z } from 'zod'
import { historyOriginSchema } from './history-kinds.js'
import { INSTANCE_STATUSES } from './statuses.js'
import { idSchema } from './workflow-config.js'

/** Instance ids: generated ones are ULIDs; client-chosen ones may use a few more characters. */
export const instanceIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
    'must be 1-128 letters, digits or _ . : - and start with a letter or digit',
  )
  // `/workflows/count` is a route of its own: an instance of that id could not be read at its URL.
  .refine((id) => id !== 'count', 'is reserved')

export const businessIdSchema = z.string().min(1).max(256)
export const instanceStatusSchema = z.enum(INSTANCE_STATUSES)
const epochMsSchema = z.number().int().min(0).max(8_640_000_000_000_000)

/** Time left to the caller (a Lambda's `getRemainingTimeInMillis()`): the lease and the pass are sized on it. */
const remainingTimeMsSchema = z.number().int().min(1).max(3_600_000)

/** Who asks (recorded in the instance's history); default `engine`. */
const originField = { origin: historyOriginSchema.optional() }

export const createParamsSchema = z.strictObject({
  workflowType: idSchema,
  businessId: businessIdSchema.optional(),
  context: z.unknown().optional(),
  run: z.boolean().optional(),
  id: instanceIdSchema.optional(),
  /** A delayed start: the instance stays `init` until this time, whatever arrives. Ignored with `run`. */
  startAtMs: epochMsSchema.optional(),
  remainingTimeMs: remainingTimeMsSchema.optional(),
  ...originField,
})

export const runParamsSchema = z.strictObject({
  instanceId: instanceIdSchema,
  mode: z.enum(['explicit', 'due']).optional(),
  remainingTimeMs: remainingTimeMsSchema.optional(),
})

export const addNodeEventParamsSchema = z.strictObject({
  instanceId: instanceIdSchema,
  nodeId: idSchema,
  /** Seconds; versions the event. */
  eventTs: z.number().int().min(0).max(253_402_300_799),
  content: z.unknown().optional(),
  ...originField,
})

export const restartNodeParamsSchema = z.strictObject({
  instanceId: instanceIdSchema,
  nodeId: idSchema,
  force: z.boolean().optional(),
  resetCounters: z.boolean().optional(),
  run: z.boolean().optional(),
  remainingTimeMs: remainingTimeMsSchema.optional(),
  ...originField,
})

export const restartInstanceParamsSchema = z.strictObject({
  instanceId: instanceIdSchema,
  run: z.boolean().optional(),
  context: z.unknown().optional(),
  resetCounters: z.boolean().optional(),
  remainingTimeMs: remainingTimeMsSchema.optional(),
  ...originField,
})

export const cancelParamsSchema = z.strictObject({
  instanceId: instanceIdSchema,
  remainingTimeMs: remainingTimeMsSchema.optional(),
  ...originField,
})

/** The filters a list and a count share. */
const filterFields = {
  workflowType: idSchema.optional(),
  status: z
    .union([instanceStatusSchema, z.array(instanceStatusSchema).min(1).max(INSTANCE_STATUSES.length)])
    .optional(),
  businessId: businessIdSchema.optional(),
  createdFromMs: epochMsSchema.optional(),
  createdToMs: epochMsSchema.optional(),
  /** Only instances parked with a reason (true), or only the others (false). */
  parked: z.boolean().optional(),
}

const orderedRange = (params: { createdFromMs?: number | undefined; createdToMs?: number | undefined }): boolean =>
  params.createdFromMs === undefined || params.createdToMs === undefined || params.createdFromMs <= params.createdToMs
const RANGE_MESSAGE = { message: 'createdFromMs must not be after createdToMs', path: ['createdFromMs'] }

export const listParamsSchema = z
  .strictObject({
    ...filterFields,
    limit: z.number().int().min(1).max(1000).optional(),
    cursor: z.string().min(1).max(4096).optional(),
    order: z.enum(['asc', 'desc']).optional(),
  })
  .refine(orderedRange, RANGE_MESSAGE)

export const countParamsSchema = z.strictObject(filterFields).refine(orderedRange, RANGE_MESSAGE)

export type CreateParams = z.input<typeof createParamsSchema>
export type RunParams = z.input<typeof runParamsSchema>
export type AddNodeEventParams = z.input<typeof addNodeEventParamsSchema>
export type RestartNodeParams = z.input<typeof restartNodeParamsSchema>
export type RestartInstanceParams = z.input<typeof restartInstanceParamsSchema>
export type CancelParams = z.input<typeof cancelParamsSchema>
export type ListParams = z.input<typeof listParamsSchema>
export type CountParams = z.input<typeof countParamsSchema>

/** Schedule names become part of an EventBridge Scheduler name (64 characters with tickflow's prefix). */
export const scheduleNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$/, 'must be 1-50 letters, digits or _ . - and start with a letter or digit')

export const putScheduleParamsSchema = z.strictObject({
  name: scheduleNameSchema,
  expression: z.string().min(6).max(256),
  timezone: z.string().min(1).max(64).optional(),
  workflowType: idSchema,
  context: z.unknown().optional(),
  businessId: businessIdSchema.optional(),
  enabled: z.boolean().optional(),
  description: z.string().max(512).optional(),
})

export type PutScheduleParams = z.input<typeof putScheduleParamsSchema>
