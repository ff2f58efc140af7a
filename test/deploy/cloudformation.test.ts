import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { INDEX } from '../../src/adapters/dynamodb/keys.js'
import { tableDefinition, timeToLiveSpecification } from '../../src/adapters/dynamodb/table.js'
import { apiEnvSchema, lambdaEnvSchema } from '../../src/schemas/env.js'
import {
  arnOf,
  asArray,
  type CfnResource,
  getAttOf,
  loadPackagedService,
  packageDir,
  refOf,
  repoRoot,
  subOf,
} from './template.js'
import { readZip } from './zip.js'

/**
 * Checks the CloudFormation template and the function packages `npm run package` (osls + serverless-esbuild) writes
 * to .serverless/: what the code needs is there, and nothing more. Run `npm run package` before this file (`npm test`
 * does).
 */

const { template, functions: stateFunctions } = loadPackagedService()
const resources = template.Resources

const FUNCTION_NAMES = ['api', 'tick', 'run', 'events', 'start'] as const
type FunctionName = (typeof FUNCTION_NAMES)[number]
const SQS_CONSUMERS: readonly FunctionName[] = ['run', 'events', 'start']

const ACCOUNT = '123456789012'
const REGION = 'eu-west-1'

// ---- reading the template --------------------------------------------------------------------------------------

const byType = (type: string): [string, CfnResource][] =>
  Object.entries(resources).filter(([, resource]) => resource.Type === type)

const resource = (id: string): CfnResource => {
  const found = resources[id]
  if (!found) throw new Error(`the template has no resource '${id}'`)
  return found
}

const props = <T>(id: string): T => (resource(id).Properties ?? {}) as T

interface FunctionProps {
  FunctionName: string
  Handler: string
  Runtime: string
  Architectures?: string[]
  Timeout: number
  MemorySize: number
  Role: unknown
  Environment?: { Variables?: Record<string, unknown> }
  TracingConfig?: { Mode: string }
}

interface QueueProps {
  QueueName?: string
  VisibilityTimeout?: number
  MessageRetentionPeriod?: number
  RedrivePolicy?: { deadLetterTargetArn?: unknown; maxReceiveCount?: number | string }
}

interface MappingProps {
  EventSourceArn: unknown
  FunctionName: unknown
  BatchSize?: number
  MaximumBatchingWindowInSeconds?: number
  FunctionResponseTypes?: string[]
  ScalingConfig?: { MaximumConcurrency?: number }
}

interface Statement {
  Sid?: string
  Effect: string
  Principal?: unknown
  Action?: string | string[]
  NotAction?: unknown
  Resource?: unknown
  NotResource?: unknown
  Condition?: Record<string, Record<string, unknown>>
}

interface PolicyDocument {
  Statement: Statement | Statement[]
}

/** Logical id of each function's AWS::Lambda::Function, found by the name the framework gave it. */
const functionIds: Record<FunctionName, string> = Object.fromEntries(
  FUNCTION_NAMES.map((name) => {
    const state = stateFunctions[name]
    const found = byType('AWS::Lambda::Function').find(([, fn]) => fn.Properties?.FunctionName === state?.name)
    if (!state || !found) throw new Error(`function '${name}' is not in the packaged service`)
    return [name, found[0]]
  }),
) as Record<FunctionName, string>

const fn = (name: FunctionName): FunctionProps => props<FunctionProps>(functionIds[name])
const envOf = (name: FunctionName): Record<string, unknown> => fn(name).Environment?.Variables ?? {}

const queues = byType('AWS::SQS::Queue')
const queueIds = new Set(queues.map(([id]) => id))
/** A dead-letter queue is a queue some queue's RedrivePolicy points at, or the event bus's DeadLetterConfig. */
const deadLetterIds = new Set(
  queues.map(([, queue]) => arnOf((queue.Properties as QueueProps).RedrivePolicy?.deadLetterTargetArn) ?? ''),
)
for (const [, bus] of Object.entries(resources).filter(([, res]) => res.Type === 'AWS::Events::EventBus')) {
  deadLetterIds.add(arnOf((bus.Properties?.DeadLetterConfig as { Arn?: unknown } | undefined)?.Arn) ?? '')
}
deadLetterIds.delete('')
/** The bus lifecycle events go to, and its dead-letter queue (see infra/events.yml). */
const eventBusName = String(resources.EventBus?.Properties?.Name)
const eventBusDeadLetters = arnOf(
  (resources.EventBus?.Properties?.DeadLetterConfig as { Arn?: unknown } | undefined)?.Arn,
) as string
const sourceQueues = queues.filter(([id]) => !deadLetterIds.has(id))

const mappings = byType('AWS::Lambda::EventSourceMapping').map(([id, mapping]) => ({
  id,
  ...(mapping.Properties as unknown as MappingProps),
}))

/** The logical id of the function a mapping invokes (`FunctionName` is the function's ARN or name). */
const mappedFunctionId = (mapping: MappingProps): string | undefined =>
  arnOf(mapping.FunctionName) ?? refOf(mapping.FunctionName)

const consumedQueue = (name: FunctionName): string => {
  const found = mappings.filter((mapping) => mappedFunctionId(mapping) === functionIds[name])
  if (found.length !== 1) throw new Error(`${name} has ${found.length} event source mappings, not 1`)
  const queue = arnOf(found[0]?.EventSourceArn)
  if (!queue || !queueIds.has(queue)) throw new Error(`${name} does not consume a queue of this template`)
  return queue
}

const deadLetterOf = (queueId: string): string => {
  const target = arnOf(props<QueueProps>(queueId).RedrivePolicy?.deadLetterTargetArn)
  if (!target) throw new Error(`queue ${queueId} has no dead-letter queue`)
  return target
}

const runQueue = consumedQueue('run')
const startQueue = consumedQueue('start')

