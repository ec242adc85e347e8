// The city key apart from validator keys (issue #15): `testnet` writes the city operator's key beside
// the validator homes, never inside one; no file of a home holds it, and a home moved away from the
// testnet folder starts as it is (a validator never needs the city key).
import { cpSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { toHex } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createTestnet } from '../src/cli/testnet.ts'
import { readKeyFile } from '../src/config/index.ts'
import { oneValidatorHome, startCli, withDir } from './cliHarness.ts'

/** Every file under `dir`, recursively. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  )

test(
  'testnet writes the city key outside every validator and observer home',
  withDir('cityledger-city-key-', async (dir) => {
    const t = createTestnet({ validators: 3, observers: 1, out: dir, chainId: 'city-key' })
    const path = join(dir, 'city-key.json')
    assert.is(statSync(path).mode & 0o777, 0o600)
    assert.equal(readKeyFile(path), t.cityKey, 'a key file like any other (keys show, tx --key)')
    const secret = toHex(t.cityKey.secretKey)
    const cityPublic = toHex(t.cityKey.publicKey)
    const homes = [...t.homes, ...t.observerHomes]
    assert.is(homes.length, 4)
    for (const home of homes) {
      assert.is.not(toHex(readKeyFile(join(home, 'key.json')).publicKey), cityPublic, `${home}: own key`)
      for (const f of filesUnder(home))
        assert.not.ok(readFileSync(f, 'utf8').includes(secret), `${f} holds the city secret key`)
    }
    // Genesis names the city key by its public key only (as the services' admin).
    assert.ok(JSON.stringify(t.genesis).includes(cityPublic))
  }),
)

test(
  'a validator home moved away from the testnet folder (no city key anywhere near) starts',
  withDir('cityledger-city-key-', async (dir) => {
    const home = oneValidatorHome(join(dir, 'testnet'), 'city-key')
    const moved = join(dir, 'elsewhere', 'validator')
    cpSync(home, moved, { recursive: true })
    const n = await startCli(moved)
    n.proc.kill('SIGTERM')
    assert.is(await n.exited, 0, n.output())
  }),
)

test.run()
