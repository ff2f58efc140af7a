import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

/**
 * The core is the engine's logic only: no AWS, no framework, no environment, no wall clock or randomness (those
 * arrive through ports), so that it runs the same in tests, locally and in Lambda.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const SOURCE_EXTENSIONS = /\.(?:ts|mts|cts|js|mjs|cjs)$/
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.cache', '.data', '.serverless', '.git'])

const sourceFiles = (dir: string, extensions: RegExp): string[] =>
  readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name)
    if (entry.isDirectory()) return SKIPPED_DIRS.has(entry.name) ? [] : sourceFiles(path, extensions)
    return extensions.test(entry.name) ? [path] : []
  })

const parse = (path: string, source: string): ts.SourceFile =>
  ts.createSourceFile(path, source, ts.ScriptTarget.Latest, true)

const printer = ts.createPrinter({ removeComments: true })

/** The code without its comments, so that documentation may name what the code must not do. */
const stripComments = (path: string, source: string): string => printer.printFile(parse(path, source))

/** Module specifiers of imports and re-exports (type-only ones too), dynamic imports and requires. */
const importedModules = (path: string, source: string): string[] => {
  const specifiers: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) specifiers.push(node.moduleSpecifier.text)
    } else if (ts.isCallExpression(node)) {
      const [first] = node.arguments
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require'
      if ((isImport || isRequire) && first && ts.isStringLiteralLike(first)) specifiers.push(first.text)
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument
      if (ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal)) specifiers.push(argument.literal.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(parse(path, source))
  return specifiers
}