const roleOf = (name: FunctionName): string => {
  const role = arnOf(fn(name).Role)
  if (!role) throw new Error(`function ${name} has no role of this template (Role: ${JSON.stringify(fn(name).Role)})`)
  return role
}

const policyDocuments = (id: string, res: CfnResource): [string, PolicyDocument][] => {
  const p = res.Properties ?? {}
  if (res.Type === 'AWS::IAM::Role') {
    return asArray(p.Policies as { PolicyName: string; PolicyDocument: PolicyDocument }[] | undefined).map((policy) => [
      `${id}/${policy.PolicyName}`,
      policy.PolicyDocument,
    ])
  }
  if (res.Type === 'AWS::IAM::Policy' || res.Type === 'AWS::IAM::ManagedPolicy') {
    return [[id, p.PolicyDocument as PolicyDocument]]
  }
  return []
}

const IAM_TYPES = ['AWS::IAM::Role', 'AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']
/**
 * Resources this package creates: the ones under a condition that is false here (TracingPolicy without
 * tracing=on) are checked on their own.
 */
const created = (res: CfnResource): boolean => res.Condition !== 'TracingOn'

const allStatements = (): [string, Statement][] =>
  Object.entries(resources)
    .filter(([, res]) => IAM_TYPES.includes(res.Type) && created(res))
    .flatMap(([id, res]) => policyDocuments(id, res))
    .flatMap(([where, doc]) => asArray(doc.Statement).map((statement): [string, Statement] => [where, statement]))

/** Statements granting to a role: its inline policies, and policies of this template attached to it. */
const statementsOf = (roleId: string): Statement[] => {
  const attached = Object.entries(resources).filter(
    ([, res]) =>
      (res.Type === 'AWS::IAM::Policy' || res.Type === 'AWS::IAM::ManagedPolicy') &&
      created(res) &&
      asArray(res.Properties?.Roles as unknown[] | undefined).some((role) => refOf(role) === roleId),
  )
  expect(
    asArray(resource(roleId).Properties?.ManagedPolicyArns as unknown[] | undefined),
    `${roleId}: no managed policies from outside the template`,
  ).toEqual([])
  return [resource(roleId), ...attached.map(([, res]) => res)]
    .flatMap((res) => policyDocuments(roleId, res))
    .flatMap(([, doc]) => asArray(doc.Statement))
}

/**
 * A resource of a policy statement in words: `table`, `index:<name>`, `queue:<id>`, `role:<id>`,
 * `schedule:<name pattern>` (in the schedule group of this template), `log-group:<name>`, or `*`.
 */
const describeResource = (value: unknown): string => {
  if (value === '*') return '*'
  const arn = arnOf(value)
  if (arn) {
    const type = resources[arn]?.Type
    if (type === 'AWS::DynamoDB::Table') return 'table'
    if (type === 'AWS::SQS::Queue') return `queue:${arn}`
    if (type === 'AWS::IAM::Role') return `role:${arn}`
  }
  const sub = subOf(value)
  if (sub) {
    const index = /^\$\{(\w+)\.Arn\}\/index\/([\w.-]+)$/.exec(sub)
    if (index && resources[index[1] as string]?.Type === 'AWS::DynamoDB::Table') return `index:${index[2]}`
    const schedule =
      /^arn:\$\{AWS::Partition\}:scheduler:\$\{AWS::Region\}:\$\{AWS::AccountId\}:schedule\/\$\{(\w+)\}\/(.+)$/.exec(
        sub,
      )
    if (schedule && resources[schedule[1] as string]?.Type === 'AWS::Scheduler::ScheduleGroup') {
      return `schedule:${schedule[2]}`
    }
    const logs = /^arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:log-group:(.+):\*$/.exec(sub)
    if (logs) return `log-group:${logs[1]}`
    const bus = /^arn:\$\{AWS::Partition\}:events:\$\{AWS::Region\}:\$\{AWS::AccountId\}:event-bus\/(.+)$/.exec(sub)
    if (bus) return `event-bus:${bus[1]}`
  }
  const ref = refOf(value)
  if (ref && resources[ref]?.Type === 'AWS::SecretsManager::Secret') return `secret:${ref}`
  return `unrecognised ${JSON.stringify(value)}`
}

/** Every `action on resource` a role grants. */
const grantsOf = (roleId: string): string[] =>
  statementsOf(roleId)
    .flatMap((statement) =>
      asArray(statement.Action).flatMap((action) =>
        asArray(statement.Resource as unknown).map((res) => `${action} on ${describeResource(res)}`),
      ),
    )
    .sort()

const logGroupOf = (name: FunctionName): string => `/aws/lambda/${fn(name).FunctionName}`

const schedulerRole = arnOf(envOf('api').SCHEDULER_ROLE_ARN) ?? ''

/**
 * What each function's code calls (functions/*.ts → src/handlers → Engine → the adapters). Keep in step with the
 * code and with infra/roles.yml; infra/README.md explains each line.
 */
