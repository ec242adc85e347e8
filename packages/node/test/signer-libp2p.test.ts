// The p2p identity of a validator whose key is in a signer (issue #15): a libp2p node whose private
// key is `libp2pKeyOfSigner(signer)` completes Noise handshakes as the validator's peer id, with the
// signer making the one identity signature; the key refuses anything but a handshake payload.
import { generateKeyPair, isCityError, toHex } from '@cityledger/core'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair as libp2pKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { peerIdFromValidatorKey } from '../src/p2p/identity.ts'
import { type ValidatorSigner, fileSigner, libp2pKeyOfSigner } from '../src/signer/index.ts'

const node = (privateKey: PrivateKey) =>
  createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })

test('a libp2p node keyed by a signer is the validator peer id, and the signer signs its handshakes', async () => {
  const key = generateKeyPair()
  const messages: Uint8Array[] = []
  const signer: ValidatorSigner = {
    publicKey: key.publicKey,
    sign: (m) => {
      messages.push(m)
      return fileSigner(key).sign(m)
    },
  }
  const a = await node(libp2pKeyOfSigner(signer))
  const b = await node(await libp2pKeyPair('Ed25519'))
  try {
    assert.is(a.peerId.toString(), peerIdFromValidatorKey(key.publicKey).toString())
    const conn = await b.dial(a.getMultiaddrs()[0]!)
    assert.is(conn.remotePeer.toString(), peerIdFromValidatorKey(toHex(key.publicKey)).toString())
    assert.ok(messages.length >= 1, 'the signer signed the handshake')
    assert.ok(
      messages.every((m) => new TextDecoder().decode(m.subarray(0, 24)) === 'noise-libp2p-static-key:'),
    )
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('a signer whose signature is not its public key fails the handshake', async () => {
  const key = generateKeyPair()
  const other = generateKeyPair()
  const liar: ValidatorSigner = { publicKey: key.publicKey, sign: (m) => fileSigner(other).sign(m) }
  const a = await node(libp2pKeyOfSigner(liar))
  const b = await node(await libp2pKeyPair('Ed25519'))
  try {
    let failed = false
    await b.dial(a.getMultiaddrs()[0]!).catch(() => (failed = true))
    assert.ok(failed, 'the dial is refused')
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('the key signs only Noise handshake payloads and has no raw bytes', () => {
  const k = libp2pKeyOfSigner(fileSigner(generateKeyPair()))
  const code = (f: () => unknown) => {
    try {
      f()
      return 'OK'
    } catch (err) {
      return isCityError(err) ? err.code : String(err)
    }
  }
  assert.is(
    code(() => k.sign(new TextEncoder().encode('cityledger/vote/v1\0anything'))),
    'SIGNER_BAD',
  )
  assert.is(
    code(() => k.raw),
    'SIGNER_BAD',
  )
})

test.run()
