// The validator history (validatorHistory.ts, validatorHistoryStore.ts) and state sync across validator
// changes: a chain whose set changes twice (two of four keys replaced, then all four), every certificate
// really signed by the set of its height. A joiner walks the history from the genesis set, so it accepts
// an offer the genesis set never signed (before, it checked offers against the genesis set and found
// none); peers that tamper with the history or the offer are caught. Deterministic: no network, no clock.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KeyPair,
  type KvStore,
  STORE_PREFIX,
  certificateVote,
  decodeCertificate,
  decodeStrict,
  encode,
  encodeCertificate,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  openMemoryKv,
  referenceVerdict,
  sha256,
  signVote,
  subKv,
  toHex,
  utf8,
  validatorChangeKey,
  validatorCountKey,
} from '@cityledger/core'
import { epochAt, epochChainId, validatorsAt } from '@cityledger/consensus'
import { createLogger } from '../src/log/index.ts'
import { genesisChainSchedule, extendSchedule } from '../src/node/schedule.ts'
import { type StateSyncOptions, runStateSync } from '../src/node/stateSync.ts'
import { serveStateSync } from '../src/node/stateSyncServe.ts'
import type { SyncNet } from '../src/node/sync.ts'
import { decodeHistoryEntry, walkValidatorHistory } from '../src/node/validatorHistory.ts'
import { ValidatorHistoryStore, readHistory } from '../src/node/validatorHistoryStore.ts'

const chainId = 'history-test'
const K = 4
const kp = (name: string): KeyPair => generateKeyPair(sha256(utf8.encode(name)))
const A = [0, 1, 2, 3].map((i) => kp(`a${i}`))
const B = [A[0]!, A[1]!, kp('b2'), kp('b3')]
const C = [0, 1, 2, 3].map((i) => kp(`c${i}`))
const pub = (s: KeyPair[]) => s.map((k) => k.publicKey)
// Change 1 executed at 5 (set B from 9), change 2 at 12 (set C from 17).
const changes = [
  { seq: 1, height: 6, executedAt: 5, keys: pub(B) },
  { seq: 2, height: 13, executedAt: 12, keys: pub(C) },
]
const schedule = extendSchedule(genesisChainSchedule(pub(A), K), changes).schedule
const secretOf = new Map([...A, ...B, ...C].map((k) => [toHex(k.publicKey), k.secretKey]))
const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })
const hexKey = (s: string) => toHex(utf8.encode(s))
const silent = createLogger({ level: 'silent' })

function certify(height: number, blockHash: Uint8Array, signers = validatorsAt(schedule, height)) {
  const cert = {
    chainId: epochChainId(chainId, epochAt(schedule, height).epoch),
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

/** The chain to `blocks`, its records written at their heights, and its history store. */
async function sourceChain(blocks: number) {
  const kv = openMemoryKv()
  const store = await ChainStore.open(keep(kv))
  const genesis = new Map<string, Uint8Array | null>()
  for (let i = 0; i < 300; i++) genesis.set(hexKey(`k/${i}`), utf8.encode(`v${i}`))
  await store.initGenesis({ chainId, stateWrites: genesis })
  for (let height = 1; height <= blocks; height++) {
    const writes = new Map<string, Uint8Array | null>([[hexKey(`k/${height}`), utf8.encode(`h${height}`)]])
    for (const c of changes.filter((c) => c.executedAt === height)) {
      const { seq: _, ...record } = c
      writes.set(hexKey(validatorChangeKey(c.seq)), encode(record))
      writes.set(hexKey(validatorCountKey), encode(c.seq))
    }
    const txs = [encode([chainId, height])]
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
      certificate: certify(height, block.hash),
      results: [{ hash: sha256(txs[0]!), code: null, events: [] }],
      stateWrites: writes,
    })
  }
  const history = new ValidatorHistoryStore({
    kv: subKv(kv, STORE_PREFIX.validatorHistory),
    store,
    readChanges: (after) => changes.filter((c) => c.seq > after && c.executedAt <= store.height()),
    schedule: () => schedule,
    logger: silent,
  })
  return { kv, store, history }
}

const walkOptions = { chainId, genesisValidators: pub(A), checkpointInterval: K, verify: referenceVerdict }

