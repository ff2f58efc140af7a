import { type EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge'
import { type EventPublisher, LIFECYCLE_EVENT_SOURCE, type LifecycleEvent } from '../../core/lifecycle-events.js'
import { publishedDetail } from '../../schemas/lifecycle-events.js'

/** PutEvents takes at most 10 entries (and 256 KB) per request; an event's detail is a few hundred bytes. */
const ENTRIES_PER_REQUEST = 10

export interface EventBridgePublisherOptions {
  client: EventBridgeClient
  /** The bus: its name or ARN. */
  eventBusName: string
  /** `source` of every event (default `tickflow`). */
  source?: string
}

/** The entry of one lifecycle event: `source`, `detail-type`, the instance as a resource-like id, and the detail. */
export const putEventsEntry = (
  event: LifecycleEvent,
  options: { eventBusName: string; source: string; resent: boolean },
): PutEventsRequestEntry => ({
  EventBusName: options.eventBusName,
  Source: options.source,
  DetailType: event.detailType,
  Time: new Date(event.detail.timeMs),
  Detail: JSON.stringify(publishedDetail(event, options.resent)),
})

/**
 * Lifecycle events to an EventBridge bus with PutEvents, ten a request. An entry EventBridge refuses (throttled,
 * an internal failure) is reported as failed: it stays in the outbox and is published again later, marked resent.
 * A request that fails as a whole throws (the caller keeps every event of it).
 */
export class EventBridgePublisher implements EventPublisher {
  readonly #client: EventBridgeClient
  readonly #bus: string
  readonly #source: string

  constructor(options: EventBridgePublisherOptions) {
    this.#client = options.client
    this.#bus = options.eventBusName
    this.#source = options.source ?? LIFECYCLE_EVENT_SOURCE
  }

  async publish(events: readonly LifecycleEvent[], { resent }: { resent: boolean }): Promise<{ failed: string[] }> {
    const failed: string[] = []
    for (let start = 0; start < events.length; start += ENTRIES_PER_REQUEST) {
      const batch = events.slice(start, start + ENTRIES_PER_REQUEST)
      const options = { eventBusName: this.#bus, source: this.#source, resent }
      const result = await this.#client.send(
        new PutEventsCommand({ Entries: batch.map((event) => putEventsEntry(event, options)) }),
      )
      if (!result.FailedEntryCount) continue
      // The answer's entries are in the order of the request's: a failed one carries an ErrorCode.
      result.Entries?.forEach((entry, index) => {
        const event = batch[index]
        if (entry.ErrorCode && event) failed.push(event.id)
      })
    }
    return { failed }
  }
}
