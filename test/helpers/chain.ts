import { type KeyPair, generateKeyPair, sha256, utf8 } from '@cityledger/core'
import type { TestNetwork, TestNode } from './network.ts'
import { type TxSender, waitFor } from './network.ts'

/** Submits `count` identity.registerSubject txs (any signer may) round-robin over the given nodes; returns their hashes. */
export async function submitSubjects(
  net: TestNetwork,
  sender: TxSender,
  count: number,
  opts: { via?: TestNode[]; key?: KeyPair; tag?: string } = {},
) {
  const key = opts.key ?? generateKeyPair()
  const via = opts.via ?? net.nodes
  const hashes: string[] = []
  for (let i = 0; i < count; i++) {
    const node = via[i % via.length]!
    const body = sender.body(key, 'identity', 'registerSubject', {
      subject: sha256(utf8.encode(`${opts.tag ?? 'subject'}-${i}-${Math.random()}`)),
    })
    const r = await node.client.submitTx(body, key.secretKey)
    hashes.push((r as { hash: string }).hash)
  }
  return hashes
}

/** Waits until every hash is committed according to `node`. */
export async function waitCommitted(node: TestNode, hashes: string[], timeoutMs = 60_000): Promise<number> {
  let maxHeight = 0
  for (const h of hashes) {
    const s = await waitFor(
      `tx ${h} committed at ${node.rpc}`,
      async () => {
        const st = await node.client.tx(h)
        return st.status === 'committed' || st.status === 'failed' ? st : undefined
      },
      timeoutMs,
    )
    if (s.status !== 'committed') throw new Error(`tx ${h} failed: ${s.code}`)
    maxHeight = Math.max(maxHeight, s.height ?? 0)
  }
  return maxHeight
}

/** Block hashes 1..height as one node sees them. */
export async function chainOf(node: TestNode, height: number): Promise<string[]> {
  const out: string[] = []
  for (let h = 1; h <= height; h++) {
    const b = await node.client.block(h)
    if (!b) throw new Error(`${node.rpc} has no block ${h}`)
    out.push(b.hash)
  }
  return out
}

/** Heights of the given nodes. */
export async function heights(nodes: TestNode[]): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => (await n.client.status()).height))
}

export async function waitHeight(node: TestNode, height: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `height ${height} at ${node.rpc}`,
    async () => (await node.client.status()).height >= height,
    timeoutMs,
  )
}
