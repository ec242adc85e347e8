// Recorded vectors: a fixed sequence of state writes, and for each version the root and a digest of
// every record stored after it (pages, values, roots). The expected values were produced by the
// state tree before its speed-ups (commit 7cfb0ce), so this fails if a change to the tree alters the
// state root or any byte of the on-disk format. To print the values of the code at hand:
// PRINT_STATE_VECTORS=1 node test/stateVectors.test.ts
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { type KvStore, StateTree, openMemoryKv, toHex } from '@cityledger/core'
import { Rng } from '@cityledger/core/testing'

// Fixed, not testSeed(): the expected values belong to this exact sequence.
const VECTOR_SEED = 20261201

/** SHA-256 over every record in `kv`, in key order: the whole stored state (pages, values, roots). */
async function digest(kv: KvStore): Promise<string> {
  const h = createHash('sha256')
  for await (const [k, v] of kv.iterate({})) {
    h.update(`${toHex(k)}=${toHex(v)}\n`)
  }
  return h.digest('hex')
}

/** Version, root and stored-records digest per update, as `version root digest` lines. */
async function vectorLines(): Promise<string[]> {
  const rng = new Rng(VECTOR_SEED)
  const kv = openMemoryKv()
  const tree = await StateTree.open(kv)
  const live: string[] = []
  const lines: string[] = []
  for (let version = 0; version < 24; version++) {
    const writes = new Map<string, Uint8Array | null>()
    // Big updates now and then, so deep pages, leaves pushed down by new neighbours, and whole
    // subtrees emptied all occur; small ones otherwise.
    const n = version % 6 === 3 ? 1500 : rng.range(1, 60)
    for (let i = 0; i < n; i++) {
      const roll = rng.int(100)
      if (live.length > 0 && roll < 35) {
        writes.set(rng.pick(live), rng.bytes(rng.int(80))) // update
      } else if (live.length > 0 && roll < 45) {
        const k = rng.pick(live)
        writes.set(k, tree.get(Uint8Array.from(Buffer.from(k, 'hex'))) ?? rng.bytes(3)) // same value again
      } else if (live.length > 0 && roll < 60) {
        writes.set(rng.pick(live), null) // delete
      } else if (roll < 62) {
        writes.set(toHex(rng.bytes(rng.range(0, 6))), null) // delete of a (likely) absent key
      } else {
        writes.set(toHex(rng.bytes(rng.range(0, 24))), rng.bytes(rng.chance(0.02) ? 3000 : rng.int(80)))
      }
    }
    const root = await tree.apply(writes)
    lines.push(`${tree.version} ${toHex(root)} ${await digest(kv)}`)
    for (const [k, v] of writes) {
      const at = live.indexOf(k)
      if (v === null && at >= 0) live.splice(at, 1)
      if (v !== null && at < 0) live.push(k)
    }
  }
  return lines
}

