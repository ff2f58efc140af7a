import type { z } from 'zod'

/**
 * The one formatter of zod issues: a field's path as the engine names fields (`nodes[2].id`, `context.user`), and a
 * whole error as one line listing every problem.
 */
export const issuePath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
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
      return `${issue.path.length ? issue.path.join('.') : root}${note ? ` ${note}` : ''}: ${issue.message}`
    })
    .join('; ')
