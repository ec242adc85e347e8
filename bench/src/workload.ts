import { CERTIFICATE_TYPES } from '@cityledger/apps'
import { type Tx, type Value, sha256, utf8 } from '@cityledger/core'
import { type BenchKey, benchKey, signFast } from './signer.ts'

/** Kinds of load transactions, each a real service call that succeeds after the setup. */
export type TxKind = 'award' | 'spend' | 'vote' | 'certificate' | 'subject'

/** Share of each kind in the load (weights, need not sum to 1). */
export type Mix = Partial<Record<TxKind, number>>

/** The realistic mix: S-Coin awards and spends, ballots, certificate issues, subject registrations. */
export const DEFAULT_MIX: Mix = { award: 5, spend: 5, vote: 4, certificate: 3, subject: 3 }

export interface WorkloadOptions {
  chainId: string
  /** Citizens (spenders, voters, subject registrants): the many distinct signers. */
  citizens: number
  /** S-Coin operators (award signers), 16 per program. Default 32. */
  operators?: number
  /** Certificate issuers, one certificate type each. Default 32. */
  issuers?: number
  /** Agencies (orgs) the operators and issuers belong to. Default 4. */
  agencies?: number
  /** Citizens funded in the setup so that they can spend (default min(citizens, 2000)). */
  spenders?: number
  /** Polls, each with every citizen as a voter (one ballot per citizen per poll). 0 disables ballots. */
  polls?: number
  /** Height from which the polls are open (must be above the height of the poll creation wave). */
  pollOpenAt?: number
  mix?: Mix
  /** The key that is admin of every scope at genesis (default: derived from the label). */
  city?: BenchKey
  /** Roles the genesis already grants (`scope/role/keyHex`): the setup skips them. */
  genesisRoles?: string[]
  /** Label mixed into every key so that two workloads never share signers. */
  label?: string
}

const MERCHANTS = 16
const FUNDING = 1_000_000_000
const PATTERN_SLOTS = 40

/**
 * Generates signed transactions for a city chain: the setup (roles, agencies, the S-Coin asset and
 * programs, merchants, polls and voters, funded spenders) as waves that must commit in order, then any
 * number of load transactions of the mix. Every signer's nonces are consecutive in generation order,
 * so the txs are valid when committed in that order (within a block too).
 */
export class Workload {
  readonly chainId: string
  readonly city: BenchKey
  readonly citizens: BenchKey[]
  readonly operators: BenchKey[]
  readonly issuers: BenchKey[]
  readonly agencies: BenchKey[]
  readonly merchants: BenchKey[]
  readonly polls: number
  readonly pollOpenAt: number
  readonly spenders: number
  private readonly nonces = new Map<string, number>()
  private readonly pattern: TxKind[]
  private cursor = { slot: 0, award: 0, spend: 0, vote: 0, certificate: 0, subject: 0, rng: 0x9e3779b9 }
  private readonly label: string
  private readonly genesisRoles: Set<string>
  /** Transactions generated so far (setup included). */
  generated = 0

  constructor(opts: WorkloadOptions) {
    this.chainId = opts.chainId
    const label = opts.label ?? opts.chainId
    this.label = label
    const keys = (role: string, n: number) =>
      Array.from({ length: n }, (_, i) => benchKey(`${label}/${role}/${i}`))
    this.genesisRoles = new Set(opts.genesisRoles ?? [])
    this.city = opts.city ?? benchKey(`${label}/city`)
    this.citizens = keys('citizen', opts.citizens)
    this.operators = keys('operator', opts.operators ?? 32)
    this.issuers = keys('issuer', opts.issuers ?? 32)
    this.agencies = keys('agency', opts.agencies ?? 4)
    this.merchants = keys('merchant', MERCHANTS)
    this.polls = opts.polls ?? 0
    this.pollOpenAt = opts.pollOpenAt ?? 4
    this.spenders = Math.min(opts.spenders ?? 2000, opts.citizens)
    const mix = { ...(opts.mix ?? DEFAULT_MIX) }
    if (this.polls === 0) mix.vote = 0
    if (this.spenders === 0) mix.spend = 0
    if (this.citizens.length === 0) mix.spend = mix.vote = mix.subject = 0
    this.pattern = buildPattern(mix)
  }

  /** The identity genesis this workload expects: the city key is admin of every scope. */
  serviceGenesis(): Record<string, Value> {
    return { identity: { admins: [{ key: this.city.publicKey, scopes: ['*'] }] } }
  }

  /** A tx from `key` with its next nonce. */
  tx(key: BenchKey, service: string, method: string, args: Value): Tx {
    const nonce = (this.nonces.get(key.hex) ?? 0) + 1
    this.nonces.set(key.hex, nonce)
    this.generated++
    return signFast(
      { chainId: this.chainId, service, method, args, signer: key.publicKey, nonce, expiry: 0 },
      key,
    )
  }