test('the history holds an entry per change; walking it from the genesis set gives the chain schedule, after pruning too', async () => {
  const src = await sourceChain(24)
  await src.history.update()
  const raw = await readHistory(src.history.kv, 1, 64, 1 << 20)
  assert.is(raw.length, 2)
  const entries = raw.map(decodeHistoryEntry)
  const walked = walkValidatorHistory(walkOptions, entries)
  assert.equal(walked.schedule, schedule)
  // Each entry is certified by the set before its change (the entry of change 2 by set B).
  assert.equal(
    entries.map((e) => e.seq),
    [1, 2],
  )
  // Blocks and state history pruned: the entries stay, and a node serves them from its store.
  await src.store.prune(22)
  await src.store.pruneState()
  const served = decodeStrict(await serveStateSync(src, encode(['validators', 1])), {
    maxBytes: 1 << 20,
    maxDepth: 1,
  }) as Uint8Array[]
  assert.equal(walkValidatorHistory(walkOptions, served.map(decodeHistoryEntry)).schedule, schedule)
  // A walk that skips the genesis set's own evidence, or starts at change 2, is refused.
  assert.throws(() => walkValidatorHistory(walkOptions, [entries[1]!]), /out of order/)
})

type Liar = 'honest' | 'tampered-record' | 'forged-certificate' | 'short-history' | 'hidden-change'

function peersOver(src: { kv: KvStore; store: ChainStore }, peers: Record<string, Liar>) {
  const penalties: string[] = []
  const net: SyncNet = {
    peers: () => Object.keys(peers),
    penalize: (peer, reason) => penalties.push(`${peer} ${reason}`),
    async request(peer, bytes) {
      const kind = (decodeStrict(bytes, { maxBytes: 1 << 20, maxDepth: 2 }) as string[])[0]
      const b = peers[peer]!
      const res = await serveStateSync(src, bytes)
      if (kind === 'validators' && b !== 'honest' && b !== 'hidden-change') {
        if (b === 'short-history') return encode([])
        const list = decodeStrict(res, { maxBytes: res.length, maxDepth: 1 }) as Uint8Array[]
        const e = decodeHistoryEntry(list[0]!)
        if (b === 'tampered-record')
          // Change 1 as if it had named the liar's own keys: the proof no longer holds.
          e.value = encode({ height: 6, executedAt: 5, keys: pub(C) })
        else {
          // The real record, its block certified by keys that were never validators.
          const c = decodeCertificate(e.certificate)
          e.certificate = certify(c.height, c.blockHash, pub(C))
        }
        return encode([encode([e.seq, e.headerBytes, e.certificate, e.value, e.proof]), ...list.slice(1)])
      }
      if (kind === 'offer' && b === 'hidden-change') {
        // One change fewer claimed: the count proof under the certified root no longer holds.
        const f = decodeStrict(res, { maxBytes: res.length, maxDepth: 2 }) as unknown[]
        f[5] = encode(1)
        return encode(f)
      }
      return res
    },
  }
  return { net, penalties }
}

const options = (net: SyncNet): StateSyncOptions => ({
  genesisHash: new Uint8Array(32),
  ...walkOptions,
  net,
  logger: silent,
  batch: 32,
  parallel: 2,
  minRequestIntervalMs: 0,
})

test('state sync after two validator changes: the offer is checked against the walked set, and liars are caught', async () => {
  const src = await sourceChain(24)
  await src.history.update()
  const { net, penalties } = peersOver(src, {
    tampered: 'tampered-record',
    forged: 'forged-certificate',
    short: 'short-history',
    honest: 'honest',
    // After the honest peer (offers are checked in order): the walk already holds both changes, so the
    // certificates verify and only the count proof can catch it.
    hider: 'hidden-change',
  })
  const kv = openMemoryKv()
  const result = await runStateSync(options(net), kv)
  assert.is(result.height, 23)
  assert.is(result.stateRoot, toHex((await src.store.stateRoot(23))!))
  const reasons = Object.fromEntries(result.dropped.map((d) => [d.peer, d.reason]))
  assert.match(reasons.tampered ?? '', /^bad-history: .*entry 1: the proof does not show the record/)
  assert.match(reasons.forged ?? '', /^bad-history: .*entry 1: certificate of block 6: UNKNOWN_VALIDATOR/)
  assert.match(reasons.short ?? '', /^bad-history: .*sent none from 1/)
  assert.match(reasons.hider ?? '', /^bad-offer: the count of validator changes \(1\) is not proven/)
  assert.not.ok(reasons.honest)
  for (const p of ['tampered', 'forged', 'short'])
    assert.ok(penalties.includes(`${p} state-sync:bad-history`))
  assert.ok(penalties.includes('hider state-sync:bad-offer'), penalties.join(', '))
  // The joiner keeps the history it walked and serves it in turn.
  const synced = await ChainStore.open(keep(kv), { chainId })
  const served = await readHistory(subKv(kv, STORE_PREFIX.validatorHistory), 1, 64, 1 << 20)
  assert.equal(walkValidatorHistory(walkOptions, served.map(decodeHistoryEntry)).schedule, schedule)
  assert.is(synced.height(), 23)
})

test.run()
