/** How the dashboard writes times and durations: pure, in the viewer's time zone. */

const pad = (n: number): string => String(n).padStart(2, '0')

/** `2026-12-01 16:40:12` in the viewer's time zone. */
export const localTime = (ms: number, withMs = false): string => {
  const d = new Date(ms)
  const seconds = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return withMs ? `${seconds}.${String(d.getMilliseconds()).padStart(3, '0')}` : seconds
}

/** A time in a table cell: `16:40:12` today, `12-01 16:40` this year, else the date. */
export const shortTime = (ms: number, nowMs: number = Date.now()): string => {
  const d = new Date(ms)
  const now = new Date(nowMs)
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  if (d.toDateString() === now.toDateString()) return `${time}:${pad(d.getSeconds())}`
  if (d.getFullYear() === now.getFullYear()) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

/** `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`, `3 d 4 h`. */
export const duration = (ms: number): string => {
  const abs = Math.max(0, Math.round(ms))
  if (abs < 1_000) return `${abs} ms`
  if (abs < 60_000) return `${(abs / 1000).toFixed(abs < 10_000 ? 1 : 0)} s`
  const seconds = Math.floor(abs / 1000)
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`
  if (seconds < 86_400) return `${Math.floor(seconds / 3_600)} h ${Math.floor((seconds % 3_600) / 60)} min`
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3_600)} h`
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
