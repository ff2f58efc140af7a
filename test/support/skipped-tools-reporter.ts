import type { Reporter, TestModule } from 'vitest/node'
import { PYTHON_TOOLS, type PythonTool, skipsWithout } from '../deploy/python-tools.js'

/** The test file whose tests each tool's absence skips. */
const FILES: Record<PythonTool, string> = {
  'cfn-lint': 'test/deploy/cfn-lint.test.ts',
  moto_server: 'test/deploy/rehearsal.test.ts',
}

/**
 * Ends a run that skipped deploy tests for a missing Python tool by saying so: what was skipped, and how to install
 * the tool. (With CI=true nothing is skipped: the tests fail with the same hint.)
 */
export default class SkippedToolsReporter implements Reporter {
  onTestRunEnd(testModules: readonly TestModule[]): void {
    const ran = testModules.map((module) => module.moduleId.replaceAll('\\', '/'))
    const skipped = (Object.keys(PYTHON_TOOLS) as PythonTool[]).filter(
      (tool) => ran.some((id) => id.endsWith(`/${FILES[tool]}`)) && skipsWithout(tool),
    )
    if (skipped.length === 0) return
    const lines = skipped.flatMap((tool) => [`- ${PYTHON_TOOLS[tool].skips}: ${PYTHON_TOOLS[tool].hint}`])
    process.stdout.write(
      `\nSkipped, for a Python tool this machine lacks (CI=true requires them):\n${lines.join('\n')}\n`,
    )
  }
}