const FORBIDDEN_PACKAGES = ['@aws-sdk/', '@middy/', '@aws-lambda-powertools/']
const FORBIDDEN_LAYERS = [
  'src/adapters',
  'src/local',
  'src/api',
  'src/api-client',
  'src/handlers',
  'src/cli',
  'src/dashboard',
  'src/workflows',
  'src/system',
  'src/testing',
  'functions',
]
const FORBIDDEN_CALLS: [pattern: RegExp, what: string][] = [
  [/\bprocess\s*\.\s*env\b/, 'process.env'],
  [/\bDate\s*\.\s*now\s*\(/, 'Date.now('],
  [/\bMath\s*\.\s*random\s*\(/, 'Math.random('],
  [/\bnew\s+Date\s*\(/, 'new Date('],
]

/**
 * Node's crypto serves one core module, the callback token format (keyed hashing and encryption, deterministic):
 * randomness stays a port, so none of crypto's random functions may be called anywhere in the core.
 */
const CRYPTO_ALLOWED = new Set(['src/core/callback-token.ts'])
const RANDOM_CALLS: [pattern: RegExp, what: string][] = [
  [/\brandom(?:Bytes|UUID|Int|Fill|FillSync)\b/, 'a random function of node:crypto'],
  [/\bgetRandomValues\b/, 'getRandomValues'],
]

/** What a core file may not do, given its repository-relative path and its text. */
const coreViolations = (path: string, source: string): string[] => {
  const code = stripComments(path, source)
  const problems: string[] = []
  for (const specifier of importedModules(path, source)) {
    if (FORBIDDEN_PACKAGES.some((prefix) => specifier.startsWith(prefix))) problems.push(`imports ${specifier}`)
    if ((specifier === 'node:crypto' || specifier === 'crypto') && !CRYPTO_ALLOWED.has(path)) {
      problems.push(`imports ${specifier}`)
    }
    if (specifier.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(path), specifier))
      const layer = FORBIDDEN_LAYERS.find((dir) => target === dir || target.startsWith(`${dir}/`))
      if (layer !== undefined) problems.push(`imports ${specifier} from ${layer}`)
    }
  }
  for (const [pattern, what] of FORBIDDEN_CALLS) if (pattern.test(code)) problems.push(`uses ${what}`)
  for (const [pattern, what] of RANDOM_CALLS) if (pattern.test(code)) problems.push(`uses ${what}`)
  return problems
}

const AWS_SDK_ALLOWED = ['src/adapters/', 'src/local/', 'functions/', 'scripts/', 'test/']

const mayImportAwsSdk = (path: string): boolean =>
  path === 'src/index.ts' || AWS_SDK_ALLOWED.some((prefix) => path.startsWith(prefix))

describe('the architecture checker', () => {
  it.each([
    {
      source: "import { DynamoDBClient } from '@aws-sdk/client-dynamodb'",
      problem: 'imports @aws-sdk/client-dynamodb',
    },
    { source: "import type { Handler } from '@middy/core'", problem: 'imports @middy/core' },
    {
      source: "export { Logger } from '@aws-lambda-powertools/logger'",
      problem: 'imports @aws-lambda-powertools/logger',
    },
    { source: "import '@aws-sdk/polyfill'", problem: 'imports @aws-sdk/polyfill' },
    {
      source: "import type { AttributeValue } from '@aws-sdk/client-dynamodb'",
      problem: 'imports @aws-sdk/client-dynamodb',
    },
    {
      source: "type Input = import('@aws-sdk/lib-dynamodb').PutCommandInput",
      problem: 'imports @aws-sdk/lib-dynamodb',
    },
    { source: "export * from '../system/defaults.js'", problem: 'imports ../system/defaults.js from src/system' },
    { source: "const m = await import('@aws-sdk/lib-dynamodb')", problem: 'imports @aws-sdk/lib-dynamodb' },
    {
      source: "import {\n  DynamoDbStore,\n} from '../adapters/dynamodb/dynamodb-store.js'",
      problem: 'imports ../adapters/dynamodb/dynamodb-store.js from src/adapters',
    },
    {
      source: "import { x } from '../local/dynamodb-local.js'",
      problem: 'imports ../local/dynamodb-local.js from src/local',
    },
    { source: "import { x } from '../api/routes.js'", problem: 'imports ../api/routes.js from src/api' },
    {
      source: "import { systemClock } from '../system/defaults.js'",
      problem: 'imports ../system/defaults.js from src/system',
    },
    { source: "import { h } from '../../functions/run.js'", problem: 'imports ../../functions/run.js from functions' },
    {
      source: "import { createRunHandler } from '../handlers/run-handler.js'",
      problem: 'imports ../handlers/run-handler.js from src/handlers',
    },
    { source: "import { runCli } from '../cli/program.js'", problem: 'imports ../cli/program.js from src/cli' },
    {
      source: "import type { x } from '../dashboard/dom.js'",
      problem: 'imports ../dashboard/dom.js from src/dashboard',
    },
    {
      source: "import { workflows } from '../workflows/index.js'",
      problem: 'imports ../workflows/index.js from src/workflows',
    },
    {
      source: "import { ApiClient } from '../api-client/api-client.js'",
      problem: 'imports ../api-client/api-client.js from src/api-client',
    },
    { source: 'const region = process.env.AWS_REGION', problem: 'uses process.env' },
    { source: 'const now = Date.now()', problem: 'uses Date.now(' },
    { source: 'const jitter = Math.random() * 10', problem: 'uses Math.random(' },
    { source: 'const at = new Date(ms).toISOString()', problem: 'uses new Date(' },
    { source: "import { createHmac } from 'node:crypto'", problem: 'imports node:crypto' },
    { source: 'const id = crypto.randomUUID()', problem: 'uses a random function of node:crypto' },
    { source: "import { randomBytes as r } from './x.js'", problem: 'uses a random function of node:crypto' },
    { source: 'crypto.getRandomValues(buffer)', problem: 'uses getRandomValues' },
    {
      source: "import { x } from '../testing/test-engine.js'",
      problem: 'imports ../testing/test-engine.js from src/testing',
    },
  ])('reports $problem', ({ source, problem }) => {
    expect(coreViolations('src/core/engine.ts', source)).toEqual([problem])
  })

  it.each([
    { what: 'a line comment', source: '// Date.now() is not used here\nconst a = 1' },
    { what: 'a block comment', source: "/* import x from '@aws-sdk/client-dynamodb' */ const a = 1" },
    { what: 'a doc comment', source: '/**\n * Never call Math.random() or new Date() here.\n */\nexport const a = 1' },
    { what: 'a sibling core module', source: "import { x } from './store.js'" },
    { what: 'the schemas', source: "import { z } from '../schemas/workflow-config.js'" },
    { what: 'a URL in a string', source: "const url = 'https://example.com/path' // process.env" },
    { what: 'a regular expression', source: "const re = /^[a-z'\"]+\\/\\//\nconst b = 'x' // Date.now()" },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the sample is source text that holds a template literal
    { what: 'a template literal', source: 'const t = `a ${1 + 1} // b`\n// Math.random()' },
    { what: 'a clock port', source: 'const now = this.clock.nowMs()' },
  ])('accepts $what', ({ source }) => {
    expect(coreViolations('src/core/engine.ts', source)).toEqual([])
  })
})

describe('src/core', () => {
  const coreFiles = sourceFiles('src/core', /\.ts$/)

  it('holds the engine modules this check is meant for', () => {
    expect(coreFiles).toEqual(expect.arrayContaining(['src/core/engine.ts', 'src/core/store.ts']))
  })

  it('lets the callback token module use node:crypto, but not its randomness', () => {
    expect(coreViolations('src/core/callback-token.ts', "import { createHmac } from 'node:crypto'")).toEqual([])
    expect(coreViolations('src/core/callback-token.ts', 'const iv = randomBytes(16)')).toEqual([
      'uses a random function of node:crypto',
    ])
  })

  it.each(coreFiles)('%s depends on nothing but the core, schemas and plain libraries', (path) => {
    expect(coreViolations(path, readFileSync(join(ROOT, path), 'utf8'))).toEqual([])
  })
})

/**
 * How the store lays an instance out is the store's business: no DynamoDB name, limit or item key in the core's
 * code (its comments may explain why a port looks the way it does).
 */
const LAYOUT_WORDS: [pattern: RegExp, what: string][] = [
  [/dynamo/i, 'DynamoDB'],
  [/['"`][A-Z]#/, 'an item key prefix'],
  [/\b(?:pk|sk)\b/, 'a key attribute'],
  [/\b400\s*\*\s*1024\b/, "DynamoDB's item limit"],
  [/\barchiv/i, 'archive items'],
  [/\b(?:writeSeq|wseq|payloadRef|allNodes|historyOut)\b/, 'a layout field'],
  [/\bINLINE_\w+/, 'an inline threshold'],
]

const layoutWords = (path: string, source: string): string[] => {
  const code = stripComments(path, source)
  return LAYOUT_WORDS.filter(([pattern]) => pattern.test(code)).map(([, what]) => `names ${what}`)
}

describe('the item layout', () => {
  it.each([
    { source: 'const limit = 400 * 1024', problem: "names DynamoDB's item limit" },
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the sample is source text that holds a template literal
    { source: 'const key = `P#${nodeId}`', problem: 'names an item key prefix' },
    { source: 'change.archive = {}', problem: 'names archive items' },
    { source: 'const { writeSeq } = change', problem: 'names a layout field' },
    { source: 'if (bytes > INLINE_PAYLOAD_BYTES) return', problem: 'names an inline threshold' },
    { source: "import { x } from '../adapters/dynamodb/keys.js'", problem: 'names DynamoDB' },
  ])('is reported when core code $problem', ({ source, problem }) => {
    expect(layoutWords('src/core/x.ts', source)).toContain(problem)
  })

  it('may be explained in a comment', () => {
    expect(layoutWords('src/core/x.ts', '// a DynamoDB item holds 400 * 1024 bytes\nconst a = 1')).toEqual([])
  })

  it.each(sourceFiles('src/core', /\.ts$/))('is not named in %s', (path) => {
    expect(layoutWords(path, readFileSync(join(ROOT, path), 'utf8'))).toEqual([])
  })
})

describe('the AWS SDK', () => {
  it('is imported only by adapters, local tooling, the package entry, functions, scripts and tests', () => {
    const importers = sourceFiles('.', SOURCE_EXTENSIONS)
      .map((path) => posix.normalize(path))
      .filter((path) =>
        importedModules(path, readFileSync(join(ROOT, path), 'utf8')).some((specifier) =>
          specifier.startsWith('@aws-sdk/'),
        ),
      )

    expect(importers).toContain('src/adapters/dynamodb/dynamodb-store.ts')
    expect(importers.filter((path) => !mayImportAwsSdk(path))).toEqual([])
  })
})

/** Which layers each layer may not import: imports flow functions → api/handlers/adapters/local → core → schemas. */
const LAYER_RULES: { layer: string; forbidden: readonly string[] }[] = [
  { layer: 'src/handlers', forbidden: ['src/adapters', 'src/local', 'src/api', 'src/system', 'functions'] },
  { layer: 'src/api', forbidden: ['src/adapters', 'src/local', 'src/handlers', 'src/system', 'functions'] },
  { layer: 'src/adapters', forbidden: ['src/local', 'src/api', 'src/handlers', 'src/system', 'functions'] },
  {
    layer: 'src/api-client',
    forbidden: [
      'src/core',
      'src/adapters',
      'src/local',
      'src/api',
      'src/handlers',
      'src/cli',
      'src/dashboard',
      'functions',
    ],
  },
  {
    // The test harness is the engine on the in-memory store: nothing of AWS, the API or the local runtime.
    layer: 'src/testing',
    forbidden: [
      'src/adapters/dynamodb',
      'src/adapters/sqs',
      'src/adapters/scheduler',
      'src/adapters/eventbridge',
      'src/api',
      'src/local',
      'src/handlers',
      'src/cli',
      'src/dashboard',
      'functions',
    ],
  },
  {
    layer: 'src/schemas',
    forbidden: ['src/core', 'src/adapters', 'src/local', 'src/api', 'src/handlers', 'functions'],
  },
]

const layerViolations = (path: string, source: string, forbidden: readonly string[]): string[] =>
  importedModules(path, source)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => ({ specifier, target: posix.normalize(posix.join(posix.dirname(path), specifier)) }))
    .filter(({ target }) => forbidden.some((dir) => target === dir || target.startsWith(`${dir}/`)))
    .map(({ specifier }) => `imports ${specifier}`)

describe.each(LAYER_RULES)('$layer', ({ layer, forbidden }) => {
  const files = sourceFiles(layer, /\.ts$/)

  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(0)
  })

  it.each(files)(`%s imports none of ${forbidden.join(', ')}`, (path) => {
    expect(layerViolations(path, readFileSync(join(ROOT, path), 'utf8'), forbidden)).toEqual([])
  })

  it('reports an import of a forbidden layer', () => {
    const target = forbidden[0] as string
    const from = `${layer}/x.ts`
    const specifier = posix.relative(posix.dirname(from), `${target}/y.js`)
    expect(
      layerViolations(
        from,
        `import { y } from '${specifier.startsWith('.') ? specifier : `./${specifier}`}'`,
        forbidden,
      ),
    ).toEqual([`imports ${specifier.startsWith('.') ? specifier : `./${specifier}`}`])
  })

  // Every entry of the rule, not only the first: an entry that can never match (a trailing slash) checks nothing.
  it.each(forbidden)('reports an import of %s', (target) => {
    const from = `${layer}/x.ts`
    const relative = posix.relative(posix.dirname(from), `${target}/y.js`)
    const specifier = relative.startsWith('.') ? relative : `./${relative}`
    expect(layerViolations(from, `import { y } from '${specifier}'`, forbidden)).toEqual([`imports ${specifier}`])
  })
})

