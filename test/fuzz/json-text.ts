/**
 * JSON *text* built piece by piece. Object literals cannot carry a `__proto__` key and `JSON.stringify` cannot write
 * `1e400`, `-0` or a duplicate key, so generated bodies are trees of these nodes rendered to the exact text sent.
 */

/** A literal written as is: `1e400`, `-0`, `9007199254740993`, or a whole pre-rendered value. */
export class Raw {
  constructor(readonly text: string) {}
}

/** An object as an ordered list of entries: keys may repeat and may be `__proto__`. */
export class Obj {
  constructor(readonly entries: readonly (readonly [string, Json])[]) {}
}

export type Json = null | boolean | number | string | Raw | Obj | readonly Json[]

export const render = (value: Json): string => {
  if (value instanceof Raw) return value.text
  if (value instanceof Obj) {
    return `{${value.entries.map(([key, item]) => `${JSON.stringify(key)}:${render(item)}`).join(',')}}`
  }
  if (Array.isArray(value)) return `[${value.map(render).join(',')}]`
  // NaN and ±Infinity become null, as JSON.stringify writes them.
  return JSON.stringify(value) ?? 'null'
}

/** `{"k":{"k":…leaf…}}` (or arrays) nested `depth` levels deep, built without recursion. */
export const nested = (depth: number, kind: 'object' | 'array' | 'mixed', key: string, leaf: string): Raw => {
  let open = ''
  let close = ''
  for (let level = 0; level < depth; level++) {
    const asArray = kind === 'array' || (kind === 'mixed' && level % 2 === 1)
    open += asArray ? '[' : `{${JSON.stringify(key)}:`
    close = (asArray ? ']' : '}') + close
  }
  return new Raw(`${open}${leaf}${close}`)
}

const encoder = new TextEncoder()
export const utf8Length = (text: string): number => encoder.encode(text).byteLength
