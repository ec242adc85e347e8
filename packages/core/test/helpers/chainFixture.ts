// Deterministic blocks for the store tests and the crash child: everything about block h (txs,
// results, state writes) is a function of (seed, h) and of the store's tip, so a test can replay the
// chain into a fresh store and compare hashes and roots height by height.
import {
  type ChainStore,
  type CommitInput,
  type StateWrites,
  ZERO_HASH,
  encode,
  encodeCertificate,
  makeBlock,
  merkleRoot,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'

export const CHAIN_ID = 'store-test'
const KEY_POOL = 300

export const stateKey = (n: number): string => toHex(utf8.encode(`token/balance/${n}`))

/** Genesis state: a tenth of the key pool funded. */
export function genesisWrites(seed: number): Map<string, Uint8Array | null> {
  const rng = new Rng(seed ^ 0x5eed)
  const w = new Map<string, Uint8Array | null>()
  for (let n = 0; n < KEY_POOL; n += 10) w.set(stateKey(n), encode([0, n, rng.u32()]))
  return w
}

/** State writes of block `height`: puts and deletes over a shared key pool (deletes of absent keys too). */
export function writesFor(height: number, seed: number, count?: number): Map<string, Uint8Array | null> {
  const rng = new Rng((seed * 7919 + height * 104729) >>> 0)
  const w = new Map<string, Uint8Array | null>()
  const k = count ?? rng.range(0, 40)
  for (let i = 0; i < k; i++) {
    const n = rng.int(KEY_POOL)
    w.set(stateKey(n), rng.chance(0.2) ? null : encode([height, n, rng.bytes(rng.int(24))]))
  }
  return w
}

/** The complete input for committing block `store.height() + 1` on top of `store`. */
export function nextBlock(
  store: ChainStore,
  seed: number,
  over: { writes?: StateWrites; txCount?: number } = {},
): CommitInput {
  const height = store.height() + 1
  const rng = new Rng((seed * 31337 + height * 65537) >>> 0)
  const txCount = over.txCount ?? rng.range(0, 12)
  const txs = Array.from({ length: txCount }, (_, i) =>
    encode([CHAIN_ID, height, i, rng.bytes(rng.range(8, 120))]),
  )
  const view = rng.int(3)
  const block = makeBlock(
    {
      chainId: store.chainId ?? CHAIN_ID,
      height,
      view,
      time: 1_700_000_000_000 + height * 1000,
      parentHash: store.tipHash(),
      txRoot: merkleRoot(txs.map((t) => sha256(t))),
      prevStateRoot: store.state.root(),
      proposer: sha256(utf8.encode(`proposer-${view}`)),
    },
    txs,
  )
  const certificate = encodeCertificate({
    chainId: block.header.chainId,
    view,
    height,
    blockHash: block.hash,
    signatures: [0, 1, 2].map((v) => ({
      validator: sha256(utf8.encode(`validator-${v}`)),
      signature: rng.bytes(64),
    })),
  })
  const results = txs.map((t, i) => {
    const failed = rng.chance(0.2)
    return {
      hash: sha256(t),
      code: failed ? 'NONCE_TOO_LOW' : null,
      ...(failed ? { message: `tx ${i} nonce too low` } : {}),
      events: failed
        ? []
        : [{ service: 'token', name: 'transfer', data: { amount: rng.int(1000), memo: `h${height}` } }],
    }
  })
  const blockEvents = rng.chance(0.3)
    ? [{ service: 'token', name: 'expired', data: [height, rng.int(9)] }]
    : []
  return { block, certificate, results, stateWrites: over.writes ?? writesFor(height, seed), blockEvents }
}

export { ZERO_HASH }
