import { type TxBody, toHex } from '@cityledger/core'
import type { Cluster } from './cluster.ts'

/** Submits a tx signed by the dev genesis' city key through node `node`, waiting for its commit. */
export async function cityTx(
  c: Cluster,
  node: number,
  service: string,
  method: string,
  args: TxBody['args'],
) {
  const { client } = c.nodes[node]!
  const key = c.layout.cityKey
  const signer = toHex(key.publicKey)
  const nonce = Number((await client.query('_sys', 'nonce', { signer })).value) + 1
  const body: TxBody = {
    chainId: c.layout.genesis.chainId,
    service,
    method,
    args,
    signer: key.publicKey,
    nonce,
    expiry: 0,
  }
  return client.submitTx(body, key.secretKey, { wait: 'commit', timeoutMs: 20_000 })
}
