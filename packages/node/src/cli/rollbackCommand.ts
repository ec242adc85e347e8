import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { openLevelKv, rollbackChain, toHex } from '@cityledger/core'
import { type Command, InvalidArgumentError } from 'commander'
import { dataPath, loadConfig, loadGenesis } from '../config/index.ts'
import { confirmByChainId, isValidatorHome } from './homeGuards.ts'

/**
 * `cityledger rollback --home DIR`: removes the latest block of a stopped node's store and puts its
 * state back to the height below (core's `rollbackChain`: one atomic batch), for a node that committed
 * a bad state locally (e.g. a service bug fixed since). The consensus journal goes in the same batch:
 * it may hold a stable checkpoint at the removed height, which the store no longer reaches. For a
 * validator that journal is also what keeps it from voting differently at that height when it commits
 * it again, so, as for `reset`, a validator's home needs `--unsafe-forget-votes`. Refused while the node
 * runs (its store is locked).
 */
export function registerRollbackCommand(program: Command): void {
  program
    .command('rollback')
    .description(
      "remove the latest block of a stopped node's store and restore the state of the height below (also deletes the consensus journal); asks for the chain id unless --yes",
    )
    .requiredOption('--home <dir>', 'node home folder')
    .option('--yes', 'do not ask (needed when stdin is not a terminal)', false)
    .option(
      '--unsafe-forget-votes',
      "also for a validator's home: its journal (the votes it cast) goes too, so it could vote differently at the removed height",
      false,
    )
    .action(async (o: { home: string; yes: boolean; unsafeForgetVotes: boolean }) => {
      const home = resolve(o.home)
      const config = loadConfig(home)
      const genesis = loadGenesis(join(home, 'genesis.json'))
      const data = dataPath(home, config)
      if (config.store.backend !== 'level')
        throw new InvalidArgumentError(
          `${join(home, 'config.json')}: store.backend is ${config.store.backend}: nothing on disk to roll back`,
        )
      if (!existsSync(data)) throw new InvalidArgumentError(`${data}: no data folder, nothing to roll back`)
      if (isValidatorHome(home, genesis) && !o.unsafeForgetVotes)
        throw new InvalidArgumentError(
          `${home} is a validator's home: rollback deletes its consensus journal, which keeps it from voting differently at the removed height; roll it back only with --unsafe-forget-votes, when the rest of the network committed that height (or will not count this vote)`,
        )
      // Refused while the node runs: LevelDB's lock is held.
      const kv = await openLevelKv(data)
      try {
        await confirmByChainId({
          yes: o.yes,
          question: `Remove the latest block of ${data}?`,
          chainId: genesis.chainId,
          verb: 'roll back',
          nothing: 'nothing changed',
        })
        const r = await rollbackChain(kv, { chainId: genesis.chainId, forgetJournal: true })
        process.stdout.write(
          `${data}: block ${r.removed} removed (${r.txs} txs, ${r.keys} state keys restored); now at height ${r.height}, state root ${toHex(r.root)}; consensus journal deleted\n`,
        )
      } finally {
        await kv.close()
      }
    })
}
