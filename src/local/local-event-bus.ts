import { createHmac } from 'node:crypto'
import { type EventPublisher, LIFECYCLE_EVENT_SOURCE, type LifecycleEvent } from '../core/lifecycle-events.js'
import type { Logger } from '../core/ports.js'
import { type PublishedDetail, publishedDetail } from '../schemas/lifecycle-events.js'

/** An event as the local bus keeps it: numbered in the order published, in EventBridge's envelope. */
export interface BusEvent {
  seq: number
  id: string
  source: string
  'detail-type': string
  time: string
  detail: PublishedDetail
}

export interface WebhookOptions {
  url: string
  /** Signs each delivery (HMAC-SHA256): `x-tickflow-signature: v1=<hex>` over `<timestamp>.<body>`. */
  secret?: string
  /** Deliveries per event before it is given up (logged); default 5, backing off 0.5 s, 1 s, 2 s, … */
  attempts?: number
  fetch?: typeof fetch
  sleep?: (ms: number) => Promise<void>
}

/** The signature header of a webhook delivery, as a receiver recomputes it to check it. */
export const webhookSignature = (secret: string, timestamp: string, body: string): string =>
  `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`

/**
 * The local runtime's event bus (README, "Lifecycle events"): it keeps the latest events for whoever watches
 * (`GET /_local/events`, the dashboard, `tickflow events --follow`) and, optionally, forwards each one to a webhook,
 * signed, with retries. It never refuses an event.
 */
export class LocalEventBus implements EventPublisher {
  readonly #kept: BusEvent[] = []
  readonly #capacity: number
  readonly #waiters = new Set<() => void>()
  readonly #sleepers = new Set<() => void>()
  readonly #deliveries = new Set<Promise<void>>()
  #seq = 0
  #stopped = false

  constructor(readonly options: { capacity?: number; webhook?: WebhookOptions; logger: Logger }) {
    this.#capacity = options.capacity ?? 1000
  }

  async publish(events: readonly LifecycleEvent[], { resent }: { resent: boolean }): Promise<{ failed: string[] }> {
    for (const event of events) {
      const detail = publishedDetail(event, resent)
      const kept: BusEvent = {
        seq: ++this.#seq,
        id: event.id,
        source: LIFECYCLE_EVENT_SOURCE,
        'detail-type': event.detailType,
        time: detail.time,
        detail,
      }
      this.#kept.push(kept)
      if (this.#kept.length > this.#capacity) this.#kept.shift()
      this.#forward(kept)
    }
    for (const wake of [...this.#waiters]) wake()
    return { failed: [] }
  }

  /** The kept events after `afterSeq`, at most `limit`, and the seq to ask after next. */
  since(afterSeq: number, limit = 500): { items: BusEvent[]; next: number } {
    const items = this.#kept.filter((event) => event.seq > afterSeq).slice(0, limit)
    return { items, next: items[items.length - 1]?.seq ?? Math.max(afterSeq, 0) }
  }

  /** As `since`, waiting up to `timeoutMs` for a first event when there is none yet. */
  async wait(afterSeq: number, timeoutMs: number, limit?: number): Promise<{ items: BusEvent[]; next: number }> {
    const now = this.since(afterSeq, limit)
    if (now.items.length || timeoutMs <= 0 || this.#stopped) return now
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#waiters.delete(done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      timer.unref?.()
      this.#waiters.add(done)
    })
    return this.since(afterSeq, limit)
  }

  #forward(event: BusEvent): void {
    const webhook = this.options.webhook
    if (!webhook || this.#stopped) return
    const delivery = this.#deliver(webhook, event).finally(() => this.#deliveries.delete(delivery))
    this.#deliveries.add(delivery)
  }

  async #deliver(webhook: WebhookOptions, event: BusEvent): Promise<void> {
    const { seq: _seq, ...envelope } = event
    const body = JSON.stringify(envelope)
    const send = webhook.fetch ?? fetch
    const sleep = webhook.sleep ?? ((ms: number) => this.#pause(ms))
    const attempts = webhook.attempts ?? 5
    let problem = ''
    for (let attempt = 1; attempt <= attempts && !this.#stopped; attempt++) {
      const timestamp = String(Math.floor(Date.now() / 1000))
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-tickflow-event-id': event.id,
        'x-tickflow-timestamp': timestamp,
        ...(webhook.secret ? { 'x-tickflow-signature': webhookSignature(webhook.secret, timestamp, body) } : {}),
      }
      try {
        const response = await send(webhook.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) })
        if (response.ok) return
        problem = `HTTP ${response.status}`
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error)
      }
      if (attempt < attempts) await sleep(500 * 2 ** (attempt - 1))
    }
    this.options.logger.log('error', 'webhook delivery given up', { eventId: event.id, url: webhook.url, problem })
  }

  /** A pause between retries that `stop` ends at once. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#sleepers.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref?.()
      this.#sleepers.add(done)
    })
  }

  /** Ends the waits and the deliveries in progress (their retries stop). */
  async stop(): Promise<void> {
    this.#stopped = true
    for (const wake of [...this.#waiters, ...this.#sleepers]) wake()
    await Promise.allSettled([...this.#deliveries])
  }
}
