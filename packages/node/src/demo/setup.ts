import { CityError, type KeyPair, toHex } from '@cityledger/core'
import { keyOf } from './keys.ts'
import type { DemoSession } from './session.ts'

/**
 * Chapter 1 of the demo: the city registers its agencies, grants their roles, creates the assets and
 * allowlists a merchant. Once per chain: a rerun finds each of them in place and sends nothing for it.
 */
export async function setUpCity(s: DemoSession, city: KeyPair, say: (line: string) => void) {
  const tx: DemoSession['tx'] = (c, story) => s.tx(c, story)
  const batch: DemoSession['batch'] = (calls) => s.batch(calls)
  const hex = toHex
  say('\n1. The city registers its agencies and grants their roles')
  const agencies = {
    democracy: { org: 'democracy-seoul', name: 'Democracy Seoul (m-Voting)', key: keyOf('democracy-seoul') },
    mileage: { org: 'scoin-office', name: 'S-Coin mileage office', key: keyOf('scoin-office') },
    cards: {
      org: 'citizen-card-office',
      name: 'Seoul Citizen Card office',
      key: keyOf('citizen-card-office'),
    },
    jongno: { org: 'jongno-gu-office', name: 'Jongno-gu district office', key: keyOf('jongno-gu-office') },
    works: { org: 'public-works', name: 'Public works department', key: keyOf('public-works') },
    treasury: { org: 'city-treasury', name: 'City treasury', key: keyOf('city-treasury') },
    inspector: {
      org: 'works-inspection',
      name: 'Construction inspection bureau',
      key: keyOf('works-inspection'),
    },
  }
  const roles: { scope: string; role: string; a: keyof typeof agencies | 'city' }[] = [
    { scope: 'token', role: 'admin', a: 'city' },
    { scope: 'scoin', role: 'admin', a: 'city' },
    { scope: 'voting', role: 'organizer', a: 'democracy' },
    { scope: 'scoin', role: 'operator', a: 'mileage' },
    { scope: 'certificates', role: 'card-issuer', a: 'cards' },
    { scope: 'certificates', role: 'issuer:family-relation', a: 'jongno' },
    { scope: 'subcontract', role: 'client', a: 'works' },
    { scope: 'token', role: 'issuer:KRW', a: 'treasury' },
    { scope: 'subcontract', role: 'inspector', a: 'inspector' },
  ]
  const hasRole = async (scope: string, role: string, key: Uint8Array) =>
    (await s.query<boolean>('identity', 'hasRole', { scope, role, key: hex(key) })) === true

  const registrars: { call: Parameters<typeof s.tx>[0]; story: string }[] = []
  const toRegister: (typeof agencies)[keyof typeof agencies][] = []
  for (const ag of Object.values(agencies)) {
    const org = await s.query<{ keys: { key: string }[] } | null>('identity', 'org', { org: ag.org })
    if (org) {
      if (!org.keys.some((k) => k.key === hex(ag.key.publicKey)))
        throw new CityError(
          'DEMO_FAILED',
          `org ${ag.org} exists with other keys: this chain was set up differently`,
        )
      say(`  ${ag.name}: registered before (org ${ag.org})`)
      continue
    }
    toRegister.push(ag)
    if (!(await hasRole('identity', 'registrar', ag.key.publicKey)))
      registrars.push({
        call: {
          who: city,
          service: 'identity',
          method: 'grantRole',
          args: { scope: 'identity', role: 'registrar', key: ag.key.publicKey },
        },
        story: `city lets ${ag.name} register itself (identity registrar)`,
      })
  }
  if (registrars.length) await batch(registrars)
  if (toRegister.length)
    await batch(
      toRegister.map((ag) => ({
        call: {
          who: ag.key,
          service: 'identity',
          method: 'registerOrg',
          args: { org: ag.org, name: ag.name },
        },
        story: `${ag.name} registers as org "${ag.org}" with its key ${hex(ag.key.publicKey).slice(0, 16)}...`,
      })),
    )
  const grants: { call: Parameters<typeof s.tx>[0]; story: string }[] = []
  for (const r of roles) {
    const key = r.a === 'city' ? city.publicKey : agencies[r.a].key.publicKey
    if (await hasRole(r.scope, r.role, key)) continue
    const org = r.a === 'city' ? undefined : agencies[r.a].org
    grants.push({
      call: {
        who: city,
        service: 'identity',
        method: 'grantRole',
        args: org ? { scope: r.scope, role: r.role, key, org } : { scope: r.scope, role: r.role, key },
      },
      story: `city grants (${r.scope}, ${r.role}) to ${r.a === 'city' ? 'itself' : agencies[r.a].name}`,
    })
  }
  if (grants.length) await batch(grants)
  else say('  every role was granted before')

  const assets: { asset: string; policy: string; controllers: string[]; story: string }[] = [
    {
      asset: 'SCOIN',
      policy: 'controlled',
      controllers: ['scoin'],
      story: 'S-Coin miles: only the scoin service moves them',
    },
    {
      asset: 'KRW',
      policy: 'open',
      controllers: ['agreement', 'subcontract'],
      story: 'KRW settlement token, escrowable by agreement and subcontract',
    },
  ]
  for (const a of assets) {
    const rec = await s.query<{ controllers: string[] } | null>('token', 'asset', { asset: a.asset })
    if (rec) {
      for (const c of a.controllers)
        if (!rec.controllers.includes(c))
          throw new CityError('DEMO_FAILED', `asset ${a.asset} exists without controller ${c}`)
      continue
    }
    await tx(
      {
        who: city,
        service: 'token',
        method: 'createAsset',
        args: {
          asset: a.asset,
          decimals: 0,
          policy: a.policy,
          controllers: a.controllers,
          budgetPerPeriod: 0,
          periodBlocks: 1,
        },
      },
      `city creates asset ${a.asset}: ${a.story}`,
    )
  }
  const merchant = keyOf('mangwon-market-cafe')
  if ((await s.query('scoin', 'place', { key: hex(merchant.publicKey) })) !== 'merchant')
    await tx(
      {
        who: city,
        service: 'scoin',
        method: 'setPlace',
        args: { key: merchant.publicKey, kind: 'merchant' },
      },
      'city allowlists the Mangwon market cafe as an S-Coin merchant',
    )

  return { agencies, merchant }
}
