// The validator history walk against a peer that sends almost-right entries: seeded random byte flips,
// truncations, swapped fields and entries of the other change, over the two real entries of
// changedSetChain.ts. Every mutated walk either gives exactly the chain's schedule (the bytes that changed
// do not matter, e.g. a flip that still decodes to the same entry) or is refused with
// BAD_VALIDATOR_HISTORY: never another schedule, never another error. SEED=<n> reruns one sequence.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KvStore, isCityError, openMemoryKv, referenceVerdict } from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'
import { type HistoryEntry, decodeHistoryEntry, walkValidatorHistory } from '../src/node/validatorHistory.ts'
import { readHistory } from '../src/node/validatorHistoryStore.ts'
import { A, K, changedSetChain, pub, schedule } from './changedSetChain.ts'

const seed = testSeed(20261202)
const chainId = 'history-fuzz'
const keep = (kv: KvStore): KvStore => ({ ...kv, close: async () => {} })
const FIELDS = ['headerBytes', 'certificate', 'value', 'proof'] as const

function mutate(rng: Rng, entries: HistoryEntry[]): HistoryEntry[] {
  const out = entries.map((e) => ({ ...e }))
  const e = rng.pick(out)
  const field = rng.pick(FIELDS)
  const bytes = Uint8Array.from(e[field])
  switch (rng.int(4)) {
    case 0: // one bit
      bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8)
      e[field] = bytes
      break
    case 1: // truncated
      e[field] = bytes.subarray(0, rng.int(bytes.length))
      break
    case 2: {
      // a field of the other entry
      const other = out[(out.indexOf(e) + 1) % out.length]!
      e[field] = other[rng.pick(FIELDS)]
      break
    }
    default: // random bytes
      e[field] = rng.bytes(rng.int(64) + 1)
  }
  if (rng.chance(0.1)) e.seq = rng.int(4)
  return out
}

test(`mutated history entries are refused or harmless, never a different schedule (SEED=${seed})`, async () => {
  const kv = openMemoryKv()
  const { history } = await changedSetChain(keep(kv), { chainId, blocks: 20 })
  const entries = (await readHistory(history.kv, 1, 64, 1 << 20)).map(decodeHistoryEntry)
  const o = { chainId, genesisValidators: pub(A), checkpointInterval: K, verify: referenceVerdict }
  assert.equal(walkValidatorHistory(o, entries).schedule, schedule)
  const rng = new Rng(seed)
  let refused = 0
  for (let i = 0; i < 400; i++) {
    const mutated = mutate(rng, entries)
    try {
      const walked = walkValidatorHistory(o, mutated)
      assert.equal(walked.schedule, schedule, `run ${i} (SEED=${seed}): a mutated walk gave another schedule`)
    } catch (err) {
      if (err instanceof assert.Assertion) throw err
      assert.ok(isCityError(err, 'BAD_VALIDATOR_HISTORY'), `run ${i} (SEED=${seed}): ${String(err)}`)
      refused++
    }
  }
  assert.ok(refused > 350, `${refused} of 400 refused`)
})

test.run()
