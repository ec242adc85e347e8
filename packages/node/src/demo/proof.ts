import { fromHex } from '@cityledger/core'
import {
  type CityledgerClient,
  type QueryResult,
  proofOf,
  verifyAnchor,
  verifyStateProofs,
} from '../client/index.ts'

/** What a third party established about a query answer, without trusting the node that gave it. */
export interface ProvenAnswer {
  height: number
  root: string
  /** State keys proven, as text (`certificates/doc/<idHex>`). */
  keys: string[]
  /** The proven keys that have a value (the others are proven absent). */
  present: string[]
  /** Hash of block `height + 1`, whose header carries `root` and whose commit certificate was checked. */
  anchorBlock: string
  signers: number
}

/**
 * Checks a query answer the way a verifier outside the network would:
 * 1. every proven entry (key, value) verifies against the answer's state root (`verifyStateProofs`);
 * 2. that root is the `prevStateRoot` of block `height + 1`, whose header hashes to the block's hash;
 * 3. that block carries a commit certificate signed by a quorum of the validator set (`validators`,
 *    known to the verifier out of band: the genesis), checked signature by signature.
 * The same checks as `client.queryVerified` (client/verify.ts). Throws an Error naming the step that
 * failed.
 */
export async function verifyAnswer(
  answer: QueryResult,
  o: { client: CityledgerClient; chainId: string; validators: Uint8Array[]; timeoutMs: number },
): Promise<ProvenAnswer> {
  const proof = proofOf(answer)
  if (!verifyStateProofs(proof.rootBytes, new Uint8Array(0), answer.value, proof))
    throw new Error(`the proof does not verify against root ${proof.root}`)
  const keys = proof.entries.map((e) => Buffer.from(fromHex(e.key)).toString('utf8'))
  const present = proof.entries
    .filter((e) => e.value !== null)
    .map((e) => Buffer.from(fromHex(e.key)).toString('utf8'))

  // The next block names this root; it may not be committed yet when the answer was read.
  const deadline = performance.now() + o.timeoutMs
  let next = await o.client.block(proof.height + 1)
  while (!next) {
    if (performance.now() > deadline) throw new Error(`block ${proof.height + 1} did not appear`)
    await new Promise((r) => setTimeout(r, 150))
    next = await o.client.block(proof.height + 1)
  }
  const anchor = verifyAnchor(next, proof.rootBytes, proof.height, o)
  return {
    height: proof.height,
    root: proof.root,
    keys,
    present,
    anchorBlock: anchor.block,
    signers: anchor.signers.length,
  }
}
