// The validator history (validatorHistory.ts, validatorHistoryStore.ts) and state sync across validator
// changes: a chain whose set changes twice (changedSetChain.ts: two of four keys replaced, then all four),
// every certificate really signed by the set of its height. A joiner walks the history from the genesis
// set, so it accepts an offer the genesis set never signed (before, it checked offers against the genesis
// set and found none); peers that tamper with the history or the offer are caught. Deterministic.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  ChainStore,
  type KvStore,
  STORE_PREFIX,
  decodeCertificate,
  decodeStrict,
  encode,
  openMemoryKv,
  referenceVerdict,
  subKv,
  toHex,
} from '@cityledger/core'
import { createLogger } from '../src/log/index.ts'
import { type StateSyncOptions, runStateSync } from '../src/node/stateSync.ts'
import { serveStateSync } from '../src/node/stateSyncServe.ts'
import type { SyncNet } from '../src/node/sync.ts'
import { decodeHistoryEntry, walkValidatorHistory } from '../src/node/validatorHistory.ts'
import { readHistory } from '../src/node/validatorHistoryStore.ts'
import { A, C, K, certify, changedSetChain, pub, schedule } from './changedSetChain.ts'

const chainId = 'history-test'
const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })
const silent = createLogger({ level: 'silent' })

/** The chain of changedSetChain.ts to `blocks`, with its history built. */
async function sourceChain(blocks: number) {
  const kv = openMemoryKv()
  return { kv, ...(await changedSetChain(keep(kv), { chainId, blocks })) }
}

const walkOptions = { chainId, genesisValidators: pub(A), checkpointInterval: K, verify: referenceVerdict }

test('the history holds an entry per change; walking it from the genesis set gives the chain schedule, after pruning too', async () => {
  const src = await sourceChain(24)
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
          e.certificate = certify(chainId, c.height, c.blockHash, pub(C))
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
