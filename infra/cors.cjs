// provider.httpApi.cors, from the same deployment parameters that become the api function's CORS_* variables
// (src/schemas/env.ts). With CORS on, API Gateway answers preflights itself, before any authoriser (a browser
// sends no credentials on a preflight), and sets the CORS headers on every answer. Off when no origin is given.
const list = (value) =>
  String(value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

module.exports = async ({ resolveVariable }) => {
  const param = (name) => resolveVariable(`param:${name}`)
  const allowedOrigins = list(await param('corsAllowedOrigins'))
  if (allowedOrigins.length === 0) return false
  return {
    allowedOrigins,
    allowedMethods: list(await param('corsAllowedMethods')),
    allowedHeaders: list(await param('corsAllowedHeaders')),
    exposedResponseHeaders: list(await param('corsExposedHeaders')),
    maxAge: Number(await param('corsMaxAgeSeconds')),
  }
}
