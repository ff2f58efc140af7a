import type { Context } from 'aws-lambda'
import type { ApiEvent } from '../../src/api/handler.js'

let counter = 0

export interface RequestOptions {
  body?: unknown
  /** A raw body string sent as is (for malformed JSON); wins over `body`. */
  rawBody?: string
  headers?: Record<string, string>
  query?: Record<string, string>
  base64?: boolean
}

/** A real-shaped API Gateway HTTP API event (payload format 2.0), as the `$default` stage sends it. */
export const apiEvent = (method: string, path: string, options: RequestOptions = {}): ApiEvent => {
  const requestId = `req-${++counter}`
  const rawBody = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
  const headers: Record<string, string> = {
    Host: 'abc123.execute-api.eu-west-1.amazonaws.com',
    'User-Agent': 'curl/8.5.0',
    ...(rawBody !== undefined ? { 'Content-Type': 'application/json' } : {}),
    ...options.headers,
  }
  const query = options.query
  const rawQueryString = query ? new URLSearchParams(query).toString() : ''
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString,
    headers,
    ...(query ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: '21/Nov/2026:20:00:00 +0000',
      timeEpoch: 1795291200000,
    },
    ...(rawBody !== undefined
      ? {
          body: options.base64 ? Buffer.from(rawBody).toString('base64') : rawBody,
          isBase64Encoded: options.base64 === true,
        }
      : { isBase64Encoded: false }),
  }
}

export const lambdaContext = (remainingMs = 29_000): Context => {
  const started = Date.now()
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'tickflow-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tickflow-api',
    memoryLimitInMB: '512',
    awsRequestId: `aws-${++counter}`,
    logGroupName: '/aws/lambda/tickflow-api',
    logStreamName: '2026/11/21/[$LATEST]abc',
    getRemainingTimeInMillis: () => remainingMs - (Date.now() - started),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }
}
