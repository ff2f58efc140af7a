/** Plain-text output: aligned columns without borders, readable in a terminal and easy to grep. */

export const table = (headers: readonly string[], rows: readonly (readonly string[])[]): string => {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  )
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

/** `2026-11-21 12:00:05Z`, or `-`. */
export const time = (ms: number | undefined | null): string =>
  ms === undefined || ms === null ? '-' : `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`

/** `2026-11-21 12:00:05.123Z`: for entries that follow each other within a second. */
export const timeMs = (ms: number): string => new Date(ms).toISOString().replace('T', ' ')

/** `key: value` lines, aligned. */
export const fields = (entries: readonly (readonly [string, string | undefined])[]): string => {
  const shown = entries.filter(([, value]) => value !== undefined) as [string, string][]
  const width = Math.max(...shown.map(([key]) => key.length))
  return shown.map(([key, value]) => `${`${key}:`.padEnd(width + 2)}${value}`).join('\n')
}
