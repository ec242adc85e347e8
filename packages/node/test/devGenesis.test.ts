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

test.run()
