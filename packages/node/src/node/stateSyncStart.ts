// `sync.stateSync` at start: before the store opens, an empty data folder is filled by state sync
// over a short-lived libp2p node (dialling only, the same key), which is stopped before the node's own
// starts; then the node opens the store at the synced height and block sync goes on from there.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { CityError, type KeyPair, consensusMessageLimit, referenceVerdict, toHex } from '@cityledger/core'
import {
  type Genesis,
  type NodeConfig,
  type PublicOnlyKey,
  genesisHash,
  validatorKeys,
} from '../config/index.ts'
import type { Logger } from '../log/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { Clock } from '../p2p/index.ts'
import type { OpenedSigner } from '../signer/index.ts'
import { createNodeP2P, stateSyncNet } from './network.ts'
import { type StateSyncRun, stateSyncToFolder } from './stateSync.ts'

/** How long start waits for validators to connect before it syncs from those it has (at least one). */
export const STATE_SYNC_CONNECT_MS = 30_000

/**
 * Once f + 1 peers are connected, how long start still waits for the rest of the peers it asks (every
 * one connected ends the wait): more offers to choose the best from, and more peers to share the pages.
 * Without it, a join after set changes once started with 2 peers connected, one of them a leaver
 * behind the target, and had a single peer to serve it.
 */
export const STATE_SYNC_DISCOVERY_MS = 3000

/**
 * Runs state sync into `dataDir` when `config.sync.stateSync` is set and the folder holds no store
 * (a LevelDB `CURRENT` file); returns undefined when it did nothing. Asks the genesis validators and the
 * configured `p2p.peers`; waits (up to `STATE_SYNC_CONNECT_MS`) for f + 1 of the genesis set's size, so
 * that at least one honest peer is asked while the set is the genesis one, then up to
 * `STATE_SYNC_DISCOVERY_MS` more for the others.
 */
export async function stateSyncAtStart(o: {
  config: NodeConfig
  genesis: Genesis
  key: KeyPair | PublicOnlyKey
  validatorSigner: OpenedSigner
  dataDir: string
  logger: Logger
  clock: Clock
  metrics: Metrics | undefined
}): Promise<StateSyncRun | undefined> {
  const { config, genesis, logger } = o
  if (!config.sync.stateSync) return undefined
  if (config.store.backend !== 'level')
    throw new CityError('BAD_CONFIG', 'sync.stateSync needs store.backend "level" (it builds a folder)')
  if (existsSync(join(o.dataDir, 'CURRENT'))) {
    logger.info({ dataDir: o.dataDir }, 'state sync: the data folder holds a store; skipped')
    return undefined
  }
  const validators = validatorKeys(genesis)
  // Asked: the genesis validators and the configured peers (the set may have changed since genesis:
  // every answer is checked against the set of its height, whoever sends it).
  const validatorsHex = [
    ...new Set([...validators.map(toHex), ...config.p2p.peers.map((p) => p.publicKey.toLowerCase())]),
  ]
  const p2p = createNodeP2P({
    config: { ...config, p2p: { ...config.p2p, listen: [] } },
    key: o.key,
    validatorSigner: o.validatorSigner,
    validatorsHex,
    consensusFrameBytes: consensusMessageLimit(genesis.consensus.maxBlockBytes),
    logger,
    clock: o.clock,
    metrics: o.metrics,
  })
  const net = stateSyncNet(p2p)
  const wanted = Math.floor((validators.length - 1) / 3) + 1
  await p2p.start()
  try {
    const deadline = o.clock.now() + STATE_SYNC_CONNECT_MS
    const wait = () => new Promise<void>((resolve) => o.clock.setTimeout(resolve, 200))
    while (net.peers().length < wanted && o.clock.now() < deadline) await wait()
    const discovery = Math.min(deadline, o.clock.now() + STATE_SYNC_DISCOVERY_MS)
    const self = toHex(o.key.publicKey)
    const asked = validatorsHex.filter((k) => k !== self).length
    while (net.peers().length < asked && o.clock.now() < discovery) await wait()
    logger.info({ peers: net.peers().length, wanted }, 'state sync: starting')
    return await stateSyncToFolder(
      {
        chainId: genesis.chainId,
        genesisHash: genesisHash(genesis),
        genesisValidators: validators,
        checkpointInterval: genesis.consensus.checkpointInterval,
        verify: referenceVerdict,
        net,
        logger,
      },
      o.dataDir,
    )
  } finally {
    await p2p.stop()
  }
}
