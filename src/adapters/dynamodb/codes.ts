/** The names of a map of short codes as stored, by code: for reading back what `codes` wrote. */
export const invert = <T extends string>(codes: Record<T, string>): Record<string, T> =>
  Object.fromEntries(Object.entries(codes).map(([name, code]) => [code, name])) as Record<string, T>
