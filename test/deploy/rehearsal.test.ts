import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  paginateListStackResources,
  type Stack,
  UpdateStackCommand,
} from '@aws-sdk/client-cloudformation'
import { DescribeContinuousBackupsCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  DescribeEventBusCommand,
  DescribeRuleCommand,
  EventBridgeClient,
  ListTargetsByRuleCommand,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge'
import { GetRoleCommand, IAMClient, ListRolePoliciesCommand } from '@aws-sdk/client-iam'
import { GetEventSourceMappingCommand, GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda'
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import {
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  SchedulerClient,
} from '@aws-sdk/client-scheduler'
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'
import type { APIGatewayProxyStructuredResultV2, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tableDefinition } from '../../src/adapters/dynamodb/table.js'
import { EventBridgeWakeups } from '../../src/adapters/scheduler/eventbridge-wakeups.js'
import { lambdaEnvSchema } from '../../src/schemas/env.js'
import { type PublishedDetail, publishedDetailSchema } from '../../src/schemas/lifecycle-events.js'
import { apiEvent } from '../support/api-events.js'
import { CHILD_PROCESS_TIMEOUT_MS } from '../support/timeouts.js'
import { type DocumentedResource, documentedResources } from './documented-resources.js'
import { MOTO_VERSION, type Moto, motoVersion, startMoto } from './moto.js'
import { describeWith, skipsWithout } from './python-tools.js'
import { asArray, type CfnResource, loadPackagedService, packageDir, repoRoot, type Template } from './template.js'
import { readZip } from './zip.js'

/**
 * The deploy rehearsal: the packaged stack created on moto_server, every resource the README documents checked as
 * created through the AWS SDK, then the real bundles run against the created resources. Lambda itself cannot run
 * here (moto's invoke needs Docker): each bundle's handler is called in a child process with the environment moto's
 * Lambda holds for it, pointed at moto.
 */

const REGION = 'eu-west-1'
const STACK = 'tickflow-ci'
const ARTIFACT_BUCKET = 'tickflow-rehearsal-artifacts'
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' }

const { template, functions: stateFunctions } = loadPackagedService()
const documented = documentedResources()

let moto: Moto
let clients: {
  cfn: CloudFormationClient
  s3: S3Client
  dynamo: DynamoDBClient
  sqs: SQSClient
  lambda: LambdaClient
  events: EventBridgeClient
  iam: IAMClient
  scheduler: SchedulerClient
  secrets: SecretsManagerClient
}
let stack: Stack
/** Logical id → physical id of every resource moto created. */
const created = new Map<string, { physicalId: string; type: string }>()
/** What moto could not model, printed at the end and kept in the closing note. */
const report: string[] = []

/**
 * Properties moto's CloudFormation accepts but does not apply: the created resource has moto's default instead.
 * The rehearsal checks the template asks for the documented value and that moto still shows its default (so a moto
 * that starts modelling one makes this list fail, and the check can become a real one).
 */
const PROPERTY_GAPS = {
  architectures: {
    what: 'AWS::Lambda::Function Architectures (every function is created x86_64)',
    motoDefault: ['x86_64'],
  },
  pointInTimeRecovery: {
    what: 'AWS::DynamoDB::Table PointInTimeRecoverySpecification (created DISABLED)',
    motoDefault: 'DISABLED',
  },
  eventBusDeadLetters: {
    what: 'AWS::Events::EventBus DeadLetterConfig (the bus is created without it)',
    motoDefault: undefined,
  },
} as const
const propertyGapsSeen = new Set<string>()

/** `actual` is what moto created, `asked` what the template asks for, `documented` what the README promises. */
const expectModelled = (gap: keyof typeof PROPERTY_GAPS, actual: unknown, asked: unknown, documented: unknown) => {
  expect(asked, 'the template asks for the documented value').toEqual(documented)
  if (JSON.stringify(actual) === JSON.stringify(documented)) return
  expect(actual, `moto shows neither the asked value nor its known default for ${PROPERTY_GAPS[gap].what}`).toEqual(
    PROPERTY_GAPS[gap].motoDefault,
  )
  propertyGapsSeen.add(PROPERTY_GAPS[gap].what)
}

const resourceOf = (id: string): CfnResource => {
  const found = template.Resources[id]
  if (!found) throw new Error(`the packaged template has no resource '${id}'`)
  return found
}

const physicalIdOf = (id: string): string => {
  const found = created.get(id)
  if (!found) throw new Error(`moto did not create '${id}' (${resourceOf(id).Type})`)
  return found.physicalId
}

/** The logical ids an expression refers to (Ref, GetAtt, `${X}` in Sub), pseudo parameters left out. */
const referencesOf = (value: unknown): string[] => {
  if (Array.isArray(value)) return value.flatMap(referencesOf)
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value as Record<string, unknown>).flatMap(([key, inner]) => {
    if (key === 'Ref' && typeof inner === 'string') return inner.startsWith('AWS::') ? [] : [inner]
    if (key === 'Fn::GetAtt') return [Array.isArray(inner) ? String(inner[0]) : (String(inner).split('.')[0] as string)]
    if (key === 'Fn::Sub') {
      const text = Array.isArray(inner) ? String(inner[0]) : String(inner)
      return [...text.matchAll(/\$\{([\w]+)(?:\.\w+)?\}/g)]
        .map((match) => match[1] as string)
        .filter((name) => !name.startsWith('AWS'))
    }
    return referencesOf(inner)
  })
}

const queueArns = new Map<string, string>()
/** Variables moto kept with a Fn::Sub of something it could not model, unresolved (reported at the end). */
const unresolvedVariables = new Set<string>()
const roleArns = new Map<string, string>()

const queueArnOf = async (id: string): Promise<string> => {
  const known = queueArns.get(id)
  if (known) return known
  const { Attributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: physicalIdOf(id), AttributeNames: ['QueueArn'] }),
  )
  const arn = Attributes?.QueueArn as string
  queueArns.set(id, arn)
  return arn
}

