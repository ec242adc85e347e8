// createSigner, the client's nonce manager: consecutive nonces for concurrent submits, the node's
// committed nonce as the start, and a tx refused at admission does not use up its nonce.
import { generateKeyPair, isCityError, sha256, toHex, utf8 } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createClient, createSigner } from '../src/client/index.ts'
import { startLocalNode } from './nodeHarness.ts'

const subject = (tag: string) => ({
  service: 'identity',
  method: 'registerSubject',
  args: { subject: sha256(utf8.encode(tag)) },
})

test('concurrent submits get consecutive nonces; a refused tx gives its nonce back; a new signer resumes', async () => {
  const local = await startLocalNode()
  try {
    const client = createClient({ url: local.url })
    const key = generateKeyPair()
    const citizen = createSigner(client, key)
    // Sent at once, without waiting: each takes the next nonce in call order.
    const sent = await Promise.all(['a', 'b', 'c'].map((t) => citizen.submit(subject(t))))
    const done = await Promise.all(sent.map((s) => client.waitForTx(s.hash, { timeoutMs: 20_000 })))
    assert.equal(
      done.map((s) => s.status),
      ['committed', 'committed', 'committed'],
    )
    const nonce = async () => (await client.query('_sys', 'nonce', { signer: toHex(key.publicKey) })).value
    assert.is(await nonce(), 3)
    // Refused at admission (bad args): no nonce used, so the next tx still gets 4 and commits.
    const refused = await citizen.submit({ ...subject('x'), args: { subject: 'not a hash' } }).catch((e) => e)
    assert.ok(isCityError(refused, 'BAD_ARGS'), String(refused))
    const fourth = await citizen.submit(subject('d'), { wait: 'commit', timeoutMs: 20_000 })
    assert.is(fourth.status, 'committed')
    assert.is(await nonce(), 4)
    // A fresh signer for the same key (another process, a restart) starts from the node's nonce.
    const again = createSigner(client, key, { chainId: local.chainId })
    assert.is((await again.submit(subject('e'), { wait: 'commit', timeoutMs: 20_000 })).status, 'committed')
    assert.is(await nonce(), 5)
    // Its own count is now stale for the first signer: the node refuses nonce 5, the signer reads
    // the nonce again, and the next submit goes through.
    const stale = await citizen.submit(subject('f')).catch((e) => e)
    assert.ok(isCityError(stale) && /^NONCE_/.test(stale.code), String(stale))
    assert.is((await citizen.submit(subject('g'), { wait: 'commit', timeoutMs: 20_000 })).status, 'committed')
    assert.is(await nonce(), 6)
  } finally {
    await local.close()
  }
})

test.run()
