import { randomBytes, randomInt } from 'node:crypto'
import type { Clock, IdGenerator, Logger, Random } from '../core/ports.js'

/** The real implementations of the engine's ports; tests inject fakes instead. */
export const systemClock: Clock = { nowMs: () => Date.now() }

export const mathRandom: Random = { next: () => Math.random() }

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** A ULID: 48 bits of milliseconds then 80 random bits, so ids sort by creation time. */
export const ulid = (nowMs: number = Date.now()): string => {
  let time = ''
  let remaining = nowMs
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[remaining % 32] + time
    remaining = Math.floor(remaining / 32)
  }
  const bytes = randomBytes(16)
  let random = ''
  for (let i = 0; i < 16; i++) random += CROCKFORD[(bytes[i] as number) % 32]
  return time + random
}

export const createIdGenerator = (clock: Clock = systemClock): IdGenerator => {
  const process = randomInt(0, 2 ** 31).toString(36)
  let counter = 0
  return {
    newInstanceId: () => ulid(clock.nowMs()),
    newLeaseOwner: () => `${process}-${(++counter).toString(36)}`,
  }
}

/** JSON lines on stdout/stderr, the shape CloudWatch Logs Insights reads well. */
export const jsonLogger = (minLevel: 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger => {
  const order = { debug: 0, info: 1, warn: 2, error: 3 } as const
  return {
    log(level, message, fields) {
      if (order[level] < order[minLevel]) return
      const line = JSON.stringify({ level, message, timestamp: new Date().toISOString(), ...fields })
      if (level === 'error' || level === 'warn') console.error(line)
      else console.log(line)
    },
  }
}
