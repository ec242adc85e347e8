// Open-loop load of signed transactions through RPC, with a record of every acknowledgement.
// Arrivals follow a fixed rate whatever the network does (capped by `maxInFlight`, the rest is shed
// and counted); each tx is driven until some node says it is committed: the same signed bytes are
// resubmitted to another live node when a node dies, pauses or loses its mempool.
import {
  type KeyPair,
  type TxBody,
  type Value,
  generateKeyPair,
  sha256,
  signTx,
  toHex,
  utf8,
} from '@cityledger/core'
import type { Rng } from '@cityledger/core/testing'
import { type Cluster, type ClusterNode, waitFor } from './cluster.ts'

export const ASSET = 'cash'
const INITIAL = 1_000_000

/** An acknowledgement: a node answered that this tx is committed (or committed as failed). */
export interface Ack {
  hash: string
  kind: 'subject' | 'transfer' | 'setup' | 'probe' | 'ballot' | 'large'
  status: 'committed' | 'failed'
  height: number
  /** Harness wall time when the answer came (ms): the block at `height` committed no later. */
  at: number
  code?: string
  via: number
  /** For ballots: the index of the voter in `LoadWorld.voters`. */
  voter?: number
}

export interface LoadStats {
  issued: number
  shed: number
  acked: number
  /** Issued txs that no node acknowledged before the end (never counted as lost: no ack was given). */
  unresolved: number
  /** Submissions refused with a typed error, by code. */
  refused: Record<string, number>
}

interface Account {
  key: KeyPair
  nonce: number
  busy: boolean
}

/** The token accounts, the poll's electorate and the city key, made by `setupLoad`. */
export interface LoadWorld {
  chainId: string
  city: KeyPair
  cityNonce: number
  accounts: Account[]
  /** The electorate of `POLL`: each may have one counted ballot; the load also tries second ones. */
  voters: Account[]
}

export const POLL = 'fault-poll'

export class Load {
  readonly acks = new Map<string, Ack>()
  readonly stats: LoadStats = { issued: 0, shed: 0, acked: 0, unresolved: 0, refused: {} }
  private readonly cluster: Cluster
  private readonly world: LoadWorld
  private readonly rng: Rng
  private readonly rate: number
  private readonly maxInFlight: number
  private readonly large: boolean
  /** Envelope size of every tx issued, by hash (block sizes are summed from it). */
  readonly sizes = new Map<string, number>()
  private inFlight = new Set<Promise<void>>()
  private timer: ReturnType<typeof setInterval> | undefined
  private stopping = false
  private startedAt = 0
  private subjects = 0

  /**
   * `large`: every tx but the ballots is an agreement draft of ~31 KB (the largest args the services accept), so
   * blocks grow past 1 MB at a few dozen txs per second.
   */
  constructor(
    cluster: Cluster,
    world: LoadWorld,
    rng: Rng,
    opts: { rate: number; maxInFlight?: number; large?: boolean },
  ) {
    this.cluster = cluster
    this.world = world
    this.rng = rng
    this.rate = opts.rate
    this.maxInFlight = opts.maxInFlight ?? 64
    this.large = opts.large ?? false
  }

  start(): void {
    this.startedAt = Date.now()
    this.timer = setInterval(() => this.tick(), 20)
  }

  /** Stops arrivals, then gives in-flight txs up to `graceMs` to be acknowledged. */
  async stop(graceMs = 30_000): Promise<LoadStats> {
    if (this.timer) clearInterval(this.timer)
    const deadline = Date.now() + graceMs
    while (this.inFlight.size && Date.now() < deadline) await Promise.race([...this.inFlight, delay(200)])
    this.stopping = true
    await Promise.all(this.inFlight)
    return this.stats
  }

  private tick(): void {
    const due =
      Math.floor(((Date.now() - this.startedAt) / 1000) * this.rate) - this.stats.issued - this.stats.shed
    for (let i = 0; i < due; i++) {
      if (this.inFlight.size >= this.maxInFlight) {
        this.stats.shed++
        continue
      }
      this.stats.issued++
      const idle = this.world.accounts.filter((a) => !a.busy)
      let p: Promise<void>
      const voters = this.world.voters.filter((v) => !v.busy)
      if (voters.length && this.rng.chance(0.15)) p = this.ballot(this.rng.int(this.world.voters.length))
      else if (this.large) p = this.largeTx()
      else if (idle.length && this.rng.chance(0.5)) p = this.transfer(this.rng.pick(idle))
      else p = this.subject()
      this.inFlight.add(p)
      void p.finally(() => this.inFlight.delete(p))
    }
  }

