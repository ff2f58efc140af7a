import { ApiRefusal, type WorkflowType } from './api-client.js'
import { type Child, clear, h } from './dom.js'

/** Pieces every view uses: panels, fields, messages, and actions whose outcome shows next to their control. */

export const app = {
  types: [] as WorkflowType[],
  deadLetters: false,
  /** The local runtime's lifecycle events can be watched (`GET /_local/events`). */
  events: false,
  /** Counts the views drawn: a view started before the current one must stop what it starts. */
  generation: 0,
  /** Stops what the current view runs (timers): called before another view is drawn. */
  leave: [] as (() => void)[],
}

/**
 * What a view calls to register something to stop when it is left. Taken when the view starts: a view whose address
 * was left while it was still reading stops what it starts at once.
 */
export const leaving = (): ((stop: () => void) => void) => {
  const generation = app.generation
  return (stop) => {
    if (app.generation === generation) app.leave.push(stop)
    else stop()
  }
}

export const message = (kind: 'error' | 'ok' | 'info' | 'warn', text: Child, ...more: Child[]): HTMLElement =>
  h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text, ...more)

export const describeError = (error: unknown): string =>
  error instanceof ApiRefusal ? error.describe() : error instanceof Error ? error.message : String(error)

export const panel = (title: string, ...children: Child[]): HTMLElement =>
  h('section', { class: 'panel', 'data-panel': title.toLowerCase() }, h('h2', {}, title), ...children)

export const field = (label: string, input: HTMLElement, hint?: string): HTMLElement =>
  h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'muted' }, hint) : '')

/** Name–value pairs, each pair kept together when the list wraps. */
export const factList = (facts: readonly [string, Node | string][], compact = false): HTMLElement =>
  h(
    'dl',
    { class: compact ? 'facts compact' : 'facts' },
    ...facts.map(([name, value]) => h('div', {}, h('dt', {}, name), h('dd', {}, value))),
  )

export const typeSelect = (name: string, value: string | undefined, allowAny: boolean): HTMLSelectElement =>
  h(
    'select',
    { name },
    ...(allowAny ? [h('option', { value: '' }, 'any type')] : []),
    ...app.types.map((type) => h('option', { value: type.type, selected: type.type === value }, type.type)),
  ) as HTMLSelectElement

// ---- outcomes of actions --------------------------------------------------------------------------------------

interface Outcome {
  kind: 'ok' | 'error' | 'info' | 'warn'
  text: string
  /** Details, one per line: a bulk action's refusals, one per instance. */
  lines?: string[]
  /** What the outcome is about, as it was: an error is stale once this changes (the status it refused). */
  state: string
  untilMs: number
}

/** How long a success stays: it says what just happened, and soon the page itself shows it. */
const OK_MS = 8_000
/** An error stays until what it is about changes, or this long. */
const ERROR_MS = 60_000

const outcomes = new Map<string, Outcome>()

const fresh = (key: string, state: string): Outcome | undefined => {
  const outcome = outcomes.get(key)
  if (!outcome) return undefined
  const stale = Date.now() > outcome.untilMs || (outcome.kind === 'error' && outcome.state !== state)
  if (stale) outcomes.delete(key)
  return stale ? undefined : outcome
}

const draw = (slot: HTMLElement, outcome: Outcome | undefined) => {
  if (!outcome) {
    clear(slot)
    return
  }
  clear(
    slot,
    message(
      outcome.kind,
      outcome.text,
      outcome.lines?.length ? h('ul', {}, ...outcome.lines.map((line) => h('li', {}, line))) : '',
    ),
  )
}

/**
 * Where an action's outcome shows: next to its control. It keeps showing across redraws of its view while it is
 * fresh — a success for a few seconds, an error until what it refused changes — and then goes.
 */
export const outcomeSlot = (key: string, state: string): HTMLElement => {
  const slot = h('div', { class: 'outcome', 'data-outcome': key, 'aria-live': 'polite' })
  draw(slot, fresh(key, state))
  return slot
}

const show = (key: string, outcome: Outcome): void => {
  outcomes.set(key, outcome)
  for (const slot of document.querySelectorAll<HTMLElement>('[data-outcome]')) {
    if (slot.dataset.outcome === key) draw(slot, outcome)
  }
  if (outcome.kind === 'info') return
  window.setTimeout(
    () => {
      if (outcomes.get(key) !== outcome) return
      outcomes.delete(key)
      for (const slot of document.querySelectorAll<HTMLElement>('[data-outcome]')) {
        if (slot.dataset.outcome === key) clear(slot)
      }
    },
    outcome.untilMs - Date.now() + 50,
  )
}

export interface ActionSpec {
  /** Where the outcome shows (an `outcomeSlot` key). */
  key: string
  /** What the outcome is about, now (e.g. the instance's status). */
  state: string
  /** Asked first; the action runs only on yes. */
  confirm?: string
  run: () => Promise<string | { kind: 'ok' | 'warn' | 'error'; text: string; lines: string[] }>
  /** After a success (typically: read the instance again). */
  after?: () => void
}

/** Runs an action and shows its outcome in its slot; a refusal shows as the API gave it (status, code, message). */
export const runAction = async (spec: ActionSpec): Promise<boolean> => {
  if (spec.confirm !== undefined && !window.confirm(spec.confirm)) return false
  show(spec.key, { kind: 'info', text: 'working…', state: spec.state, untilMs: Date.now() + ERROR_MS })
  try {
    const result = await spec.run()
    const outcome = typeof result === 'string' ? { kind: 'ok' as const, text: result } : result
    // A partial success stays like an error: it lists what was refused.
    const keep = outcome.kind === 'ok' ? OK_MS : ERROR_MS
    show(spec.key, { ...outcome, state: spec.state, untilMs: Date.now() + keep })
    spec.after?.()
    return outcome.kind !== 'error'
  } catch (error) {
    show(spec.key, { kind: 'error', text: describeError(error), state: spec.state, untilMs: Date.now() + ERROR_MS })
    return false
  }
}

/** A button that runs an action, with its outcome right after it. */
export const actionButton = (
  label: string,
  spec: ActionSpec,
  attributes: Record<string, string | boolean | undefined> = {},
): HTMLElement =>
  h(
    'div',
    { class: 'action-row' },
    h('button', { type: 'button', ...attributes, onclick: () => void runAction(spec) }, label),
    outcomeSlot(spec.key, spec.state),
  )
