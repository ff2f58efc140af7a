/** Small DOM helpers: every text goes in as text, never as markup (instance data is not trusted HTML). */

type Child = Node | string | number | false | null | undefined
type Attributes = Record<string, string | number | boolean | undefined | ((event: Event) => void)>

export const h = (tag: string, attributes: Attributes = {}, ...children: Child[]): HTMLElement => {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value)
    else if (value === true) element.setAttribute(name, '')
    else element.setAttribute(name, String(value))
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    element.append(typeof child === 'number' ? String(child) : child)
  }
  return element
}

export const clear = (element: Element, ...children: Child[]): void => {
  element.replaceChildren()
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    element.append(typeof child === 'number' ? String(child) : child)
  }
}

const pad = (n: number): string => String(n).padStart(2, '0')

/** `2026-12-01 16:40:12` in the viewer's time zone. */
export const localTime = (ms: number, withMs = false): string => {
  const d = new Date(ms)
  const seconds = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return withMs ? `${seconds}.${String(d.getMilliseconds()).padStart(3, '0')}` : seconds
}

/** `in 4 s`, `3 min ago`, `2 h ago`, `5 d ago`. */
export const relative = (ms: number, nowMs: number = Date.now()): string => {
  const delta = ms - nowMs
  const abs = Math.abs(delta)
  const text =
    abs < 1_000
      ? 'now'
      : abs < 60_000
        ? `${Math.round(abs / 1000)} s`
        : abs < 3_600_000
          ? `${Math.round(abs / 60_000)} min`
          : abs < 86_400_000
            ? `${Math.round(abs / 3_600_000)} h`
            : `${Math.round(abs / 86_400_000)} d`
  if (text === 'now') return text
  return delta > 0 ? `in ${text}` : `${text} ago`
}

/** A time as people read it, with its exact value (ISO, UTC) in the tooltip. */
/** A time in the viewer's zone with how long ago; `withMs` for timelines, where a pass's steps share a second. */
export const time = (ms: number | undefined, withMs = false): HTMLElement => {
  if (ms === undefined) return h('span', { class: 'muted' }, '—')
  return h(
    'time',
    { datetime: new Date(ms).toISOString(), title: new Date(ms).toISOString() },
    `${localTime(ms, withMs)} (${relative(ms)})`,
  )
}

export const badge = (status: string): HTMLElement => h('span', { class: `badge status-${status}` }, status)

export const json = (value: unknown): HTMLElement => h('pre', { class: 'json' }, JSON.stringify(value, null, 2))

/** Parses a JSON object typed by the user; the message names what is wrong. */
export const parseJsonObject = (text: string, what: string): Record<string, unknown> => {
  const trimmed = text.trim()
  if (trimmed === '') return {}
  let value: unknown
  try {
    value = JSON.parse(trimmed)
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be an object`)
  return value as Record<string, unknown>
}
