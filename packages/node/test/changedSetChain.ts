// A chain whose validator set changed twice (two of four keys replaced at 5, then all four at 12; K = 4,
// so set B signs from 9 and set C from 17), every certificate really signed by the set of its height with
// its epoch chain id, and the node's validator history built from it (used by validator-history,
// client-validator-history and cli-snapshot-history tests). Deterministic: fixed keys, no clock, no network.
import {
  ChainStore,
  type KeyPair,
  type KvStore,
  STORE_PREFIX,
  certificateVote,
  encode,
  encodeCertificate,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  sha256,
  signTx,
  signVote,
  subKv,
  toHex,
  utf8,
  validatorChangeKey,
  validatorCountKey,
} from '@cityledger/core'
import { epochAt, epochChainId, validatorsAt } from '@cityledger/consensus'
import { createLogger } from '../src/log/index.ts'
import { extendSchedule, genesisChainSchedule } from '../src/node/schedule.ts'
import { ValidatorHistoryStore } from '../src/node/validatorHistoryStore.ts'

export const K = 4
const kp = (name: string): KeyPair => generateKeyPair(sha256(utf8.encode(name)))
export const A = [0, 1, 2, 3].map((i) => kp(`a${i}`))
export const B = [A[0]!, A[1]!, kp('b2'), kp('b3')]
export const C = [0, 1, 2, 3].map((i) => kp(`c${i}`))
export const pub = (s: KeyPair[]) => s.map((k) => k.publicKey)
export const changes = [
  { seq: 1, height: 6, executedAt: 5, keys: pub(B) },
  { seq: 2, height: 13, executedAt: 12, keys: pub(C) },
]
export const schedule = extendSchedule(genesisChainSchedule(pub(A), K), changes).schedule
const secretOf = new Map([...A, ...B, ...C].map((k) => [toHex(k.publicKey), k.secretKey]))
export const hexKey = (s: string) => toHex(utf8.encode(s))

/** The commit certificate of `blockHash` at `height`, signed by three of `signers` (default: the set of the height). */
export function certify(
  chainId: string,
  height: number,
  blockHash: Uint8Array,
  signers = validatorsAt(schedule, height),
  epoch = epochAt(schedule, height).epoch,
): Uint8Array {
  const cert = {
    chainId: epochChainId(chainId, epoch),
    view: 0,
    height,
    blockHash,
    signatures: [] as { validator: Uint8Array; signature: Uint8Array }[],
  }
  cert.signatures = signers.slice(0, 3).map((validator) => ({
    validator,
    signature: signVote(certificateVote(cert, validator), secretOf.get(toHex(validator))!),
  }))
  return encodeCertificate(cert)
}

/**
 * Writes the chain to `blocks` into `kv` (a store that `close` leaves open), block h holding key
 * `k/<h>` = `h<h>`, and the change records at their heights; then builds the validator history.
 */
export async function changedSetChain(
  kv: KvStore,
  o: { chainId: string; blocks: number; genesisHash?: Uint8Array },
): Promise<{ store: ChainStore; history: ValidatorHistoryStore }> {
  const { chainId } = o
  const store = await ChainStore.open(kv)
  await store.initGenesis({
    chainId,
    stateWrites: new Map([[hexKey('k/0'), utf8.encode('v0')]]),
    ...(o.genesisHash ? { genesisHash: o.genesisHash } : {}),
  })
  for (let height = 1; height <= o.blocks; height++) {
    const writes = new Map<string, Uint8Array | null>([[hexKey(`k/${height}`), utf8.encode(`h${height}`)]])
    for (const c of changes.filter((c) => c.executedAt === height)) {
      const { seq: _, ...record } = c
      writes.set(hexKey(validatorChangeKey(c.seq)), encode(record))
      writes.set(hexKey(validatorCountKey), encode(c.seq))
    }
    await addBlock(store, chainId, writes)
  }
  const history = new ValidatorHistoryStore({
    kv: subKv(kv, STORE_PREFIX.validatorHistory),
    store,
    readChanges: (after) => changes.filter((c) => c.seq > after && c.executedAt <= store.height()),
    schedule: () => schedule,
    logger: createLogger({ level: 'silent' }),
  })
  await history.update()
  return { store, history }
}

/**
 * Commits block `store.height() + 1` with `writes`: one real tx envelope (the RPC's block view decodes
 * the txs; nothing executes it here), certified by the set of its height.
 */
export async function addBlock(
  store: ChainStore,
  chainId: string,
  writes: Map<string, Uint8Array | null>,
): Promise<void> {
  const height = store.height() + 1
  const tx = signTx(
    {
      chainId,
      service: 'kv',
      method: 'set',
      args: { height },
      signer: A[0]!.publicKey,
      nonce: height,
      expiry: 0,
    },
    A[0]!.secretKey,
  )
  const txs = [tx.bytes]
  const block = makeBlock(
    {
      chainId,
      height,
      view: 0,
      time: 1_700_000_000_000 + height * 1000,
      parentHash: store.tipHash(),
      txRoot: merkleRoot(txs.map((t) => sha256(t))),
      prevStateRoot: store.state.root(),
      proposer: validatorsAt(schedule, height)[0]!,
    },
    txs,
  )
  await store.commitBlock({
    block,
    certificate: certify(chainId, height, block.hash),
    results: [{ hash: tx.hash, code: null, events: [] }],
    stateWrites: writes,
  })
}