// version, root, digest of the whole store; recorded with the tree of commit 7cfb0ce.
const EXPECTED: string[] = [
  '0 d8a9b99e13402e08114a46a11783410b143c1d8923b2e48095c74d394da9bd65 52a2d3c30a9e0ef752c1e9fbad267f2f1c3608fb81669946a482b152cac449ed',
  '1 eafa041a54f917098d16b5050f3ab6c355d74e9c88e4b35a0216b5e6664b9e4b f398cf07bb8cc45260597214a431046076426c3c7d85a3a413496782dbf349c9',
  '2 e58ca45073e78cffbddf3f6c5e71ea64cde1ab152121653f60049adb53f40d7e 4525b07f960aa10c3cf2fc7d2cbd82b6787a221d4e38cd55d1d6d133fcd7cabc',
  '3 89753c365af334df028173ea76ae485276966dc9d1d3efaab70b74c756ce6fbc 9d776b1910bd59d0304aa6838bbe4787ff75e22d688fbc639bb75b3f2de92d82',
  '4 bf7392010eda8417f5ef2d2b119419c742d2bdff3d32a136b0361582eccb86e9 925c64283e2c0607e63ef8fd0459462daea5b14c74177d70a2388fffced460e8',
  '5 0605d8277000eaf23a518cf59b952b1ee5c8def270fa8686caad52e674486f3c 04cf8d4df8938b8501135e90a2a72ee81fef108cb35f22b5ae1eda830e840bae',
  '6 f71d9fdb9e4ada483c5bb8c00b9ebad851fbbfa2592aaa696c988f0806978223 41b74fe055958e5c028ee5588a14fc225f9674e6a6d92a979091fc3ec5e1554f',
  '7 3f5d3e54b64603916831311170c6a0d2a9d9975fc8bda35ff6034a93b056c1b8 98feb702be6c1ecc7d9da1270b91553bb6819db50b06bb93b8e0a339c4150eef',
  '8 45cfeedaf35caeb328eca655acec80dbb3e86950b3ac94d6e37f3c54252960ab 58bdc97fc4466bcb30739be8490f32c767fe95d719ae2442308360ec01c8918c',
  '9 b76b1d203a1e6ab7ba088322b095cf50dc1c34502add79cd5423d88f9c225bd5 1a74a513e621544fa1365b93ad26eb8c4ecbe95464a138531013b6b7190c0015',
  '10 131989979ebfd9386ab8dd8eee100cfb8ce2e1fc6f4f177fceb55813ee79a563 b0ae726a39f5e4cc709a3c720f4425c2cc6427229934aece54f5d40111d221d4',
  '11 4fefb3b75e5eac15619df3e74ef972f5ca539b7e1a799340725028a7609b7b77 09d20986a36848e94cfc62158a1ce2c6e4d56c7e9552c0c52e0a4e0970ad26ee',
  '12 a336dbdf16dcbaecfff5792330384190bbc4152a5e4345fdbe44d5405efc870b fcb482ce82d286aa47802e52bfea5d3b799a6ae97e6bb94990b5969a52936884',
  '13 282a4248c51006e81c8b27253ffa8c31ccc55ae75f259c043b01a5be54a4e74f 4071a364fdfd3821c7e22d32966305cfd313e4f7cd01b21bc08cf831db103298',
  '14 f9fc5f445e048cb373b567d001c8f11d7dd18b172a7fc44e6a64eeb4d554ed00 69309455133857baa52c3c846f5b738b33dbce5e43e997d2f2534b02d3526e91',
  '15 bf3bfa791b6f7730f279dd81c63fcf8e744b9ebedc99e968c2a6cfdabe584c84 f8b3ab90856183eedfd4b6ff155c4aa79b0014873225c6b89f030dae50dbadf0',
  '16 7229835adbd9cff253779109b951a604dcbf434277b5cbe72e4116e3d1240f72 c7c8714c05dad808132d9c01d269fb7cbfeb4449eefa9f5b6ea4a732fba5ab6b',
  '17 78ab069deec10ec3de7ba1a72731c318ca0eed72fb7dbbcaaf6638d237d2fd93 f7519f077762ff2f564a456d9974c4677847e0c3fb92f9a1d86f63417a9ace31',
  '18 29ff1623b49ddf9213b6e3dfa80b37b400f3b0f0378b6f4d2163137220e1e628 1b474bd7bb077d5e3d004272cab78da4f4041f15fac7e9558c6da65638d9cb14',
  '19 14c82e117ae48caff169902808262bb22bf4594f87dc063ee33ecf8eaec0cd3b 50bf4e6e871a3b65ca5317d62f0f8c0455440e5c541ed6604ece119f25165ac8',
  '20 c41f1c663a0ea06e4ab776d09fa8d7e8f3d1583ca0a34628cf8f5f8968c76567 4b0d594ab7703c8c4116a7273a8733893988ce8133c9e5209860b9f4bf01f156',
  '21 9ea1eb01ebe9ebfb4959c54e11e238754488f4a0c5d13a4207f84cc4f6f4b611 ab8ff7a8d2919a36b567d3dae54a3848d4e706d6d006132d010cb78b19b835f2',
  '22 fcc9a62f24c97b1b85e6ec5ef86280888c36b00417ecdd956198841b66cb2994 9b455b581924b1f47908062f5b762387a01eb0fb892ab8732d86105a1c68b0fb',
  '23 d2ee452727082a6d24701e430a3656f8db9f04b57c23fff6af8ce39ef95ab5f1 5d9c1fca1592caa40e19a3f58d5c37cd938ae51dcf88657996509409a88569f4',
]

test('roots and stored records of a fixed write sequence are those of the recorded tree', async () => {
  const lines = await vectorLines()
  if (process.env.PRINT_STATE_VECTORS) {
    console.log(lines.map((l) => `  '${l}',`).join('\n'))
    return
  }
  assert.equal(lines.length, EXPECTED.length)
  for (let i = 0; i < lines.length; i++) assert.equal(lines[i], EXPECTED[i], `version ${i}`)
})

test.run()
