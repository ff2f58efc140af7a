import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CHILD_PROCESS_TIMEOUT_MS } from '../support/timeouts.js'
import { oslsPrint, parseServerlessYaml, serverlessYaml } from './serverless-config.js'
import { loadPackagedService, packageDir } from './template.js'

/**
 * serverless.yml serves two frameworks: osls 4.3.1 (runs here, packages in `npm test`) and Serverless Framework v4
 * (cannot run here: it downloads its binary). v4's rule is applied to the parsed file instead.
 */

/**
 * Serverless Framework v4's plugin rule (lib/classes/plugin-manager.js, `addPlugin`): a legacy bundler plugin next to
 * the built-in esbuild throws PLUGIN_TYPESCRIPT_CONFLICT unless `build.esbuild` is exactly `false`.
 */
const V4_BUNDLER_PLUGINS = [
  'serverless-esbuild',
  'serverless-plugin-typescript',
  'serverless-webpack',
  'serverless-bundle',
]

const v4PluginConflict = (config: Record<string, unknown>): string | undefined => {
  const plugins = config.plugins
  const names = Array.isArray(plugins) ? plugins : ((plugins as { modules?: unknown[] } | undefined)?.modules ?? [])
  const build = config.build as { esbuild?: unknown } | undefined
  const conflicting = names.find((name) => typeof name === 'string' && V4_BUNDLER_PLUGINS.includes(name))
  return conflicting !== undefined && build?.esbuild !== false
    ? `PLUGIN_TYPESCRIPT_CONFLICT: ${conflicting}`
    : undefined
}

const config = parseServerlessYaml(serverlessYaml())

describe('Serverless Framework v4', () => {
  it('accepts the plugins of serverless.yml: serverless-esbuild with build.esbuild false', () => {
    expect(config.plugins).toContain('serverless-esbuild')
    expect(v4PluginConflict(config)).toBeUndefined()
  })

  it('would refuse the same file without build.esbuild: false (the rule this guards)', () => {
    const { build: _build, ...withoutBuild } = config
    expect(v4PluginConflict(withoutBuild)).toBe('PLUGIN_TYPESCRIPT_CONFLICT: serverless-esbuild')
    expect(v4PluginConflict({ ...config, build: { esbuild: {} } })).toBe(
      'PLUGIN_TYPESCRIPT_CONFLICT: serverless-esbuild',
    )
  })

  it('accepts the frameworkVersion range of serverless.yml', () => {
    expect(config.frameworkVersion).toBe('>=3 <5')
  })
})

describe('infra/serverless-plugin.cjs', () => {
  const require = createRequire(import.meta.url)
  const Plugin = require('../../infra/serverless-plugin.cjs') as new (
    serverless: unknown,
    options: unknown,
    utils: unknown,
  ) => { hooks: Record<string, () => void> }

  /** The part of a framework's configSchemaHandler the plugin uses: a collision throws, as in osls and v4. */
  const schemaHandler = (properties: Record<string, unknown>) => ({
    schema: { properties },
    defineTopLevelProperty(name: string, schema: unknown) {
      if (properties[name]) throw new Error(`Top-level property '${name}' already have a definition`)
      properties[name] = schema
    },
  })

  it('declares build where the framework does not (osls), and leaves a framework that does (v4) alone', () => {
    const osls = schemaHandler({ service: {} })
    new Plugin({ configSchemaHandler: osls, service: {} }, {}, {})
    expect(osls.schema.properties.build).toBeDefined()
    const v4Build = { type: 'object' }
    const v4 = schemaHandler({ build: v4Build })
    expect(() => new Plugin({ configSchemaHandler: v4, service: {} }, {}, {})).not.toThrow()
    expect(v4.schema.properties.build).toBe(v4Build)
  })
})

describe('osls 4.3.1', () => {
  it('packaged the file as it is, every function bundled by serverless-esbuild into its own zip', () => {
    const state = JSON.parse(readFileSync(join(packageDir, 'serverless-state.json'), 'utf8')) as {
      service: { plugins?: unknown }
    }
    expect(state.service.plugins).toEqual(config.plugins)
    const { functions } = loadPackagedService()
    for (const [name, fn] of Object.entries(functions)) {
      expect(fn.package?.artifact, name).toMatch(new RegExp(`\\.serverless/${name}\\.zip$`))
    }
  })

  it('validates serverless.yml strictly: configValidationMode stays error', () => {
    expect(config.configValidationMode ?? 'error').toBe('error')
  })

  it(
    'still rejects an unknown property next to build',
    async () => {
      const result = await oslsPrint(['--stage', 'ci'], `${serverlessYaml()}\nbogusProperty: 1\n`)
      expect(result.ok, result.output).toBe(false)
      expect(result.output).toContain("unrecognized property 'bogusProperty'")
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )

  it(
    'rejects a build.esbuild that is neither false nor an object',
    async () => {
      const result = await oslsPrint(['--stage', 'ci'], serverlessYaml().replace('esbuild: false', 'esbuild: 3'))
      expect(result.ok, result.output).toBe(false)
      expect(result.output).toMatch(/build\.esbuild/)
    },
    CHILD_PROCESS_TIMEOUT_MS,
  )
})
