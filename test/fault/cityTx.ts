import { type TxBody, toHex } from '@cityledger/core'
import { type Cluster, waitFor } from './cluster.ts'

/** The city key's last nonce committed through `cityTx`, per cluster. */
const committed = new WeakMap<Cluster, number>()

/**
 * Submits a tx signed by the dev genesis' city key through node `node`, waiting for its commit. The
 * nonce is the node's committed one + 1, once the node has committed the city key's last tx sent here:
 * a node a block behind the one that answered the last commit still holds that tx pending, and refused
 * a second tx with its nonce (a fresh-clone run of upgrade.test.ts).
 */
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
  const nonceAt = async () => Number((await client.query('_sys', 'nonce', { signer })).value)
  const last = committed.get(c) ?? 0
  await waitFor(
    `node ${node} has the city key's nonce ${last}`,
    async () => (await nonceAt()) >= last,
    30_000,
  )
  const nonce = (await nonceAt()) + 1
  const body: TxBody = {
    chainId: c.layout.genesis.chainId,
    service,
    method,
    args,
    signer: key.publicKey,
    nonce,
    expiry: 0,
  }
  const result = await client.submitTx(body, key.secretKey, { wait: 'commit', timeoutMs: 20_000 })
  if (result.status === 'committed') committed.set(c, Math.max(last, nonce))
  return result
}
