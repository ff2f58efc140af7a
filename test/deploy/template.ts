import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Reading the packaged service (`npm run package` → .serverless/) for the deployment tests. */

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const packageDir = join(repoRoot, '.serverless')
const templatePath = join(packageDir, 'cloudformation-template-update-stack.json')
const statePath = join(packageDir, 'serverless-state.json')

export interface CfnResource {
  Type: string
  Properties?: Record<string, unknown>
  DependsOn?: string | string[]
  /** A condition of the template's Conditions: the resource exists only where it holds. */
  Condition?: string
}

export interface Template {
  Resources: Record<string, CfnResource>
  Outputs?: Record<string, { Value: unknown }>
  Conditions?: Record<string, unknown>
}

export interface StateFunction {
  handler: string
  name: string
  package?: { artifact?: string }
}

export interface PackagedService {
  template: Template
  functions: Record<string, StateFunction>
}

/** The config files whose change makes the package stale. */
const configFiles = (): string[] => {
  const files = [join(repoRoot, 'serverless.yml')]
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.ya?ml$/.test(entry.name)) files.push(path)
    }
  }
  walk(join(repoRoot, 'infra'))
  return files
}

/** The packaged template and functions; fails saying what to run when they are missing or older than the config. */
export const loadPackagedService = (): PackagedService => {
  for (const path of [templatePath, statePath]) {
    if (!existsSync(path)) {
      throw new Error(
        `test/deploy checks the packaged service, but ${relative(repoRoot, path)} is missing: run \`npm run package\` first`,
      )
    }
  }
  const packagedAt = statSync(templatePath).mtimeMs
  const newer = configFiles().filter((file) => statSync(file).mtimeMs > packagedAt)
  if (newer.length) {
    throw new Error(
      `the package in .serverless/ is older than ${newer.map((file) => relative(repoRoot, file)).join(', ')}: ` +
        'run `npm run package` again',
    )
  }
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as Template
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { service: { functions: Record<string, StateFunction> } }
  return { template, functions: state.service.functions }
}

// ---- intrinsic functions -----------------------------------------------------------------------------------------

/** The logical id of `{ Ref: id }`, else undefined. */
export const refOf = (value: unknown): string | undefined => {
  const ref = (value as { Ref?: unknown } | null)?.Ref
  return typeof ref === 'string' ? ref : undefined
}

/** `[id, attribute]` of `{ 'Fn::GetAtt': [id, attribute] }` (or its `id.attribute` string form), else undefined. */
export const getAttOf = (value: unknown): [string, string] | undefined => {
  const att = (value as { 'Fn::GetAtt'?: unknown } | null)?.['Fn::GetAtt']
  if (Array.isArray(att) && att.length === 2 && att.every((part) => typeof part === 'string')) {
    return [att[0] as string, att[1] as string]
  }
  if (typeof att === 'string' && att.includes('.')) {
    const dot = att.indexOf('.')
    return [att.slice(0, dot), att.slice(dot + 1)]
  }
  return undefined
}

/** The template string of `{ 'Fn::Sub': string }` (or `[string, vars]`), else undefined. */
export const subOf = (value: unknown): string | undefined => {
  const sub = (value as { 'Fn::Sub'?: unknown } | null)?.['Fn::Sub']
  if (typeof sub === 'string') return sub
  if (Array.isArray(sub) && typeof sub[0] === 'string') return sub[0]
  return undefined
}

/** The logical id `{ 'Fn::GetAtt': [id, 'Arn'] }` points at, else undefined. */
export const arnOf = (value: unknown): string | undefined => {
  const att = getAttOf(value)
  return att?.[1] === 'Arn' ? att[0] : undefined
}

export const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value]
