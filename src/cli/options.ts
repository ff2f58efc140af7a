import { CliError, ExitCode } from './exit-codes.js'

/** Values of command-line options, checked before any request: a wrong one is exit code 2, naming the option. */

export const parseJson = (text: string, option: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new CliError(
      `${option} is not JSON: ${(error as Error).message}`,
      ExitCode.usage,
      'INVALID_ARGUMENT',
      {},
      {
        cause: error,
      },
    )
  }
}

export const parseJsonObject = (text: string, option: string): Record<string, unknown> => {
  const value = parseJson(text, option)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(`${option} must be a JSON object`, ExitCode.usage, 'INVALID_ARGUMENT')
  }
  return value as Record<string, unknown>
}

export const wholeNumber = (option: string, min: number, max: number) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new CliError(`${option} must be a whole number ${min}-${max}`, ExitCode.usage, 'INVALID_ARGUMENT')
  }
  return Number(value)
}