const roleArnOf = async (id: string): Promise<string> => {
  const known = roleArns.get(id)
  if (known) return known
  const { Role } = await clients.iam.send(new GetRoleCommand({ RoleName: physicalIdOf(id) }))
  const arn = Role?.Arn as string
  roleArns.set(id, arn)
  return arn
}

/** A template value as CloudFormation resolves it on this stack (the intrinsics the template uses). */
const resolve = async (value: unknown): Promise<unknown> => {
  if (typeof value !== 'object' || value === null) return value
  const ref = (value as { Ref?: string }).Ref
  if (typeof ref === 'string') return physicalIdOf(ref)
  const att = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']
  if (Array.isArray(att) && att[1] === 'Arn') {
    const type = resourceOf(att[0]).Type
    if (type === 'AWS::SQS::Queue') return queueArnOf(att[0])
    if (type === 'AWS::IAM::Role') return roleArnOf(att[0])
  }
  throw new Error(`the rehearsal cannot resolve ${JSON.stringify(value)}`)
}

const waitForStack = async (name: string, inProgress: RegExp): Promise<Stack> => {
  for (;;) {
    const { Stacks = [] } = await clients.cfn.send(new DescribeStacksCommand({ StackName: name }))
    const current = Stacks[0] as Stack
    if (!inProgress.test(String(current.StackStatus))) return current
    await new Promise((resolveTimer) => setTimeout(resolveTimer, 100))
  }
}

/** The template as moto can create it: the zips from the bucket the rehearsal uploaded them to, and no outputs. */
const templateForMoto = (): Template => {
  const copy = JSON.parse(JSON.stringify(template)) as Template
  for (const resource of Object.values(copy.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue
    const code = resource.Properties?.Code as { S3Bucket: unknown; S3Key: string }
    code.S3Bucket = ARTIFACT_BUCKET
  }
  delete copy.Outputs
  return copy
}

const artifactOf = (name: string): string => {
  const artifact = stateFunctions[name]?.package?.artifact ?? join('.serverless', `${name}.zip`)
  return isAbsolute(artifact) ? artifact : join(repoRoot, artifact)
}

/** Without moto_server (and without CI=true), only the README's checks run (see python-tools.ts). */
const skipsMoto = skipsWithout('moto_server')

beforeAll(async () => {
  if (skipsMoto) return
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
  moto = await startMoto()
  const config = { endpoint: moto.endpoint, region: REGION, credentials }
  clients = {
    cfn: new CloudFormationClient(config),
    s3: new S3Client({ ...config, forcePathStyle: true }),
    dynamo: new DynamoDBClient(config),
    sqs: new SQSClient(config),
    lambda: new LambdaClient(config),
    events: new EventBridgeClient(config),
    iam: new IAMClient(config),
    scheduler: new SchedulerClient(config),
    secrets: new SecretsManagerClient(config),
  }

  // What `deploy` uploads before it creates the stack: one zip per function at the key the template names.
  await clients.s3.send(
    new CreateBucketCommand({ Bucket: ARTIFACT_BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }),
  )
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue
    const key = (resource.Properties?.Code as { S3Key: string } | undefined)?.S3Key
    const name = Object.keys(stateFunctions).find(
      (fn) => stateFunctions[fn]?.name === resource.Properties?.FunctionName,
    )
    if (!name) throw new Error(`${id} is not a function of the packaged service`)
    await clients.s3.send(
      new PutObjectCommand({ Bucket: ARTIFACT_BUCKET, Key: key, Body: readFileSync(artifactOf(name)) }),
    )
  }

  await clients.cfn.send(
    new CreateStackCommand({
      StackName: STACK,
      TemplateBody: JSON.stringify(templateForMoto()),
      Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
    }),
  )
  stack = await waitForStack(STACK, /_IN_PROGRESS$/)
  if (stack.StackStatus !== 'CREATE_COMPLETE') {
    const { StackEvents = [] } = await clients.cfn.send(new DescribeStackEventsCommand({ StackName: STACK }))
    throw new Error(
      `the stack ended ${stack.StackStatus}: ${stack.StackStatusReason ?? ''}\n` +
        StackEvents.map((e) => `${e.LogicalResourceId} ${e.ResourceStatus} ${e.ResourceStatusReason ?? ''}`).join('\n'),
    )
  }
  for await (const page of paginateListStackResources({ client: clients.cfn }, { StackName: STACK })) {
    for (const summary of page.StackResourceSummaries ?? []) {
      // moto lists what it could not model with an empty logical id.
      if (summary.LogicalResourceId && summary.PhysicalResourceId) {
        created.set(summary.LogicalResourceId, {
          physicalId: summary.PhysicalResourceId,
          type: String(summary.ResourceType),
        })
      }
    }
  }

  // moto creates the event bus but lists it without a physical id: it is found by its name through EventBridge.
  const busName = String(template.Resources.EventBus?.Properties?.Name)
  if (!created.has('EventBus')) {
    const bus = await clients.events.send(new DescribeEventBusCommand({ Name: busName })).catch(() => undefined)
    if (bus?.Arn) created.set('EventBus', { physicalId: busName, type: 'AWS::Events::EventBus' })
  }

  // Outputs are added by an update once moto has created what they refer to: an output of a resource moto only
  // pretends to create fails the whole create_stack.
  const outputs = Object.entries(template.Outputs ?? {})
  const resolvable = outputs.filter(([, output]) => referencesOf(output.Value).every((id) => created.has(id)))
  const withOutputs = { ...templateForMoto(), Outputs: Object.fromEntries(resolvable) }
  await clients.cfn.send(
    new UpdateStackCommand({
      StackName: STACK,
      TemplateBody: JSON.stringify(withOutputs),
      Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'],
    }),
  )
  stack = await waitForStack(STACK, /_IN_PROGRESS$/)

  const missing = Object.entries(template.Resources).filter(([id]) => !created.has(id))
  const byType = new Map<string, string[]>()
  for (const [id, resource] of missing) byType.set(resource.Type, [...(byType.get(resource.Type) ?? []), id])
  report.push('moto could not model (checked in the template only, by test/deploy/cloudformation.test.ts):')
  for (const [type, ids] of [...byType].sort()) report.push(`  ${type}: ${ids.join(', ')}`)
  const dropped = outputs.filter(([name]) => !resolvable.some(([kept]) => kept === name)).map(([name]) => name)
  report.push(`  outputs that refer to those, left out: ${dropped.join(', ') || 'none'}`)
}, 60_000)

