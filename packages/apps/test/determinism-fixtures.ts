// The determinism test's fixtures (test/determinism.test.ts): a seeded generator of a realistic mix of
// city transactions touching every method of every service, and a runner that executes the blocks on a
// fresh ChainStore the way a node does and records a byte-level trace.
import {
  ChainStore,
  type KeyPair,
  type KvStore,
  type ServiceDefinition,
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
  sha256,
  sign,
  signTx,
  toHex,
  utf8,
} from '@cityledger/core'
import { Rng, seedFor, testSeed } from '@cityledger/core/testing'
import { allServices } from '../src/all.ts'
import { pseudonymCommitment } from '../src/base/pseudonym.ts'
import { receiptMessage } from '../src/seoul/scoin.ts'

export const SEED = testSeed(0xd3e7)
export const CHAIN_ID = 'determinism-test'
export const GENESIS_TIME = 1_750_000_000_000
const BLOCKS = 60
const CERT_TYPES = ['family-relation', 'building-register', 'local-tax-payment'] as const
/** governance.minActivationDelay in the generated genesis. */
const GOV_DELAY = 2

/** One block of signed transactions, as the generator made it. */
export type GenBlock = Tx[]

/** What a run leaves behind, per height: the state root, each encoded result, the encoded block events. */
export interface Trace {
  genesisRoot: string
  heights: { root: string; results: string[]; blockEvents: string; stored: string[] }[]
}

const hash = (label: string): Uint8Array => sha256(utf8.encode(label))

/**
 * A seeded generator of city traffic. It remembers what it created (polls, certificates, contracts...)
 * so later txs refer to real things; it does not execute anything, so some txs fail (a vote before the
 * poll opens, a spend beyond the balance), as they would on a real chain.
 */
