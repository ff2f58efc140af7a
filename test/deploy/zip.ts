import { readFileSync } from 'node:fs'
import { inflateRawSync } from 'node:zlib'

export interface ZipEntry {
  name: string
  /** Uncompressed size in bytes. */
  size: number
  read: () => Buffer
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50
const CENTRAL_FILE_HEADER = 0x02014b50
const LOCAL_FILE_HEADER = 0x04034b50

/**
 * The entries of a zip file (no ZIP64, which a Lambda package never needs), read with node's zlib only: the
 * deployment tests do not depend on an unzip binary.
 */
export const readZip = (path: string): ZipEntry[] => {
  const buf = readFileSync(path)
  let end = -1
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
      end = i
      break
    }
  }
  if (end < 0) throw new Error(`${path} is not a zip file`)
  const count = buf.readUInt16LE(end + 10)
  let offset = buf.readUInt32LE(end + 16)
  const entries: ZipEntry[] = []
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(offset) !== CENTRAL_FILE_HEADER) throw new Error(`${path}: bad central directory`)
    const method = buf.readUInt16LE(offset + 10)
    const compressedSize = buf.readUInt32LE(offset + 20)
    const size = buf.readUInt32LE(offset + 24)
    const nameLength = buf.readUInt16LE(offset + 28)
    const extraLength = buf.readUInt16LE(offset + 30)
    const commentLength = buf.readUInt16LE(offset + 32)
    const localOffset = buf.readUInt32LE(offset + 42)
    const name = buf.toString('utf8', offset + 46, offset + 46 + nameLength)
    entries.push({
      name,
      size,
      read: () => {
        if (buf.readUInt32LE(localOffset) !== LOCAL_FILE_HEADER) throw new Error(`${path}: bad entry ${name}`)
        const start = localOffset + 30 + buf.readUInt16LE(localOffset + 26) + buf.readUInt16LE(localOffset + 28)
        const data = buf.subarray(start, start + compressedSize)
        if (method === 0) return Buffer.from(data)
        if (method === 8) return inflateRawSync(data)
        throw new Error(`${path}: entry ${name} uses compression method ${method}`)
      },
    })
    offset += 46 + nameLength + extraLength + commentLength
  }
  return entries
}