afterAll(async () => {
  if (skipsMoto) return
  if (propertyGapsSeen.size) {
    report.push('  properties moto accepts but does not apply (checked in the template):')
    for (const gap of propertyGapsSeen) report.push(`    ${gap}`)
  }
  report.push(
    '  environment: SCHEDULER_GROUP of every function (a Ref to ScheduleGroup) is left out; the rehearsal creates the',
    '    group through the Scheduler API under its template name and gives the bundles that name',
    '  Lambda invoke, event source polling and the tick rule firing (moto needs Docker to run functions): the',
    '    bundles run in child processes with the created environment, fed from the created queues',
    '  IAM: moto does not enforce the roles; test/deploy/cloudformation.test.ts checks every grant in the template',
    `  environment: ${[...unresolvedVariables].join(', ') || 'no variable'} left as an unresolved Fn::Sub of the HTTP`,
    '    API; CALLBACK_SECRET_ARN (a Ref to CallbackSecret) left out: the rehearsal creates the secret through the',
    '    Secrets Manager API under its template name and gives the bundles its ARN and an API URL',
  )
  if (report.length) process.stdout.write(`\n[deploy rehearsal]\n${report.join('\n')}\n`)
  await moto?.stop()
  rmSync(join(packageDir, 'rehearsal'), { recursive: true, force: true })
})

// ---- the stack and the README's resources ----------------------------------------------------------------------

describe('the README and the packaged template', () => {
  it('the README documents resources of every kind the deployment is made of', () => {
    const types = new Set(documented.map((resource) => resource.type))
    for (const type of [
      'AWS::DynamoDB::Table',
      'AWS::SQS::Queue',
      'AWS::Lambda::Function',
      'AWS::Lambda::EventSourceMapping',
      'AWS::IAM::Role',
    ]) {
      expect(types, type).toContain(type)
    }
  })

  it('every resource of the template is in the README, but the framework’s own plumbing', () => {
    // The deployment bucket, its policy, the invoke permissions and the tick's retry settings come with every
    // Serverless service; they are not part of what tickflow deploys.
    const plumbing = [
      'AWS::S3::Bucket',
      'AWS::S3::BucketPolicy',
      'AWS::Lambda::Permission',
      'AWS::Lambda::EventInvokeConfig',
    ]
    const documentedIds = new Set(documented.map((resource) => resource.logicalId))
    const undocumented = Object.entries(template.Resources)
      .filter(([id, resource]) => !documentedIds.has(id) && !plumbing.includes(resource.Type))
      .map(([id, resource]) => `${id} (${resource.Type})`)
    expect(undocumented, 'add them to the deployed-resources table of the README').toEqual([])
  })

  it.each(documented.map((resource) => [resource.logicalId, resource] as const))(
    '%s, documented in the README, is in the packaged template with its type',
    (id, resource) => {
      expect(
        template.Resources[id],
        `the README documents ${id} (${resource.what}); the template has none`,
      ).toBeDefined()
      expect(template.Resources[id]?.Type).toBe(resource.type)
    },
  )
})

