import { relative } from 'node:path'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The test files that take longest, slowest first (measured on a 2-core machine). They start before everything
 * else, across both projects: a long file that starts last runs on alone at the end while the other workers idle.
 * On a fresh clone vitest has no durations of earlier runs to order by, and it would otherwise run the `dynamodb`
 * project's files before the `memory` project's, the slow `npm start` and deploy files among the last.
 * A file that is not listed keeps vitest's own order after these.
 */
export const SLOW_FILES = [
  'test/reliability/crash-matrix.test.ts',
  'test/e2e/local-settings.test.ts',
  'test/package/pack.test.ts',
  'test/fuzz/http-api.fuzz.test.ts',
  'test/engine/history.test.ts',
  'test/e2e/local-runtime.test.ts',
  'test/e2e/dashboard.browser.test.ts',
  'test/dynamodb/bounded-items.test.ts',
  'test/concurrency/racing-runners.test.ts',
  'test/dynamodb/dynamodb-store.test.ts',
  'test/deploy/rehearsal.test.ts',
  'test/api/api-routes.test.ts',
  'test/e2e/dashboard-security.browser.test.ts',
  'test/partition/partition-promise.test.ts',
  'test/reliability/faults.test.ts',
  'test/deploy/frameworks.test.ts',
  'test/deploy/cfn-lint.test.ts',
  'test/deploy/auth.test.ts',
]

export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files)
    const rank = (spec: TestSpecification): number => {
      const index = SLOW_FILES.indexOf(relative(this.ctx.config.root, spec.moduleId).split('\\').join('/'))
      return index === -1 ? SLOW_FILES.length : index
    }
    // Array.prototype.sort is stable: the files that are not listed keep the base order.
    return [...base].sort((a, b) => rank(a) - rank(b))
  }
}
