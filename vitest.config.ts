import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import SlowFirstSequencer from './test/support/slow-first-sequencer.js'
import { testFilesByNeed } from './test/support/test-files.js'

// Inherited by the test workers and every process a test starts: on Node 20 each AWS SDK client would otherwise
// print a 9-line notice about future Node versions.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

const files = testFilesByNeed(fileURLToPath(new URL('.', import.meta.url)))

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // vitest's default is one worker less than the cores: a single worker on a 2-core machine, which then runs the
    // files one after the other while they mostly wait on DynamoDB Local, child processes and a browser.
    maxWorkers: Math.max(3, availableParallelism()),
    sequence: { sequencer: SlowFirstSequencer },
    // After the summary: which tests a machine without the deploy tests' Python tools skipped, and how to install them.
    reporters: ['default', './test/support/skipped-tools-reporter.ts'],
    // Two projects, so that DynamoDB Local (started by the global setup, once per run) starts only when a file that
    // needs it runs.
    projects: [
      { extends: true, test: { name: 'memory', include: files.memory } },
      {
        extends: true,
        test: { name: 'dynamodb', include: files.dynamodb, globalSetup: ['test/support/global-setup.ts'] },
      },
    ],
  },
})
