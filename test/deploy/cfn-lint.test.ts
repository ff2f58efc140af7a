import { join } from 'node:path'
import { expect, it } from 'vitest'
import { CHILD_PROCESS_TIMEOUT_MS } from '../support/timeouts.js'
import { CFN_LINT_VERSION, cfnLintVersion, lintTemplates, MISSING_CFN_LINT_HINT } from './cfn-lint.js'
import { describeWith } from './python-tools.js'
import { loadPackagedService, packageDir } from './template.js'

/** The packaged template passes cfn-lint: no error, no warning (but the framework's own W3005). */

describeWith('cfn-lint')('cfn-lint on the packaged template', () => {
  it(
    `is installed, version ${CFN_LINT_VERSION}`,
    () => {
      const version = cfnLintVersion()
      expect(version, MISSING_CFN_LINT_HINT).toBeDefined()
      expect(version).toBe(CFN_LINT_VERSION)
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )

  it(
    'reports no error and no warning',
    () => {
      loadPackagedService() // fails, saying what to run, when the package is missing or stale
      const findings = lintTemplates([join(packageDir, 'cloudformation-template-update-stack.json')])
      expect(findings.map((f) => `${f.rule} ${f.message} (${f.where})`)).toEqual([])
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )
})
