import {
  putScheduleBodySchema,
  schedulePathSchema,
  scheduleSchema,
  schedulesResponseSchema,
} from '../../schemas/http-api.js'
import { json } from '../http.js'
import { type Route, route } from '../router.js'
import { BAD_REQUEST, BODY_ERRORS, NO_SCHEDULER, SCHEDULE_NOT_FOUND, TYPE_NOT_FOUND } from './route-answers.js'
import type { ApiDeps } from './route-deps.js'

/** `/schedules…`: the recurring schedules that start workflow instances. */
export const scheduleRoutes = ({ engine }: ApiDeps): Route[] => [
  route({
    method: 'POST',
    path: '/schedules',
    tag: 'schedules',
    operationId: 'putSchedule',
    summary: 'Create or replace a recurring schedule that starts a workflow type on a cron or rate expression',
    body: putScheduleBodySchema,
    responses: {
      200: { description: 'stored', schema: scheduleSchema },
      ...BODY_ERRORS,
      404: TYPE_NOT_FOUND,
      501: NO_SCHEDULER,
    },
    handle: async ({ body }) => json(200, await engine.putSchedule(body)),
  }),
  route({
    method: 'GET',
    path: '/schedules',
    tag: 'schedules',
    operationId: 'listSchedules',
    summary: 'The recurring schedules',
    responses: {
      200: { description: 'schedules', schema: schedulesResponseSchema },
      501: NO_SCHEDULER,
    },
    handle: async () => json(200, { items: await engine.listSchedules() }),
  }),
  route({
    method: 'GET',
    path: '/schedules/{name}',
    tag: 'schedules',
    operationId: 'getSchedule',
    summary: 'One recurring schedule',
    params: schedulePathSchema,
    responses: {
      200: { description: 'the schedule', schema: scheduleSchema },
      400: BAD_REQUEST,
      404: SCHEDULE_NOT_FOUND,
      501: NO_SCHEDULER,
    },
    handle: async ({ params }) => json(200, await engine.getSchedule(params.name)),
  }),
  route({
    method: 'DELETE',
    path: '/schedules/{name}',
    tag: 'schedules',
    operationId: 'deleteSchedule',
    summary: 'Delete a recurring schedule (instances it started are not touched)',
    params: schedulePathSchema,
    responses: {
      204: { description: 'deleted' },
      400: BAD_REQUEST,
      404: SCHEDULE_NOT_FOUND,
      501: NO_SCHEDULER,
    },
    handle: async ({ params }) => {
      await engine.deleteSchedule(params.name)
      return { statusCode: 204, headers: {}, body: '' }
    },
  }),
]
