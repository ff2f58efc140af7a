/**
 * For a test that waits on a child process doing seconds of CPU work (cfn-lint, osls): the test files run side by
 * side on a 2-core machine, so such a process can take several times what it takes alone. A hang still fails.
 */
export const CHILD_PROCESS_TIMEOUT_MS = 120_000
