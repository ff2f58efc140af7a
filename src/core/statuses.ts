/** The statuses (defined once in `src/schemas/statuses.ts`) and the engine's rules on them. */
export * from '../schemas/statuses.js'
