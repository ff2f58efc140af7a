import { spawnSync } from 'node:child_process'
import { describe } from 'vitest'
import { MISSING_CFN_LINT_HINT } from './cfn-lint.js'
import { MISSING_MOTO_HINT } from './moto.js'

/**
 * The two Python tools of the deploy tests. On a developer's machine without them, `npm test` runs everything else
 * and ends by naming what it skipped and how to install it (test/support/skipped-tools-reporter.ts); with CI=true
 * they are required, and the tests that need one fail with its install hint.
 */
export const PYTHON_TOOLS = {
  'cfn-lint': {
    probe: ['--version'],
    hint: MISSING_CFN_LINT_HINT,
    skips: 'the lint of the packaged CloudFormation template (test/deploy/cfn-lint.test.ts)',
  },
  moto_server: {
    probe: ['--help'],
    hint: MISSING_MOTO_HINT,
    skips: 'the deploy rehearsal on moto (test/deploy/rehearsal.test.ts, but its README checks)',
  },
} as const

export type PythonTool = keyof typeof PYTHON_TOOLS

/** Whether `tool` can be run: not found on PATH (or only as a pyenv shim without it) is missing. */
export const isInstalled = (tool: PythonTool): boolean => {
  const result = spawnSync(tool, PYTHON_TOOLS[tool].probe, { stdio: 'ignore', timeout: 60_000 })
  if (result.error) return (result.error as NodeJS.ErrnoException).code !== 'ENOENT'
  return result.status !== 127
}

/** CI=true: the deploy tests' tools are required. */
export const toolsRequired = (env: NodeJS.ProcessEnv = process.env): boolean => env.CI === 'true'

/** Whether the tests that need `tool` are skipped here: it is missing, and this run does not require it. */
export const skipsWithout = (tool: PythonTool): boolean => !toolsRequired() && !isInstalled(tool)

/** `describe` for tests that need `tool`: skipped when it is missing and not required. */
export const describeWith = (tool: PythonTool): ReturnType<typeof describe.skipIf> =>
  describe.skipIf(skipsWithout(tool))
