import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm'
import { type CallbackTokens, callbackTokens, MIN_SECRET_CHARS } from '../../core/callback-token.js'

/**
 * Where a deployment keeps the secret its callback tokens are derived from (README, "Callbacks"): in the
 * environment (`CALLBACK_SECRET`), in Secrets Manager (`CALLBACK_SECRET_ARN`, what the deployment creates) or in an
 * SSM SecureString parameter (`CALLBACK_SECRET_PARAMETER`). A value may be the secret itself, or JSON
 * `{"current": "…", "previous": "…"}` during a rotation: the current one issues tokens, both open them.
 */
export type CallbackSecretSource =
  | { kind: 'value'; value: string }
  | { kind: 'secrets-manager'; secretId: string; client?: SecretsManagerClient }
  | { kind: 'ssm'; name: string; client?: SSMClient }

/** The secrets of a stored value: the secret itself, or the current and previous of a rotation. */
export const secretsOf = (value: string): string[] => {
  const trimmed = value.trim()
  if (trimmed.startsWith('{')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch {
      throw new Error('the callback secret looks like JSON but does not parse')
    }
    const { current, previous } = (parsed ?? {}) as { current?: unknown; previous?: unknown }
    if (typeof current !== 'string') throw new Error('the callback secret (JSON) has no "current" string')
    return typeof previous === 'string' && previous !== '' ? [current, previous] : [current]
  }
  return [trimmed]
}

const fetchValue = async (source: CallbackSecretSource): Promise<string> => {
  switch (source.kind) {
    case 'value':
      return source.value
    case 'secrets-manager': {
      const client = source.client ?? new SecretsManagerClient({})
      const result = await client.send(new GetSecretValueCommand({ SecretId: source.secretId }))
      if (result.SecretString === undefined) throw new Error(`secret ${source.secretId} holds no string`)
      return result.SecretString
    }
    case 'ssm': {
      const client = source.client ?? new SSMClient({})
      const result = await client.send(new GetParameterCommand({ Name: source.name, WithDecryption: true }))
      const value = result.Parameter?.Value
      if (value === undefined) throw new Error(`parameter ${source.name} holds no value`)
      return value
    }
  }
}

/**
 * Callback tokens whose secret is fetched on first use and kept for the life of the process (a Lambda's cold
 * start pays one request); a failed fetch is tried again by the next use.
 */
export const callbackTokensFrom = (source: CallbackSecretSource): CallbackTokens => {
  let loading: Promise<CallbackTokens> | undefined
  const tokens = (): Promise<CallbackTokens> => {
    loading ??= fetchValue(source)
      .then((value) => {
        const secrets = secretsOf(value)
        if (secrets.some((secret) => secret.length < MIN_SECRET_CHARS)) {
          throw new Error(`the callback secret must be at least ${MIN_SECRET_CHARS} characters`)
        }
        return callbackTokens(secrets)
      })
      .catch((error: unknown) => {
        loading = undefined
        throw new Error(`the callback secret could not be loaded: ${(error as Error).message}`, { cause: error })
      })
    return loading
  }
  return {
    issue: async (claims) => (await tokens()).issue(claims),
    open: async (token) => (await tokens()).open(token),
  }
}