  private subject(): Promise<void> {
    const key = generateKeyPair()
    const body: TxBody = {
      chainId: this.world.chainId,
      service: 'identity',
      method: 'registerSubject',
      args: { subject: sha256(utf8.encode(`subject-${this.subjects++}-${this.rng.int(1e9)}`)) },
      signer: key.publicKey,
      nonce: 1,
      expiry: 0,
    }
    return this.drive(signTx(body, key.secretKey).bytes, 'subject').then(() => {})
  }

  /** An agreement draft near the largest args a service accepts (committed as failed: no such asset). */
  private readonly presigned: Uint8Array[] = []

  /**
   * Signs `n` large txs now (signing one takes the harness ~50 ms: done before the load starts, so
   * that the arrivals keep their rate).
   */
  presignLarge(n: number): void {
    for (let i = 0; i < n; i++) this.presigned.push(this.signLarge())
  }

  private largeTx(): Promise<void> {
    return this.drive(this.presigned.pop() ?? this.signLarge(), 'large').then(() => {})
  }

  private signLarge(): Uint8Array {
    const key = generateKeyPair()
    const r = this.rng.int(1e9)
    const payee = (k: number) => sha256(utf8.encode(`payee-${r}-${k}`))
    const body: TxBody = {
      chainId: this.world.chainId,
      service: 'agreement',
      method: 'create',
      args: {
        id: `large-${r}`.padEnd(64, 'x'),
        asset: 'no-such-asset',
        parties: Array.from({ length: 16 }, (_, k) => payee(1000 + k)),
        certifier: key.publicKey,
        milestones: Array.from({ length: 32 }, (_, m) => ({
          id: `m${m}`.padEnd(64, 'x'),
          amount: Number.MAX_SAFE_INTEGER,
          payouts: Array.from({ length: 16 }, (_, k) => ({
            to: payee(m * 16 + k),
            amount: Number.MAX_SAFE_INTEGER,
          })),
        })),
      },
      signer: key.publicKey,
      nonce: 1,
      expiry: 0,
    }
    return signTx(body, key.secretKey).bytes
  }

  /** A ballot in the load's poll; a voter's second and later ballots must be refused (ALREADY_VOTED). */
  private async ballot(index: number): Promise<void> {
    const voter = this.world.voters[index]!
    if (voter.busy) return
    voter.busy = true
    const body: TxBody = {
      chainId: this.world.chainId,
      service: 'voting',
      method: 'vote',
      args: { pollId: POLL, option: this.rng.int(2) },
      signer: voter.key.publicKey,
      nonce: voter.nonce,
      expiry: 0,
    }
    const ack = await this.drive(signTx(body, voter.key.secretKey).bytes, 'ballot', index)
    if (ack) {
      voter.nonce++
      voter.busy = false
    }
  }

  private async transfer(from: Account): Promise<void> {
    from.busy = true
    const to = this.rng.pick(this.world.accounts)
    const body: TxBody = {
      chainId: this.world.chainId,
      service: 'token',
      method: 'transfer',
      args: { asset: ASSET, to: to.key.publicKey, amount: this.rng.range(1, 10) },
      signer: from.key.publicKey,
      nonce: from.nonce,
      expiry: 0,
    }
    const ack = await this.drive(signTx(body, from.key.secretKey).bytes, 'transfer')
    // Without an ack the account's nonce is unknown: retire it rather than guess.
    if (ack) {
      from.nonce++
      from.busy = false
    }
  }

  /** Resubmits `bytes` to live nodes until one acknowledges it committed, or the load stops. */
  async drive(bytes: Uint8Array, kind: Ack['kind'], voter?: number): Promise<Ack | undefined> {
    const hash = toHex(sha256(bytes))
    this.sizes.set(hash, bytes.length)
    for (let attempt = 0; !this.stopping; attempt++) {
      const live = this.cluster.live().filter((x) => !x.byzantine)
      if (!live.length) {
        await delay(200)
        continue
      }
      const node = live[this.rng.int(live.length)]!
      // Large txs wait longer before being resubmitted elsewhere (each resubmission is decoded again).
      const ack = await submitOnce(node, bytes, hash, kind, this.large ? 15_000 : 3000, (code) => {
        this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1
      })
      if (ack) {
        if (voter !== undefined) ack.voter = voter
        this.acks.set(hash, ack)
        this.stats.acked++
        return ack
      }
      await delay(Math.min(1000, 100 * (attempt + 1)))
    }
    this.stats.unresolved++
    return undefined
  }
}

