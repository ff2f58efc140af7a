#!/usr/bin/env node
import '../local/quiet-sdk.js'
import { runCli } from './program.js'

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
})
