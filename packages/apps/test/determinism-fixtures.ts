// Determinism of the whole service set: the same blocks executed on fresh stores (in memory, twice, and
// on LevelDB) give the same state root after every height, the same tx results and the same events,
// byte for byte. The blocks come from a seeded generator of a realistic mix of city transactions.
// Replay a failure with SEED=<seed> (printed in the test names).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ChainStore,
  type KeyPair,
  type KvStore,
  type Tx,
  type Value,
  createRuntime,
  encode,
  encodeBlockEvents,
  encodeCertificate,
  encodeTxResult,
  generateKeyPair,
  makeBlock,
  merkleRoot,
  openLevelKv,
  openMemoryKv,
  sha256,
  signTx,
  toHex,
  utf8,
} from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { allServices } from '../src/all.ts'

const SEED = testSeed(0xd3e7)
const CHAIN_ID = 'determinism-test'
const GENESIS_TIME = 1_750_000_000_000
const BLOCKS = 60
const CERT_TYPES = ['family-relation', 'building-register', 'local-tax-payment'] as const

/** One block of signed transactions, as the generator made it. */
type GenBlock = Tx[]

/** What a run leaves behind, per height: the state root, each encoded result, the encoded block events. */
interface Trace {
  genesisRoot: string
  heights: { root: string; results: string[]; blockEvents: string; stored: string[] }[]
}

const hash = (label: string): Uint8Array => sha256(utf8.encode(label))

/**
 * A seeded generator of city traffic. It remembers what it created (polls, certificates, contracts...)
 * so later txs refer to real things; it does not execute anything, so some txs fail (a vote before the
 * poll opens, a spend beyond the balance), as they would on a real chain.
 */
