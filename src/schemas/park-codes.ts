import { z } from 'zod'

/**
 * Why an instance is parked: it is not terminal, nothing will run it, and it waits until someone fixes the cause and
 * restarts it. One vocabulary: the engine parks with these codes, the API documents them (OpenAPI), and the dashboard
 * and the CLI read them from the API's answers.
 */
export const ParkCode = {
  /** A node's worker is not registered in this deployment. */
  workerMissing: 'WORKER_MISSING',
  /** The instance's definition version is neither registered here nor stored as a snapshot. */
  definitionMissing: 'DEFINITION_MISSING',
  /** The store refused the instance's write for its size, with no node outcome to fail for it. */
  itemTooLarge: 'ITEM_TOO_LARGE',
  /** No node of the instance can run and none waits: nothing would ever advance it. */
  nothingRunnable: 'NOTHING_RUNNABLE',
} as const
export type ParkCode = (typeof ParkCode)[keyof typeof ParkCode]
export const PARK_CODES = Object.values(ParkCode) as [ParkCode, ...ParkCode[]]

export const parkCodeSchema = z.enum(PARK_CODES).meta({
  description:
    'why the instance is parked: WORKER_MISSING (a worker is not deployed), DEFINITION_MISSING (its definition ' +
    'version is unknown here), ITEM_TOO_LARGE (the store refused its write for its size), NOTHING_RUNNABLE (no ' +
    'node can run and none waits)',
})