describeWith('moto_server')('the packaged stack on moto', () => {
  it(`runs on moto ${MOTO_VERSION}`, () => {
    expect(motoVersion()).toBe(MOTO_VERSION)
  })

  it('reaches CREATE_COMPLETE, and takes the outputs of what moto models', () => {
    expect(stack.StackStatus).toBe('UPDATE_COMPLETE')
    const outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]))
    expect(outputs.TableName).toBe(physicalIdOf('Table'))
    expect(outputs.RunQueueUrl).toBe(physicalIdOf('RunQueue'))
    expect(outputs.EventsQueueUrl).toBe(physicalIdOf('EventsQueue'))
    expect(outputs.StartQueueUrl).toBe(physicalIdOf('StartQueue'))
  })

  it.each(documented.map((resource) => [resource.logicalId, resource] as const))(
    '%s was created, or is of a type moto does not model at all',
    (id, resource) => {
      const modelledTypes = new Set([...created.values()].map((entry) => entry.type))
      if (modelledTypes.has(resource.type)) {
        expect(created.get(id), `${id}: moto created other ${resource.type} resources but not this one`).toBeDefined()
      } else {
        expect(
          !created.has(id) && report.some((line) => line.includes(`${resource.type}:`) && line.includes(id)),
          `${id} is neither created by moto nor reported as a resource moto cannot model`,
        ).toBe(true)
      }
    },
  )
})

const documentedOfType = (type: string): DocumentedResource[] => documented.filter((resource) => resource.type === type)

const idsOf = (type: string): [string][] => documentedOfType(type).map((resource) => [resource.logicalId])

