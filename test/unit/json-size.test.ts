import { describe, expect, it } from 'vitest'
import { jsonSizeBytes, utf8Bytes } from '../../src/core/json.js'

const encoder = new TextEncoder()

describe('utf8Bytes', () => {
  it('counts what an encoder writes, for every kind of UTF-16 text', () => {
    const samples = ['', 'abc', 'é', '€', '😀', 'a\ud800b', '\udc00', '\ud800', 'x😀y€é\u07ff\u0800\uffff']
    // Random code units, lone surrogates included (an encoder writes U+FFFD for them: 3 bytes).
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed
    }
    for (let i = 0; i < 500; i++) {
      samples.push(Array.from({ length: 12 }, () => String.fromCharCode(next() % 0x10000)).join(''))
    }
    for (const text of samples) expect(utf8Bytes(text), JSON.stringify(text)).toBe(encoder.encode(text).byteLength)
  })

  it('sizes JSON as its UTF-8 text', () => {
    const value = { note: 'café 😀', list: [1, 'ü'] }
    expect(jsonSizeBytes(value)).toBe(encoder.encode(JSON.stringify(value)).byteLength)
    expect(jsonSizeBytes(undefined)).toBe(0)
  })
})
