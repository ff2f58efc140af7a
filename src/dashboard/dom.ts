import { localTime, relative, shortTime } from './format.js'

/**
 * Small DOM helpers: every text goes in as text, never as markup (instance data is not trusted HTML), and no
 * element gets a `style` attribute (the page's CSP allows none): sizes and positions are set through CSSOM.
 */

export { duration, localTime, relative, shortTime } from './format.js'

export type Child = Node | string | number | false | null | undefined
type Attributes = Record<string, string | number | boolean | undefined | ((event: Event) => void)>

const apply = (element: Element, attributes: Attributes, children: Child[]): void => {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    if (name === 'style') throw new Error('no style attributes: the CSP refuses them (set element.style instead)')
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value)
    else if (value === true) element.setAttribute(name, '')
    else element.setAttribute(name, String(value))
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    element.append(typeof child === 'number' ? String(child) : child)
  }
}

export const h = (tag: string, attributes: Attributes = {}, ...children: Child[]): HTMLElement => {
  const element = document.createElement(tag)
  apply(element, attributes, children)
  return element
}

const SVG = 'http://www.w3.org/2000/svg'

export const svg = (tag: string, attributes: Attributes = {}, ...children: Child[]): SVGElement => {
  const element = document.createElementNS(SVG, tag) as SVGElement
  apply(element, attributes, children)
  return element
}

export const clear = (element: Element, ...children: Child[]): void => {
  element.replaceChildren()
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    element.append(typeof child === 'number' ? String(child) : child)
  }
}

/** A time in the viewer's zone with how long ago; `withMs` for timelines, where a pass's steps share a second. */
export const time = (ms: number | undefined, withMs = false): HTMLElement => {
  if (ms === undefined) return h('span', { class: 'muted' }, '—')
  return h(
    'time',
    { datetime: new Date(ms).toISOString(), title: new Date(ms).toISOString() },
    `${localTime(ms, withMs)} (${relative(ms)})`,
  )
}

/** A time in a table cell: short, with the full time and how long ago in the tooltip. */
export const cellTime = (ms: number | undefined): HTMLElement => {
  if (ms === undefined) return h('span', { class: 'muted' }, '—')
  return h(
    'time',
    {
      datetime: new Date(ms).toISOString(),
      title: `${localTime(ms)} (${relative(ms)}) — ${new Date(ms).toISOString()}`,
    },
    shortTime(ms),
  )
}

export const badge = (status: string): HTMLElement => h('span', { class: `badge status-${status}` }, status)

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

/** Parses any JSON value typed by the user (an event's content may be a string or a number). */
export const parseJson = (text: string, what: string): unknown => {
  const trimmed = text.trim()
  if (trimmed === '') return null
  try {
    return JSON.parse(trimmed)
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${(error as Error).message}`)
  }
}
