// Key files encrypted at rest (issue #15): scrypt + AES-256-GCM with a passphrase from a private file
// (`--passphrase-file`, or CITYLEDGER_KEY_PASSPHRASE_FILE for a supervisor); without the passphrase,
// or with a wrong one, or after any edit of the file, the key is refused with a clear error.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, isCityError, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { PASSPHRASE_FILE_ENV, readKeyFile, readPassphraseFile, writeKeyFile } from '../src/config/index.ts'
import { cli, oneValidatorHome, startCli } from './cliHarness.ts'

const PASS = 'correct horse battery staple'

const codeOf = (f: () => unknown): string => {
  try {
    f()
    return 'OK'
  } catch (err) {
    return isCityError(err) ? err.code : String(err)
  }
}

test('an encrypted key file reads back only with its passphrase, and refuses any edit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-keys-'))
  try {
    const key = generateKeyPair()
    const path = join(dir, 'key.json')
    writeKeyFile(path, key, { passphrase: PASS })
    const text = readFileSync(path, 'utf8')
    assert.not.ok(text.includes(toHex(key.secretKey)), 'the secret key is not in the file')
    const json = JSON.parse(text)
    assert.is(json.publicKey, toHex(key.publicKey))
    assert.is(json.secretKey, undefined)
    assert.equal(readKeyFile(path, { passphrase: PASS }), key)
    assert.is(
      codeOf(() => readKeyFile(path)),
      'KEY_LOCKED',
    )
    assert.is(
      codeOf(() => readKeyFile(path, { passphrase: `${PASS}!` })),
      'BAD_PASSPHRASE',
    )
    const edited = (edit: (j: typeof json) => void) => {
      const j = JSON.parse(text)
      edit(j)
      writeFileSync(path, JSON.stringify(j), { mode: 0o600 })
      return codeOf(() => readKeyFile(path, { passphrase: PASS }))
    }
    // The public key is authenticated with the secret: swapping it in does not decrypt.
    assert.is(
      edited((j) => (j.publicKey = toHex(generateKeyPair().publicKey))),
      'BAD_PASSPHRASE',
    )
    assert.is(
      edited((j) => (j.encrypted.ciphertext = `${j.encrypted.ciphertext.slice(0, -2)}00`)),
      'BAD_PASSPHRASE',
    )
    assert.is(
      edited(
        (j) => (j.encrypted.tag = j.encrypted.tag.replace(/^./, (c: string) => (c === '0' ? '1' : '0'))),
      ),
      'BAD_PASSPHRASE',
    )
    // A crafted cost would make the node spend unbounded memory or time: refused before scrypt runs.
    assert.is(
      edited((j) => (j.encrypted.N = 2 ** 30)),
      'BAD_KEY',
    )
    assert.is(
      edited((j) => (j.encrypted.format = 'other/v9')),
      'BAD_KEY',
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('passphrase files: private, at least 8 characters, final newline dropped; the env variable is read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-pass-'))
  const before = process.env[PASSPHRASE_FILE_ENV]
  try {
    const file = join(dir, 'pass')
    writeFileSync(file, `${PASS}\n`, { mode: 0o600 })
    assert.is(readPassphraseFile(file), PASS)
    chmodSync(file, 0o644)
    assert.is(
      codeOf(() => readPassphraseFile(file)),
      'UNSAFE_KEY_FILE',
    )
    chmodSync(file, 0o600)
    const short = join(dir, 'short')
    writeFileSync(short, 'abc\n', { mode: 0o600 })
    assert.is(
      codeOf(() => readPassphraseFile(short)),
      'BAD_KEY',
    )
    const key = generateKeyPair()
    const path = join(dir, 'key.json')
    writeKeyFile(path, key, { passphrase: PASS })
    process.env[PASSPHRASE_FILE_ENV] = file
    assert.equal(readKeyFile(path), key)
  } finally {
    if (before === undefined) delete process.env[PASSPHRASE_FILE_ENV]
    else process.env[PASSPHRASE_FILE_ENV] = before
    rmSync(dir, { recursive: true, force: true })
  }
})

test('keys encrypt, keys show and start with an encrypted key: locked without the passphrase', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-keys-cli-'))
  try {
    const home = oneValidatorHome(dir, 'keys-test')
    const keyPath = join(home, 'key.json')
    const publicKey = JSON.parse(readFileSync(keyPath, 'utf8')).publicKey as string
    const pass = join(dir, 'pass')
    writeFileSync(pass, `${PASS}\n`, { mode: 0o600 })
    const enc = await cli(['keys', 'encrypt', '--key', keyPath, '--passphrase-file', pass])
    assert.is(enc.code, 0, enc.err)
    assert.ok('encrypted' in JSON.parse(readFileSync(keyPath, 'utf8')))
    const locked = await cli(['keys', 'show', '--key', keyPath])
    assert.is(locked.code, 1)
    assert.match(locked.err, /is encrypted: give the file that holds its passphrase/)
    const shown = await cli(['keys', 'show', '--key', keyPath, '--passphrase-file', pass])
    assert.is(JSON.parse(shown.out).publicKey, publicKey, 'the same key after encryption')

    const refused = await cli(['start', '--home', home])
    assert.is(refused.code, 1)
    assert.match(refused.out + refused.err, /KEY_LOCKED|is encrypted/)

    // A supervisor gives the passphrase as a file named by the env variable.
    const node = await startCli(home, [], { [PASSPHRASE_FILE_ENV]: pass })
    node.proc.kill('SIGTERM')
    assert.is(await node.exited, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
