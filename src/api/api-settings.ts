import type { ApiEnv } from '../schemas/env.js'
import type { CorsOptions } from './cors.js'

/** The API handler's options that come from the environment, the same for the Lambda and for `npm start`. */
export interface ApiSettings {
  cors?: CorsOptions
  cursorSecret?: string
}

export const apiSettingsFromEnv = (env: ApiEnv): ApiSettings => ({
  ...(env.CORS_ALLOWED_ORIGINS?.length
    ? {
        cors: {
          allowedOrigins: env.CORS_ALLOWED_ORIGINS,
          allowedMethods: env.CORS_ALLOWED_METHODS,
          allowedHeaders: env.CORS_ALLOWED_HEADERS,
          exposedHeaders: env.CORS_EXPOSED_HEADERS,
          maxAgeSeconds: env.CORS_MAX_AGE_SECONDS,
        },
      }
    : {}),
  ...(env.CURSOR_SECRET === undefined ? {} : { cursorSecret: env.CURSOR_SECRET }),
})
