// Unsafe configuration is refused with a clear message: the memory store outside tests, a key file
// others may read, and no message ever shows key material.
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { isCityError, toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'
import { loadKey, readKeyFile, writeKey } from '../src/config/index.ts'

const MAIN = resolve(import.meta.dirname, '../src/cli/main.ts')

function withDir(fn: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cityledger-safety-'))
    try {
      await fn(dir)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Runs the CLI; resolves on exit, or once stdout shows `ready` (then SIGTERMs it and waits). */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string; ready: boolean }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let ready = false
    p.stdout.on('data', (b: Buffer) => {
      out += b
      if (!ready && out.includes('"msg":"ready"')) {
        ready = true
        p.kill('SIGTERM')
      }
    })
    p.stderr.on('data', (b: Buffer) => (err += b))
    p.on('exit', (code) => done({ code, out, err, ready }))
  })
}

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn()
  } catch (e) {
    assert.ok(isCityError(e), String(e))
    return { code: e.code, message: e.message }
  }
  throw new Error('expected an error')
}

test(
  'a key file readable by group or others is refused (UNSAFE_KEY_FILE, says chmod 600)',
  withDir((dir) => {
    writeKey(dir)
    const path = join(dir, 'key.json')
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(path, mode)
      const e = codeOf(() => loadKey(dir))
      assert.is(e.code, 'UNSAFE_KEY_FILE', `mode ${mode.toString(8)}`)
      assert.match(e.message, `chmod 600 ${path}`)
    }
    chmodSync(path, 0o600)
    assert.ok(loadKey(dir).publicKey.length === 32)
    chmodSync(path, 0o400)
    assert.ok(readKeyFile(path).publicKey.length === 32)
  }),
)

test(
  'no message shows key material: malformed, truncated or wrong key files',
  withDir((dir) => {
    const secret = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'
    const path = join(dir, 'key.json')
    const files = [
      `{"secretKey": "${secret}"`,
      `${secret}`,
      `{"secretKey": "${secret.slice(0, 60)}"}`,
      `{"secretKey": "${secret}", "publicKey": "${secret}"}`,
      `secretKey=${secret}`,
      `{"secretKey": ["${secret}"]}`,
    ]
    for (const text of files) {
      writeFileSync(path, text, { mode: 0o600 })
      const e = codeOf(() => readKeyFile(path))
      assert.is(e.code, 'BAD_KEY')
      for (let i = 0; i + 6 <= secret.length; i += 2)
        assert.not.ok(e.message.includes(secret.slice(i, i + 6)), `message shows key material: ${e.message}`)
    }
  }),
)

test(
  'the CLI does not print key material either (keys show, start)',
  withDir(async (dir) => {
    const secret = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'
    const home = createTestnet({ validators: 1, out: dir, ports: [{ p2p: 0, rpc: 0 }] }).homes[0]!
    writeFileSync(join(home, 'key.json'), `{"secretKey": "${secret}`, { mode: 0o600 })
    for (const args of [
      ['keys', 'show', '--key', join(home, 'key.json')],
      ['start', '--home', home],
    ]) {
      const r = await cli(args)
      assert.is(r.code, 1, args.join(' '))
      assert.match(r.err, 'BAD_KEY')
      assert.not.ok((r.out + r.err).includes(secret.slice(0, 8)), r.err)
    }
  }),
)

test(
  'start refuses store.backend "memory" unless --unsafe-memory-store (or store.allowUnsafeMemory)',
  withDir(async (dir) => {
    const layout = createTestnet({ validators: 1, out: dir, ports: [{ p2p: 0, rpc: 0 }], store: 'memory' })
    const home = layout.homes[0]!
    const cfgPath = join(home, 'config.json')
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'))
    assert.is(cfg.store.allowUnsafeMemory, true, 'a testnet written with the memory store allows it')
    cfg.store.allowUnsafeMemory = false
    writeFileSync(cfgPath, JSON.stringify(cfg))
    const refused = await cli(['start', '--home', home])
    assert.is(refused.code, 1)
    assert.not.ok(refused.ready)
    assert.match(refused.err, 'UNSAFE_CONFIG')
    assert.match(refused.err, 'store.backend "memory"')
    assert.match(refused.err, '--unsafe-memory-store')
    const allowed = await cli(['start', '--home', home, '--unsafe-memory-store'])
    assert.ok(allowed.ready, allowed.err)
    assert.is(allowed.code, 0)
  }),
)

test(
  'start refuses a validator key file others may read, with a message that names the fix',
  withDir(async (dir) => {
    const layout = createTestnet({ validators: 1, out: dir, ports: [{ p2p: 0, rpc: 0 }] })
    const home = layout.homes[0]!
    chmodSync(join(home, 'key.json'), 0o644)
    const r = await cli(['start', '--home', home])
    assert.is(r.code, 1)
    assert.match(r.err, 'UNSAFE_KEY_FILE')
    assert.match(r.err, `chmod 600 ${join(home, 'key.json')}`)
    assert.not.ok(r.err.includes(toHex(layout.keys[0]!.secretKey).slice(0, 8)))
  }),
)

test.run()
