/** How often the views read the API again (pure constants: the browser tests wait by them). */

/** The instances list, while live. */
export const LIST_REFRESH_MS = 4_000
/** The list's counts, every so many list refreshes: each costs up to ~200 RCU on a large table. */
export const COUNT_EVERY_REFRESHES = 8
/** An instance while anything in it can still move. */
export const INSTANCE_ACTIVE_REFRESH_MS = 1_500
/** An instance at rest (terminal, no node moving): a restart made elsewhere still shows. */
export const INSTANCE_RESTING_REFRESH_MS = 10_000