describe('the layer rule of src/api-client', () => {
  const rule = LAYER_RULES.find(({ layer }) => layer === 'src/api-client')

  it('reports an import of the API server', () => {
    expect(
      layerViolations('src/api-client/x.ts', "import { y } from '../api/handler.js'", rule?.forbidden ?? []),
    ).toEqual(['imports ../api/handler.js'])
  })
})

describe('the code bundled for the browser', () => {
  // The dashboard and the API client it uses run in a browser: no Node module may reach their bundle.
  const browserFiles = [...sourceFiles('src/api-client', /\.ts$/), ...sourceFiles('src/dashboard', /\.ts$/)]

  it.each(browserFiles)('%s imports no Node built-in module', (path) => {
    const builtins = importedModules(path, readFileSync(join(ROOT, path), 'utf8')).filter(
      (specifier) => specifier.startsWith('node:') || builtinModules.includes(specifier),
    )
    expect(builtins).toEqual([])
  })
})

describe('src/adapters', () => {
  // One technology's adapter does not reach into another's: what two of them share (queue message bodies, the
  // catalogue, the AWS error classifier) lives in src/adapters itself.
  const technologies = readdirSync(join(ROOT, 'src/adapters'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)

  it('has adapters of several technologies', () => {
    expect(technologies).toEqual(expect.arrayContaining(['dynamodb', 'memory', 'sqs']))
  })

  it.each(technologies.flatMap((technology) => sourceFiles(`src/adapters/${technology}`, /\.ts$/)))(
    '%s imports no other technology’s adapter',
    (path) => {
      const own = path.split('/')[2]
      const others = technologies.filter((technology) => technology !== own).map((name) => `src/adapters/${name}`)
      expect(layerViolations(path, readFileSync(join(ROOT, path), 'utf8'), others)).toEqual([])
    },
  )

  it('reports a memory adapter importing the SQS adapter', () => {
    expect(
      layerViolations('src/adapters/memory/x.ts', "import { y } from '../sqs/messages.js'", ['src/adapters/sqs']),
    ).toEqual(['imports ../sqs/messages.js'])
  })
})

/** Relative imports of a file, as repository paths of the imported `.ts` files. */
const importedFiles = (path: string, source: string): string[] =>
  importedModules(path, source)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => posix.normalize(posix.join(posix.dirname(path), specifier)).replace(/\.js$/, '.ts'))

