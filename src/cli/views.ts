import type { HistoryEntry, InstanceDetail, InstanceSummary, Schedule } from '../schemas/http-api.js'
import { fields, table, time } from './format.js'

/** The text the CLI prints for the API's answers (with `--json` it prints the answers themselves). */

export const instanceTable = (items: readonly InstanceSummary[]): string =>
  items.length === 0
    ? 'no instances'
    : table(
        ['ID', 'TYPE', 'STATUS', 'BUSINESS ID', 'CREATED'],
        items.map((item) => [item.id, item.workflowType, item.status, item.businessId ?? '-', time(item.createdAtMs)]),
      )

/** A node's status with what explains it: why it was skipped, the branch its choice took, an optional failure. */
const nodeStatus = (node: InstanceDetail['nodes'][number]): string => {
  if (node.status === 'skipped' && node.skipReason) return `skipped (${node.skipReason})`
  if (node.status === 'failed' && node.optional) return 'failed (optional)'
  if (node.chosen !== undefined) return `${node.status} → ${node.chosen ?? 'no branch'}`
  return node.status
}

export const instanceText = (instance: InstanceDetail): string =>
  [
    fields([
      ['instance', instance.id],
      ['type', instance.workflowType],
      ['status', instance.status],
      ['business id', instance.businessId],
      ['created', time(instance.createdAtMs)],
      ['updated', time(instance.updatedAtMs)],
      ['due', instance.dueAtMs === undefined ? undefined : time(instance.dueAtMs)],
      ['times out', instance.deadlineAtMs === undefined ? undefined : time(instance.deadlineAtMs)],
      [
        'failure',
        instance.failure &&
          `${instance.failure.nodeId === undefined ? '' : `${instance.failure.nodeId}: `}${instance.failure.reason}`,
      ],
      ['lease', instance.lease ? `${instance.lease.owner} until ${time(instance.lease.untilMs)}` : undefined],
    ]),
    '',
    table(
      ['NODE', 'STATUS', 'FAILS', 'ATTEMPT', 'UPDATED', 'NEXT ATTEMPT', 'LAST ERROR'],
      instance.nodes.map((node) => {
        const system = node.context?.system as { last_error?: unknown } | undefined
        const lastError = typeof system?.last_error === 'string' ? system.last_error.slice(0, 60) : ''
        return [
          node.id,
          nodeStatus(node),
          String(node.failCount),
          String(node.attempt),
          time(node.updatedAtMs),
          time(node.nextAttemptAtMs),
          lastError,
        ]
      }),
    ),
  ].join('\n')

export const SCHEDULE_HEADERS = ['NAME', 'EXPRESSION', 'TIME ZONE', 'TYPE', 'ENABLED', 'NEXT FIRING']

export const scheduleRow = (schedule: Schedule): string[] => [
  schedule.name,
  schedule.expression,
  schedule.timezone ?? 'UTC',
  schedule.workflowType,
  schedule.enabled ? 'yes' : 'no',
  schedule.nextFireAtMs === undefined ? '-' : time(schedule.nextFireAtMs),
]

export const scheduleText = (schedule: Schedule): string =>
  fields([
    ['schedule', schedule.name],
    ['expression', schedule.expression],
    ['time zone', schedule.timezone ?? 'UTC'],
    ['starts', schedule.workflowType],
    ['context', JSON.stringify(schedule.context)],
    ['business id', schedule.businessId],
    ['enabled', schedule.enabled ? 'yes' : 'no'],
    ['description', schedule.description],
    ['next firing', schedule.nextFireAtMs === undefined ? '-' : time(schedule.nextFireAtMs)],
  ])

export const HISTORY_HEADERS = ['SEQ', 'TIME', 'KIND', 'NODE', 'DETAIL']

/** What an entry says besides its kind and node, on one line. */
export const historyDetail = (entry: HistoryEntry): string =>
  [
    entry.status,
    entry.attempt !== undefined && entry.attempt !== 1 ? `attempt ${entry.attempt}` : undefined,
    entry.durationMs !== undefined ? `${(entry.durationMs / 1000).toFixed(1)} s` : undefined,
    entry.eventTs !== undefined ? `eventTs ${entry.eventTs}` : undefined,
    entry.superseded ? 'superseded' : undefined,
    entry.code,
    entry.errorClass !== undefined ? `${entry.errorClass}: ${entry.message ?? ''}` : entry.message,
    entry.origin !== undefined ? `origin ${entry.origin}` : undefined,
  ]
    .filter((part) => part !== undefined && part !== '')
    .join(', ') || '-'
