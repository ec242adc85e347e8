#!/usr/bin/env node
// `cityledger`: the validator node's command line. Run from the repository root as `pnpm cityledger ...`.
// First: SES lockdown (frozen intrinsics) before any library loads; services then run in Compartments.
import '@cityledger/core/lockdown'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { registerCommands } from './commands.ts'
import { registerGenesisCommands } from './genesisCommands.ts'
import { registerResetCommand } from './resetCommand.ts'
import { exitCodeOf } from './exitCodes.ts'

const { version } = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'),
) as {
  version: string
}

const program = new Command()
program
  .name('cityledger')
  .description('cityledger: a permissioned BFT ledger for city public services')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError()
  // Parse errors are thrown (and mapped to exit code 2 below) instead of commander's exit(1).
  // Subcommands inherit this; commander has already printed its message for them.
  .exitOverride()
registerCommands(program)
registerGenesisCommands(program)
registerResetCommand(program)

program.parseAsync(process.argv).catch((err: unknown) => {
  const code = exitCodeOf(err)
  // commander printed its own parse errors; an InvalidArgumentError thrown by an action it did not.
  if (err instanceof InvalidArgumentError) process.stderr.write(`error: ${err.message}\n`)
  else if (!(err instanceof CommanderError)) {
    const e = err as { code?: string; message?: string }
    process.stderr.write(`error${e.code ? ` [${e.code}]` : ''}: ${e.message ?? String(err)}\n`)
  }
  process.exitCode = code
})
