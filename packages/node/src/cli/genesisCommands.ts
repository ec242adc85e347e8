import { resolve } from 'node:path'
import type { Command } from 'commander'
import { toHex } from '@cityledger/core'
import {
  GENESIS_HASH_FORMAT,
  genesisHash,
  loadGenesis,
  problemsText,
  validateGenesisFile,
} from '../config/index.ts'
import { NODE_VERSION } from '../version.ts'
import { EXIT } from './exitCodes.ts'

const print = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
}

/** `cityledger version` and `cityledger genesis validate|hash <file>`: checks before a node starts. */
export function registerGenesisCommands(program: Command): void {
  program
    .command('version')
    .description('the versions this program runs: cityledger, Node.js, the genesis hash format')
    .action(() => {
      print({ cityledger: NODE_VERSION, node: process.versions.node, genesisHashFormat: GENESIS_HASH_FORMAT })
    })

  const genesis = program.command('genesis').description('genesis files')
  genesis
    .command('validate <file>')
    .description(
      "check a genesis file against its schema (packages/node/schema/genesis.schema.json) and rules; one 'field: problem' line each, exit 1 if any",
    )
    .action((file: string) => {
      const path = resolve(file)
      const problems = validateGenesisFile(path)
      if (problems.length === 0) process.stdout.write(`${path}: ok\n`)
      else {
        process.stdout.write(`${problemsText(path, problems)}\n`)
        process.exitCode = EXIT.FAILURE
      }
    })
  genesis
    .command('hash <file>')
    .description(
      'the genesis hash of a file (what /v1/status reports as genesisHash): agencies compare it before they start',
    )
    .action((file: string) => {
      const g = loadGenesis(resolve(file))
      print({
        genesisHash: toHex(genesisHash(g)),
        format: GENESIS_HASH_FORMAT,
        chainId: g.chainId,
        validators: g.validators.length,
      })
    })
}
