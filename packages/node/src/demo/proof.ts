import { verifyCommitCertificate } from '@cityledger/consensus'
import {
  blockHash,
  decodeStateProof,
  encodeHeader,
  equalBytes,
  fromHex,
  referenceVerdict,
  verifyStateProof,
  toHex,
} from '@cityledger/core'
import type { CityledgerClient, QueryResult } from '../client/index.ts'

/** The proof part of a query answer (see the node's RPC backend). */
interface QueryProof {
  root: string
  height: number
  entries: { key: string; value: string | null; proof: string }[]
}

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
 * 1. every proven entry (key, value) verifies against the answer's state root (`verifyStateProof`);
 * 2. that root is the `prevStateRoot` of block `height + 1`, whose header hashes to the block's hash;
 * 3. that block carries a commit certificate signed by a quorum of the validator set (`validators`,
 *    known to the verifier out of band: the genesis), checked signature by signature.
 * Throws an Error naming the step that failed.
 */
export async function verifyAnswer(
  answer: QueryResult,
  o: { client: CityledgerClient; chainId: string; validators: Uint8Array[]; timeoutMs: number },
): Promise<ProvenAnswer> {
  const proof = answer.proof as QueryProof | undefined
  if (!proof || !Array.isArray(proof.entries) || proof.entries.length === 0)
    throw new Error('the answer carries no proof')
  const root = fromHex(proof.root, 'proof.root')
  const keys: string[] = []
  const present: string[] = []
  for (const e of proof.entries) {
    const key = fromHex(e.key, 'proof.key')
    const value = e.value === null ? undefined : fromHex(e.value, 'proof.value')
    if (!verifyStateProofOf(root, key, value, e.proof))
      throw new Error(`proof of ${Buffer.from(key).toString()} does not verify against root ${proof.root}`)
    keys.push(Buffer.from(key).toString('utf8'))
    if (value !== undefined) present.push(Buffer.from(key).toString('utf8'))
  }

  // The next block names this root; it may not be committed yet when the answer was read.
  const deadline = performance.now() + o.timeoutMs
  let next = await o.client.block(proof.height + 1)
  while (!next) {
    if (performance.now() > deadline) throw new Error(`block ${proof.height + 1} did not appear`)
    await new Promise((r) => setTimeout(r, 150))
    next = await o.client.block(proof.height + 1)
  }
  const h = next.header
  const header = {
    chainId: h.chainId,
    height: h.height,
    view: h.view,
    time: h.time,
    parentHash: fromHex(h.parentHash),
    txRoot: fromHex(h.txRoot),
    prevStateRoot: fromHex(h.prevStateRoot),
    proposer: fromHex(h.proposer),
  }
  if (h.chainId !== o.chainId) throw new Error(`block ${h.height} is for chain ${h.chainId}`)
  if (!equalBytes(header.prevStateRoot, root))
    throw new Error(
      `block ${h.height} carries state root ${h.prevStateRoot}, the proof root is ${proof.root}`,
    )
  const hash = blockHash(encodeHeader(header))
  if (toHex(hash) !== next.hash) throw new Error(`block ${h.height}: header does not hash to ${next.hash}`)
  const c = next.certificate
  const verdict = verifyCommitCertificate(
    {
      chainId: c.chainId,
      view: c.view,
      height: c.height,
      blockHash: fromHex(c.blockHash),
      signatures: c.signatures.map((s) => ({
        validator: fromHex(s.validator),
        signature: fromHex(s.signature),
      })),
    },
    o.validators,
    o.chainId,
    referenceVerdict,
  )
  if (!verdict.ok) throw new Error(`commit certificate of block ${h.height}: ${verdict.code}`)
  if (c.height !== h.height || c.blockHash !== next.hash)
    throw new Error(`certificate is for another block than ${h.height}`)
  return {
    height: proof.height,
    root: proof.root,
    keys,
    present,
    anchorBlock: next.hash,
    signers: c.signatures.length,
  }
}

function verifyStateProofOf(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | undefined,
  proofHex: string,
): boolean {
  try {
    return verifyStateProof(root, key, value, decodeStateProof(fromHex(proofHex, 'proof')))
  } catch {
    return false
  }
}
