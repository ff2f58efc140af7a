import { clear, h } from './dom.js'

/**
 * JSON as a tree: objects and arrays fold (native details/summary, so keyboard and screen readers work), values are
 * coloured by type, and a button copies the whole value. Built from text nodes only: nothing in the data is markup.
 */

/** Deeper levels start folded; an operator opens what they look for. */
const OPEN_DEPTH = 2
/** Items of one array or object drawn before "… N more". */
const MAX_ITEMS = 200
/** Characters of a string drawn before it is cut (the copy has it whole). */
const MAX_STRING = 2_000

const scalar = (value: unknown): HTMLElement => {
  if (value === null) return h('span', { class: 'j-null' }, 'null')
  switch (typeof value) {
    case 'string': {
      const text = JSON.stringify(value.length > MAX_STRING ? value.slice(0, MAX_STRING) : value)
      return h(
        'span',
        { class: 'j-string' },
        value.length > MAX_STRING ? `${text.slice(0, -1)}…" (${value.length} characters)` : text,
      )
    }
    case 'number':
      return h('span', { class: 'j-number' }, String(value))
    case 'boolean':
      return h('span', { class: 'j-boolean' }, String(value))
    default:
      return h('span', { class: 'j-null' }, String(value))
  }
}

const keyLabel = (key: string | number | undefined): (HTMLElement | string)[] =>
  key === undefined ? [] : typeof key === 'number' ? [] : [h('span', { class: 'j-key' }, JSON.stringify(key)), ': ']

const tree = (value: unknown, key: string | number | undefined, depth: number, last: boolean): HTMLElement => {
  const comma = last ? '' : ','
  if (typeof value !== 'object' || value === null) {
    return h('div', { class: 'j-line' }, ...keyLabel(key), scalar(value), comma)
  }
  const array = Array.isArray(value)
  const entries: [string | number, unknown][] = array
    ? (value as unknown[]).map((item, index) => [index, item])
    : Object.entries(value as Record<string, unknown>)
  const [open, close] = array ? ['[', ']'] : ['{', '}']
  if (entries.length === 0) return h('div', { class: 'j-line' }, ...keyLabel(key), `${open}${close}${comma}`)
  const shown = entries.slice(0, MAX_ITEMS)
  const details = h(
    'details',
    { class: 'j-node', open: depth < OPEN_DEPTH },
    h(
      'summary',
      {},
      ...keyLabel(key),
      open,
      h(
        'span',
        { class: 'j-count' },
        ` ${entries.length} ${array ? 'item' : 'key'}${entries.length === 1 ? '' : 's'} `,
      ),
      h('span', { class: 'j-closed' }, `${close}${comma}`),
    ),
    h(
      'div',
      { class: 'j-children' },
      ...shown.map(([childKey, child], index) =>
        tree(child, childKey, depth + 1, index === shown.length - 1 && entries.length <= MAX_ITEMS),
      ),
      entries.length > MAX_ITEMS ? h('div', { class: 'j-line muted' }, `… ${entries.length - MAX_ITEMS} more`) : '',
    ),
    h('div', { class: 'j-line j-close' }, `${close}${comma}`),
  )
  return details
}

const copy = async (text: string): Promise<void> => {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text)
    return
  }
  // Over plain HTTP on another name than localhost, the clipboard API is off: the old way still works.
  const area = h('textarea', { class: 'offscreen', readonly: true }) as HTMLTextAreaElement
  area.value = text
  document.body.append(area)
  area.select()
  const copied = document.execCommand('copy')
  area.remove()
  if (!copied) throw new Error('the browser refused to copy')
}

export const jsonViewer = (value: unknown, label = 'JSON'): HTMLElement => {
  const text = JSON.stringify(value, null, 2) ?? 'undefined'
  const status = h('span', { class: 'j-status', role: 'status' })
  const body = h('div', { class: 'j-tree', 'aria-label': label }, tree(value, undefined, 0, true))
  const setAll = (open: boolean) => {
    for (const node of body.querySelectorAll('details')) (node as HTMLDetailsElement).open = open
  }
  return h(
    'div',
    { class: 'json-viewer' },
    h(
      'div',
      { class: 'j-tools' },
      h(
        'button',
        {
          type: 'button',
          class: 'small',
          'data-copy': '',
          onclick: () =>
            void copy(text).then(
              () => clear(status, 'copied'),
              (error: unknown) => clear(status, `not copied: ${(error as Error).message}`),
            ),
        },
        'Copy',
      ),
      h('button', { type: 'button', class: 'small', onclick: () => setAll(true) }, 'Expand all'),
      h('button', { type: 'button', class: 'small', onclick: () => setAll(false) }, 'Collapse all'),
      status,
    ),
    body,
  )
}