/** Every cycle of imports among `graph`'s files, each as the files it passes through, back to its first. */
const importCycles = (graph: ReadonlyMap<string, readonly string[]>): string[][] => {
  const cycles: string[][] = []
  const done = new Set<string>()
  const path: string[] = []
  const visit = (file: string): void => {
    path.push(file)
    for (const target of graph.get(file) ?? []) {
      const at = path.indexOf(target)
      if (at !== -1) cycles.push([...path.slice(at), target])
      else if (!done.has(target) && graph.has(target)) visit(target)
    }
    path.pop()
    done.add(file)
  }
  for (const file of graph.keys()) if (!done.has(file)) visit(file)
  return cycles
}

describe('imports', () => {
  it('form no cycle in src and functions (a module is understood before the ones that import it)', () => {
    const files = [...sourceFiles('src', /\.ts$/), ...sourceFiles('functions', /\.ts$/)]
    const graph = new Map(files.map((path) => [path, importedFiles(path, readFileSync(join(ROOT, path), 'utf8'))]))

    expect(importCycles(graph).map((cycle) => cycle.join(' → '))).toEqual([])
  })

  it('are reported when two modules import each other', () => {
    const graph = new Map([
      ['src/core/engine.ts', ['src/core/consumer.ts', 'src/core/store.ts']],
      ['src/core/consumer.ts', ['src/core/engine.ts']],
      ['src/core/store.ts', []],
    ])

    expect(importCycles(graph)).toEqual([['src/core/engine.ts', 'src/core/consumer.ts', 'src/core/engine.ts']])
  })
})

