import { z } from 'zod'
import { callbackAnswerSchema, callbackCompletionSchema, callbackTokenSchema } from '../../schemas/callbacks.js'
import { json } from '../http.js'
import { type Route, route } from '../router.js'
import { BODY_ERRORS, errorAnswer } from './route-answers.js'
import type { ApiDeps } from './route-deps.js'

/**
 * `POST /callbacks/{token}` (README, "Callbacks"): the one route a third party calls with no credential but the
 * token. It is a route group of its own — public on every deployment, throttled on its own (see infra/) — and it
 * answers in the same time whatever is wrong with a token that does not open: 404, whether it is forged, tampered
 * with, or another deployment's.
 */

/** Where the route group starts: deployments route it (and only it) without authorisation. */
export const CALLBACK_PATH_PREFIX = '/callbacks/'

export const callbackPathSchema = z.strictObject({ token: callbackTokenSchema })

export const callbackRoutes = (deps: ApiDeps): Route[] => [completeCallbackRoute(deps)]

const completeCallbackRoute = ({ engine }: ApiDeps) =>
  route({
    method: 'POST',
    path: '/callbacks/{token}',
    tag: 'callbacks',
    operationId: 'completeCallback',
    summary: 'Complete, fail or keep alive the node a callback token names; the token is the only credential',
    params: callbackPathSchema,
    body: callbackCompletionSchema,
    responses: {
      202: { description: 'stored; the same completion again answers the same', schema: callbackAnswerSchema },
      ...BODY_ERRORS,
      404: errorAnswer('no such callback: the token is unknown, altered, or of another deployment'),
      409: errorAnswer('the callback was completed differently already'),
      410: errorAnswer('the callback can no longer be completed: an older attempt, or the node or instance finished'),
    },
    handle: async ({ params, body }) => {
      try {
        return json(202, await engine.completeCallback(params.token, body))
      } catch (error) {
        // The engine names the completion's fields (`output.x`); the caller sent them in the body.
        const details = (error as { details?: { field?: unknown } }).details
        if (typeof details?.field === 'string' && !details.field.startsWith('body')) {
          details.field = `body.${details.field}`
        }
        throw error
      }
    },
  })
