import type { z } from 'zod'

/**
 * The one formatter of zod issues, with one path style: a field is named as the engine and the API name fields
 * (`nodes[2].id`, `context.user`, `body.lines[0].sku`), and a whole error is one line listing every problem.
 */

/** A field's path: `nodes[2].id`; under `prefix` when one is given (`body` → `body.nodes[2].id`). */
export const issuePath = (path: readonly PropertyKey[], prefix = ''): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    prefix,
  )

/**
 * `path: message; path: message`, with `root` standing for the value itself. `annotate` may add a note after a path
 * (a workflow config names the node an index stands for).
 */
export const describeIssues = (
  error: z.ZodError,
  root: string,
  annotate: (path: readonly PropertyKey[]) => string | undefined = () => undefined,
): string =>
  error.issues
    .map((issue) => {
      const note = annotate(issue.path)
      return `${issuePath(issue.path) || root}${note ? ` ${note}` : ''}: ${issue.message}`
    })
    .join('; ')
/** What a ValidationError says about a failed parse: its first problem, and every problem as `{field, message}`. */
export interface IssueSummary {
  /** The first problem's field (`root` when it is about the value itself). */
  field: string
  /** The first problem's message; unknown keys are listed by name. */
  message: string
  issues: { field: string; message: string }[]
}

export const summarizeIssues = (
  error: z.ZodError,
  options: {
    /** Put before every path: the part of a request (`body`, `query`). */
    prefix?: string
    /** The field named when the problem is the value itself. */
    root: string
    /** What an unknown key is called in `unknown <keys>(s): a, b`. */
    unknownKey: string
  },
): IssueSummary => {
  const prefix = options.prefix ?? ''
  const issue = error.issues[0]
  const field = issue ? issuePath(issue.path, prefix) || options.root : options.root
  const message =
    issue?.code === 'unrecognized_keys'
      ? `unknown ${options.unknownKey}(s): ${issue.keys.join(', ')}`
      : (issue?.message ?? 'invalid')
  return {
    field,
    message,
    issues: error.issues.map((item) => ({ field: issuePath(item.path, prefix), message: item.message })),
  }
}
