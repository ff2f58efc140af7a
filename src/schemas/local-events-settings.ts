import { z } from 'zod'

/** The settings of callbacks and events for `npm start`, from its environment (README, "Every setting"). */
export const localEventsEnvSchema = z.object({
  CALLBACK_SECRET: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.string().min(32, 'must be at least 32 characters').optional(),
  ),
  TICKFLOW_WEBHOOK_URL: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  ),
  TICKFLOW_WEBHOOK_SECRET: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z.string().min(16, 'must be at least 16 characters').optional(),
  ),
  NODE_EVENT_TYPES: z.preprocess(
    (value) => (value === '' ? undefined : value),
    z
      .string()
      .regex(/^(\*|[A-Za-z_][\w.-]{0,63}(,[A-Za-z_][\w.-]{0,63})*)$/, 'must be * or comma-separated workflow types')
      .optional(),
  ),
})
export type LocalEventsEnv = z.infer<typeof localEventsEnvSchema>