function generate(seed: number): { genesis: Record<string, Value>; blocks: GenBlock[] } {
  const rng = new Rng(seed)
  const keys = new Map<string, KeyPair>()
  const key = (label: string): KeyPair => {
    const known = keys.get(label)
    if (known) return known
    const k = generateKeyPair(seedFor(`determinism/${label}`))
    keys.set(label, k)
    return k
  }
  const nonces = new Map<string, number>()
  const city = key('city')
  const citizens = Array.from({ length: 12 }, (_, i) => key(`citizen-${i}`))
  const merchants = Array.from({ length: 3 }, (_, i) => key(`merchant-${i}`))
  const campaign = key('campaign')
  const agencies = {
    treasury: key('treasury'),
    mileage: key('mileage-office'),
    democracy: key('democracy-seoul'),
    office: key('district-office'),
    cards: key('citizen-card-office'),
    archive: key('city-archive'),
    works: key('public-works'),
    prime: key('prime-contractor'),
    inspector: key('works-inspector'),
    dealer: key('car-dealer'),
    carInspector: key('car-inspector'),
    insurer: key('insurer'),
    welfare: key('welfare-office'),
    taxOffice: key('tax-office'),
    facility: key('library'),
  }
  const subs = Array.from({ length: 3 }, (_, i) => key(`subcontractor-${i}`))

  let height = 0
  const blocks: GenBlock[] = []
  let current: Tx[] = []
  const tx = (k: KeyPair, service: string, method: string, args: Value): void => {
    const signer = toHex(k.publicKey)
    const nonce = (nonces.get(signer) ?? 0) + 1
    nonces.set(signer, nonce)
    current.push(
      signTx(
        {
          chainId: CHAIN_ID,
          service,
          method,
          args,
          signer: k.publicKey,
          nonce,
          expiry: rng.chance(0.05) ? height : 0,
        },
        k.secretKey,
      ),
    )
  }
  const endBlock = (): void => {
    blocks.push(current)
    current = []
    height++
  }
  height = 1

  // Setup, as a city operator would do it: roles, orgs, assets, programs, allowlists.
  const grant = (scope: string, role: string, k: KeyPair, org?: string) =>
    tx(
      city,
      'identity',
      'grantRole',
      org ? { scope, role, key: k.publicKey, org } : { scope, role, key: k.publicKey },
    )
  for (const scope of ['token', 'scoin', 'qualification']) grant(scope, 'admin', city)
  for (const k of Object.values(agencies)) grant('identity', 'registrar', k)
  endBlock()
  for (const [org, k] of Object.entries(agencies))
    tx(k, 'identity', 'registerOrg', { org, name: `Seoul ${org}` })
  tx(city, 'token', 'createAsset', {
    asset: 'SCOIN',
    decimals: 0,
    policy: 'controlled',
    controllers: ['scoin'],
    budgetPerPeriod: 0,
    periodBlocks: 1,
  })
  tx(city, 'token', 'createAsset', {
    asset: 'KRW',
    decimals: 0,
    policy: 'open',
    controllers: ['agreement', 'subcontract'],
    budgetPerPeriod: 0,
    periodBlocks: 1,
  })
  endBlock()
  grant('token', 'issuer:KRW', agencies.treasury, 'treasury')
  grant('scoin', 'operator', agencies.mileage, 'mileage')
  grant('voting', 'organizer', agencies.democracy, 'democracy')
  for (const t of CERT_TYPES) grant('certificates', `issuer:${t}`, agencies.office, 'office')
  grant('certificates', 'card-issuer', agencies.cards, 'cards')
  grant('certificates', 'facility', agencies.facility, 'facility')
  grant('registry', 'issuer', agencies.archive, 'archive')
  grant('subcontract', 'client', agencies.works, 'works')
  grant('subcontract', 'inspector', agencies.inspector, 'inspector')
  grant('usedcar', 'dealer', agencies.dealer, 'dealer')
  grant('usedcar', 'inspector', agencies.carInspector, 'carInspector')
  grant('usedcar', 'insurer', agencies.insurer, 'insurer')
  grant('qualification', 'requester', agencies.welfare, 'welfare')
  grant('qualification', 'answerer:no-tax-arrears', agencies.taxOffice, 'taxOffice')
  grant('consent', 'emergency', agencies.welfare, 'welfare')
  tx(city, 'scoin', 'createProgram', {
    program: 'vote-rewards',
    operators: [agencies.mileage.publicKey],
    budget: 5_000,
    expiryBlocks: 25,
  })
  tx(city, 'scoin', 'createProgram', {
    program: 'recycling',
    operators: [agencies.mileage.publicKey],
    budget: 200,
    expiryBlocks: 1000,
  })
  for (const m of merchants) tx(city, 'scoin', 'setPlace', { key: m.publicKey, kind: 'merchant' })
  tx(city, 'scoin', 'setPlace', { key: campaign.publicKey, kind: 'campaign' })
  endBlock()
  tx(agencies.treasury, 'token', 'mint', { asset: 'KRW', to: agencies.works.publicKey, amount: 1_000_000 })
  for (const c of citizens)
    tx(agencies.treasury, 'token', 'mint', { asset: 'KRW', to: c.publicKey, amount: 10_000 })
  tx(agencies.facility, 'certificates', 'setAccepted', { types: ['citizen-card', 'family-relation'] })
  endBlock()

  const polls: { id: string; options: number; voters: KeyPair[] }[] = []
  const certs: { id: Uint8Array; issuer: KeyPair }[] = []
  const docs: Uint8Array[] = []
  const grants: { id: Uint8Array; subject: KeyPair; grantee: KeyPair; purpose: string }[] = []
  const agreements: { id: string; parties: KeyPair[]; certifier: KeyPair; milestones: string[] }[] = []
  const contracts: { id: string; subs: { sub: string; who: KeyPair; milestones: string[] }[] }[] = []
  const vehicles: { id: Uint8Array; holder: KeyPair; odometer: number }[] = []
  const requests: Uint8Array[] = []
  let n = 0
  const uid = (what: string) => `${what}-${++n}`

  const ops: [number, () => void][] = [
    [3, () => tx(rng.pick(citizens), 'identity', 'registerSubject', { subject: rng.bytes(32) })],
    [
      4,
      () =>
        tx(rng.pick(citizens), 'token', 'transfer', {
          asset: 'KRW',
          to: rng.pick(citizens).publicKey,
          amount: rng.range(1, 3000),
        }),
    ],
    [
      1,
      () =>
        tx(agencies.treasury, 'token', 'mint', {
          asset: 'KRW',
          to: rng.pick(citizens).publicKey,
          amount: rng.range(1, 5000),
        }),
    ],
    [
      5,
      () =>
        tx(agencies.mileage, 'scoin', 'award', {
          program: rng.pick(['vote-rewards', 'recycling']),
          to: rng.pick(citizens).publicKey,
          amount: rng.range(1, 60),
          ref: rng.bytes(32),
        }),
    ],
    [
      4,
      () =>
        tx(rng.pick(citizens), 'scoin', 'spend', {
          to: rng.pick(merchants).publicKey,
          amount: rng.range(1, 40),
        }),
    ],
    [
      1,
      () => tx(rng.pick(citizens), 'scoin', 'donate', { to: campaign.publicKey, amount: rng.range(1, 10) }),
    ],
    [
      1,
      () =>
        tx(rng.pick([...merchants, ...citizens]), 'scoin', 'convert', {
          amount: rng.range(1, 30),
          receipt: rng.bytes(32),
        }),
    ],
    [1, () => tx(rng.pick(citizens), 'scoin', 'expire', { holder: rng.pick(citizens).publicKey })],
    [
      2,
      () => {
        const id = uid('poll')
        const voters = rng.shuffle([...citizens]).slice(0, rng.range(3, 10))
        const options = rng.range(2, 4)
        const openAt = height + rng.range(1, 3)
        polls.push({ id, options, voters })
        tx(agencies.democracy, 'voting', 'createPoll', {
          pollId: id,
          mode: 'poll',
          title: `Question ${id}`,
          question: hash(id),
          options: Array.from({ length: options }, (_, i) => `option ${i}`),
          electorate: { voters: voters.map((v) => v.publicKey) },
          openAt,
          closeAt: openAt + rng.range(3, 12),
        })
      },
    ],
    [
      6,
      () => {
        if (!polls.length) return
        const p = rng.pick(polls)
        tx(rng.chance(0.9) ? rng.pick(p.voters) : rng.pick(citizens), 'voting', 'vote', {
          pollId: p.id,
          option: rng.int(p.options + 1),
        })
      },
    ],
    [1, () => polls.length && tx(rng.pick(citizens), 'voting', 'tally', { pollId: rng.pick(polls).id })],
    [
      3,
      () => {
        const id = rng.bytes(32)
        certs.push({ id, issuer: agencies.office })
        tx(agencies.office, 'certificates', 'issue', {
          id,
          type: rng.pick(CERT_TYPES),
          hash: rng.bytes(32),
          validUntil: rng.chance(0.5) ? 0 : height + rng.range(1, 30),
        })
      },
    ],
    [
      2,
      () => {
        const id = rng.bytes(32)
        certs.push({ id, issuer: agencies.cards })
        tx(agencies.cards, 'certificates', 'issueCard', {
          id,
          holder: hash(`holder-${rng.int(citizens.length)}`),
          hash: rng.bytes(32),
          validUntil: 0,
        })
      },
    ],
    [
      2,
      () => {
        if (!certs.length) return
        const c = rng.pick(certs)
        tx(c.issuer, 'certificates', rng.pick(['suspend', 'reinstate', 'revoke']), {
          id: c.id,
          reason: rng.bytes(32),
        })
      },
    ],
    [
      2,
      () => {
        const docId = rng.bytes(32)
        docs.push(docId)
        tx(agencies.archive, 'registry', 'issue', {
          docId,
          type: 'building-permit',
          commitment: rng.bytes(32),
          validUntil: 0,
        })
      },
    ],
    [
      1,
      () =>
        docs.length &&
        tx(agencies.archive, 'registry', rng.pick(['suspend', 'reinstate', 'revoke']), {
          docId: rng.pick(docs),
        }),
    ],
    [
      2,
      () => {
        const id = rng.bytes(32)
        const subject = rng.pick(citizens)
        const purpose = rng.chance(0.5) ? 'qualification:no-tax-arrears' : 'welfare-review'
        grants.push({ id, subject, grantee: agencies.welfare, purpose })
        tx(subject, 'consent', 'grant', {
          grantId: id,
          grantee: agencies.welfare.publicKey,
          purpose,
          expiry: height + rng.range(2, 40),
        })
      },
    ],
    [
      2,
      () => {
        if (!grants.length) return
        const g = rng.pick(grants)
        if (rng.chance(0.2)) tx(g.subject, 'consent', 'revoke', { grantId: g.id })
        else tx(g.grantee, 'consent', 'logAccess', { grantId: g.id, purpose: g.purpose })
      },
    ],
    [
      2,
      () => {
        const g = grants.filter((x) => x.purpose.startsWith('qualification:'))
        if (!g.length) return
        const requestId = rng.bytes(32)
        requests.push(requestId)
        tx(agencies.welfare, 'qualification', 'request', {
          requestId,
          predicate: 'no-tax-arrears',
          grantId: rng.pick(g).id,
        })
      },
    ],
    [
      2,
      () =>
        requests.length &&
        tx(agencies.taxOffice, 'qualification', 'answer', {
          requestId: rng.pick(requests),
          result: rng.chance(0.7),
          evidence: rng.bytes(32),
        }),
    ],
    [
      1,
      () => {
        const id = uid('agreement')
        const parties = rng.shuffle([...citizens]).slice(0, 2)
        const milestones = ['design', 'build']
        agreements.push({ id, parties, certifier: agencies.inspector, milestones })
        tx(parties[0]!, 'agreement', 'create', {
          id,
          asset: 'KRW',
          parties: parties.map((p) => p.publicKey),
          certifier: agencies.inspector.publicKey,
          milestones: milestones.map((m) => ({
            id: m,
            amount: 300,
            payouts: [
              { to: parties[1]!.publicKey, amount: 200 },
              { to: rng.pick(citizens).publicKey, amount: 100 },
            ],
          })),
        })
      },
    ],
    [
      3,
      () => {
        if (!agreements.length) return
        const a = rng.pick(agreements)
        const step = rng.int(3)
        if (step === 0) tx(rng.pick(a.parties), 'agreement', 'sign', { id: a.id })
        else if (step === 1)
          tx(rng.pick(a.parties), 'agreement', 'fund', { id: a.id, amount: rng.range(100, 600) })
        else tx(a.certifier, 'agreement', 'certify', { id: a.id, milestone: rng.pick(a.milestones) })
      },
    ],
    [
      1,
      () => {
        const id = uid('works')
        contracts.push({ id, subs: [] })
        tx(agencies.works, 'subcontract', 'createContract', {
          id,
          prime: agencies.prime.publicKey,
          asset: 'KRW',
          value: 50_000,
          terms: hash(id),
        })
        tx(agencies.works, 'subcontract', 'fund', { contract: id, amount: rng.range(5_000, 30_000) })
      },
    ],
    [
      3,
      () => {
        if (!contracts.length) return
        const c = rng.pick(contracts)
        const s = c.subs.length ? rng.pick(c.subs) : undefined
        const step = s ? rng.int(5) : 0
        if (step === 0) {
          const sub = uid('sub')
          const who = rng.pick(subs)
          const milestones = ['m1', 'm2']
          c.subs.push({ sub, who, milestones })
          tx(agencies.prime, 'subcontract', 'propose', {
            contract: c.id,
            sub,
            subcontractor: who.publicKey,
            terms: hash(sub),
            milestones: milestones.map((m) => ({
              id: m,
              amount: 2_000,
              payouts: [
                { to: who.publicKey, amount: 1_500 },
                { to: rng.pick(citizens).publicKey, amount: 500 },
              ],
            })),
          })
        } else if (step === 1) tx(s!.who, 'subcontract', 'sign', { contract: c.id, sub: s!.sub })
        else if (step === 2) tx(agencies.works, 'subcontract', 'approve', { contract: c.id, sub: s!.sub })
        else if (step === 3)
          tx(agencies.inspector, 'subcontract', 'certify', {
            contract: c.id,
            sub: s!.sub,
            milestone: rng.pick(s!.milestones),
            report: rng.bytes(32),
          })
        else tx(agencies.works, 'subcontract', 'fund', { contract: c.id, amount: rng.range(1_000, 8_000) })
      },
    ],
    [
      1,
      () => {
        const id = rng.bytes(32)
        vehicles.push({ id, holder: agencies.dealer, odometer: rng.range(0, 90_000) })
        tx(agencies.dealer, 'usedcar', 'purchase', { vehicle: id, odometer: vehicles.at(-1)!.odometer })
      },
    ],
    [
      3,
      () => {
        if (!vehicles.length) return
        const v = rng.pick(vehicles)
        const step = rng.int(4)
        v.odometer += rng.range(-50, 2_000)
        const odometer = Math.max(0, v.odometer)
        if (step === 0)
          tx(agencies.carInspector, 'usedcar', 'inspect', {
            vehicle: v.id,
            odometer,
            report: rng.bytes(32),
            passed: rng.chance(0.8),
          })
        else if (step === 1)
          tx(agencies.insurer, 'usedcar', 'accident', {
            vehicle: v.id,
            severity: rng.pick(['minor', 'major'] as const),
            report: rng.bytes(32),
          })
        else if (step === 2)
          tx(v.holder, 'usedcar', 'offer', { vehicle: v.id, buyer: rng.pick(citizens).publicKey, odometer })
        else {
          const buyer = rng.pick(citizens)
          tx(buyer, 'usedcar', 'accept', { vehicle: v.id })
          v.holder = buyer
        }
      },
    ],
  ]
  const total = ops.reduce((a, [w]) => a + w, 0)
  const pickOp = (): (() => void) => {
    let r = rng.int(total)
    for (const [w, op] of ops) {
      if (r < w) return op
      r -= w
    }
    throw new Error('unreachable')
  }
  while (blocks.length < BLOCKS) {
    // Some empty blocks too: end-of-block hooks (S-Coin expiry sweep) run on them.
    const count = rng.chance(0.1) ? 0 : rng.range(5, 40)
    for (let i = 0; i < count; i++) pickOp()()
    endBlock()
  }
  const genesis = { identity: { admins: [{ key: toHex(city.publicKey), scopes: ['*'] }] } }
  return { genesis, blocks }
}

