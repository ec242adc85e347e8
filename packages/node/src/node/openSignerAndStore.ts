// What a node opens before anything else: its validator signer, then its store. Each step that fails
// closes what the steps before it opened, so a node that cannot start leaves nothing open behind it.
import {
  ChainStore,
  CityError,
  type KeyPair,
  type KvStore,
  type Runtime,
  type SyncedState,
  openLevelKv,
  openMemoryKv,
  toHex,
} from '@cityledger/core'
import {
  type Genesis,
  type NodeConfig,
  type PublicOnlyKey,
  genesisHash,
  legacyGenesisHash,
  serviceGenesis,
} from '../config/index.ts'
import type { Logger } from '../log/index.ts'
import { type Metrics, timedKv } from '../metrics/index.ts'
import {
  type OpenedSigner,
  type SignerSettings,
  openValidatorSigner,
  signerSettingsFromEnv,
} from '../signer/index.ts'

/** The opened signer and the one way to close it (errors ignored: it runs on failure paths too). */
export interface NodeSigner {
  validatorSigner: OpenedSigner
  closeSigner: () => Promise<void>
}

/**
 * Opens the validator signer: `settings`, else the `CITYLEDGER_SIGNER_*` env variables, else `key`.
 * A module's key need not be a genesis validator's: a validator-set change may add it (a joiner).
 */
export async function openSigner(o: {
  key: KeyPair | PublicOnlyKey
  genesis: Genesis
  validators: Uint8Array[]
  publicKey: string
  isValidator: boolean
  settings: SignerSettings | undefined
  dataDir: string
}): Promise<NodeSigner> {
  const signerSettings = o.settings ?? signerSettingsFromEnv(process.env, o.dataDir)
  // Before the store opens: a signer refused here leaves nothing to close but itself.
  const validatorSigner = await openValidatorSigner({
    key: o.key,
    validators: o.validators,
    chainId: o.genesis.chainId,
    watermarkWindow: o.genesis.consensus.watermarkWindow,
    ...(signerSettings ? { settings: signerSettings } : {}),
  })
  const closeSigner = async () => {
    await validatorSigner.signer.close?.().catch(() => {})
  }
  return { validatorSigner, closeSigner }
}

/**
 * Storage: one KvStore for the chain and the consensus journal (`wrapKv` is the test hook that fails
 * writes), and the chain store on it. On failure the KvStore and the signer are closed.
 */
export async function openStore(o: {
  config: NodeConfig
  genesis: Genesis
  dataDir: string
  metrics: Metrics | undefined
  wrapKv: ((kv: KvStore) => KvStore) | undefined
  closeSigner: () => Promise<void>
  syncedState?: SyncedState | undefined
}): Promise<{ kv: KvStore; store: ChainStore }> {
  let rawKv: KvStore
  try {
    rawKv = o.config.store.backend === 'memory' ? openMemoryKv() : await openLevelKv(o.dataDir)
  } catch (err) {
    await o.closeSigner()
    throw err
  }
  const kv: KvStore = o.wrapKv ? o.wrapKv(rawKv) : rawKv
  let store: ChainStore
  try {
    store = await ChainStore.open(timedKv(kv, o.metrics, 'chain'), {
      chainId: o.genesis.chainId,
      syncedState: o.syncedState,
    })
  } catch (err) {
    await kv.close()
    await o.closeSigner()
    throw err
  }
  return { kv, store }
}

/**
 * Writes the genesis state into an empty store, or checks that a store with blocks was made from this
 * genesis file (GENESIS_MISMATCH otherwise, after closing the KvStore and the signer).
 */
export async function writeOrCheckGenesis(o: {
  genesis: Genesis
  store: ChainStore
  kv: KvStore
  runtime: Runtime
  dataDir: string
  closeSigner: () => Promise<void>
  log: Logger
}): Promise<void> {
  const { genesis, store } = o
  const gHash = genesisHash(genesis)
  if (store.height() < 0) {
    const g = o.runtime.genesis({ get: () => undefined }, serviceGenesis(genesis), genesis.genesisTime)
    await store.initGenesis({ chainId: genesis.chainId, genesisHash: gHash, stateWrites: g.writes })
    o.log.info({ chainId: genesis.chainId, stateRoot: toHex(store.state.root()) }, 'genesis written')
  } else if (store.genesisHash && toHex(store.genesisHash) !== toHex(gHash)) {
    await o.kv.close()
    await o.closeSigner()
    // Genesis hashes changed to a canonical encoding (key order no longer counts): a store made by an
    // earlier version from this same file has the old hash.
    const legacy = toHex(store.genesisHash) === toHex(legacyGenesisHash(genesis))
    throw new CityError(
      'GENESIS_MISMATCH',
      legacy
        ? `the store in ${o.dataDir} was made from this genesis file by an earlier version, which hashed genesis files by their key order (hash ${toHex(store.genesisHash)}); this version cannot open it: start a new chain or use the earlier version`
        : `the store in ${o.dataDir} was made from another genesis file (hash ${toHex(store.genesisHash)}, file ${toHex(gHash)})`,
      { storeHash: toHex(store.genesisHash), fileHash: toHex(gHash), legacy },
    )
  }
}