describeWith('moto_server')('as created, through the AWS SDK', () => {
  it.each(idsOf('AWS::DynamoDB::Table'))('%s: the keys and indexes of tableDefinition(), PITR on', async (id) => {
    const { Table } = await clients.dynamo.send(new DescribeTableCommand({ TableName: physicalIdOf(id) }))
    const expected = tableDefinition(physicalIdOf(id))
    expect(Table?.TableStatus).toBe('ACTIVE')
    expect(Table?.KeySchema).toEqual(expected.KeySchema)
    const byName = <T extends { AttributeName?: string | undefined }>(list: T[] = []) =>
      [...list].sort((a, b) => String(a.AttributeName).localeCompare(String(b.AttributeName)))
    expect(byName(Table?.AttributeDefinitions)).toEqual(byName(expected.AttributeDefinitions))
    const indexes = (Table?.GlobalSecondaryIndexes ?? [])
      .map((gsi) => ({ IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection }))
      .sort((a, b) => String(a.IndexName).localeCompare(String(b.IndexName)))
    const expectedIndexes = (expected.GlobalSecondaryIndexes ?? [])
      .map((gsi) => ({ IndexName: gsi.IndexName, KeySchema: gsi.KeySchema, Projection: gsi.Projection }))
      .sort((a, b) => String(a.IndexName).localeCompare(String(b.IndexName)))
    expect(indexes).toEqual(expectedIndexes)
    const backups = await clients.dynamo.send(new DescribeContinuousBackupsCommand({ TableName: physicalIdOf(id) }))
    expectModelled(
      'pointInTimeRecovery',
      backups.ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus,
      (resourceOf(id).Properties?.PointInTimeRecoverySpecification as { PointInTimeRecoveryEnabled?: boolean })
        ?.PointInTimeRecoveryEnabled
        ? 'ENABLED'
        : 'DISABLED',
      'ENABLED',
    )
  })

  it.each(idsOf('AWS::SQS::Queue'))('%s: its timeouts, and its redrive policy with maxReceiveCount', async (id) => {
    const asked = resourceOf(id).Properties as {
      VisibilityTimeout?: number
      MessageRetentionPeriod?: number
      RedrivePolicy?: { deadLetterTargetArn: unknown; maxReceiveCount: number }
    }
    const { Attributes = {} } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: physicalIdOf(id), AttributeNames: ['All'] }),
    )
    if (asked.VisibilityTimeout !== undefined)
      expect(Number(Attributes.VisibilityTimeout)).toBe(asked.VisibilityTimeout)
    expect(Number(Attributes.MessageRetentionPeriod)).toBe(asked.MessageRetentionPeriod)
    if (asked.RedrivePolicy) {
      const redrive = JSON.parse(String(Attributes.RedrivePolicy)) as {
        deadLetterTargetArn: string
        maxReceiveCount: number
      }
      expect(redrive.deadLetterTargetArn).toBe(await resolve(asked.RedrivePolicy.deadLetterTargetArn))
      expect(Number(redrive.maxReceiveCount)).toBe(5)
    } else {
      expect(Attributes.RedrivePolicy, `${id} is a dead-letter queue`).toBeUndefined()
      const sources = [
        ...documentedOfType('AWS::SQS::Queue').filter((queue) =>
          referencesOf((resourceOf(queue.logicalId).Properties as typeof asked).RedrivePolicy ?? {}).includes(id),
        ),
        // The event bus's dead-letter queue is a source of its own (infra/events.yml).
        ...documentedOfType('AWS::Events::EventBus').filter((bus) =>
          referencesOf(resourceOf(bus.logicalId).Properties?.DeadLetterConfig ?? {}).includes(id),
        ),
      ]
      expect(sources, `${id} is the dead-letter queue of exactly one queue`).toHaveLength(1)
    }
  })

  it.each(idsOf('AWS::Lambda::EventSourceMapping'))(
    '%s: its queue, partial batch responses, batching and concurrency',
    async (id) => {
      const asked = resourceOf(id).Properties as {
        EventSourceArn: unknown
        FunctionName: unknown
        BatchSize: number
        MaximumBatchingWindowInSeconds: number
        FunctionResponseTypes: string[]
        ScalingConfig: { MaximumConcurrency: number }
      }
      const mapping = await clients.lambda.send(new GetEventSourceMappingCommand({ UUID: physicalIdOf(id) }))
      expect(mapping.EventSourceArn).toBe(await resolve(asked.EventSourceArn))
      const functionId = referencesOf(asked.FunctionName)[0] as string
      expect(mapping.FunctionArn?.endsWith(`:function:${physicalIdOf(functionId)}`)).toBe(true)
      expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures'])
      expect(mapping.BatchSize).toBe(asked.BatchSize)
      expect(mapping.MaximumBatchingWindowInSeconds).toBe(asked.MaximumBatchingWindowInSeconds)
      expect(mapping.ScalingConfig?.MaximumConcurrency).toBe(asked.ScalingConfig.MaximumConcurrency)
      expect(mapping.State).toBe('Enabled')
    },
  )

  it.each(idsOf('AWS::Lambda::Function'))(
    '%s: runtime, handler, role, and every variable of its environment resolved to the created resource',
    async (id) => {
      const asked = resourceOf(id).Properties as {
        Runtime: string
        Handler: string
        Architectures: string[]
        Timeout: number
        MemorySize: number
        Role: unknown
        Environment: { Variables: Record<string, unknown> }
      }
      const config = await clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: physicalIdOf(id) }))
      expect(config.Runtime).toBe(asked.Runtime)
      expect(config.Handler).toBe(asked.Handler)
      expectModelled('architectures', config.Architectures, asked.Architectures, ['arm64'])
      expect(config.Timeout).toBe(asked.Timeout)
      expect(config.MemorySize).toBe(asked.MemorySize)
      expect(config.Role).toBe(await resolve(asked.Role))
      const expected: Record<string, unknown> = {}
      const actual: Record<string, string> = { ...config.Environment?.Variables }
      for (const [name, value] of Object.entries(asked.Environment.Variables)) {
        const refs = referencesOf(value)
        if (refs.every((ref) => created.has(ref))) {
          expected[name] = String(await resolve(value))
          continue
        }
        // moto drops a variable that refers to what it could not model, or keeps a Fn::Sub of it unresolved.
        if (actual[name] !== undefined) {
          expect(actual[name], name).toContain('${')
          delete actual[name]
          unresolvedVariables.add(name)
        }
      }
      expect(actual).toEqual(expected)
      expect(lambdaEnvSchema.safeParse(actual).success).toBe(true)
    },
  )

  it.each(idsOf('AWS::Events::Rule'))('%s: the schedule and its target, the tick function', async (id) => {
    const asked = resourceOf(id).Properties as { ScheduleExpression: string; Targets: { Arn: unknown }[] }
    const rule = await clients.events.send(new DescribeRuleCommand({ Name: physicalIdOf(id) }))
    expect(rule.ScheduleExpression).toBe(asked.ScheduleExpression)
    expect(rule.State).toBe('ENABLED')
    const { Targets = [] } = await clients.events.send(new ListTargetsByRuleCommand({ Rule: physicalIdOf(id) }))
    const functionIds = asked.Targets.flatMap((target) => referencesOf(target.Arn))
    expect(Targets.map((target) => target.Arn?.split(':function:')[1])).toEqual(functionIds.map(physicalIdOf))
  })

  it.each(idsOf('AWS::IAM::Role'))('%s: its trust policy and its inline policies', async (id) => {
    const asked = resourceOf(id).Properties as {
      AssumeRolePolicyDocument: { Statement: { Principal: unknown }[] }
      Policies?: { PolicyName: string }[]
    }
    const { Role } = await clients.iam.send(new GetRoleCommand({ RoleName: physicalIdOf(id) }))
    const trust = JSON.parse(decodeURIComponent(String(Role?.AssumeRolePolicyDocument))) as {
      Statement: { Principal: unknown }[] | { Principal: unknown }
    }
    expect(asArray(trust.Statement).map((s) => s.Principal)).toEqual(
      asked.AssumeRolePolicyDocument.Statement.map((s) => s.Principal),
    )
    const { PolicyNames = [] } = await clients.iam.send(new ListRolePoliciesCommand({ RoleName: physicalIdOf(id) }))
    expect(PolicyNames.sort()).toEqual((asked.Policies ?? []).map((policy) => policy.PolicyName).sort())
  })

  it.each(idsOf('AWS::Events::EventBus'))(
    '%s: the bus the functions publish to, with its dead-letter queue',
    async (id) => {
      const asked = resourceOf(id).Properties as { Name: string; DeadLetterConfig: { Arn: unknown } }
      const bus = await clients.events.send(new DescribeEventBusCommand({ Name: physicalIdOf(id) }))
      expect(bus.Name).toBe(asked.Name)
      for (const fn of ['ApiLambdaFunction', 'RunLambdaFunction', 'StartLambdaFunction']) {
        const config = await clients.lambda.send(
          new GetFunctionConfigurationCommand({ FunctionName: physicalIdOf(fn) }),
        )
        expect(config.Environment?.Variables?.EVENT_BUS_NAME, fn).toBe(asked.Name)
      }
      const deadLetters = await queueArnOf('EventBusDeadLetterQueue')
      expectModelled(
        'eventBusDeadLetters',
        bus.DeadLetterConfig?.Arn,
        await resolve(asked.DeadLetterConfig.Arn),
        deadLetters,
      )
    },
  )

  it.each(idsOf('AWS::Logs::LogGroup'))('%s: created with the name the template gives it', (id) => {
    expect(physicalIdOf(id)).toBe(resourceOf(id).Properties?.LogGroupName)
  })
})