/** Executes `blocks` on a fresh ChainStore over `kv`, the way a node does, and records everything. */
async function run(kv: KvStore, genesis: Record<string, Value>, blocks: GenBlock[]): Promise<Trace> {
  const store = await ChainStore.open(kv, { chainId: CHAIN_ID })
  try {
    const runtime = createRuntime({
      services: allServices,
      onBug: ({ service, method, error }) => {
        throw new Error(`bug in ${service}.${method}: ${(error as Error)?.stack ?? error}`)
      },
    })
    const state = { get: (k: Uint8Array) => store.state.get(k) }
    const g = runtime.genesis(state, genesis, GENESIS_TIME)
    const genesisRoot = toHex(await store.initGenesis({ chainId: CHAIN_ID, stateWrites: g.writes }))
    const trace: Trace = { genesisRoot, heights: [] }
    const proposer = sha256(utf8.encode('proposer'))
    for (const [i, txs] of blocks.entries()) {
      const height = i + 1
      const time = GENESIS_TIME + height * 1000
      const exec = runtime.executeBlock(state, { height, time, chainId: CHAIN_ID, txs })
      const block = makeBlock(
        {
          chainId: CHAIN_ID,
          height,
          view: 0,
          time,
          parentHash: store.tipHash(),
          txRoot: merkleRoot(txs.map((t) => t.hash)),
          prevStateRoot: store.state.root(),
          proposer,
        },
        txs.map((t) => t.bytes),
      )
      const certificate = encodeCertificate({
        chainId: CHAIN_ID,
        view: 0,
        height,
        blockHash: block.hash,
        signatures: [{ validator: proposer, signature: new Uint8Array(64) }],
      })
      const root = await store.commitBlock({
        block,
        certificate,
        results: exec.results,
        stateWrites: exec.writes,
        blockEvents: exec.blockEvents,
      })
      // What the store gives back must be what was executed.
      const stored = (await store.getResults(height))!.map((r) => toHex(encodeTxResult(r)))
      trace.heights.push({
        root: toHex(root),
        results: exec.results.map((r) => toHex(encodeTxResult(r))),
        blockEvents: toHex(encode(exec.blockEvents.length ? encodeBlockEvents(exec.blockEvents) : null)),
        stored,
      })
    }
    return trace
  } finally {
    await store.close()
  }
}

