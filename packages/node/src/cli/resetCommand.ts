import { existsSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { CityError, isCityError, openLevelKv, toHex } from '@cityledger/core'
import { type Command, InvalidArgumentError } from 'commander'
import { dataPath, loadConfig, loadGenesis, readKeyFile } from '../config/index.ts'

/**
 * `cityledger reset --home DIR`: deletes the node's data folder (blocks, state and the consensus
 * journal) and keeps its key, config and genesis, so the next `start` syncs the chain again from its
 * peers. A validator's journal is what keeps it from voting twice at a height it already voted at;
 * without it a restarted validator could sign a conflicting vote, so a validator's home needs
 * `--unsafe-forget-votes` as well. Refused while the node runs (its store is locked).
 */
export function registerResetCommand(program: Command): void {
  program
    .command('reset')
    .description(
      "delete a node's data folder (blocks, state, consensus journal), keeping key.json, config.json and genesis.json; asks for the chain id unless --yes",
    )
    .requiredOption('--home <dir>', 'node home folder')
    .option('--yes', 'do not ask (needed when stdin is not a terminal)', false)
    .option(
      '--unsafe-forget-votes',
      "also for a validator's home: its journal (the votes it cast) goes too, so it could vote twice at a height after the reset",
      false,
    )
    .action(async (o: { home: string; yes: boolean; unsafeForgetVotes: boolean }) => {
      const home = resolve(o.home)
      const config = loadConfig(home)
      const genesis = loadGenesis(join(home, 'genesis.json'))
      const data = dataPath(home, config)
      if (!existsSync(data)) {
        process.stdout.write(`${data}: no data folder, nothing to reset\n`)
        return
      }
      let validator = false
      try {
        // The public key is in the file even when it is encrypted.
        const key = readKeyFile(join(home, 'key.json'))
        validator = genesis.validators.some((v) => v.publicKey.toLowerCase() === toHex(key.publicKey))
      } catch (err) {
        if (!isCityError(err, 'KEY_LOCKED')) throw err
        validator = true // unknown: treat as a validator
      }
      if (validator && !o.unsafeForgetVotes)
        throw new InvalidArgumentError(
          `${home} is a validator's home: its consensus journal keeps it from voting twice at a height; reset it only with --unsafe-forget-votes, when no other copy of this key has voted or will vote at those heights`,
        )
      // Refused while the node runs: LevelDB's lock is held.
      if (config.store.backend === 'level') await (await openLevelKv(data, { checkTables: false })).close()
      if (!o.yes) {
        if (!process.stdin.isTTY)
          throw new InvalidArgumentError('stdin is not a terminal: pass --yes to reset without asking')
        const rl = createInterface({ input: process.stdin, output: process.stdout })
        const answer = await rl.question(
          `Delete ${data}? Type the chain id (${genesis.chainId}) to confirm: `,
        )
        rl.close()
        if (answer.trim() !== genesis.chainId)
          throw new CityError('ABORTED', 'not confirmed: nothing deleted')
      }
      rmSync(data, { recursive: true, force: true })
      process.stdout.write(`${data}: deleted; key.json, config.json and genesis.json kept\n`)
    })
}