/** One submission with a bounded wait; undefined when the node gave no final answer. */
async function submitOnce(
  node: ClusterNode,
  bytes: Uint8Array,
  hash: string,
  kind: Ack['kind'],
  waitMs: number,
  refused: (code: string) => void,
): Promise<Ack | undefined> {
  try {
    const s = await node.client.submit(bytes, { wait: 'commit', timeoutMs: waitMs })
    if (s.status === 'committed' || s.status === 'failed')
      return {
        hash,
        kind,
        status: s.status,
        height: s.height!,
        code: s.code,
        via: node.index,
        at: Date.now(),
      }
    return undefined
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'NETWORK'
    refused(code)
    // Already known (pending or committed) here: ask for its status (waiting while it is pending
    // here, rather than sending the same bytes again at once).
    try {
      const s =
        code === 'DUPLICATE_TX'
          ? await node.client.waitForTx(hash, { timeoutMs: waitMs })
          : await node.client.tx(hash)
      if (s.status === 'committed' || s.status === 'failed')
        return {
          hash,
          kind,
          status: s.status,
          height: s.height!,
          code: s.code,
          via: node.index,
          at: Date.now(),
        }
    } catch {}
    return undefined
  }
}

/**
 * Creates the load's world through the city key: asset `cash` (open transfers), the issuer role, and
 * `accounts` funded accounts. Runs before any fault.
 */
export async function setupLoad(
  cluster: Cluster,
  load: { accounts: number; voters?: number },
): Promise<{ world: LoadWorld; acks: Ack[] }> {
  const world: LoadWorld = {
    chainId: cluster.layout.genesis.chainId,
    city: cluster.layout.cityKey,
    cityNonce: 1,
    accounts: Array.from({ length: load.accounts }, () => ({
      key: generateKeyPair(),
      nonce: 1,
      busy: false,
    })),
    voters: Array.from({ length: load.voters ?? 16 }, () => ({
      key: generateKeyPair(),
      nonce: 1,
      busy: false,
    })),
  }
  const acks: Ack[] = []
  const node = cluster.honest()[0]!
  const call = async (method: string, service: string, args: Value, tolerate: string[] = []) => {
    const body: TxBody = {
      chainId: world.chainId,
      service,
      method,
      args,
      signer: world.city.publicKey,
      nonce: world.cityNonce++,
      expiry: 0,
    }
    const tx = signTx(body, world.city.secretKey)
    // A node still catching up refuses txs for a moment (NOT_READY): wait for it, bounded.
    const s = await waitFor(`setup ${service}.${method} admitted`, () =>
      node.client.submit(tx.bytes, { wait: 'commit', timeoutMs: 20_000 }).catch((err) => {
        if ((err as { code?: string }).code === 'NOT_READY') return undefined
        throw err
      }),
    )
    if (s.status !== 'committed' && !tolerate.includes(s.code ?? ''))
      throw new Error(`setup ${service}.${method}: ${s.status} ${s.code ?? ''}`)
    acks.push({
      hash: s.hash,
      kind: 'setup',
      status: s.status as Ack['status'],
      height: s.height!,
      via: node.index,
      at: Date.now(),
    })
  }
  await call('grantRole', 'identity', { scope: 'token', role: 'admin', key: world.city.publicKey }, [
    'ROLE_EXISTS',
  ])
  await call('createAsset', 'token', {
    asset: ASSET,
    decimals: 0,
    policy: 'open',
    controllers: [],
    budgetPerPeriod: 0,
    periodBlocks: 1,
  })
  await call(
    'grantRole',
    'identity',
    { scope: 'token', role: `issuer:${ASSET}`, key: world.city.publicKey },
    ['ROLE_EXISTS'],
  )
  for (const a of world.accounts)
    await call('mint', 'token', { asset: ASSET, to: a.key.publicKey, amount: INITIAL })
  await call('grantRole', 'identity', { scope: 'voting', role: 'organizer', key: world.city.publicKey }, [
    'ROLE_EXISTS',
  ])
  await call('createPoll', 'voting', {
    pollId: POLL,
    mode: 'poll',
    title: 'Fault suite poll',
    question: sha256(utf8.encode('does the ledger lose ballots?')),
    options: ['yes', 'no'],
    electorate: { voters: world.voters.map((v) => v.key.publicKey) },
    openAt: acks.at(-1)!.height + 2,
    closeAt: 1_000_000_000,
  })
  return { world, acks }
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
