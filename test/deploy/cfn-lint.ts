import { spawnSync } from 'node:child_process'

/** cfn-lint (Python, pinned 1.51.0 on the machines this project is built on) over packaged templates. */

export const CFN_LINT_VERSION = '1.51.0'

/**
 * Checks the framework itself generates and we cannot change: W3005, a DependsOn that a Ref or GetAtt already
 * implies (osls adds one to every function, to the HTTP API stage and to every route).
 */
export const IGNORED_CHECKS = ['W3005'] as const

export interface LintFinding {
  rule: string
  level: string
  message: string
  where: string
}

export const MISSING_CFN_LINT_HINT =
  `cfn-lint is not installed: the deployment tests lint the packaged CloudFormation with it. Install it with ` +
  `\`pipx install cfn-lint==${CFN_LINT_VERSION}\` (or \`pip install cfn-lint==${CFN_LINT_VERSION}\`, Python ≥ 3.9) ` +
  'and make sure `cfn-lint` is on PATH.'

/** Every error and warning cfn-lint reports on the templates (absolute paths), minus IGNORED_CHECKS. */
export const lintTemplates = (paths: string[]): LintFinding[] => {
  const result = spawnSync('cfn-lint', ['--format', 'json', '--ignore-checks', ...IGNORED_CHECKS, '--', ...paths], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(MISSING_CFN_LINT_HINT)
  if (result.error) throw result.error
  // Exit status: a bit mask (2 errors, 4 warnings, 8 informational); 1 means cfn-lint itself failed.
  if (result.status === 1 || !result.stdout.trim().startsWith('[')) {
    throw new Error(`cfn-lint failed (status ${result.status}): ${result.stderr || result.stdout}`)
  }
  const findings = JSON.parse(result.stdout) as {
    Level: string
    Message: string
    Filename: string | null
    Rule: { Id: string }
    Location: { Start: { LineNumber: number }; Path: (string | number)[] | null }
  }[]
  return findings
    .filter((finding) => finding.Level === 'Error' || finding.Level === 'Warning')
    .map((finding) => ({
      rule: finding.Rule.Id,
      level: finding.Level,
      message: finding.Message,
      where: `${finding.Filename ?? '?'}:${finding.Location.Start.LineNumber} ${(finding.Location.Path ?? []).join('/')}`,
    }))
}

export const cfnLintVersion = (): string | undefined => {
  const result = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' })
  return result.error ? undefined : result.stdout.trim().replace(/^cfn-lint\s+/, '')
}