// ---- the real bundles against the created resources ------------------------------------------------------------

const FUNCTION_IDS = {
  api: 'ApiLambdaFunction',
  tick: 'TickLambdaFunction',
  run: 'RunLambdaFunction',
  events: 'EventsLambdaFunction',
} as const
type BundleName = keyof typeof FUNCTION_IDS

/** The schedule group moto's CloudFormation does not create, made through the Scheduler API under its own name. */
const scheduleGroupName = (): string => String(resourceOf('ScheduleGroup').Properties?.Name)

const unpacked = new Set<string>()
const bundleUrl = (name: BundleName): string => {
  const dir = join(packageDir, 'rehearsal', name)
  if (!unpacked.has(name)) {
    rmSync(dir, { recursive: true, force: true })
    for (const entry of readZip(artifactOf(name))) {
      if (entry.name.endsWith('/')) continue
      mkdirSync(dirname(join(dir, entry.name)), { recursive: true })
      writeFileSync(join(dir, entry.name), entry.read())
    }
    unpacked.add(name)
  }
  const handler = String(resourceOf(FUNCTION_IDS[name]).Properties?.Handler).replace(/\.handler$/, '')
  return pathToFileURL(join(dir, `${handler}.mjs`)).href
}

const RESULT_MARK = '@@rehearsal-result '

/** Calls a bundle's handler once, in a child process, with the environment moto's Lambda holds for the function. */
const invoke = async <T>(name: BundleName, event: unknown): Promise<T> => {
  const config = await clients.lambda.send(
    new GetFunctionConfigurationCommand({ FunctionName: physicalIdOf(FUNCTION_IDS[name]) }),
  )
  const script = [
    `const { handler } = await import(${JSON.stringify(bundleUrl(name))})`,
    'const started = Date.now()',
    'const context = { awsRequestId: "rehearsal", functionName: process.env.FUNCTION_NAME, getRemainingTimeInMillis: () => 25000 - (Date.now() - started) }',
    'const result = await handler(JSON.parse(process.env.REHEARSAL_EVENT), context)',
    `process.stdout.write("\\n${RESULT_MARK}" + JSON.stringify(result ?? null) + "\\n")`,
  ].join('\n')
  const env = {
    PATH: process.env.PATH ?? '',
    ...config.Environment?.Variables,
    // What moto's CloudFormation dropped with the group it could not create, the secret and the API's URL.
    SCHEDULER_GROUP: scheduleGroupName(),
    ...(config.Environment?.Variables?.CALLBACK_BASE_URL === undefined
      ? {}
      : { CALLBACK_BASE_URL: 'https://rehearsal.execute-api.eu-west-1.amazonaws.com' }),
    ...(name === 'tick' ? {} : { CALLBACK_SECRET_ARN: callbackSecretArn }),
    FUNCTION_NAME: config.FunctionName ?? name,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_ENDPOINT_URL: moto.endpoint,
    DYNAMODB_ENDPOINT: moto.endpoint,
    SQS_ENDPOINT: moto.endpoint,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    REHEARSAL_EVENT: JSON.stringify(event),
  }
  const stdout = await new Promise<string>((resolveRun, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      { env, encoding: 'utf8', timeout: 30_000 },
      (error, out, err) =>
        error ? reject(new Error(`${name} failed: ${error.message}\n${out}\n${err}`)) : resolveRun(out),
    )
  })
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_MARK))
  if (!line) throw new Error(`${name} printed no result:\n${stdout}`)
  return JSON.parse(line.slice(RESULT_MARK.length)) as T
}

/** What Lambda's SQS event source would deliver from a created queue now (the messages are deleted). */
const receive = async (queueId: string): Promise<SQSEvent> => {
  const queueUrl = physicalIdOf(queueId)
  const { Messages = [] } = await clients.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'] }),
  )
  for (const message of Messages) {
    await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }))
  }
  const queueArn = await queueArnOf(queueId)
  return {
    Records: Messages.map((message) => ({
      messageId: String(message.MessageId),
      receiptHandle: String(message.ReceiptHandle),
      body: String(message.Body),
      attributes: {
        ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: message.Attributes?.SentTimestamp ?? '0',
        SenderId: message.Attributes?.SenderId ?? 'rehearsal',
        ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? '0',
      },
      messageAttributes: {},
      md5OfBody: String(message.MD5OfBody),
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: REGION,
    })),
  }
}

type ApiResult = APIGatewayProxyStructuredResultV2 & { body: string }

/** The callback secret moto's CloudFormation could not create, made through Secrets Manager under its name. */
let callbackSecretArn = ''
/** A queue a rule of the bus sends every lifecycle event to: what a consumer of the bus would see. */
let busSinkUrl = ''
/** Instances the bundles made, by what the events test expects of them. */
const instancesOf: { completes?: string; fails?: string } = {}

