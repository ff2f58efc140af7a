import type { NodeContext } from '../../src/core/node-context.js'
import { NotReadyError } from '../../src/core/worker-signals.js'

/**
 * A node whose worker runs (`run`, nothing by default) and whose check then says "not yet" for `retrySeconds`, again
 * and again; `onCheck` sees each call before the answer (it may be async, e.g. to read the store meanwhile).
 */
export const notYetNode = (
  retrySeconds: number,
  options: { run?: (ctx: NodeContext) => void; onCheck?: () => unknown } = {},
) => ({
  run: options.run ?? (() => {}),
  check: async () => {
    await options.onCheck?.()
    throw new NotReadyError(retrySeconds)
  },
})