/** The first height where two traces differ, with what differs (for a readable failure). */
function firstDifference(a: Trace, b: Trace): string | undefined {
  if (a.genesisRoot !== b.genesisRoot) return `genesis roots differ: ${a.genesisRoot} vs ${b.genesisRoot}`
  for (let i = 0; i < Math.max(a.heights.length, b.heights.length); i++) {
    const x = a.heights[i]
    const y = b.heights[i]
    if (!x || !y) return `height ${i + 1} missing in one run`
    if (x.root !== y.root) return `height ${i + 1}: state roots differ (${x.root} vs ${y.root})`
    for (let j = 0; j < Math.max(x.results.length, y.results.length); j++)
      if (x.results[j] !== y.results[j]) return `height ${i + 1}: result of tx ${j} differs`
    if (x.blockEvents !== y.blockEvents) return `height ${i + 1}: end-of-block events differ`
  }
  return undefined
}

const generated = generate(SEED)

test(`the generator is deterministic and its traffic mostly succeeds across services (seed ${SEED})`, async () => {
  const again = generate(SEED)
  assert.equal(
    again.blocks.map((b) => b.map((t) => toHex(t.hash))),
    generated.blocks.map((b) => b.map((t) => toHex(t.hash))),
    'same seed, same signed txs',
  )
  // A determinism check over traffic that only fails would prove little: most txs must do something.
  const runtime = createRuntime({ services: allServices })
  const state = new Map<string, Uint8Array>()
  const reader = { get: (k: Uint8Array) => state.get(toHex(k)) }
  const apply = (w: Map<string, Uint8Array | null>) => {
    for (const [k, v] of w) v === null ? state.delete(k) : state.set(k, v)
  }
  apply(runtime.genesis(reader, generated.genesis, GENESIS_TIME).writes)
  const ok = new Map<string, number>()
  let all = 0
  let good = 0
  for (const [i, txs] of generated.blocks.entries()) {
    const exec = runtime.executeBlock(reader, {
      height: i + 1,
      time: GENESIS_TIME + (i + 1) * 1000,
      chainId: CHAIN_ID,
      txs,
    })
    apply(exec.writes)
    for (const [j, r] of exec.results.entries()) {
      all++
      if (r.code !== null) continue
      good++
      const name = txs[j]!.body.service
      ok.set(name, (ok.get(name) ?? 0) + 1)
    }
  }
  assert.ok(good / all > 0.5, `seed ${SEED}: only ${good}/${all} txs succeeded`)
  for (const svc of allServices)
    assert.ok((ok.get(svc.name) ?? 0) > 0, `seed ${SEED}: no successful tx of ${svc.name}`)
})

test(`same blocks twice on fresh memory stores: same roots, results and events (seed ${SEED})`, async () => {
  const a = await run(await openMemoryKv(), generated.genesis, generated.blocks)
  const b = await run(await openMemoryKv(), generate(SEED).genesis, generate(SEED).blocks)
  assert.is(firstDifference(a, b), undefined, `seed ${SEED}`)
  assert.equal(a, b, `seed ${SEED}: traces are byte-identical`)
  for (const h of a.heights) assert.equal(h.stored, h.results, 'the store returns the results as executed')
})

test(`LevelDB store gives the same trace as the memory store (seed ${SEED})`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-determinism-'))
  try {
    const mem = await run(await openMemoryKv(), generated.genesis, generated.blocks)
    const level = await run(await openLevelKv(join(dir, 'db')), generated.genesis, generated.blocks)
    assert.is(firstDifference(mem, level), undefined, `seed ${SEED}`)
    assert.equal(level, mem, `seed ${SEED}: traces are byte-identical`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
