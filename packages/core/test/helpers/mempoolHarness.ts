// A mempool over a pretend chain for the mempool tests: committed nonces and height kept here,
// `commit` plays a block, signed token transfers as txs.
import {
  CityError,
  type KeyPair,
  type Mempool,
  type MempoolOptions,
  type Tx,
  createMempool,
  createPureVerifier,
  signTx,
  toHex,
} from '@cityledger/core'

/** A signed `token.transfer` of `key` with `nonce` on `chainId` (args carry the nonce: each tx differs). */
export const transferTx = (chainId: string, key: KeyPair, nonce: number): Tx =>
  signTx(
    {
      chainId,
      service: 'token',
      method: 'transfer',
      args: { n: nonce },
      signer: key.publicKey,
      nonce,
      expiry: 0,
    },
    key.secretKey,
  )

export interface PoolHarness {
  pool: Mempool
  nonces: Map<string, number>
  chain: { height: number }
  /** Commits `txs` as the next block: nonces advance, the pool is updated. */
  commit(txs: Tx[]): ReturnType<Mempool['update']>
  /** Everything reapable now. */
  reapAll(): ReturnType<Mempool['reap']>
}

/** A pool with small limits (8 nonces per signer, 1,000 txs, 1 MiB; `limits` overrides them). */
export function poolHarness(chainId: string, limits: Partial<MempoolOptions['limits']> = {}): PoolHarness {
  const nonces = new Map<string, number>()
  const chain = { height: 0 }
  const pool = createMempool({
    chainId,
    verifier: createPureVerifier(),
    committedNonce: (signer) => nonces.get(toHex(signer)) ?? 0,
    height: () => chain.height,
    limits: { maxTxs: 1000, maxBytes: 1 << 20, maxTxBytes: 4096, maxPerSigner: 8, ...limits },
  })
  return {
    pool,
    nonces,
    chain,
    commit(txs) {
      for (const t of txs) nonces.set(toHex(t.body.signer), t.body.nonce)
      chain.height++
      return pool.update({ committed: txs, height: chain.height })
    },
    reapAll: () => pool.reap({ maxTxs: 10_000, maxBytes: 1 << 30 }),
  }
}

/** 'OK', or the code of the CityError the promise rejects with. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'OK'
  } catch (err) {
    if (err instanceof CityError) return err.code
    throw err
  }
}