/** The longest a function may be, in lines: a longer one is split into named pieces. */
const MAX_FUNCTION_LINES = 80

/** The folders held to MAX_FUNCTION_LINES (add `src/core` here once its long functions are divided). */
const FUNCTION_LENGTH_CHECKED: readonly string[] = ['src/api', 'src/core']

/** Every function, method and arrow function of a file longer than `max` lines, as `name (N lines, line L)`. */
const longFunctions = (path: string, source: string, max: number): string[] => {
  const file = parse(path, source)
  const found: string[] = []
  const nameOf = (node: ts.FunctionLikeDeclaration): string => {
    if (node.name) return node.name.getText(file)
    const parent = node.parent
    if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) return parent.name.getText(file)
    return '(anonymous)'
  }
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = file.getLineAndCharacterOfPosition(node.getStart(file)).line
      const last = file.getLineAndCharacterOfPosition(node.getEnd()).line
      const lines = last - first + 1
      if (lines > max) found.push(`${nameOf(node as ts.FunctionLikeDeclaration)} (${lines} lines, line ${first + 1})`)
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

describe.each(FUNCTION_LENGTH_CHECKED)('the functions of %s', (dir) => {
  it.each(sourceFiles(dir, /\.ts$/))(`%s has none over ${MAX_FUNCTION_LINES} lines`, (path) => {
    expect(longFunctions(path, readFileSync(join(ROOT, path), 'utf8'), MAX_FUNCTION_LINES)).toEqual([])
  })
})

describe('the function length check', () => {
  const body = (lines: number) => Array.from({ length: lines }, (_, i) => `  const a${i} = ${i}`).join('\n')

  it.each([
    { what: 'a function declaration', source: `function long() {\n${body(80)}\n}`, found: ['long (82 lines, line 1)'] },
    {
      what: 'an arrow function',
      source: `export const long = () => {\n${body(79)}\n}`,
      found: ['long (81 lines, line 1)'],
    },
    {
      what: 'a method',
      source: `class A {\n  long() {\n${body(85)}\n  }\n}`,
      found: ['long (87 lines, line 2)'],
    },
    {
      what: 'a function inside another, each on its own',
      source: `export const outer = () => [\n  () => {\n${body(81)}\n  },\n]`,
      found: ['outer (85 lines, line 1)', '(anonymous) (83 lines, line 2)'],
    },
  ])('reports $what over the limit', ({ source, found }) => {
    expect(longFunctions('src/api/x.ts', source, MAX_FUNCTION_LINES)).toEqual(found)
  })

  it('accepts a function of exactly the limit', () => {
    expect(longFunctions('src/api/x.ts', `function ok() {\n${body(78)}\n}`, MAX_FUNCTION_LINES)).toEqual([])
  })
})
