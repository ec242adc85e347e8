import { existsSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { openLevelKv } from '@cityledger/core'
import { type Command, InvalidArgumentError } from 'commander'
import { dataPath, loadConfig, loadGenesis } from '../config/index.ts'
import { confirmByChainId, isValidatorHome } from './homeGuards.ts'

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
      if (isValidatorHome(home, genesis) && !o.unsafeForgetVotes)
        throw new InvalidArgumentError(
          `${home} is a validator's home: its consensus journal keeps it from voting twice at a height; reset it only with --unsafe-forget-votes, when no other copy of this key has voted or will vote at those heights`,
        )
      // Refused while the node runs: LevelDB's lock is held.
      if (config.store.backend === 'level') await (await openLevelKv(data, { checkTables: false })).close()
      await confirmByChainId({
        yes: o.yes,
        question: `Delete ${data}?`,
        chainId: genesis.chainId,
        verb: 'reset',
        nothing: 'nothing deleted',
      })
      rmSync(data, { recursive: true, force: true })
      process.stdout.write(`${data}: deleted; key.json, config.json and genesis.json kept\n`)
    })
}
