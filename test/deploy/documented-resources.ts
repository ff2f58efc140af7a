import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './template.js'

/**
 * The resources the README says a deployment creates: the table between the `deployed-resources` markers of its
 * *Deployment* section. The deploy rehearsal takes its expectations from here, so the README and the checks cannot
 * drift apart: a resource documented there and missing from the stack fails the rehearsal.
 */

export interface DocumentedResource {
  logicalId: string
  type: string
  /** The README's words for it. */
  what: string
}

const START = '<!-- deployed-resources:start -->'
const END = '<!-- deployed-resources:end -->'

export const documentedResources = (
  readme = readFileSync(join(repoRoot, 'README.md'), 'utf8'),
): DocumentedResource[] => {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start < 0 || end < start) throw new Error(`README.md has no table between ${START} and ${END}`)
  const rows = readme
    .slice(start + START.length, end)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('|'))
    .slice(2) // header and separator
  const resources = rows.flatMap((row) => {
    const cells = row
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((cell) => cell.trim())
    if (cells.length !== 3) throw new Error(`README deployed-resources row has ${cells.length} cells: ${row}`)
    const [what = '', ids = '', type = ''] = cells
    const typeName = /^`([\w:]+)`$/.exec(type)?.[1]
    const logicalIds = [...ids.matchAll(/`(\w+)`/g)].map((match) => match[1] as string)
    if (!typeName || logicalIds.length === 0) throw new Error(`README deployed-resources row is not understood: ${row}`)
    return logicalIds.map((logicalId) => ({ logicalId, type: typeName, what }))
  })
  const seen = new Set<string>()
  for (const { logicalId } of resources) {
    if (seen.has(logicalId)) throw new Error(`README deployed-resources lists ${logicalId} twice`)
    seen.add(logicalId)
  }
  return resources
}
