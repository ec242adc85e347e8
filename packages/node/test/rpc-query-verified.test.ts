// client.queryVerified and the exported proof verifier against a real one-validator node (defect 8).
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair, sha256, toHex, utf8 } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'
import { createClient, verifyStateProofs } from '../src/client/index.ts'
import { loadGenesis } from '../src/config/index.ts'
import { startLocalNode, subjectTx } from './nodeHarness.ts'

const signer = generateKeyPair(seedFor('query-verified'))

/** A fetch that lets `edit` rewrite the JSON answers of paths matching `re`. */
function tamperingFetch(re: RegExp, edit: (body: any) => void): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init)
    if (!re.test(String(input)) || res.status !== 200) return res
    const body = await res.json()
    edit(body)
    return new Response(JSON.stringify(body), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    })
  }
}

test('queryVerified returns a value whose state entry is proven under a root the validators certified', async () => {
  const n = await startLocalNode()
  try {
    const validators = loadGenesis(join(n.home, 'genesis.json')).validators.map((v) => v.publicKey)
    const client = createClient({ url: n.url })
    const tx = subjectTx(n.chainId, signer, 1, 'qv')
    assert.is((await client.submit(tx.bytes, { wait: 'commit' })).status, 'committed')
    const subject = toHex(sha256(utf8.encode('qv-1')))

    // The documented hook works with the exported verifier (it threw BAD_PROOF with core's).
    const plain = await client.query('identity', 'subject', { subject }, { verifyProof: verifyStateProofs })
    assert.ok(plain.value)

    const v = await client.queryVerified(
      'identity',
      'subject',
      { subject },
      { chainId: n.chainId, validators },
    )
    assert.is((v.value as { height: number }).height >= 1, true)
    assert.is(v.entries.length, 1)
    assert.ok(v.entries[0]!.value, 'the entry is proven present')
    assert.equal(v.anchor.signers, validators)
    const next = await client.block(v.height + 1)
    assert.is(v.anchor.block, next!.hash)
    assert.is(next!.header.prevStateRoot, v.root)
    // With the genesis K the client walks the (empty) validator history: the same anchor.
    const { consensus } = loadGenesis(join(n.home, 'genesis.json'))
    const walked = await client.queryVerified(
      'identity',
      'subject',
      { subject },
      { chainId: n.chainId, validators, checkpointInterval: consensus.checkpointInterval },
    )
    assert.equal(walked.anchor.signers, validators)

    // An absent entry is proven absent.
    const none = await client.queryVerified(
      'identity',
      'subject',
      { subject: toHex(sha256(utf8.encode('never'))) },
      { chainId: n.chainId, validators },
    )
    assert.is(none.value, null)
    assert.is(none.entries[0]!.value, null)
  } finally {
    await n.close()
  }
})

test('queryVerified refuses an answer it cannot anchor: other validators, other chain, tampered proof or block', async () => {
  const n = await startLocalNode()
  try {
    const validators = loadGenesis(join(n.home, 'genesis.json')).validators.map((v) => v.publicKey)
    const subject = toHex(sha256(utf8.encode('qv-2')))
    const ask = (
      client: ReturnType<typeof createClient>,
      o: { chainId?: string; validators?: string[] } = {},
    ) =>
      client
        .queryVerified(
          'identity',
          'subject',
          { subject },
          {
            chainId: o.chainId ?? n.chainId,
            validators: o.validators ?? validators,
            timeoutMs: 10_000,
          },
        )
        .then(
          () => 'accepted',
          (err) => `${err.code}: ${err.message}`,
        )
    const honest = createClient({ url: n.url })
    assert.match(
      await ask(honest, { validators: [toHex(generateKeyPair(seedFor('stranger')).publicKey)] }),
      /^BAD_PROOF: certificate/,
    )
    assert.match(await ask(honest, { chainId: 'other-chain' }), /^BAD_PROOF: block \d+ is for chain/)
    const lyingValue = createClient({
      url: n.url,
      fetch: tamperingFetch(/\/v1\/services\//, (b) => {
        b.proof.entries[0].value = toHex(utf8.encode('forged'))
      }),
    })
    assert.match(await ask(lyingValue), /^BAD_PROOF: proof does not prove/)
    const lyingRoot = createClient({
      url: n.url,
      fetch: tamperingFetch(/\/v1\/blocks\//, (b) => {
        b.header.prevStateRoot = 'ab'.repeat(32)
      }),
    })
    assert.match(await ask(lyingRoot), /^BAD_PROOF: block \d+: header does not hash/)
    const noProof = createClient({
      url: n.url,
      fetch: tamperingFetch(/\/v1\/services\//, (b) => delete b.proof),
    })
    assert.match(await ask(noProof), /^PROOF_MISSING/)
    const empty = await honest
      .queryVerified('identity', 'subject', { subject }, { chainId: n.chainId, validators: [] })
      .then(
        () => 'accepted',
        (err: Error) => err.message,
      )
    assert.match(empty, /validators: expected a non-empty list/)
  } finally {
    await n.close()
  }
})

test.run()
