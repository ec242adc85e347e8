#!/usr/bin/env node
// `cityledger`: the validator node's command line. Run from the repository root as `pnpm cityledger ...`.
// First: SES lockdown (frozen intrinsics) before any library loads; services then run in Compartments.
import '@cityledger/core/lockdown'
import { Command, InvalidArgumentError } from 'commander'
import { registerCommands } from './commands.ts'

const program = new Command()
program
  .name('cityledger')
  .description('cityledger: a permissioned BFT ledger for city public services')
  .showHelpAfterError()
registerCommands(program)

program.parseAsync(process.argv).catch((err: unknown) => {
  const e = err as { code?: string; message?: string }
  if (err instanceof InvalidArgumentError) process.stderr.write(`error: ${e.message}\n`)
  else process.stderr.write(`error${e.code ? ` [${e.code}]` : ''}: ${e.message ?? String(err)}\n`)
  process.exitCode = 1
})
