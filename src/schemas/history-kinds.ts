import { z } from 'zod'

/** The vocabulary of an instance's history (README, "History"): every zod enum and the dashboard derive from it. */
export const HistoryKind = {
  created: 'created',
  node: 'node',
  event: 'event',
  error: 'error',
  restart: 'restart',
  cancel: 'cancel',
  parked: 'parked',
  finished: 'finished',
  /** A condition held, or a choice took a branch (its `code` says which: `when:true`, `choice[0]:approve`, …). */
  decision: 'decision',
} as const
export type HistoryKind = (typeof HistoryKind)[keyof typeof HistoryKind]
export const HISTORY_KINDS = Object.values(HistoryKind) as [HistoryKind, ...HistoryKind[]]

/** Who asked for an operation: recorded with created, event, restart and cancel entries. */
export const HistoryOrigin = {
  api: 'api',
  queue: 'queue',
  tick: 'tick',
  schedule: 'schedule',
  engine: 'engine',
} as const
export type HistoryOrigin = (typeof HistoryOrigin)[keyof typeof HistoryOrigin]
export const HISTORY_ORIGINS = Object.values(HistoryOrigin) as [HistoryOrigin, ...HistoryOrigin[]]

export const historyOriginSchema = z.enum(HISTORY_ORIGINS)