export function generate(seed: number): { genesis: Record<string, Value>; blocks: GenBlock[] } {
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
    registry: key('vehicle-registry'),
    bank: key('settlement-bank'),
  }
  const subs = Array.from({ length: 3 }, (_, i) => key(`subcontractor-${i}`))
  const governors = Array.from({ length: 4 }, (_, i) => key(`governor-${i}`))
  const validators = Array.from({ length: 5 }, (_, i) => key(`validator-${i}`))

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
  for (const scope of ['token', 'scoin', 'qualification', 'voting', 'consent']) grant(scope, 'admin', city)
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
    asset: 'GIFT',
    decimals: 0,
    policy: 'allowlist',
    controllers: [],
    budgetPerPeriod: 100_000,
    periodBlocks: 10,
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
  grant('scoin', 'settlement', agencies.bank, 'bank')
  grant('usedcar', 'registrar', agencies.registry, 'registry')
  grant('voting', 'enroller', agencies.democracy, 'democracy')
  grant('token', 'issuer:GIFT', agencies.treasury, 'treasury')
  tx(city, 'scoin', 'createProgram', {
    program: 'pilot',
    operators: [agencies.mileage.publicKey],
    budget: 300,
    expiryBlocks: 40,
  })
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
  // Democracy Seoul enrols every citizen's key (its keyed commitment; each citizen here uses one key).
  const enrolSecret = hash('democracy-seoul enrolment secret')
  citizens.forEach((c, i) =>
    tx(agencies.democracy, 'identity', 'enrol', {
      scope: 'voting',
      key: c.publicKey,
      commitment: pseudonymCommitment(enrolSecret, 'voting', `resident-${i}`),
    }),
  )
  for (const c of citizens.slice(0, 6)) {
    tx(agencies.treasury, 'token', 'setAllowlist', { asset: 'GIFT', key: c.publicKey, allowed: true })
    tx(agencies.treasury, 'token', 'mint', { asset: 'GIFT', to: c.publicKey, amount: 500 })
  }
  // Governance: three governing agencies (k = 2, genesis below) over five validators; a fourth joins and
  // leaves by membership changes. The generator predicts proposal ids (governance numbers them 0, 1, ...),
  // so every propose by a member below is valid when it is made; outsiders' proposes take no id.
  const gov = {
    members: governors.slice(0, 3),
    epoch: 0,
    nextId: 0,
    // Activation heights only grow, so validator and parameter timelines accept every new proposal.
    activation: 0,
    // The height from which a service may get a new upgrade (its last proposed one has activated).
    upgradeFree: new Map<string, number>(),
    upgrades: 0,
  }
  const proposals: { id: number; epoch: number; expiresAt: number; approvers: KeyPair[] }[] = []
  const propose = (by: KeyPair, kind: string, payload: Value, expiresAt: number): number | undefined => {
    const a: Record<string, Value> = { kind, payload, expiresAt }
    if (kind !== 'governance') {
      gov.activation = Math.max(gov.activation + 1, expiresAt + GOV_DELAY)
      a.activationHeight = gov.activation
    }
    tx(by, 'governance', 'propose', a)
    if (!gov.members.includes(by)) return undefined
    proposals.push({ id: gov.nextId, epoch: gov.epoch, expiresAt, approvers: [by] })
    return gov.nextId++
  }
  const approveBy = (by: KeyPair, id: number): void => {
    tx(by, 'governance', 'approve', { id })
    const p = proposals.find((x) => x.id === id)
    if (p && gov.members.includes(by) && !p.approvers.includes(by)) p.approvers.push(by)
  }
  // Every seed: one parameter change that executes, one validator addition nobody approves (it expires).
  const first = propose(
    governors[0]!,
    'parameters',
    { changes: [{ name: 'voting.petitionDebate', value: 50 }] },
    height + 2,
  )
  approveBy(governors[1]!, first!)
  propose(
    governors[1]!,
    'validators',
    { changes: [{ op: 'add', key: key('validator-new').publicKey }] },
    height + 1,
  )
  endBlock()

  const polls: { id: string; options: number; voters: KeyPair[] }[] = []
  const certs: { id: Uint8Array; issuer: KeyPair }[] = []
  const docs: Uint8Array[] = []
  const grants: { id: Uint8Array; subject: KeyPair; grantee: KeyPair; purpose: string }[] = []
  const agreements: { id: string; parties: KeyPair[]; certifier: KeyPair; milestones: string[] }[] = []
  const contracts: { id: string; subs: { sub: string; who: KeyPair; milestones: string[] }[] }[] = []
  const vehicles: { id: Uint8Array; holder: KeyPair; odometer: number; offeredTo?: KeyPair }[] = []
  const requests: Uint8Array[] = []
  const enrolled: KeyPair[] = []
  let stories = 0
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
      () => {
        const holder = rng.pick([...merchants, ...citizens])
        const amount = rng.range(1, 30)
        const receipt = rng.bytes(32)
        tx(holder, 'scoin', 'convert', {
          amount,
          receipt,
          operator: agencies.bank.publicKey,
          signature: sign(
            agencies.bank.secretKey,
            receiptMessage('SCOIN', holder.publicKey, amount, receipt),
          ),
        })
      },
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
        // Still in draft in this block: the organiser sometimes edits it.
        const edit = rng.int(6)
        if (edit === 0)
          tx(agencies.democracy, 'voting', 'addVoters', {
            pollId: id,
            voters: [rng.pick(citizens).publicKey],
          })
        else if (edit === 1)
          tx(agencies.democracy, 'voting', 'setOptions', {
            pollId: id,
            options: Array.from({ length: options }, (_, i) => `choice ${i}`),
          })
        else if (edit === 2)
          tx(agencies.democracy, 'voting', 'reschedule', {
            pollId: id,
            openAt: openAt + 1,
            closeAt: openAt + 10,
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
          ...(rng.chance(0.5) ? { endAt: height + rng.range(5, 20) } : {}),
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
        const step = rng.int(20)
        if (step < 7) tx(rng.pick(a.parties), 'agreement', 'sign', { id: a.id })
        else if (step < 12)
          tx(rng.pick(a.parties), 'agreement', 'fund', { id: a.id, amount: rng.range(100, 600) })
        else if (step < 18)
          tx(a.certifier, 'agreement', 'certify', { id: a.id, milestone: rng.pick(a.milestones) })
        else if (step === 18) tx(rng.pick(a.parties), 'agreement', 'cancel', { id: a.id })
        else tx(rng.pick(a.parties), 'agreement', 'terminate', { id: a.id })
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
        const step = s ? rng.int(16) : 0
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
        } else if (step === 1 || step === 9)
          tx(s!.who, 'subcontract', 'sign', { contract: c.id, sub: s!.sub })
        else if (step === 2 || step === 10)
          tx(agencies.works, 'subcontract', 'approve', { contract: c.id, sub: s!.sub })
        else if (step === 3 || step === 11 || step === 12 || step === 13)
          tx(agencies.inspector, 'subcontract', 'certify', {
            contract: c.id,
            sub: s!.sub,
            milestone: rng.pick(s!.milestones),
            report: rng.bytes(32),
          })
        else if (step === 4 || step === 14)
          tx(agencies.works, 'subcontract', 'fund', { contract: c.id, amount: rng.range(1_000, 8_000) })
        else if (step === 5)
          tx(rng.pick([agencies.prime, s!.who]), 'subcontract', 'cancel', { contract: c.id, sub: s!.sub })
        else if (step === 6)
          tx(rng.pick([agencies.works, agencies.prime, s!.who]), 'subcontract', 'terminate', {
            contract: c.id,
            sub: s!.sub,
          })
        else if (step === 7 || step === 15)
          tx(rng.pick(citizens), 'subcontract', 'settle', {
            contract: c.id,
            sub: s!.sub,
            milestone: rng.pick(s!.milestones),
          })
        else tx(agencies.works, 'subcontract', 'close', { contract: c.id })
      },
    ],
    [
      1,
      () => {
        const id = rng.bytes(32)
        vehicles.push({ id, holder: agencies.dealer, odometer: rng.range(0, 90_000) })
        // The vehicle registry registers the car's keyed id; the dealer takes it in.
        tx(agencies.registry, 'usedcar', 'register', { vehicle: id })
        tx(agencies.dealer, 'usedcar', 'purchase', { vehicle: id, odometer: vehicles.at(-1)!.odometer })
      },
    ],
    [
      3,
      () => {
        if (!vehicles.length) return
        const v = rng.pick(vehicles)
        const step = rng.int(12)
        v.odometer += rng.range(-50, 2_000)
        const odometer = Math.max(0, v.odometer)
        if (step === 0 || step === 10 || step === 11) {
          tx(agencies.carInspector, 'usedcar', 'inspect', {
            vehicle: v.id,
            odometer,
            report: rng.bytes(32),
            passed: rng.chance(0.8),
          })
          // Sometimes the inspector mistyped the reading and corrects it.
          if (rng.chance(0.2))
            tx(agencies.carInspector, 'usedcar', 'correct', {
              vehicle: v.id,
              odometer,
              report: rng.bytes(32),
            })
        } else if (step === 4)
          tx(agencies.carInspector, 'usedcar', 'meterSwap', {
            vehicle: v.id,
            oldReading: odometer,
            newReading: rng.range(0, 100),
            report: rng.bytes(32),
          })
        else if (step === 5) tx(v.holder, 'usedcar', 'list', { vehicle: v.id })
        else if (step === 6) tx(v.holder, 'usedcar', 'withdraw', { vehicle: v.id })
        else if (step === 1)
          tx(agencies.insurer, 'usedcar', 'accident', {
            vehicle: v.id,
            severity: rng.pick(['minor', 'major'] as const),
            report: rng.bytes(32),
          })
        else if (step === 2 || step === 7 || step === 8 || step === 9) {
          v.offeredTo = rng.pick(citizens)
          tx(v.holder, 'usedcar', 'offer', { vehicle: v.id, buyer: v.offeredTo.publicKey, odometer })
        } else {
          // Mostly the buyer the last offer named.
          const buyer = rng.chance(0.8) && v.offeredTo ? v.offeredTo : rng.pick(citizens)
          tx(buyer, 'usedcar', 'accept', { vehicle: v.id })
          v.holder = buyer
        }
      },
    ],
    // Whole stories inside one block (each tx sees the writes of the ones before it), so the methods
    // that need a long run-up (certify after sign, approve and fund; settle; close; accept) happen too.
    [
      2,
      () => {
        const story = stories++ % 7
        if (story === 0) {
          // An agreement from creation to payment and, at the end, termination by both parties.
          const id = uid('story-agreement')
          const parties = rng.shuffle([...citizens]).slice(0, 2) as [KeyPair, KeyPair]
          tx(parties[0], 'agreement', 'create', {
            id,
            asset: 'KRW',
            parties: parties.map((p) => p.publicKey),
            certifier: agencies.inspector.publicKey,
            milestones: ['a', 'b'].map((m) => ({
              id: m,
              amount: 100,
              payouts: [{ to: parties[1].publicKey, amount: 100 }],
            })),
          })
          for (const p of parties) tx(p, 'agreement', 'sign', { id })
          tx(parties[0], 'agreement', 'fund', { id, amount: 200 })
          tx(agencies.inspector, 'agreement', 'certify', { id, milestone: 'a' })
          for (const p of parties) tx(p, 'agreement', 'terminate', { id })
          const other = uid('story-agreement')
          tx(parties[1], 'agreement', 'create', {
            id: other,
            asset: 'KRW',
            parties: [parties[1].publicKey],
            certifier: agencies.inspector.publicKey,
            milestones: [{ id: 'x', amount: 50, payouts: [{ to: parties[0].publicKey, amount: 50 }] }],
          })
          tx(parties[1], 'agreement', 'cancel', { id: other })
        } else if (story === 1) {
          // A works contract: one subcontract paid at once, one certified before the money and settled,
          // one ended by the three parties, then the contract closes.
          const id = uid('story-works')
          tx(agencies.works, 'subcontract', 'createContract', {
            id,
            prime: agencies.prime.publicKey,
            asset: 'KRW',
            value: 30_000,
            terms: hash(id),
          })
          tx(agencies.works, 'subcontract', 'fund', { contract: id, amount: 2_000 })
          const who = rng.pick(subs)
          for (const sub of ['s1', 's2', 's3']) {
            tx(agencies.prime, 'subcontract', 'propose', {
              contract: id,
              sub,
              subcontractor: who.publicKey,
              terms: hash(`${id}/${sub}`),
              milestones: [{ id: 'm', amount: 2_000, payouts: [{ to: who.publicKey, amount: 2_000 }] }],
            })
            tx(who, 'subcontract', 'sign', { contract: id, sub })
            tx(agencies.works, 'subcontract', 'approve', { contract: id, sub })
          }
          const certify = (sub: string) =>
            tx(agencies.inspector, 'subcontract', 'certify', {
              contract: id,
              sub,
              milestone: 'm',
              report: rng.bytes(32),
            })
          certify('s1')
          certify('s2')
          tx(agencies.works, 'subcontract', 'fund', { contract: id, amount: 2_000 })
          tx(rng.pick(citizens), 'subcontract', 'settle', { contract: id, sub: 's2', milestone: 'm' })
          for (const k of [agencies.works, agencies.prime, who])
            tx(k, 'subcontract', 'terminate', { contract: id, sub: 's3' })
          tx(agencies.prime, 'subcontract', 'propose', {
            contract: id,
            sub: 's4',
            subcontractor: who.publicKey,
            terms: hash(`${id}/s4`),
            milestones: [{ id: 'm', amount: 1_000, payouts: [{ to: who.publicKey, amount: 1_000 }] }],
          })
          tx(agencies.prime, 'subcontract', 'cancel', { contract: id, sub: 's4' })
          tx(agencies.works, 'subcontract', 'close', { contract: id })
        } else if (story === 2) {
          // A car enters, is inspected, listed, offered and sold.
          const id = rng.bytes(32)
          const buyer = rng.pick(citizens)
          const odometer = rng.range(1_000, 90_000)
          tx(agencies.registry, 'usedcar', 'register', { vehicle: id })
          tx(agencies.dealer, 'usedcar', 'purchase', { vehicle: id, odometer })
          tx(agencies.carInspector, 'usedcar', 'inspect', {
            vehicle: id,
            odometer,
            report: rng.bytes(32),
            passed: true,
          })
          tx(agencies.carInspector, 'usedcar', 'correct', {
            vehicle: id,
            odometer: odometer + 1,
            report: rng.bytes(32),
          })
          tx(agencies.dealer, 'usedcar', 'list', { vehicle: id })
          tx(agencies.dealer, 'usedcar', 'offer', {
            vehicle: id,
            buyer: buyer.publicKey,
            odometer: odometer + 1,
          })
          tx(buyer, 'usedcar', 'accept', { vehicle: id })
          vehicles.push({ id, holder: buyer, odometer })
        } else if (story === 3) {
          // Documents and certificates suspended, reinstated and revoked.
          const docId = rng.bytes(32)
          tx(agencies.archive, 'registry', 'issue', {
            docId,
            type: 'building-permit',
            commitment: rng.bytes(32),
            validUntil: 0,
          })
          for (const m of ['suspend', 'reinstate', 'revoke']) tx(agencies.archive, 'registry', m, { docId })
          const id = rng.bytes(32)
          tx(agencies.office, 'certificates', 'issue', {
            id,
            type: rng.pick(CERT_TYPES),
            hash: rng.bytes(32),
            validUntil: 0,
          })
          for (const m of ['suspend', 'reinstate'])
            tx(agencies.office, 'certificates', m, { id, reason: rng.bytes(32) })
          certs.push({ id, issuer: agencies.office })
        } else if (story === 6) {
          // Housekeeping of the agencies: each of these is rare in real traffic.
          const t = key(uid('moved-away'))
          tx(agencies.democracy, 'identity', 'enrol', {
            scope: 'voting',
            key: t.publicKey,
            commitment: rng.bytes(32),
          })
          tx(agencies.democracy, 'identity', 'unenrol', { scope: 'voting', key: t.publicKey })
          tx(city, 'identity', 'grantRole', { scope: 'certificates', role: 'facility', key: t.publicKey })
          tx(city, 'identity', 'revokeRole', { scope: 'certificates', role: 'facility', key: t.publicKey })
          tx(city, 'consent', 'definePurpose', { code: uid('city-survey') })
          tx(agencies.welfare, 'consent', 'emergencyAccess', {
            subject: rng.pick(citizens).publicKey,
            purpose: 'emergency-care',
            reason: rng.bytes(32),
          })
          tx(agencies.treasury, 'token', 'setAllowlist', {
            asset: 'GIFT',
            key: rng.pick(citizens).publicKey,
            allowed: true,
          })
          tx(city, 'scoin', 'addBudget', { program: 'recycling', amount: 10 })
          tx(city, 'voting', 'setParams', { petitionDebate: 3, petitionMayorAnswer: 6 })
          const pollId = uid('story-poll')
          const openAt = height + 3
          polls.push({ id: pollId, options: 2, voters: citizens })
          tx(agencies.democracy, 'voting', 'createPoll', {
            pollId,
            mode: 'poll',
            title: 'Story poll',
            question: hash(pollId),
            options: ['a', 'b'],
            electorate: { voters: citizens.slice(0, 4).map((c) => c.publicKey) },
            openAt,
            closeAt: openAt + 8,
          })
          tx(agencies.democracy, 'voting', 'addVoters', {
            pollId,
            voters: citizens.slice(4).map((c) => c.publicKey),
          })
          tx(agencies.democracy, 'voting', 'setOptions', { pollId, options: ['yes', 'no'] })
          tx(agencies.democracy, 'voting', 'reschedule', { pollId, openAt: openAt + 1, closeAt: openAt + 9 })
          if (stories > 7) tx(city, 'scoin', 'closeProgram', { program: 'pilot' })
          // A request its agency withdraws.
          const subject = rng.pick(citizens)
          const grantId = rng.bytes(32)
          tx(subject, 'consent', 'grant', {
            grantId,
            grantee: agencies.welfare.publicKey,
            purpose: 'qualification:no-tax-arrears',
            expiry: height + 30,
          })
          const requestId = rng.bytes(32)
          tx(agencies.welfare, 'qualification', 'request', {
            requestId,
            predicate: 'no-tax-arrears',
            grantId,
          })
          tx(agencies.welfare, 'qualification', 'cancel', { requestId })
        } else {
          // A qualification check under a fresh consent grant: answered, or declined.
          const subject = rng.pick(citizens)
          const grantId = rng.bytes(32)
          tx(subject, 'consent', 'grant', {
            grantId,
            grantee: agencies.welfare.publicKey,
            purpose: 'qualification:no-tax-arrears',
            expiry: height + 30,
          })
          const requestId = rng.bytes(32)
          requests.push(requestId)
          tx(agencies.welfare, 'qualification', 'request', {
            requestId,
            predicate: 'no-tax-arrears',
            grantId,
          })
          if (story === 4)
            tx(agencies.taxOffice, 'qualification', 'decline', {
              requestId,
              reason: rng.pick(['no-data', 'other'] as const),
            })
          else
            tx(agencies.taxOffice, 'qualification', 'answer', {
              requestId,
              result: rng.chance(0.5),
              evidence: rng.bytes(32),
            })
        }
      },
    ],
    // Less frequent operations, so every method of every service runs.
    [
      1,
      () => {
        const org = rng.pick(Object.keys(agencies) as (keyof typeof agencies)[])
        tx(agencies[org], 'identity', 'addOrgKey', { org, key: key(uid(`${org}-key`)).publicKey })
      },
    ],
    [
      1,
      () => {
        const t = key(uid('lost-phone'))
        tx(city, 'identity', 'grantRole', { scope: 'certificates', role: 'facility', key: t.publicKey })
        if (rng.chance(0.5))
          tx(city, 'identity', 'revokeRole', { scope: 'certificates', role: 'facility', key: t.publicKey })
        tx(t, 'identity', 'revokeKey', { key: t.publicKey, fromHeight: height + rng.int(3) })
      },
    ],
    [
      1,
      () => {
        const t = key(uid('newcomer'))
        enrolled.push(t)
        tx(agencies.democracy, 'identity', 'enrol', {
          scope: 'voting',
          key: t.publicKey,
          commitment: rng.bytes(32),
        })
        if (rng.chance(0.3))
          tx(agencies.democracy, 'identity', 'unenrol', {
            scope: 'voting',
            key: rng.pick(enrolled).publicKey,
          })
      },
    ],
    [1, () => tx(rng.pick(citizens), 'token', 'burn', { asset: 'KRW', amount: rng.range(1, 200) })],
    [
      1,
      () => {
        const c = rng.pick(citizens)
        if (rng.chance(0.5))
          tx(agencies.treasury, 'token', 'setAllowlist', {
            asset: 'GIFT',
            key: c.publicKey,
            allowed: rng.chance(0.7),
          })
        else
          tx(rng.pick(citizens), 'token', 'transfer', {
            asset: 'GIFT',
            to: c.publicKey,
            amount: rng.range(1, 50),
          })
      },
    ],
    [1, () => tx(city, 'consent', 'definePurpose', { code: uid('city-programme') })],
    [
      1,
      () =>
        tx(agencies.welfare, 'consent', 'emergencyAccess', {
          subject: rng.pick(citizens).publicKey,
          purpose: 'emergency-care',
          reason: rng.bytes(32),
        }),
    ],
    [
      1,
      () => {
        const step = rng.int(3)
        if (step === 0)
          tx(city, 'qualification', 'definePredicate', {
            predicate: rng.pick(['owns-no-house', 'no-tax-arrears', 'resident-of-seoul']),
            validityBlocks: rng.range(0, 50),
          })
        else if (requests.length && step === 1)
          tx(agencies.taxOffice, 'qualification', 'decline', {
            requestId: rng.pick(requests),
            reason: 'no-record',
          })
        else if (requests.length)
          tx(agencies.welfare, 'qualification', 'cancel', { requestId: rng.pick(requests) })
      },
    ],
    [
      1,
      () =>
        rng.chance(0.8)
          ? tx(city, 'scoin', 'addBudget', {
              program: rng.pick(['vote-rewards', 'recycling', 'pilot']),
              amount: rng.range(1, 100),
            })
          : tx(city, 'scoin', 'closeProgram', { program: 'pilot' }),
    ],
    [
      2,
      () => {
        if (!polls.length) return
        const p = rng.pick(polls)
        const step = rng.int(3)
        if (step === 0)
          tx(agencies.democracy, 'voting', 'addVoters', {
            pollId: p.id,
            voters: [rng.pick(citizens).publicKey],
          })
        else if (step === 1)
          tx(agencies.democracy, 'voting', 'setOptions', {
            pollId: p.id,
            options: Array.from({ length: p.options }, (_, i) => `choice ${i}`),
          })
        else {
          const openAt = height + rng.range(1, 4)
          tx(agencies.democracy, 'voting', 'reschedule', {
            pollId: p.id,
            openAt,
            closeAt: openAt + rng.range(3, 12),
          })
        }
      },
    ],
    [
      1,
      () => {
        if (rng.chance(0.3)) {
          const debate = rng.range(2, 5)
          tx(city, 'voting', 'setParams', {
            petitionDebate: debate,
            petitionMayorAnswer: debate + rng.range(0, 4),
          })
          return
        }
        // A citizen starts a petition; every enrolled citizen may support it.
        const id = uid('petition')
        const openAt = height + rng.range(1, 3)
        polls.push({ id, options: 1, voters: citizens })
        tx(rng.pick(citizens), 'voting', 'createPoll', {
          pollId: id,
          mode: 'petition',
          title: `Petition ${id}`,
          question: hash(id),
          options: [],
          electorate: { enrolled: true },
          openAt,
          closeAt: openAt + rng.range(5, 15),
        })
      },
    ],
  ]
  ops.push([
    3,
    () => {
      const step = rng.int(10)
      const expiresAt = height + rng.range(1, 4)
      if (step < 4) {
        // A member (sometimes an outsider: NOT_MEMBER) proposes a parameter, validator-set or upgrade change.
        const by = rng.chance(0.1) ? rng.pick(citizens) : rng.pick(gov.members)
        // Upgrades name services this chain does not run (x-<name>): an executed upgrade of one it runs
        // stops the chain's code at the activation height.
        const free = allServices
          .map((x) => `x-${x.name}`)
          .filter((n) => (gov.upgradeFree.get(n) ?? 0) <= height)
        const kind = rng.pick(
          free.length ? ['parameters', 'validators', 'upgrade'] : ['parameters', 'validators'],
        )
        if (kind === 'parameters') {
          const name = rng.pick([
            'voting.petitionDebate',
            'consensus.maxBlockTxs',
            'consensus.blockIntervalMs',
          ])
          propose(by, kind, { changes: [{ name, value: rng.range(10, 5000) }] }, expiresAt)
        } else if (kind === 'validators') {
          // Valid against any set: a fresh key joins, and sometimes leaves again or is replaced.
          const k = key(uid('validator')).publicKey
          const more = rng.int(3)
          const changes: Value[] = [{ op: 'add', key: k }]
          if (more === 1) changes.push({ op: 'remove', key: k })
          if (more === 2) changes.push({ op: 'replace', key: k, with: key(uid('validator')).publicKey })
          propose(by, kind, { changes }, expiresAt)
        } else {
          const service = rng.pick(free)
          const payload = { service, version: `1.${++gov.upgrades}.0`, codeHash: rng.bytes(32) }
          if (propose(by, kind, payload, expiresAt) !== undefined)
            gov.upgradeFree.set(service, gov.activation)
        }
      } else if (step < 9) {
        // Approvals, mostly of open proposals by members who have not approved yet; some are refused
        // (expired, executed, cancelled by a membership change, already approved, outsiders).
        const recent = proposals.filter((p) => p.expiresAt >= height - 2)
        if (!recent.length) return
        const p = rng.pick(recent)
        const fresh = gov.members.filter((m) => !p.approvers.includes(m))
        approveBy(
          fresh.length && rng.chance(0.85) ? rng.pick(fresh) : rng.pick([...gov.members, rng.pick(citizens)]),
          p.id,
        )
      } else {
        // A membership change, approved at once: the fourth agency joins or leaves; every other open
        // proposal is cancelled.
        const next = gov.members.length === 3 ? governors : governors.slice(0, 3)
        const [a, b] = rng.shuffle([...gov.members])
        const id = propose(
          a!,
          'governance',
          { members: next.map((k) => k.publicKey), threshold: 2 },
          expiresAt,
        )
        approveBy(b!, id!)
        gov.members = next
        gov.epoch++
      }
    },
  ])
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
  const genesis = {
    identity: { admins: [{ key: toHex(city.publicKey), scopes: ['*'] }] },
    governance: {
      members: governors.slice(0, 3).map((k) => toHex(k.publicKey)),
      threshold: 2,
      validators: validators.map((k) => toHex(k.publicKey)),
      parameters: { 'governance.minActivationDelay': GOV_DELAY, 'governance.maxProposalLifetime': 20 },
    },
    _sys: { upgradeAuthority: 'governance', validatorAuthority: 'governance' },
  }
  return { genesis, blocks }
}

/** Executes `blocks` on a fresh ChainStore over `kv`, the way a node does, and records everything. */
export async function run(
  kv: KvStore,
  genesis: Record<string, Value>,
  blocks: GenBlock[],
  services: ServiceDefinition[] = allServices,
): Promise<Trace> {
  const store = await ChainStore.open(kv, { chainId: CHAIN_ID })
  try {
    const runtime = createRuntime({
      services,
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
export function firstDifference(a: Trace, b: Trace): string | undefined {
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
