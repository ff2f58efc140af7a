'use strict'

/**
 * tickflow's deployment rules, for osls 4.3.1 and Serverless Framework v4 alike (plain CommonJS, no dependencies):
 *
 * 1. Declares the top-level `build` property for osls, which does not know it. v4 needs `build.esbuild: false` next to
 *    serverless-esbuild; with the property declared, osls still validates the rest of serverless.yml strictly.
 *    v4 declares `build` itself, so nothing is added there.
 * 2. Secure by default: `auth: none` only on a stage whose own params in serverless.yml say `auth: none`
 *    (local and dev); anywhere else, e.g. `--param="auth=none"` on prod, packaging fails. A public API is warned about.
 */
const PUBLIC = 'none'

const buildSchema = {
  type: 'object',
  properties: { esbuild: { anyOf: [{ const: false }, { type: 'object' }] } },
}

class TickflowDeploymentRules {
  constructor(serverless, options, utils) {
    this.serverless = serverless
    this.options = options ?? {}
    this.log = utils?.log
    const schemaHandler = serverless.configSchemaHandler
    if (schemaHandler?.schema?.properties && !schemaHandler.schema.properties.build) {
      schemaHandler.defineTopLevelProperty('build', buildSchema)
    }
    this.hooks = { 'before:package:initialize': () => this.checkAuth() }
  }

  checkAuth() {
    const tickflow = this.serverless.service.custom?.tickflow ?? {}
    const stage = this.options.stage ?? this.serverless.service.provider?.stage
    const auth = String(tickflow.auth)
    if (auth !== PUBLIC) return
    if (String(tickflow.stageAuth) !== PUBLIC) {
      const ServerlessError = this.serverless.classes?.Error ?? Error
      throw new ServerlessError(
        `auth=none is refused on stage '${stage}': only a stage whose params in serverless.yml say \`auth: none\` ` +
          '(local, dev) may serve the HTTP API without authorisation. Use --param="auth=iam" (the default) or ' +
          '--param="auth=jwt" with jwtIssuerUrl and jwtAudience, or add `auth: none` under params.' +
          `${stage} if this stage really is for development only.`,
        'TICKFLOW_PUBLIC_API_REFUSED',
      )
    }
    const message =
      `tickflow: the HTTP API of stage '${stage}' has no authorisation (auth=none): anyone who can reach its URL ` +
      'can read every instance, start, cancel and restart instances and manage schedules.'
    if (this.log?.warning) this.log.warning(message)
    else process.stderr.write(`Warning: ${message}\n`)
  }
}

module.exports = TickflowDeploymentRules
