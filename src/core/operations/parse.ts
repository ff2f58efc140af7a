import type { z } from 'zod'
import { summarizeIssues } from '../../schemas/zod-issues.js'
import { PayloadTooLargeError, ValidationError } from '../errors.js'
import { assertJsonValue, isJsonObject, type JsonObject, type JsonValue, jsonSizeBytes } from '../json.js'
import type { Limits } from '../limits.js'

/** Parses operation parameters; the first problem becomes a ValidationError naming its field. */
export const parseParams = <S extends z.ZodType>(schema: S, input: unknown): z.output<S> => {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const { field, message, issues } = summarizeIssues(result.error, { root: 'params', unknownKey: 'parameter' })
  throw new ValidationError(`${field}: ${message}`, field, { issues })
}

/** A JSON value within the input limit (an event's content, an input). */
export const checkedJson = (value: unknown, field: string, limits: Limits): JsonValue => {
  const json = assertJsonValue(value, field, limits)
  const size = jsonSizeBytes(json)
  if (size > limits.maxInputBytes) {
    throw new PayloadTooLargeError(
      `${field} is ${size} bytes, over the limit of ${limits.maxInputBytes}`,
      field,
      size,
      limits.maxInputBytes,
    )
  }
  return json
}

/** An instance input: a JSON object within the input limit. */
export const checkedInput = (value: unknown, field: string, limits: Limits): JsonObject => {
  if (!isJsonObject(value)) throw new ValidationError(`${field} must be a JSON object`, field)
  return checkedJson(value, field, limits) as JsonObject
}
