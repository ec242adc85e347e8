// The validator signer (issue #15, remote signer): an operator's module is loaded and checked at start
// (its key, a test signature that verifies, synchronous), a failing sign stops the node, and the
// double-sign guard keeps what the key signed across restarts. Node-level runs: signer-node.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  type CityError,
  DOMAIN,
  VoteKind,
  encode,
  generateKeyPair,
  isCityError,
  signingMessage,
  toHex,
  voteSigningMessage,
} from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  type ValidatorSigner,
  checkSigner,
  failStop,
  fileSigner,
  guardSigner,
  loadModuleSigner,
  openValidatorSigner,
} from '../src/signer/index.ts'

const FIXTURE = resolve(import.meta.dirname, 'fixtures/signerModule.mjs')
const CHAIN = 'signer-test'

const codeOf = async (f: () => unknown): Promise<string> => {
  try {
    await f()
    return 'OK'
  } catch (err) {
    return isCityError(err) ? `${err.code}: ${err.message}` : String(err)
  }
}

const withDir = (fn: (dir: string) => Promise<void> | void) => async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-signer-'))
  try {
    await fn(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const keyFile = (dir: string, key = generateKeyPair()) => {
  const path = join(dir, `hsm-${toHex(key.publicKey).slice(0, 8)}.json`)
  writeFileSync(path, JSON.stringify({ publicKey: toHex(key.publicKey), secretKey: toHex(key.secretKey) }))
  return { key, path }
}

const vote = (kind: VoteKind, height: number, view: number, digest: number, validator: Uint8Array) =>
  voteSigningMessage({
    chainId: CHAIN,
    kind,
    height,
    view,
    digest: new Uint8Array(32).fill(digest),
    validator,
  })

test(
  'a module signer that signs correctly passes the start checks; its signatures are the key file signer',
  withDir(async (dir) => {
    const { key, path } = keyFile(dir)
    const s = await loadModuleSigner(FIXTURE, { keyFile: path })
    checkSigner(s, { name: FIXTURE, expected: key.publicKey, expectedWhat: 'the test key' })
    const m = vote(VoteKind.prepare, 1, 0, 1, key.publicKey)
    assert.equal(s.sign(m), fileSigner(key).sign(m), 'Ed25519 is deterministic: same bytes')
  }),
)

test(
  'a signer with another public key is refused at start, naming the module and both keys',
  withDir(async (dir) => {
    const node = generateKeyPair()
    const other = keyFile(dir)
    const open = (validators: Uint8Array[]) =>
      codeOf(() =>
        openValidatorSigner({
          key: node,
          validators,
          chainId: CHAIN,
          watermarkWindow: 64,
          settings: { module: FIXTURE, options: { keyFile: other.path }, stateFile: join(dir, 'state.json') },
        }),
      )
    const notInGenesis = await open([node.publicKey])
    assert.match(notInGenesis, /^SIGNER_KEY_MISMATCH: /)
    assert.match(notInGenesis, FIXTURE)
    assert.match(notInGenesis, toHex(other.key.publicKey))
    assert.match(notInGenesis, `not ${toHex(node.publicKey)} (key.json's, this node's p2p identity)`)
    // Another validator's key (in genesis) is not this node's either.
    const notMine = await open([node.publicKey, other.key.publicKey])
    assert.match(notMine, /^SIGNER_KEY_MISMATCH: /)
    assert.match(notMine, toHex(node.publicKey))
  }),
)

test(
  "a module holding the node's own key opens when that key is not in the genesis (a joiner that a validator-set change adds later)",
  withDir(async (dir) => {
    const { key, path } = keyFile(dir)
    const genesisSet = [generateKeyPair().publicKey, generateKeyPair().publicKey]
    const opened = await openValidatorSigner({
      key: { publicKey: key.publicKey },
      validators: genesisSet,
      chainId: CHAIN,
      watermarkWindow: 64,
      settings: { module: FIXTURE, options: { keyFile: path }, stateFile: join(dir, 'state.json') },
    })
    assert.is(toHex(opened.signer.publicKey), toHex(key.publicKey))
    await opened.signer.close?.()
  }),
)

test(
  'a signer whose signatures do not verify, or that answers with a Promise, is refused at start',
  withDir(async (dir) => {
    const { key, path } = keyFile(dir)
    const check = async (mode: string) =>
      codeOf(async () =>
        checkSigner(await loadModuleSigner(FIXTURE, { keyFile: path, mode }), {
          name: FIXTURE,
          expected: key.publicKey,
          expectedWhat: 'the test key',
        }),
      )
    const zeros = await check('zeros')
    assert.match(zeros, /^SIGNER_BAD_SIGNATURE: /)
    assert.match(zeros, FIXTURE)
    assert.match(zeros, 'does not verify')
    const promise = await check('async')
    assert.match(promise, /^SIGNER_BAD_SIGNATURE: /)
    assert.match(promise, 'Promise')
  }),
)

test('a module that does not load or exports no createSigner is refused, naming it', async () => {
  const missing = await codeOf(() => loadModuleSigner('/nonexistent/hsm.mjs', {}))
  assert.match(missing, /^SIGNER_LOAD: signer module \/nonexistent\/hsm.mjs cannot be loaded/)
  const noExport = await codeOf(() => loadModuleSigner(resolve(import.meta.dirname, 'cliHarness.ts'), {}))
  assert.match(noExport, /^SIGNER_LOAD: .*has no createSigner export/)
})

test(
  'the guard refuses a conflicting vote after a restart, allows the same one, and records before signing',
  withDir(async (dir) => {
    const key = generateKeyPair()
    const path = join(dir, 'signer-state.json')
    const seen: string[] = []
    // An inner signer that looks at the state file when asked: the vote must already be on disk.
    const inner: ValidatorSigner = {
      publicKey: key.publicKey,
      sign: (m) => {
        seen.push(readFileSync(path, 'utf8'))
        return fileSigner(key).sign(m)
      },
    }
    const first = guardSigner(inner, { path, chainId: CHAIN })
    first.sign(vote(VoteKind.prepare, 5, 0, 0xaa, key.publicKey))
    assert.match(seen[0]!, `"prepare/5/0":"${'aa'.repeat(32)}"`)
    // A restart: a new guard reads the file.
    const second = guardSigner(inner, { path, chainId: CHAIN })
    const conflict = await codeOf(() => second.sign(vote(VoteKind.prepare, 5, 0, 0xbb, key.publicKey)))
    assert.match(conflict, /^DOUBLE_SIGN: refused to sign a prepare vote at height 5, view 0/)
    assert.match(conflict, path)
    assert.is(seen.length, 1, 'the refused vote never reached the signer')
    second.sign(vote(VoteKind.prepare, 5, 0, 0xaa, key.publicKey))
    second.sign(vote(VoteKind.prepare, 5, 1, 0xbb, key.publicKey)) // another view
    second.sign(vote(VoteKind.commit, 5, 0, 0xbb, key.publicKey)) // another kind
    // Not votes: pass through unrecorded (view changes, the p2p handshake).
    second.sign(signingMessage(DOMAIN.consensus, encode([1, 2, 3])))
    second.sign(new TextEncoder().encode('noise-libp2p-static-key:0123'))
    const state = JSON.parse(readFileSync(path, 'utf8'))
    assert.equal(Object.keys(state.votes).sort(), ['commit/5/0', 'prepare/5/0', 'prepare/5/1'])
  }),
)

test(
  "the guard signs the votes of the chain's later epochs (epochChainId) and refuses other chains",
  withDir(async (dir) => {
    const key = generateKeyPair()
    const path = join(dir, 'signer-state.json')
    const g = guardSigner(fileSigner(key), { path, chainId: CHAIN })
    const at = (chainId: string, height: number) =>
      voteSigningMessage({
        chainId,
        kind: VoteKind.commit,
        height,
        view: 0,
        digest: new Uint8Array(32).fill(1),
        validator: key.publicKey,
      })
    assert.is(await codeOf(() => g.sign(at(`${CHAIN}--e1`, 41))), 'OK')
    assert.is(await codeOf(() => g.sign(at(`${CHAIN}--e12`, 90))), 'OK')
    assert.match(await codeOf(() => g.sign(at('other-chain', 42))), /^DOUBLE_SIGN: .*for chain other-chain/)
    assert.match(await codeOf(() => g.sign(at(`${CHAIN}--x1`, 43))), /^DOUBLE_SIGN/)
    assert.match(await codeOf(() => g.sign(at(`${CHAIN}--e0`, 44))), /^DOUBLE_SIGN/)
  }),
)

test(
  'the guard keeps a window of heights; older prepares and commits are refused, checkpoints signed',
  withDir(async (dir) => {
    const key = generateKeyPair()
    const path = join(dir, 'signer-state.json')
    const g = guardSigner(fileSigner(key), { path, chainId: CHAIN, keepHeights: 10 })
    for (let h = 1; h <= 30; h++) g.sign(vote(VoteKind.prepare, h, 0, h, key.publicKey))
    const state = JSON.parse(readFileSync(path, 'utf8'))
    assert.is(state.floor, 20)
    assert.is(Object.keys(state.votes).length, 11)
    const restarted = guardSigner(fileSigner(key), { path, chainId: CHAIN, keepHeights: 10 })
    assert.match(
      await codeOf(() => restarted.sign(vote(VoteKind.commit, 3, 0, 3, key.publicKey))),
      /^DOUBLE_SIGN: .*below .*floor 20/,
    )
    restarted.sign(vote(VoteKind.checkpoint, 16, 0, 9, key.publicKey))
  }),
)

test(
  "the guard refuses a state file it cannot read, or another key's or chain's",
  withDir(async (dir) => {
    const key = generateKeyPair()
    const path = join(dir, 'signer-state.json')
    const open = (k = key, chainId = CHAIN) => codeOf(() => guardSigner(fileSigner(k), { path, chainId }))
    writeFileSync(path, '{"format":')
    assert.match(await open(), /^SIGNER_STATE: .*not valid JSON/)
    rmSync(path)
    guardSigner(fileSigner(key), { path, chainId: CHAIN }).sign(
      vote(VoteKind.prepare, 1, 0, 1, key.publicKey),
    )
    assert.match(await open(generateKeyPair()), /^SIGNER_STATE: .*is the state of key/)
    assert.match(await open(key, 'other-chain'), /^SIGNER_STATE: .*is the state of chain signer-test/)
  }),
)

test('failStop: a throwing or short signature reports one clear error naming the signer, then throws', () => {
  const failures: CityError[] = []
  const bad = (sign: ValidatorSigner['sign']) =>
    failStop({ signer: { publicKey: new Uint8Array(32), sign }, name: '/opt/hsm.mjs' }, (e) =>
      failures.push(e),
    )
  assert.throws(() =>
    bad(() => {
      throw new Error('CKR_SESSION_CLOSED')
    })(new Uint8Array(1)),
  )
  assert.throws(() => bad(() => new Uint8Array(10))(new Uint8Array(1)))
  assert.equal(
    failures.map((f) => [f.code, f.message]),
    [
      ['SIGNER_FAILED', 'signer /opt/hsm.mjs: sign failed: CKR_SESSION_CLOSED'],
      ['SIGNER_FAILED', 'signer /opt/hsm.mjs: sign returned no 64-byte signature'],
    ],
  )
})

test.run()
