// The node's replicas across epochs, built from the genesis and the config: what createNode hands the
// consensus driver. Every epoch's replica gets the same settings; only its set, base and end differ.
import {
  CityError,
  type ChainStore,
  type Runtime,
  type SignatureVerifier,
  blockHashFromBytes,
  consensusMessageLimit,
  toHex,
} from '@cityledger/core'
import { type ValidatorSchedule, createReplica, epochAt } from '@cityledger/consensus'
import type { Genesis, NodeConfig } from '../config/index.ts'
import type { Logger } from '../log/index.ts'
import { checkpointDigest } from './driver.ts'
import { EpochReplicas, allowedValidators } from './epochReplicas.ts'
import type { Journal } from './journal.ts'

/**
 * The EpochReplicas of a node: the schedule from the runtime's records in the store, each epoch's replica
 * with the genesis consensus settings, and the p2p allow list following the schedule (`onAllowed`).
 */
export function nodeReplicas(o: {
  genesis: Genesis
  config: NodeConfig
  publicKey: Uint8Array
  genesisValidators: Uint8Array[]
  sign: (message: Uint8Array) => Uint8Array
  inline: SignatureVerifier
  store: ChainStore
  runtime: Runtime
  journal: Journal
  logger: Logger
  /** The keys p2p lets in as validators changed (allowedValidators). */
  onAllowed: (keysHex: string[]) => void
  /** The set of the next height changed (metrics labels, health). */
  onCurrentSet: (keysHex: string[]) => void
}): EpochReplicas {
  const { genesis, config, store } = o
  const stateReader = { get: (k: Uint8Array) => store.state.get(k) }
  let allowedKey = ''
  const onChange = (schedule: ValidatorSchedule) => {
    const head = store.height()
    const allowed = allowedValidators(schedule, head)
    const key = [...allowed].sort().join(',')
    if (key !== allowedKey) {
      allowedKey = key
      o.onAllowed(allowed)
    }
    o.onCurrentSet(epochAt(schedule, head + 1).validators.map(toHex))
  }
  return new EpochReplicas({
    publicKey: o.publicKey,
    genesisValidators: o.genesisValidators,
    checkpointInterval: genesis.consensus.checkpointInterval,
    readChanges: (after) => o.runtime.validatorChanges(stateReader, after),
    digestAt: async (height) => {
      const [block, root] = await Promise.all([store.getBlock(height), store.stateRoot(height)]).catch(
        (err) => {
          // Pruned (or before a state-synced store's first height), and the journal kept no digest.
          throw new CityError(
            'EPOCH_BASE_UNKNOWN',
            `the validator epoch's base height ${height} is not in the store (${(err as Error).message}) and the consensus journal kept no digest of it: resync this node (state sync or block sync from a peer)`,
            { height },
          )
        },
      )
      if (!block || !root)
        throw new Error(
          `invariant broken: the epoch's base height ${height} has no stored block or state root`,
        )
      return checkpointDigest(block.hash, root)
    },
    journal: o.journal,
    logger: o.logger,
    onChange,
    makeReplica: (p) =>
      createReplica({
        chainId: genesis.chainId,
        epoch: p.epoch,
        baseHeight: p.baseHeight,
        ...(p.genesisDigest ? { genesisDigest: p.genesisDigest } : {}),
        ...(p.lastHeight !== undefined ? { lastHeight: p.lastHeight } : {}),
        validators: p.validators,
        publicKey: o.publicKey,
        sign: o.sign,
        verify: (c) => o.inline.verify(c),
        blockDigest: (b) => blockHashFromBytes(b),
        checkpointInterval: genesis.consensus.checkpointInterval,
        windowSize: genesis.consensus.watermarkWindow,
        viewTimeoutMs: genesis.consensus.viewChangeTimeoutMs,
        // consensus.emptyBlocks false: the primary proposes once per heartbeat while idle.
        heartbeatMs: config.consensus.emptyBlocks ? 0 : config.consensus.heartbeatMs,
        // The same number as the p2p consensus frame limit: one side never accepts what the other refuses.
        maxMessageBytes: consensusMessageLimit(genesis.consensus.maxBlockBytes),
      }),
  })
}