// Each test runs the bundles in child processes, one after the other.
const BUNDLES = { timeout: CHILD_PROCESS_TIMEOUT_MS }
describeWith('moto_server')('the real bundles against the created resources', BUNDLES, () => {
  beforeAll(async () => {
    await clients.scheduler.send(new CreateScheduleGroupCommand({ Name: scheduleGroupName() }))
    const secret = await clients.secrets.send(
      new CreateSecretCommand({
        Name: String(resourceOf('CallbackSecret').Properties?.Name),
        SecretString: 'rehearsal-callback-secret-0123456789abcdefghijklmnopqrstuvwxyz',
      }),
    )
    callbackSecretArn = String(secret.ARN)
    busSinkUrl = String((await clients.sqs.send(new CreateQueueCommand({ QueueName: 'rehearsal-bus-sink' }))).QueueUrl)
    const { Attributes } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: busSinkUrl, AttributeNames: ['QueueArn'] }),
    )
    const busName = physicalIdOf('EventBus')
    await clients.events.send(
      new PutRuleCommand({ Name: 'rehearsal-all', EventBusName: busName, EventPattern: '{"source":["tickflow"]}' }),
    )
    await clients.events.send(
      new PutTargetsCommand({
        Rule: 'rehearsal-all',
        EventBusName: busName,
        Targets: [{ Id: 'sink', Arn: Attributes?.QueueArn }],
      }),
    )
  })

  it('api → events → run: an approval is created in the created table and completed through the created queues', async () => {
    const createdReply = await invoke<ApiResult>(
      'api',
      apiEvent('POST', '/workflows', {
        body: { workflowType: 'approval', context: { requester: 'ada', amount: 120 } },
      }),
    )
    expect(createdReply.statusCode, createdReply.body).toBe(201)
    const { instanceId, status } = JSON.parse(createdReply.body) as { instanceId: string; status: string }
    expect(status).toBe('running')
    instancesOf.completes = instanceId

    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: physicalIdOf('EventsQueue'),
        MessageBody: JSON.stringify({ instanceId, nodeId: 'review', eventTs: 1, content: { decision: 'approved' } }),
      }),
    )
    const eventBatch = await receive('EventsQueue')
    expect(eventBatch.Records).toHaveLength(1)
    expect(await invoke<SQSBatchResponse>('events', eventBatch)).toEqual({ batchItemFailures: [] })

    // The event's run request is visible at once; the review's 60 s wake-up is still delayed.
    const runBatch = await receive('RunQueue')
    expect(runBatch.Records.map((record) => JSON.parse(record.body).instanceId)).toEqual([instanceId])
    expect(await invoke<SQSBatchResponse>('run', runBatch)).toEqual({ batchItemFailures: [] })

    const detail = await invoke<ApiResult>('api', apiEvent('GET', `/workflows/${instanceId}`))
    expect(detail.statusCode).toBe(200)
    expect(JSON.parse(detail.body)).toMatchObject({ status: 'completed' })
  })

  it('api → callback → worker: a payment waits for its provider, whose token (from the secret in Secrets Manager) completes it', async () => {
    const createdReply = await invoke<ApiResult>(
      'api',
      apiEvent('POST', '/workflows', { body: { workflowType: 'payment', context: { amount: 5 } } }),
    )
    expect(createdReply.statusCode, createdReply.body).toBe(201)
    const { instanceId } = JSON.parse(createdReply.body) as { instanceId: string }
    const detail = JSON.parse((await invoke<ApiResult>('api', apiEvent('GET', `/workflows/${instanceId}`))).body) as {
      nodes: { id: string; context?: { confirm_url?: string }; waiting?: { reason: string } }[]
    }
    const capture = detail.nodes.find((n) => n.id === 'capture')
    expect(capture?.waiting?.reason).toBe('waiting for a callback')
    const prefix = 'https://rehearsal.execute-api.eu-west-1.amazonaws.com/callbacks/'
    expect(capture?.context?.confirm_url?.startsWith(prefix)).toBe(true)
    const token = String(capture?.context?.confirm_url).slice(prefix.length)

    const completed = await invoke<ApiResult>(
      'api',
      apiEvent('POST', `/callbacks/${token}`, { body: { status: 'success', output: { reference: 'r-1' } } }),
    )
    expect(completed.statusCode, completed.body).toBe(202)
    // The completion asked for a run at once; the capture's heartbeat wake-up is still delayed.
    const runBatch = await receive('RunQueue')
    expect(runBatch.Records.map((record) => JSON.parse(record.body).instanceId)).toContain(instanceId)
    expect(await invoke<SQSBatchResponse>('run', runBatch)).toEqual({ batchItemFailures: [] })
    const after = JSON.parse((await invoke<ApiResult>('api', apiEvent('GET', `/workflows/${instanceId}`))).body)
    expect(after).toMatchObject({ status: 'completed' })
  })

  it('api → tick: an instance left for the tick is found in the due index and sent to the created run queue', async () => {
    const createdReply = await invoke<ApiResult>(
      'api',
      apiEvent('POST', '/workflows', { body: { workflowType: 'approval', context: { requester: 'bo' }, run: false } }),
    )
    expect(createdReply.statusCode, createdReply.body).toBe(201)
    const { instanceId } = JSON.parse(createdReply.body) as { instanceId: string }
    await invoke<unknown>('tick', {
      version: '0',
      id: 'rehearsal',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: new Date().toISOString(),
      region: REGION,
      resources: [],
      detail: {},
    })
    const runBatch = await receive('RunQueue')
    expect(runBatch.Records.map((record) => JSON.parse(record.body).instanceId)).toContain(instanceId)
  })

  it('api → EventBridge Scheduler: a recurring start lands in the schedule group, aimed at the created start queue', async () => {
    const put = await invoke<ApiResult>(
      'api',
      apiEvent('POST', '/schedules', {
        body: { name: 'nightly', expression: 'cron(0 3 * * ? *)', timezone: 'Europe/Paris', workflowType: 'approval' },
      }),
    )
    expect(put.statusCode, put.body).toBeLessThan(300)
    const { Schedules = [] } = await clients.scheduler.send(
      new ListSchedulesCommand({ GroupName: scheduleGroupName() }),
    )
    expect(Schedules.map((schedule) => schedule.Name)).toContain('start-nightly')
    const schedule = await clients.scheduler.send(
      new GetScheduleCommand({ GroupName: scheduleGroupName(), Name: 'start-nightly' }),
    )
    expect(schedule.ScheduleExpression).toBe('cron(0 3 * * ? *)')
    expect(schedule.ScheduleExpressionTimezone).toBe('Europe/Paris')
    expect(schedule.Target?.Arn).toBe(await queueArnOf('StartQueue'))
    expect(schedule.Target?.RoleArn).toBe(await roleArnOf('SchedulerRole'))

    const listed = await invoke<ApiResult>('api', apiEvent('GET', '/schedules'))
    expect(JSON.parse(listed.body)).toMatchObject({ items: [expect.objectContaining({ name: 'nightly' })] })
    const removed = await invoke<ApiResult>('api', apiEvent('DELETE', '/schedules/nightly'))
    expect(removed.statusCode).toBe(204)
  })

  it('the bus receives exactly the documented events of an instance that completes and of one that fails', async () => {
    // An order without lines fails for good at its first node, in the pass of its create.
    const failing = await invoke<ApiResult>(
      'api',
      apiEvent('POST', '/workflows', { body: { workflowType: 'order', context: { lines: [] } } }),
    )
    expect(failing.statusCode, failing.body).toBe(201)
    instancesOf.fails = (JSON.parse(failing.body) as { instanceId: string }).instanceId
    expect(instancesOf.completes, 'the approval of the first test').toBeDefined()

    const received: { source: string; 'detail-type': string; detail: PublishedDetail }[] = []
    for (let round = 0; round < 5; round++) {
      const { Messages = [] } = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: busSinkUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: round ? 1 : 0 }),
      )
      for (const message of Messages) {
        received.push(JSON.parse(String(message.Body)))
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: busSinkUrl, ReceiptHandle: message.ReceiptHandle }))
      }
    }
    for (const event of received) {
      expect(event.source).toBe('tickflow')
      expect(publishedDetailSchema.safeParse(event.detail).success, JSON.stringify(event.detail)).toBe(true)
    }
    const of = (instanceId: string | undefined) =>
      received
        .filter((event) => event.detail.instanceId === instanceId)
        .map((event) => ({
          type: event['detail-type'],
          status: event.detail.status,
          previous: event.detail.previousStatus,
          reason: event.detail.reason,
          node: event.detail.nodeId,
          resent: event.detail.resent,
        }))
    const instance = 'Workflow Instance Status Change'
    expect(of(instancesOf.completes)).toEqual([
      { type: instance, status: 'running', previous: undefined, reason: undefined, node: undefined, resent: undefined },
      {
        type: instance,
        status: 'completed',
        previous: 'running',
        reason: undefined,
        node: undefined,
        resent: undefined,
      },
    ])
    // Stored running with its first attempt, then failed: two writes landed, two events.
    expect(of(instancesOf.fails)).toEqual([
      { type: instance, status: 'running', previous: undefined, reason: undefined, node: undefined, resent: undefined },
      {
        type: instance,
        status: 'failed',
        previous: 'running',
        reason: 'FailedWithFailedError: the order has no lines',
        node: 'validate',
        resent: undefined,
      },
    ])
    const ids = received.map((event) => event.detail.eventId)
    expect(new Set(ids).size, 'every event once').toBe(ids.length)
    report.push(`  lifecycle events: the bus delivered ${received.length} events to a rule's SQS target`)
  })

  it('the wake-up adapter with the created run queue and scheduler role: at(), OFF, DELETE after completion', async () => {
    const wakeups = new EventBridgeWakeups({
      client: clients.scheduler,
      groupName: scheduleGroupName(),
      roleArn: await roleArnOf('SchedulerRole'),
      targetArn: await queueArnOf('RunQueue'),
    })
    const atMs = Date.UTC(2030, 0, 2, 3, 4, 5)
    await wakeups.scheduleAt('01JREHEARSAL0000000000000A', atMs)
    await wakeups.scheduleAt('01JREHEARSAL0000000000000A', atMs + 60_000) // moved, not duplicated
    const schedule = await clients.scheduler.send(
      new GetScheduleCommand({ GroupName: scheduleGroupName(), Name: 'wake-01JREHEARSAL0000000000000A' }),
    )
    expect(schedule.ScheduleExpression).toBe('at(2030-01-02T03:05:05)')
    expect(schedule.FlexibleTimeWindow?.Mode).toBe('OFF')
    expect(schedule.ActionAfterCompletion).toBe('DELETE')
    expect(schedule.Target?.Arn).toBe(await queueArnOf('RunQueue'))
    await wakeups.cancel('01JREHEARSAL0000000000000A')
    await wakeups.cancel('01JREHEARSAL0000000000000A') // idempotent
    await expect(
      clients.scheduler.send(
        new GetScheduleCommand({ GroupName: scheduleGroupName(), Name: 'wake-01JREHEARSAL0000000000000A' }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' })
  })
})
