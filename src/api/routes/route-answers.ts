import { z } from 'zod'
import { errorResponseSchema } from '../../schemas/http-api.js'
import type { ResponseSpec } from '../router.js'

/** The answers several routes declare (and the OpenAPI document describes), written once. */

/** 200 with a script or a style sheet: the files of the docs page and of the dashboard. */
export const STATIC_FILE: ResponseSpec = {
  description: 'the file',
  contentType: 'text/javascript',
  schema: z.string(),
  alternatives: { 'text/css': z.string() },
}

export const errorAnswer = (description: string): ResponseSpec => ({ description, schema: errorResponseSchema })

/** An error answer described once, under `components.responses`, and referred to by every route that gives it. */
const shared = (name: string, description: string): ResponseSpec => ({ name, description, schema: errorResponseSchema })

export const BAD_REQUEST = shared('BadRequest', 'invalid request: `error.details.field` names the field')
const TOO_LARGE = shared('PayloadTooLarge', 'the body or a context is too large')
const NOT_JSON = shared('UnsupportedMediaType', 'the body is not application/json')
export const INSTANCE_NOT_FOUND = shared('InstanceNotFound', 'unknown instance')
export const TYPE_NOT_FOUND = shared('WorkflowTypeNotFound', 'unknown workflow type')
export const SCHEDULE_NOT_FOUND = shared('ScheduleNotFound', 'unknown schedule')
export const NO_SCHEDULER = shared('NoScheduler', 'this deployment has no scheduler')
const INSTANCE_CONFLICT = shared(
  'InstanceConflict',
  'the instance is locked by another runner, or the operation is not allowed in its state',
)

/** What a request with a body may be refused for, before any route sees it. */
export const BODY_ERRORS: Record<number, ResponseSpec> = { 400: BAD_REQUEST, 413: TOO_LARGE, 415: NOT_JSON }
export const INSTANCE_READ_ERRORS: Record<number, ResponseSpec> = { 400: BAD_REQUEST, 404: INSTANCE_NOT_FOUND }
export const INSTANCE_WRITE_ERRORS: Record<number, ResponseSpec> = {
  ...BODY_ERRORS,
  404: INSTANCE_NOT_FOUND,
  409: INSTANCE_CONFLICT,
}
