/**
 * `tickflow/testing`: the engine on the in-memory store with a virtual clock, for testing workflows in milliseconds
 * (README, "Testing your workflows").
 */
export type { CallbackCompletion } from '../core/callbacks.js'
export {
  createTestEngine,
  type PublishedEvent,
  type StartOptions,
  type TestEngine,
  type TestEngineOptions,
} from './test-engine.js'
export { durationMs, VirtualClock } from './virtual-clock.js'
