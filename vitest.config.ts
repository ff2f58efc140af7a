import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
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
