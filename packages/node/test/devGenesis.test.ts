// The dev/testnet genesis (cli/devGenesis.ts) as every node loads it: governance has the city key as
// its one member (k = 1) and the genesis validators as its validator set, and the whole service
// genesis passes every service's genesis check.
import { allServices } from '@cityledger/apps'
import { generateKeyPair, toHex } from '@cityledger/core'
import { createTestChain } from '@cityledger/core/testing'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { defaultServiceGenesis } from '../src/cli/devGenesis.ts'
import { valueFromJson } from '../src/config/index.ts'

test('governance in the dev genesis: the city key alone, threshold 1, the genesis validators', () => {
  const city = generateKeyPair().publicKey
  const validators = Array.from({ length: 4 }, () => generateKeyPair().publicKey)
  const json = defaultServiceGenesis(city, validators)
  const genesis = Object.fromEntries(
    Object.entries(json).map(([name, cfg]) => [name, valueFromJson(cfg, `services.${name}`)]),
  )
  const chain = createTestChain({ services: allServices, genesis })
  const m = chain.query('governance', 'membership', {}) as { members: Uint8Array[]; threshold: number }
  assert.equal(m.members.map(toHex), [toHex(city)])
  assert.is(m.threshold, 1)
  const set = chain.query('governance', 'validatorSetAt', { height: 0 }) as
    | Uint8Array[]
    | { validators: Uint8Array[] }
  const keys = Array.isArray(set) ? set : set.validators
  assert.equal(keys.map(toHex), validators.map(toHex))
})

test('governance is the upgrade authority: an upgrade proposal of the city key executes and is scheduled', () => {
  const city = generateKeyPair()
  const json = defaultServiceGenesis(city.publicKey, [generateKeyPair().publicKey])
  const genesis = Object.fromEntries(
    Object.entries(json).map(([name, cfg]) => [name, valueFromJson(cfg, `services.${name}`)]),
  )
  const chain = createTestChain({ services: allServices, genesis })
  const expiresAt = chain.height + 10
  const r = chain.tx(city, 'governance', 'propose', {
    kind: 'upgrade',
    payload: { service: 'token', version: '2.0.0', codeHash: new Uint8Array(32).fill(7) },
    expiresAt,
    activationHeight: expiresAt + 100,
  })
  assert.is(r.code, null, r.message)
  const pending = chain.query('governance', 'pendingUpgrades', {}) as { service: string }[]
  assert.equal(
    pending.map((u) => u.service),
    ['token'],
  )
})

test.run()
