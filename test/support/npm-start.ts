import { type ChildProcess, spawn } from 'node:child_process'

/** `npm start` as a user runs it: a child process in its own process group, like a terminal's foreground job. */
export interface NpmStart {
  url: string
  pid: number
  output: () => string
  /** Ctrl-C: SIGINT to the whole group; resolves when npm has exited. */
  interrupt(): Promise<{ code: number | null; signal: string | null }>
  /** True while any process of the group is alive. */
  alive(): boolean
  kill(): void
}

export const groupAlive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

export const npmStart = async (args: string[], env: Record<string, string> = {}): Promise<NpmStart> => {
  let output = ''
  const child: ChildProcess = spawn('npm', ['start', '--', ...args], {
    cwd: process.cwd(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'warn', DYNAMODB_ENDPOINT: '', ...env },
  })
  const append = (chunk: Buffer) => {
    output += chunk.toString()
  }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up:\n${output}`)), 90_000)
    const poll = setInterval(() => {
      const match = /tickflow is running at (http:\/\/\S+)/.exec(output)
      if (!match) return
      clearInterval(poll)
      clearTimeout(timer)
      resolve(match[1] as string)
    }, 100)
    void exited.then(({ code }) => {
      clearInterval(poll)
      clearTimeout(timer)
      reject(new Error(`npm start exited with ${code}:\n${output}`))
    })
  })
  const pid = child.pid as number
  return {
    url,
    pid,
    output: () => output,
    interrupt: async () => {
      process.kill(-pid, 'SIGINT')
      const result = await exited
      const deadline = Date.now() + 10_000
      while (groupAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
      return result
    },
    alive: () => groupAlive(pid),
    kill: () => {
      if (groupAlive(pid)) process.kill(-pid, 'SIGKILL')
    },
  }
}

export const httpClient = (url: string) => async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  })
  const text = await response.text()
  return { status: response.status, body: text.startsWith('{') ? JSON.parse(text) : text }
}

/** `npm start` run to its end: for starts that must refuse. Killed (and failed) if it comes up instead. */
export const npmStartExit = async (
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> => {
  let output = ''
  // Without `prestart` (the dashboard build): a start that refuses never serves it, and the build would rewrite
  // dist/dashboard/ while other test files serve it.
  const child = spawn('npm', ['start', '--ignore-scripts', '--', ...args], {
    cwd: process.cwd(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', DYNAMODB_ENDPOINT: '', ...env },
  })
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const pid = child.pid as number
  const watchdog = setInterval(() => {
    if (/tickflow is running at/.test(output) && groupAlive(pid)) process.kill(-pid, 'SIGKILL')
  }, 100)
  const timer = setTimeout(() => groupAlive(pid) && process.kill(-pid, 'SIGKILL'), 60_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)))
  clearInterval(watchdog)
  clearTimeout(timer)
  return { code, output }
}
