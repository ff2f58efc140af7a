import { readdirSync, readFileSync } from 'node:fs'
import { join, posix } from 'node:path'

/**
 * Which test files need the run's DynamoDB Local. A file needs it when it asks for it: a table, a client or the
 * endpoint of the shared server (test/support/dynamodb.ts), or the store backends the engine's specs run on. The
 * others run in a project without DynamoDB Local, so that a run of them alone (`npx vitest run test/unit`) starts
 * no JVM. A file that asks through a helper of its own must name one of these too, or it fails saying so.
 */
export const NEEDS_DYNAMODB = /\b(?:dynamoEndpoint|newDynamoClient|createTestTable|STORE_BACKENDS|dynamoDbBackend)\b/

const testFiles = (root: string, dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name)
    if (entry.isDirectory()) return testFiles(root, path)
    return entry.name.endsWith('.test.ts') ? [path] : []
  })

/** Every test file under `test/`, split by whether it needs DynamoDB Local. */
export const testFilesByNeed = (root: string): { memory: string[]; dynamodb: string[] } => {
  const files = testFiles(root, 'test').sort()
  const needs = (path: string) => NEEDS_DYNAMODB.test(readFileSync(join(root, path), 'utf8'))
  return { memory: files.filter((path) => !needs(path)), dynamodb: files.filter(needs) }
}
