import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  leafHash,
  merkleProof,
  merkleRoot,
  sha256,
  utf8,
  verifyMerkleProof,
  DOMAIN,
  taggedHash,
  equalBytes,
} from '@cityledger/core'
import { Rng, testSeed } from '@cityledger/core/testing'

const SEED = testSeed(6962)
const leaves = (n: number) => Array.from({ length: n }, (_, i) => sha256(utf8.encode(`tx-${i}`)))

test('root of one leaf is its leaf hash; of none, the leaf domain alone; order matters', () => {
  const [a, b] = leaves(2) as [Uint8Array, Uint8Array]
  assert.ok(equalBytes(merkleRoot([a]), leafHash(a)))
  assert.ok(equalBytes(merkleRoot([]), taggedHash(DOMAIN.merkleLeaf)))
  assert.not.ok(equalBytes(merkleRoot([a, b]), merkleRoot([b, a])))
  // A leaf can never pass for an inner node: the two domains differ.
  const inner = taggedHash(DOMAIN.merkleNode, leafHash(a), leafHash(b))
  assert.ok(equalBytes(merkleRoot([a, b]), inner))
  assert.not.ok(equalBytes(merkleRoot([a, b]), leafHash(new Uint8Array([...leafHash(a), ...leafHash(b)]))))
})

test('every leaf of trees of 1..70 leaves proves its place, and nothing else', () => {
  for (let n = 1; n <= 70; n++) {
    const ls = leaves(n)
    const root = merkleRoot(ls)
    for (let i = 0; i < n; i++) {
      const p = merkleProof(ls, i)
      assert.ok(verifyMerkleProof(root, ls[i]!, p), `n=${n} i=${i}`)
      if (n > 1) {
        assert.not.ok(verifyMerkleProof(root, ls[(i + 1) % n]!, p), `wrong leaf n=${n} i=${i}`)
        assert.not.ok(
          verifyMerkleProof(root, ls[i]!, { ...p, index: (i + 1) % n }),
          `wrong index n=${n} i=${i}`,
        )
      }
    }
  }
})

test(`tampered and garbage proofs fail without throwing (seed ${SEED})`, () => {
  const rng = new Rng(SEED)
  const ls = leaves(37)
  const root = merkleRoot(ls)
  for (let k = 0; k < 500; k++) {
    const i = rng.int(ls.length)
    const p = merkleProof(ls, i)
    const siblings = p.siblings.map((s) => Uint8Array.from(s))
    const j = rng.int(siblings.length)
    siblings[j]![rng.int(32)]! ^= 1 << rng.int(8)
    assert.not.ok(verifyMerkleProof(root, ls[i]!, { ...p, siblings }), `seed ${SEED} case ${k}`)
  }
  const junk = [
    { index: -1, total: 3, siblings: [] },
    { index: 0, total: 0, siblings: [] },
    { index: 0.5, total: 3, siblings: [] },
    { index: 0, total: 3, siblings: [new Uint8Array(3), new Uint8Array(32)] },
    { index: 0, total: 3, siblings: [null as unknown as Uint8Array, new Uint8Array(32)] },
  ]
  for (const p of junk) assert.not.ok(verifyMerkleProof(root, ls[0]!, p))
  assert.throws(() => merkleProof(ls, 37), /out of range/)
})

test.run()