const expectedGrants = (name: FunctionName): string[] => {
  const on = (actions: string[], ...targets: string[]) =>
    actions.flatMap((action) => targets.map((target) => `${action} on ${target}`))
  const logs = on(['logs:CreateLogStream', 'logs:PutLogEvents'], `log-group:${logGroupOf(name)}`)
  const consume = (queue: string) => [
    ...on(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'], `queue:${queue}`),
    ...on(['sqs:SendMessage'], `queue:${runQueue}`, `queue:${deadLetterOf(queue)}`),
  ]
  const passSchedulerRole = on(['iam:PassRole'], `role:${schedulerRole}`)
  // Callbacks and lifecycle events (infra/events.yml): who opens or issues tokens, who publishes.
  const callbackSecret = on(['secretsmanager:GetSecretValue'], 'secret:CallbackSecret')
  const publish = on(['events:PutEvents'], `event-bus:${eventBusName}`)
  const grants: Record<FunctionName, () => string[]> = {
    tick: () => [
      ...logs,
      ...on(['dynamodb:Query'], `index:${INDEX.due}`, `index:${INDEX.outbox}`),
      ...on(['sqs:SendMessage'], `queue:${runQueue}`),
    ],
    api: () => [
      ...logs,
      ...on(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], 'table'),
      ...on(['dynamodb:Query'], `index:${INDEX.byType}`, `index:${INDEX.byBusiness}`),
      ...on(['sqs:SendMessage'], `queue:${runQueue}`),
      ...on(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule'], 'schedule:wake-*'),
      ...on(
        ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:GetSchedule', 'scheduler:DeleteSchedule'],
        'schedule:start-*',
      ),
      ...on(['scheduler:ListSchedules'], '*'),
      ...passSchedulerRole,
      ...callbackSecret,
      ...publish,
    ],
    run: () => [
      ...logs,
      ...consume(consumedQueue('run')),
      ...on(['dynamodb:GetItem', 'dynamodb:UpdateItem'], 'table'),
      ...on(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule'], 'schedule:wake-*'),
      ...passSchedulerRole,
      ...callbackSecret,
      ...publish,
      ...on(['sqs:SendMessage'], `queue:${eventBusDeadLetters}`),
    ],
    events: () => [
      ...logs,
      ...consume(consumedQueue('events')),
      ...on(['dynamodb:GetItem', 'dynamodb:UpdateItem'], 'table'),
      ...on(['dynamodb:Query'], `index:${INDEX.byBusiness}`),
      ...callbackSecret,
    ],
    start: () => [
      ...logs,
      ...consume(consumedQueue('start')),
      ...on(['dynamodb:PutItem', 'dynamodb:UpdateItem'], 'table'),
      ...on(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule'], 'schedule:wake-*'),
      ...passSchedulerRole,
      ...callbackSecret,
      ...publish,
    ],
  }
  return grants[name]().sort()
}

/** A value of the right shape for an environment variable whose value CloudFormation fills in at deploy time. */
const standIn = (variable: string, value: unknown): string => {
  if (typeof value === 'string' || typeof value === 'number') return String(value)
  const sub = subOf(value)
  // The API's URL: https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}.
  if (sub) {
    const pseudo: Record<string, string> = { 'AWS::Region': REGION, 'AWS::URLSuffix': 'amazonaws.com' }
    return sub.replace(/\$\{([\w:]+)\}/g, (_, name: string) => pseudo[name] ?? `${name.toLowerCase()}0123`)
  }
  const ref = refOf(value)
  if (ref) {
    const res = resource(ref)
    const p = res.Properties ?? {}
    if (res.Type === 'AWS::SecretsManager::Secret') {
      return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${p.Name ?? ref}-AbCdEf`
    }
    if (res.Type === 'AWS::SQS::Queue') return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${p.QueueName ?? ref}`
    if (res.Type === 'AWS::DynamoDB::Table') return String(p.TableName ?? ref)
    if (res.Type === 'AWS::Scheduler::ScheduleGroup') return String(p.Name ?? ref)
  }
  const arn = arnOf(value)
  if (arn) {
    const res = resource(arn)
    if (res.Type === 'AWS::SQS::Queue') return `arn:aws:sqs:${REGION}:${ACCOUNT}:${res.Properties?.QueueName ?? arn}`
    if (res.Type === 'AWS::IAM::Role') return `arn:aws:iam::${ACCOUNT}:role/${arn}`
  }
  throw new Error(`${variable}: no stand-in for ${JSON.stringify(value)}`)
}

const standInEnv = (name: FunctionName): Record<string, string> =>
  Object.fromEntries(Object.entries(envOf(name)).map(([variable, value]) => [variable, standIn(variable, value)]))

const artifactOf = (name: FunctionName): string => {
  const artifact = stateFunctions[name]?.package?.artifact ?? join('.serverless', `${name}.zip`)
  return isAbsolute(artifact) ? artifact : join(repoRoot, artifact)
}

// ---- the tests -------------------------------------------------------------------------------------------------

/** The files of the docs page, packaged with the api function only (src/api/routes/docs.ts serves them). */
const DOCS_ASSETS = [
  ...['package.json', 'swagger-ui-bundle.js', 'swagger-ui.css'].map((file) => `node_modules/swagger-ui-dist/${file}`),
  // The dashboard (src/api/routes/dashboard.ts): its bundle, nothing else.
  'dist/dashboard/app.js',
  'dist/dashboard/app.css',
]

describe('the packaged functions', () => {
  it('are exactly api, tick, run, events and start, on nodejs22.x and arm64', () => {
    expect(Object.keys(stateFunctions).sort()).toEqual([...FUNCTION_NAMES].sort())
    expect(byType('AWS::Lambda::Function')).toHaveLength(FUNCTION_NAMES.length)
    for (const name of FUNCTION_NAMES) {
      expect(fn(name).Runtime, name).toBe('nodejs22.x')
      expect(fn(name).Architectures, name).toEqual(['arm64'])
    }
  })

  it.each(FUNCTION_NAMES)('%s: its handler is a file of the repo, bundled as ESM in its own zip', (name) => {
    const handler = fn(name).Handler
    expect(handler).toBe(stateFunctions[name]?.handler)
    const match = /^(functions\/[\w-]+)\.handler$/.exec(handler)
    expect(match, `handler ${handler} is not functions/<name>.handler`).not.toBeNull()
    const file = match?.[1] as string
    expect(existsSync(join(repoRoot, `${file}.ts`)), `${file}.ts exists`).toBe(true)
    const artifact = artifactOf(name)
    expect(existsSync(artifact), `${artifact} exists`).toBe(true)
    const entries = readZip(artifact).map((entry) => entry.name)
    expect(entries).toContain(`${file}.mjs`)
  })

  it.each(FUNCTION_NAMES)('%s: the bundle holds no AWS SDK and defines require for the CommonJS it bundles', (name) => {
    const entries = readZip(artifactOf(name))
    expect(
      entries
        .filter((entry) => /(^|\/)node_modules\//.test(entry.name))
        .map((entry) => entry.name)
        .sort(),
    ).toEqual(name === 'api' ? DOCS_ASSETS.filter((asset) => asset.startsWith('node_modules/')).sort() : [])
    // The function bundles; the dashboard's browser bundle is a static file the function serves.
    const bundles = entries.filter((e) => /\.m?js$/.test(e.name) && !/^(node_modules|dist)\//.test(e.name))
    for (const entry of bundles) {
      const code = entry.read().toString('utf8')
      // esbuild marks every bundled module with its path (the bundles are not minified).
      // (aws-xray-sdk-core, behind Powertools Tracer, brings one small @smithy module of its own: a list of error
      // names, not SDK code the runtime provides.)
      expect(code, `${entry.name} bundles AWS SDK code`).not.toMatch(
        /^\/\/ node_modules\/@(aws-sdk|smithy\/(?!service-error-classification\/)|aws-crypto)\//m,
      )
      // ...and imports the SDK the Lambda runtime provides.
      expect(code, `${entry.name} imports the SDK`).toMatch(/^\s*} from "@aws-sdk\/|^import .* from "@aws-sdk\//m)
      // Bundled CommonJS (aws-xray-sdk-core, through Powertools Tracer) calls require(): the banner must define it.
      if (code.includes('Dynamic require of')) {
        expect(
          code,
          `${entry.name}: a bundled CommonJS module calls require(); add an esbuild banner defining require`,
        ).toMatch(/^import \{ createRequire as (\w+) \} from 'node:module'; const require = \1\(import\.meta\.url\);/)
      }
    }
  })

  it.each(FUNCTION_NAMES)('%s: the bundle loads with the environment of the template', (name) => {
    const dir = join(packageDir, 'bundle-check', name)
    rmSync(dir, { recursive: true, force: true })
    for (const entry of readZip(artifactOf(name))) {
      if (entry.name.endsWith('/')) continue
      mkdirSync(dirname(join(dir, entry.name)), { recursive: true })
      writeFileSync(join(dir, entry.name), entry.read())
    }
    // Inside the repo, so that the bundle's @aws-sdk imports resolve (to the repo's copy, like the runtime's).
    const url = pathToFileURL(join(dir, `${fn(name).Handler.replace(/\.handler$/, '')}.mjs`)).href
    const output = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(url)}); console.log(typeof m.handler)`],
      {
        env: {
          PATH: process.env.PATH ?? '',
          AWS_REGION: REGION,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...standInEnv(name),
        },
        encoding: 'utf8',
        timeout: 20_000,
      },
    )
    expect(output.trim()).toBe('function')
    rmSync(dir, { recursive: true, force: true })
  })
})

describe('CORS', () => {
  const api = () => byType('AWS::ApiGatewayV2::Api')[0]?.[1].Properties ?? {}

  it('is off by default: no CorsConfiguration, and the api function reads no origin', () => {
    expect(api().CorsConfiguration).toBeUndefined()
    expect(envOf('api').CORS_ALLOWED_ORIGINS).toBe('')
  })

  it("the HTTP API's setting comes from the same parameters as the api function's CORS_* variables", async () => {
    const { default: corsSetting } = (await import(pathToFileURL(join(repoRoot, 'infra/cors.cjs')).href)) as {
      default: (context: { resolveVariable: (name: string) => Promise<unknown> }) => Promise<unknown>
    }
    const params: Record<string, unknown> = {
      corsAllowedOrigins: 'https://a.example, https://b.example',
      corsAllowedMethods: 'GET,POST',
      corsAllowedHeaders: 'content-type',
      corsExposedHeaders: 'location',
      corsMaxAgeSeconds: 60,
    }
    const resolveVariable = async (name: string) => params[name.replace(/^param:/, '')]
    expect(await corsSetting({ resolveVariable })).toEqual({
      allowedOrigins: ['https://a.example', 'https://b.example'],
      allowedMethods: ['GET', 'POST'],
      allowedHeaders: ['content-type'],
      exposedResponseHeaders: ['location'],
      maxAge: 60,
    })
    const env = apiEnvSchema.parse({
      CORS_ALLOWED_ORIGINS: params.corsAllowedOrigins,
      CORS_ALLOWED_METHODS: params.corsAllowedMethods,
      CORS_ALLOWED_HEADERS: params.corsAllowedHeaders,
      CORS_EXPOSED_HEADERS: params.corsExposedHeaders,
      CORS_MAX_AGE_SECONDS: String(params.corsMaxAgeSeconds),
    })
    expect(env.CORS_ALLOWED_ORIGINS).toEqual(['https://a.example', 'https://b.example'])
    params.corsAllowedOrigins = ''
    expect(await corsSetting({ resolveVariable })).toBe(false)
    // The template passes every parameter to the function under its variable's name.
    const variables = envOf('api')
    for (const variable of ['CORS_ALLOWED_METHODS', 'CORS_ALLOWED_HEADERS', 'CORS_EXPOSED_HEADERS']) {
      expect(typeof variables[variable]).toBe('string')
    }
  })
})

describe('the docs page in the api package', () => {
  it('carries the Swagger UI files exactly as swagger-ui-dist ships them, and the zip stays small', () => {
    const entries = new Map(readZip(artifactOf('api')).map((entry) => [entry.name, entry]))
    for (const asset of DOCS_ASSETS) {
      const entry = entries.get(asset)
      expect(entry, asset).toBeDefined()
      expect(entry?.read().equals(readFileSync(join(repoRoot, asset)))).toBe(true)
    }
    // ~0.2 MB of code, ~0.55 MB of compressed Swagger UI, ~0.03 MB of dashboard; no graph library any more.
    expect(statSync(artifactOf('api')).size).toBeLessThan(1.2 * 1024 * 1024)
    expect([...entries.keys()].filter((name) => name.includes('mermaid'))).toEqual([])
  })

  it('is served by the packaged handler from the files in its own zip', () => {
    const dir = join(packageDir, 'bundle-check', 'api-docs')
    rmSync(dir, { recursive: true, force: true })
    for (const entry of readZip(artifactOf('api'))) {
      if (entry.name.endsWith('/')) continue
      mkdirSync(dirname(join(dir, entry.name)), { recursive: true })
      writeFileSync(join(dir, entry.name), entry.read())
    }
    // Mark the packaged copies, so that finding the repository's own copies instead would show.
    const served = {
      '/docs/swagger-ui.css': 'node_modules/swagger-ui-dist/swagger-ui.css',
      '/dashboard/app.css': 'dist/dashboard/app.css',
    }
    for (const file of Object.values(served)) {
      writeFileSync(join(dir, file), `${readFileSync(join(dir, file), 'utf8')}/* packaged */`)
    }
    const url = pathToFileURL(join(dir, 'functions/api.mjs')).href
    const events = Object.keys(served).map((rawPath) => ({
      version: '2.0',
      rawPath,
      rawQueryString: '',
      headers: {},
      isBase64Encoded: false,
      requestContext: { http: { method: 'GET' }, requestId: 'r', stage: '$default' },
    }))
    const script = `const m = await import(${JSON.stringify(url)}); const out = []; for (const e of ${JSON.stringify(events)}) { const r = await m.handler(e, {}); out.push({ status: r.statusCode, type: r.headers['content-type'], marked: r.body.endsWith('/* packaged */'), nosniff: r.headers['x-content-type-options'], frames: r.headers['x-frame-options'] }) } console.log(JSON.stringify(out))`
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        PATH: process.env.PATH ?? '',
        AWS_REGION: REGION,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...standInEnv('api'),
      },
      encoding: 'utf8',
      timeout: 20_000,
    })
    // The deployed handler hardens its answers as the local one does (src/api/security.ts).
    const answer = { status: 200, type: 'text/css; charset=utf-8', marked: true, nosniff: 'nosniff', frames: 'DENY' }
    expect(JSON.parse(output.trim().split('\n').pop() as string)).toEqual([answer, answer])
    rmSync(dir, { recursive: true, force: true })
  })
})

describe('the environment of each function', () => {
  const known = Object.keys(lambdaEnvSchema.shape)
  const apiKnown = [...known, ...Object.keys(apiEnvSchema.shape)]

  it.each(FUNCTION_NAMES)('%s: parses with the runtime schema and names only known variables', (name) => {
    const env = standInEnv(name)
    const allowed = name === 'api' ? apiKnown : known
    expect(Object.keys(env).filter((variable) => !allowed.includes(variable))).toEqual([])
    if (name === 'api') expect(apiEnvSchema.parse(env).CORS_ALLOWED_ORIGINS).toBeUndefined()
    const parsed = lambdaEnvSchema.parse(env)
    // Endpoints are for local runs only.
    expect(parsed.DYNAMODB_ENDPOINT).toBeUndefined()
    expect(parsed.SQS_ENDPOINT).toBeUndefined()
  })

  it.each(FUNCTION_NAMES)('%s: points at this deployment’s table, run queue and scheduler', (name) => {
    const env = envOf(name)
    const table = byType('AWS::DynamoDB::Table')
    expect(table).toHaveLength(1)
    expect(refOf(env.TABLE_NAME)).toBe(table[0]?.[0])
    expect(refOf(env.RUN_QUEUE_URL), 'RUN_QUEUE_URL is the queue the run function consumes').toBe(runQueue)
    expect(arnOf(env.RUN_QUEUE_ARN), 'RUN_QUEUE_ARN is the queue the run function consumes').toBe(runQueue)
    expect(resource(refOf(env.SCHEDULER_GROUP) ?? '').Type).toBe('AWS::Scheduler::ScheduleGroup')
    expect(arnOf(env.SCHEDULER_ROLE_ARN)).toBe(schedulerRole)
  })

  it('api: START_QUEUE_ARN is the queue the start function consumes; no one else has it', () => {
    expect(arnOf(envOf('api').START_QUEUE_ARN)).toBe(startQueue)
    for (const name of FUNCTION_NAMES.filter((n) => n !== 'api'))
      expect(envOf(name).START_QUEUE_ARN, name).toBeUndefined()
  })

  it.each(SQS_CONSUMERS)('%s: DEAD_LETTER_QUEUE_URL and MAX_RECEIVE_COUNT are those of its own queue', (name) => {
    const env = envOf(name)
    const queue = consumedQueue(name)
    expect(refOf(env.DEAD_LETTER_QUEUE_URL)).toBe(deadLetterOf(queue))
    expect(Number(env.MAX_RECEIVE_COUNT)).toBe(Number(props<QueueProps>(queue).RedrivePolicy?.maxReceiveCount))
  })

  it('api and tick consume no queue, so they have no dead-letter queue', () => {
    for (const name of ['api', 'tick'] as const) {
      expect(envOf(name).DEAD_LETTER_QUEUE_URL, name).toBeUndefined()
      expect(envOf(name).MAX_RECEIVE_COUNT, name).toBeUndefined()
    }
  })
})

describe('the queues', () => {
  it('are a run, an events and a start queue, each with its own dead-letter queue', () => {
    expect(sourceQueues.map(([id]) => id).sort()).toEqual([runQueue, startQueue, consumedQueue('events')].sort())
    // ... and the event bus's.
    expect(deadLetterIds.size).toBe(sourceQueues.length + 1)
  })

  it('the event bus has a dead-letter queue of its own, which EventBridge of this account may send to', () => {
    const bus = resource('EventBus')
    expect(bus.Condition).toBe('CreateEventBus')
    expect(template.Conditions?.CreateEventBus).toEqual({ 'Fn::Equals': [{ Ref: 'ExistingEventBusName' }, ''] })
    expect(props<QueueProps>(eventBusDeadLetters).MessageRetentionPeriod).toBe(14 * 24 * 3600)
    const policy = byType('AWS::SQS::QueuePolicy').map(([, p]) => p.Properties ?? {})
    expect(policy).toHaveLength(1)
    expect(asArray(policy[0]?.Queues as unknown[]).map(refOf)).toEqual([eventBusDeadLetters])
    expect(asArray((policy[0]?.PolicyDocument as PolicyDocument | undefined)?.Statement)).toEqual([
      expect.objectContaining({
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
      }),
    ])
  })

  it('the callback secret is generated at deployment, and given to the functions that issue or open tokens', () => {
    expect(resource('CallbackSecret').Properties?.GenerateSecretString).toMatchObject({ PasswordLength: 64 })
    for (const name of FUNCTION_NAMES) {
      const env = envOf(name)
      expect(refOf(env.CALLBACK_SECRET_ARN), name).toBe(name === 'tick' ? undefined : 'CallbackSecret')
      expect(env.EVENT_BUS_NAME, name).toBe(name === 'tick' || name === 'events' ? undefined : eventBusName)
    }
  })

  it.each(sourceQueues.map(([id]) => id))('%s: redrives to a queue of the template after 5 receives', (id) => {
    const redrive = props<QueueProps>(id).RedrivePolicy
    expect(redrive, `${id} has a RedrivePolicy`).toBeDefined()
    const target = arnOf(redrive?.deadLetterTargetArn)
    expect(target && queueIds.has(target), `${id}: deadLetterTargetArn is a queue of this template`).toBe(true)
    expect(Number(redrive?.maxReceiveCount)).toBe(5)
    const dlq = props<QueueProps>(target as string)
    expect(dlq.MessageRetentionPeriod, 'dead letters are kept 14 days').toBe(14 * 24 * 3600)
    expect(dlq.MessageRetentionPeriod).toBeGreaterThan(props<QueueProps>(id).MessageRetentionPeriod ?? 4 * 24 * 3600)
  })

  it.each(sourceQueues.map(([id]) => id))('%s: visibility timeout ≥ 6 × its consumer’s timeout', (id) => {
    const consumers = mappings.filter((mapping) => arnOf(mapping.EventSourceArn) === id)
    expect(consumers, `${id} has one consumer`).toHaveLength(1)
    const mapping = consumers[0] as MappingProps
    const timeout = props<FunctionProps>(mappedFunctionId(mapping) ?? '').Timeout
    const window = mapping.MaximumBatchingWindowInSeconds ?? 0
    expect(props<QueueProps>(id).VisibilityTimeout ?? 30).toBeGreaterThanOrEqual(6 * timeout + window)
  })

  it('every SQS event source reports batch item failures and is bounded', () => {
    expect(mappings).toHaveLength(SQS_CONSUMERS.length)
    for (const mapping of mappings) {
      expect(mapping.FunctionResponseTypes, mapping.id).toEqual(['ReportBatchItemFailures'])
      expect(mapping.BatchSize, mapping.id).toBeGreaterThan(0)
      expect(mapping.MaximumBatchingWindowInSeconds, mapping.id).toBeDefined()
      expect(mapping.ScalingConfig?.MaximumConcurrency, mapping.id).toBeGreaterThanOrEqual(2)
    }
  })

  it('every dead-letter queue has an alarm on a visible message', () => {
    const alarms = byType('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties ?? {})
    for (const dlq of deadLetterIds) {
      const found = alarms.filter(
        (alarm) =>
          alarm.Namespace === 'AWS/SQS' &&
          alarm.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          asArray(alarm.Dimensions as { Name: string; Value: unknown }[]).some(
            (d) => d.Name === 'QueueName' && getAttOf(d.Value)?.join('.') === `${dlq}.QueueName`,
          ),
      )
      expect(found, `alarm on ${dlq}`).toHaveLength(1)
      expect(found[0]?.Threshold).toBe(0)
      expect(found[0]?.ComparisonOperator).toBe('GreaterThanThreshold')
    }
  })
})

describe('the table', () => {
  const expected = tableDefinition('x')
  const tables = byType('AWS::DynamoDB::Table')
  const table = (tables[0]?.[1].Properties ?? {}) as Record<string, unknown>

  it('is the one tableDefinition() describes: keys, attributes, on demand', () => {
    expect(tables).toHaveLength(1)
    expect(table.KeySchema).toEqual(expected.KeySchema)
    const sortByName = (list: unknown) =>
      [...(list as { AttributeName: string }[])].sort((a, b) => a.AttributeName.localeCompare(b.AttributeName))
    expect(sortByName(table.AttributeDefinitions)).toEqual(sortByName(expected.AttributeDefinitions))
    expect(table.BillingMode).toBe(expected.BillingMode)
  })

  it.each((expected.GlobalSecondaryIndexes ?? []).map((gsi) => [gsi.IndexName, gsi] as const))(
    'has the %s index with the same keys and projection',
    (indexName, gsi) => {
      const found = (table.GlobalSecondaryIndexes as typeof expected.GlobalSecondaryIndexes)?.find(
        (candidate) => candidate.IndexName === indexName,
      )
      expect(found, `index ${indexName}`).toBeDefined()
      expect(found?.KeySchema).toEqual(gsi.KeySchema)
      expect(found?.Projection).toEqual(gsi.Projection)
    },
  )

  it('has no index the code does not know, point-in-time recovery and no TTL', () => {
    expect((table.GlobalSecondaryIndexes as { IndexName: string }[]).map((gsi) => gsi.IndexName).sort()).toEqual(
      (expected.GlobalSecondaryIndexes ?? []).map((gsi) => gsi.IndexName).sort(),
    )
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true })
    expect(table.TimeToLiveSpecification).toEqual(timeToLiveSpecification)
    expect(typeof table.DeletionProtectionEnabled).toBe('boolean')
  })
})

describe('IAM', () => {
  it('no statement grants an action with a wildcard, uses NotAction/NotResource, or denies', () => {
    const statements = allStatements()
    expect(statements.length).toBeGreaterThan(0)
    for (const [where, statement] of statements) {
      expect(statement.Effect, where).toBe('Allow')
      expect(statement.NotAction, where).toBeUndefined()
      expect(statement.NotResource, where).toBeUndefined()
      for (const action of asArray(statement.Action)) expect(action, where).not.toContain('*')
    }
  })

  it("Resource '*' appears only for scheduler:ListSchedules, which has no resource type", () => {
    for (const [where, statement] of allStatements()) {
      if (asArray(statement.Resource as unknown).includes('*')) {
        expect(asArray(statement.Action), where).toEqual(['scheduler:ListSchedules'])
      }
    }
  })

  it('grants X-Ray writes to every function only with tracing=on, and traces the functions then only', () => {
    const parameter = (template as { Parameters?: Record<string, { Default?: unknown }> }).Parameters?.Tracing
    expect(parameter?.Default, 'tracing is off in the ci package').toBe('off')
    expect(template.Conditions?.TracingOn).toEqual({ 'Fn::Equals': [{ Ref: 'Tracing' }, 'on'] })
    const policy = resource('TracingPolicy')
    expect(policy.Type).toBe('AWS::IAM::Policy')
    expect(policy.Condition).toBe('TracingOn')
    expect(
      asArray(policy.Properties?.Roles as unknown[])
        .map(refOf)
        .sort(),
    ).toEqual(FUNCTION_NAMES.map(roleOf).sort())
    const statements = policyDocuments('TracingPolicy', policy).flatMap(([, doc]) => asArray(doc.Statement))
    expect(statements).toEqual([
      {
        Sid: 'XRayWrite',
        Effect: 'Allow',
        Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
        Resource: '*',
      },
    ])
    for (const name of FUNCTION_NAMES) {
      expect(fn(name).TracingConfig, name).toEqual({ Mode: 'PassThrough' })
      expect(envOf(name).TRACING, name).toBe('off')
    }
  })

  it('each function has a role of its own that only Lambda can assume', () => {
    const roles = FUNCTION_NAMES.map(roleOf)
    expect(new Set(roles).size).toBe(FUNCTION_NAMES.length)
    for (const role of roles) {
      const trust = asArray(
        props<{ AssumeRolePolicyDocument: PolicyDocument }>(role).AssumeRolePolicyDocument.Statement,
      )
      expect(trust, role).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ])
    }
  })

  it.each(FUNCTION_NAMES)('%s: its role grants exactly what its code calls', (name) => {
    expect(grantsOf(roleOf(name))).toEqual(expectedGrants(name))
  })

  it('the tick only reads the due index and sends run requests: no item writes', () => {
    const grants = grantsOf(roleOf('tick'))
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem']) {
      expect(grants.filter((grant) => grant.startsWith(`${action} `))).toEqual([])
    }
    expect(grants.filter((grant) => grant.startsWith('dynamodb:'))).toEqual([
      `dynamodb:Query on index:${INDEX.due}`,
      `dynamodb:Query on index:${INDEX.outbox}`,
    ])
  })

  it('only the api and the consumers that schedule wake-ups (run, start) may pass the scheduler role', () => {
    const passing = FUNCTION_NAMES.filter((name) => grantsOf(roleOf(name)).some((g) => g.startsWith('iam:PassRole ')))
    expect(passing.sort()).toEqual(['api', 'run', 'start'])
    for (const name of passing) {
      const statements = statementsOf(roleOf(name)).filter((s) => asArray(s.Action).includes('iam:PassRole'))
      for (const statement of statements) {
        expect(asArray(statement.Resource as unknown).map(describeResource)).toEqual([`role:${schedulerRole}`])
        expect(statement.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } })
      }
    }
  })

  it('only the api manages recurring start-* schedules; the events consumer schedules nothing', () => {
    for (const name of FUNCTION_NAMES) {
      const grants = grantsOf(roleOf(name))
      if (name !== 'api')
        expect(
          grants.filter((grant) => grant.includes('schedule:start-')),
          name,
        ).toEqual([])
    }
    expect(grantsOf(roleOf('events')).filter((grant) => grant.startsWith('scheduler:'))).toEqual([])
  })

  it('the scheduler role can be assumed by EventBridge Scheduler only and sends to the run and start queues only', () => {
    const trust = asArray(
      props<{ AssumeRolePolicyDocument: PolicyDocument }>(schedulerRole).AssumeRolePolicyDocument.Statement,
    )
    expect(trust).toHaveLength(1)
    expect(trust[0]?.Principal).toEqual({ Service: 'scheduler.amazonaws.com' })
    expect(grantsOf(schedulerRole)).toEqual(
      [`sqs:SendMessage on queue:${runQueue}`, `sqs:SendMessage on queue:${startQueue}`].sort(),
    )
  })

  it.each(FUNCTION_NAMES)('%s: writes logs to its own log group, which the template creates', (name) => {
    const groups = byType('AWS::Logs::LogGroup').map(([, group]) => group.Properties?.LogGroupName)
    expect(groups).toContain(logGroupOf(name))
    const logGrants = grantsOf(roleOf(name)).filter((grant) => grant.startsWith('logs:'))
    expect(
      logGrants.every((grant) => grant.endsWith(`on log-group:${logGroupOf(name)}`)),
      logGrants.join(),
    ).toBe(true)
  })
})

describe('the triggers and the alarms', () => {
  it('the HTTP API sends the read, write and schedules route groups to the api function with payload 2.0', () => {
    const routes = byType('AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties ?? {})
    expect(routes.map((route) => route.RouteKey).sort()).toEqual(
      [
        ...['GET', 'HEAD'].flatMap((method) =>
          [
            '/workflows',
            '/workflows/{proxy+}',
            '/workflow-types',
            '/workflow-types/{proxy+}',
            '/openapi.json',
            '/docs',
            '/docs/{proxy+}',
            '/',
            '/dashboard/{proxy+}',
          ].map((path) => `${method} ${path}`),
        ),
        'POST /workflows',
        'POST /workflows/{proxy+}',
        'ANY /schedules',
        'ANY /schedules/{proxy+}',
        // The public callbacks group (README, "Security").
        'POST /callbacks/{token}',
      ].sort(),
    )
    const integrations = byType('AWS::ApiGatewayV2::Integration')
    expect(integrations).toHaveLength(1)
    const [integrationId, integration] = integrations[0] as [string, CfnResource]
    expect(integration.Properties?.PayloadFormatVersion).toBe('2.0')
    expect(arnOf(integration.Properties?.IntegrationUri)).toBe(functionIds.api)
    for (const route of routes) {
      expect(route.Target, String(route.RouteKey)).toEqual({
        'Fn::Join': ['/', ['integrations', { Ref: integrationId }]],
      })
    }
  })

  it('the tick runs every minute', () => {
    const rules = byType('AWS::Events::Rule').map(([, rule]) => rule.Properties ?? {})
    expect(rules).toHaveLength(1)
    expect(rules[0]?.ScheduleExpression).toBe('rate(1 minute)')
    expect(asArray(rules[0]?.Targets as { Arn: unknown }[]).map((target) => arnOf(target.Arn))).toEqual([
      functionIds.tick,
    ])
  })

  it.each(FUNCTION_NAMES)('%s: an alarm fires on any error', (name) => {
    const found = byType('AWS::CloudWatch::Alarm')
      .map(([, alarm]) => alarm.Properties ?? {})
      .filter(
        (alarm) =>
          alarm.Namespace === 'AWS/Lambda' &&
          alarm.MetricName === 'Errors' &&
          asArray(alarm.Dimensions as { Name: string; Value: unknown }[]).some(
            (d) => d.Name === 'FunctionName' && refOf(d.Value) === functionIds[name],
          ),
      )
    expect(found).toHaveLength(1)
    expect(found[0]?.Threshold).toBe(0)
    expect(found[0]?.ComparisonOperator).toBe('GreaterThanThreshold')
  })

  it('alarms on the tick lag, incomplete ticks and dead letters from the functions’ EMF metrics, for this stage’s service', () => {
    const alarms = Object.fromEntries(byType('AWS::CloudWatch::Alarm'))
    const lag = alarms.TickLagAlarm?.Properties ?? {}
    expect(lag).toMatchObject({
      Namespace: 'tickflow',
      MetricName: 'OldestTickLagMs',
      Dimensions: [{ Name: 'service', Value: 'tickflow-ci' }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'breaching',
    })
    expect(alarms.TickIncompleteAlarm?.Properties).toMatchObject({
      Namespace: 'tickflow',
      MetricName: 'IncompleteTicks',
      Dimensions: [{ Name: 'service', Value: 'tickflow-ci' }],
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    })
    const dead = (alarms.DeadLettersAlarm?.Properties?.Metrics ?? []) as {
      MetricStat?: { Metric: { MetricName: string; Dimensions: { Name: string; Value: string }[] } }
    }[]
    const queues = dead.flatMap((metric) =>
      metric.MetricStat?.Metric.MetricName === 'DeadLetters'
        ? metric.MetricStat.Metric.Dimensions.filter((d) => d.Name === 'queue').map((d) => d.Value)
        : [],
    )
    expect(queues.sort()).toEqual(['events', 'run', 'start'])
    const env = fn('run').Environment?.Variables ?? {}
    expect(env.POWERTOOLS_SERVICE_NAME).toBe('tickflow-ci')
    expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe('tickflow')
    expect(env.TRACING).toBe('off')
  })

  it('every alarm notifies the AlarmTopicArn stack parameter when it is set, and nothing otherwise', () => {
    const parameter = (template as { Parameters?: Record<string, { Default?: unknown }> }).Parameters?.AlarmTopicArn
    expect(parameter?.Default, 'no topic in the ci package').toBe('')
    expect(template.Conditions?.HasAlarmTopic).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'AlarmTopicArn' }, ''] }],
    })
    const alarms = byType('AWS::CloudWatch::Alarm')
    // One per function, one per dead-letter queue, and three on the EMF metrics (tick lag, incomplete ticks, dead
    // letters).
    expect(alarms).toHaveLength(FUNCTION_NAMES.length + deadLetterIds.size + 3)
    for (const [id, alarm] of alarms) {
      expect(alarm.Properties?.AlarmActions, id).toEqual({
        'Fn::If': ['HasAlarmTopic', [{ Ref: 'AlarmTopicArn' }], { Ref: 'AWS::NoValue' }],
      })
    }
  })

  it('the outputs name the API URL, the queues and the table', () => {
    const outputs = template.Outputs ?? {}
    expect(getAttOf(outputs.ApiUrl?.Value)).toEqual(['HttpApi', 'ApiEndpoint'])
    expect(refOf(outputs.TableName?.Value)).toBe(byType('AWS::DynamoDB::Table')[0]?.[0])
    expect(refOf(outputs.RunQueueUrl?.Value)).toBe(runQueue)
    expect(refOf(outputs.EventsQueueUrl?.Value)).toBe(consumedQueue('events'))
    expect(refOf(outputs.StartQueueUrl?.Value)).toBe(startQueue)
  })
})