  /** Setup transactions in waves: wave k + 1 needs wave k committed. Three waves. */
  setupWaves(): Tx[][] {
    const city = this.city
    const w1: Tx[] = []
    const grant = (scope: string, role: string, key: BenchKey): void => {
      if (!this.genesisRoles.has(`${scope}/${role}/${key.hex}`))
        w1.push(this.tx(city, 'identity', 'grantRole', { scope, role, key: key.publicKey }))
    }
    grant('token', 'admin', city)
    grant('scoin', 'admin', city)
    grant('voting', 'organizer', city)
    for (const a of this.agencies) grant('identity', 'registrar', a)
    for (const o of this.operators) grant('scoin', 'operator', o)
    for (const [i, k] of this.issuers.entries()) grant('certificates', `issuer:${certType(i)}`, k)

    const w2: Tx[] = []
    for (const [i, a] of this.agencies.entries())
      w2.push(this.tx(a, 'identity', 'registerOrg', { org: `agency-${i}`, name: `Agency ${i}` }))
    w2.push(
      this.tx(city, 'token', 'createAsset', {
        asset: 'SCOIN',
        decimals: 0,
        policy: 'controlled',
        controllers: ['scoin'],
        budgetPerPeriod: 0,
        periodBlocks: 1,
      }),
    )
    for (let p = 0; p * 16 < this.operators.length; p++) {
      w2.push(
        this.tx(city, 'scoin', 'createProgram', {
          program: programOf(p * 16),
          operators: this.operators.slice(p * 16, p * 16 + 16).map((k) => k.publicKey),
          budget: Number.MAX_SAFE_INTEGER,
          expiryBlocks: 1_000_000_000,
        }),
      )
    }
    for (const m of this.merchants)
      w2.push(this.tx(city, 'scoin', 'setPlace', { key: m.publicKey, kind: 'merchant' }))
    for (let p = 0; p < this.polls; p++) {
      w2.push(
        this.tx(city, 'voting', 'createPoll', {
          pollId: `poll-${p}`,
          mode: 'poll',
          title: `Policy poll ${p}`,
          question: sha256(utf8.encode(`question ${p}`)),
          options: ['yes', 'no', 'abstain'],
          electorate: { voters: [] },
          openAt: this.pollOpenAt,
          closeAt: 2_000_000_000,
        }),
      )
    }

    const w3: Tx[] = []
    const members = [...this.operators, ...this.issuers]
    members.forEach((k, i) => {
      const a = i % this.agencies.length
      w3.push(this.tx(this.agencies[a]!, 'identity', 'addOrgKey', { org: `agency-${a}`, key: k.publicKey }))
    })
    for (let p = 0; p < this.polls; p++)
      for (let i = 0; i < this.citizens.length; i += 256)
        w3.push(
          this.tx(city, 'voting', 'addVoters', {
            pollId: `poll-${p}`,
            voters: this.citizens.slice(i, i + 256).map((k) => k.publicKey),
          }),
        )
    for (let i = 0; i < this.spenders; i++) {
      const o = i % this.operators.length
      w3.push(
        this.tx(this.operators[o]!, 'scoin', 'award', {
          program: programOf(o),
          to: this.citizens[i]!.publicKey,
          amount: FUNDING,
        }),
      )
    }
    return [w1, w2, w3]
  }

  /** Ballots that can still be cast (each citizen once per poll). */
  ballotsLeft(): number {
    return this.polls * this.citizens.length - this.cursor.vote
  }

  /** `n` load transactions of the mix. */
  next(n: number): Tx[] {
    const out: Tx[] = []
    const c = this.cursor
    while (out.length < n) {
      let kind = this.pattern[c.slot++ % this.pattern.length]!
      if (kind === 'vote' && this.ballotsLeft() <= 0) kind = 'subject'
      out.push(this.make(kind))
    }
    return out
  }

  private random(): number {
    // xorshift32: deterministic recipients without a dependency.
    let x = this.cursor.rng
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.cursor.rng = x >>> 0
    return this.cursor.rng
  }

  private make(kind: TxKind): Tx {
    const c = this.cursor
    const i = c[kind]++
    switch (kind) {
      case 'award': {
        const o = i % this.operators.length
        const to = this.citizens.length
          ? this.citizens[this.random() % this.citizens.length]!
          : this.merchants[0]!
        return this.tx(this.operators[o]!, 'scoin', 'award', {
          program: programOf(o),
          to: to.publicKey,
          amount: 1 + (i % 5),
        })
      }
      case 'spend':
        return this.tx(this.citizens[i % this.spenders]!, 'scoin', 'spend', {
          to: this.merchants[i % this.merchants.length]!.publicKey,
          amount: 1 + (i % 3),
        })
      case 'vote': {
        const poll = Math.floor(i / this.citizens.length)
        return this.tx(this.citizens[i % this.citizens.length]!, 'voting', 'vote', {
          pollId: `poll-${poll}`,
          option: i % 3,
        })
      }
      case 'certificate': {
        const k = i % this.issuers.length
        return this.tx(this.issuers[k]!, 'certificates', 'issue', {
          id: sha256(utf8.encode(`${this.label}/cert/${i}`)),
          type: certType(k),
          hash: sha256(utf8.encode(`${this.label}/cert-content/${i}`)),
          validUntil: 0,
        })
      }
      case 'subject':
        return this.tx(this.citizens[i % this.citizens.length]!, 'identity', 'registerSubject', {
          subject: sha256(utf8.encode(`${this.label}/subject/${i}`)),
        })
    }
  }
}

function certType(i: number): string {
  return CERTIFICATE_TYPES[i % CERTIFICATE_TYPES.length]!
}

function programOf(operatorIndex: number): string {
  return `program-${Math.floor(operatorIndex / 16)}`
}

/** A fixed interleaving of the kinds in proportion to their weights (smooth weighted round-robin). */
function buildPattern(mix: Mix): TxKind[] {
  const kinds = (Object.entries(mix) as [TxKind, number][]).filter(([, w]) => w > 0)
  if (kinds.length === 0) throw new Error('workload mix: no kind has a positive weight')
  const total = kinds.reduce((s, [, w]) => s + w, 0)
  const current = new Map<TxKind, number>(kinds.map(([k]) => [k, 0]))
  const out: TxKind[] = []
  for (let s = 0; s < PATTERN_SLOTS; s++) {
    let best: TxKind = kinds[0]![0]
    for (const [k, w] of kinds) {
      current.set(k, current.get(k)! + w)
      if (current.get(k)! > current.get(best)!) best = k
    }
    current.set(best, current.get(best)! - total)
    out.push(best)
  }
  return out
}
