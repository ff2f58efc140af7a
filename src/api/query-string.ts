/** Percent-decodes one part of a query string as a form would (`+` is a space); malformed escapes stay as sent. */
const decodePart = (part: string): string => {
  const spaced = part.replace(/\+/g, ' ')
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced
  }
}

/**
 * `queryStringParameters` of an API Gateway HTTP API event (payload format 2.0) for a raw query string: decoded
 * names and values, a repeated name's values joined with commas, a name without `=` mapped to '', absent when
 * there is no parameter. Every name becomes an own property, `__proto__` included, as it does when the Lambda
 * runtime parses the event's JSON: the handler then sees, and refuses, exactly what it would see on AWS.
 */
export const apiGatewayQueryParameters = (rawQueryString: string): Record<string, string> | undefined => {
  const parameters: Record<string, string> = {}
  let count = 0
  for (const pair of rawQueryString.split('&')) {
    if (pair === '') continue
    const equals = pair.indexOf('=')
    const name = decodePart(equals === -1 ? pair : pair.slice(0, equals))
    if (name === '') continue
    const value = equals === -1 ? '' : decodePart(pair.slice(equals + 1))
    const known = Object.hasOwn(parameters, name)
    Object.defineProperty(parameters, name, {
      value: known ? `${parameters[name]},${value}` : value,
      enumerable: true,
      writable: true,
      configurable: true,
    })
    if (!known) count++
  }
  return count === 0 ? undefined : parameters
}
