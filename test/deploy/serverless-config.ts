import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, type Tags } from 'yaml'
import { CHILD_PROCESS_TIMEOUT_MS } from '../support/timeouts.js'
import { repoRoot, type Template } from './template.js'

/** Reading serverless.yml, and packaging it in a copy of the service, for the framework and auth tests. */

/** CloudFormation's short tags (`!Ref`, `!GetAtt`, …) read as their long form, so the file parses as data. */
const cloudFormationTags: Tags = ['Ref', 'GetAtt', 'Sub', 'If', 'Not', 'Equals', 'Join', 'Select', 'Split'].flatMap(
  (name) => {
    const key = name === 'Ref' ? 'Ref' : `Fn::${name}`
    return (['scalar', 'seq', 'map'] as const).map((collection) => ({
      tag: `!${name}`,
      ...(collection === 'scalar' ? {} : { collection }),
      resolve: (value: unknown) => ({
        [key]:
          name === 'GetAtt' && typeof value === 'string'
            ? value.split('.')
            : typeof (value as { toJSON?: () => unknown })?.toJSON === 'function'
              ? (value as { toJSON: () => unknown }).toJSON()
              : value,
      }),
    }))
  },
)

export const parseServerlessYaml = (source: string): Record<string, unknown> =>
  parse(source, { customTags: cloudFormationTags }) as Record<string, unknown>

export const serverlessYaml = (): string => readFileSync(join(repoRoot, 'serverless.yml'), 'utf8')

const OSLS = join(repoRoot, 'node_modules', 'osls', 'bin', 'serverless.js')

export interface OslsRun {
  ok: boolean
  output: string
}

const run = (args: string[], cwd: string): Promise<OslsRun> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [OSLS, ...args],
      {
        cwd,
        env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', FORCE_COLOR: '0' },
        timeout: CHILD_PROCESS_TIMEOUT_MS,
      },
      (error, stdout, stderr) => resolve({ ok: !error, output: `${stdout}${stderr}` }),
    )
  })

/**
 * A copy of the service (serverless.yml, infra, functions, src; node_modules linked) in a temporary folder. Packaging
 * in the repository itself would replace the `.serverless/` the other deployment tests read (serverless-esbuild
 * writes there whatever `--package` says), and two packagings would share `.esbuild/`.
 */
export const serviceCopy = (serverlessYml = serverlessYaml()): { dir: string; remove: () => void } => {
  const dir = mkdtempSync(join(tmpdir(), 'tickflow-service-'))
  for (const entry of ['infra', 'functions', 'src', 'package.json', 'tsconfig.json']) {
    cpSync(join(repoRoot, entry), join(dir, entry), { recursive: true })
  }
  writeFileSync(join(dir, 'serverless.yml'), serverlessYml)
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir')
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** `osls print` (resolves variables and validates the configuration) of a copy of the service. */
export const oslsPrint = async (args: string[], serverlessYml?: string): Promise<OslsRun> => {
  const copy = serviceCopy(serverlessYml)
  try {
    return await run(['print', '--format', 'json', ...args], copy.dir)
  } finally {
    copy.remove()
  }
}

export interface PackageResult extends OslsRun {
  template?: Template
}

/** `osls package` of a copy of the service with the given options; the template when it packaged. */
export const oslsPackage = async (args: string[]): Promise<PackageResult> => {
  const copy = serviceCopy()
  try {
    const out = join(copy.dir, 'out')
    mkdirSync(out)
    const result = await run(['package', '--region', 'eu-west-1', '--package', out, ...args], copy.dir)
    if (!result.ok) return result
    const template = JSON.parse(
      readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8'),
    ) as Template
    return { ...result, template }
  } finally {
    copy.remove()
  }
}
