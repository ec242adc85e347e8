// The end-of-run checks: no acknowledged tx lost or duplicated, no fork, valid certificates, service
// invariants, and recovery after the last fault healed. Each returns a list of violations (empty when
// all is well) so that one run reports everything it found.
import { fromHex, referenceVerdict, toHex } from '@cityledger/core'
import { verifyCommitCertificate } from '@cityledger/consensus'
import type { Cluster, ClusterNode } from './cluster.ts'
import { waitFor } from './cluster.ts'
import { ASSET, type Ack, type LoadWorld, POLL } from './load.ts'

export interface ChainReport {
  /** Lowest head of the honest nodes, the height up to which chains were compared. */
  lowestHead: number
  acked: number
  /** Acknowledged txs found exactly once, at the acknowledged height, on every honest node. */
  found: number
  /** Per height 1..lowestHead of the first honest node: block time and tx hashes. */
  blocks: { height: number; time: number; txs: string[] }[]
  violations: string[]
}

/** Heights whose blocks are being fetched at once while the chains are compared. */
const FETCH_WINDOW = 8

type BlockView = NonNullable<Awaited<ReturnType<ClusterNode['client']['block']>>>

/** Waits (bounded) until every honest node has every acknowledged height, then compares the chains. */
export async function checkChains(cluster: Cluster, acks: Ack[], timeoutMs = 60_000): Promise<ChainReport> {
  const honest = cluster.honest()
  const violations: string[] = []
  const top = Math.max(0, ...acks.map((a) => a.height))
  try {
    await waitFor(
      `every honest node at height >= ${top}`,
      async () => {
        const hs = await Promise.all(honest.map(async (n) => (await n.client.status()).height))
        return hs.every((h) => h >= top)
      },
      timeoutMs,
    )
  } catch (err) {
    violations.push((err as Error).message)
  }
  const heights = await Promise.all(
    honest.map(async (n) => (await n.client.status().catch(() => undefined))?.height ?? 0),
  )
  const lowestHead = Math.min(...heights)
  const validators = cluster.layout.keys.map((k) => k.publicKey)
  const chainId = cluster.layout.genesis.chainId
  const where = new Map<string, { height: number; count: number }>()
  const seen: ChainReport['blocks'] = []
  // Heights are fetched a window at a time (each one from every node), then compared in order.
  const fetchHeight = (h: number) => Promise.all(honest.map((n) => n.client.block(h)))
  const window = new Map<number, ReturnType<typeof fetchHeight>>()
  for (let h = 1; h <= Math.min(lowestHead, FETCH_WINDOW); h++) window.set(h, fetchHeight(h))
  const verdicts = new Map<string, boolean>()
  for (let h = 1; h <= lowestHead; h++) {
    const blocks = await window.get(h)!
    window.delete(h)
    if (h + FETCH_WINDOW <= lowestHead) window.set(h + FETCH_WINDOW, fetchHeight(h + FETCH_WINDOW))
    const first = blocks[0]
    if (!first) {
      violations.push(`node ${honest[0]!.index} has no block ${h} below its head`)
      continue
    }
    seen.push({ height: h, time: first.header.time, txs: first.txs })
    blocks.forEach((b, k) => {
      const who = `node ${honest[k]!.index}`
      if (!b) {
        violations.push(`${who} has no block ${h}`)
        return
      }
      if (b.hash !== first.hash)
        violations.push(`fork at height ${h}: ${who} has ${b.hash}, node ${honest[0]!.index} ${first.hash}`)
      if (b.header.prevStateRoot !== first.header.prevStateRoot)
        violations.push(`state root before height ${h} differs on ${who}`)
      const v = certificateProblem(b, validators, chainId, verdicts)
      if (v) violations.push(`${who} block ${h}: ${v}`)
    })
    for (const t of first.txs) {
      const w = where.get(t)
      if (w) w.count++
      else where.set(t, { height: h, count: 1 })
    }
  }
  let found = 0
  for (const a of acks) {
    const w = where.get(a.hash)
    if (!w) {
      if (a.height <= lowestHead)
        violations.push(
          `acknowledged tx ${a.hash} (height ${a.height}, via node ${a.via}) is not in the chain`,
        )
      continue
    }
    if (w.count !== 1) violations.push(`tx ${a.hash} is in the chain ${w.count} times`)
    else if (w.height !== a.height)
      violations.push(`tx ${a.hash} acknowledged at height ${a.height}, found at ${w.height}`)
    else found++
  }
  violations.push(...(await checkTxIndex(honest, acks, lowestHead)))
  return { lowestHead, acked: acks.length, found, blocks: seen, violations }
}

/**
 * Every honest node still reports each acknowledged tx as the node that acknowledged it did: same
 * status, same height (a tx index entry is never overwritten, e.g. by a tx included again).
 */
async function checkTxIndex(honest: ClusterNode[], acks: Ack[], lowestHead: number): Promise<string[]> {
  const violations: string[] = []
  const todo = acks.filter((a) => a.height <= lowestHead)
  const checkNode = async (node: ClusterNode) => {
    let next = 0
    const worker = async () => {
      while (next < todo.length) {
        const a = todo[next++]!
        const s = await node.client
          .tx(a.hash)
          .catch((err: Error) => ({ status: `error ${err.message}`, height: -1 }))
        if (s.status !== a.status || s.height !== a.height)
          violations.push(
            `node ${node.index} reports acknowledged tx ${a.hash} (${a.status} at ${a.height}) as ${s.status} at ${s.height}`,
          )
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
  }
  await Promise.all(honest.map(checkNode))
  return violations.slice(0, 20).concat(violations.length > 20 ? [`... ${violations.length - 20} more`] : [])
}

/**
 * Block times against real time: a block's time is never more than `driftMs` ahead of the real time
 * at which it committed (bounded above by the earliest acknowledgement at its height or later; the
 * harness's clock is the real one), and times never go back.
 */
export function checkBlockTimes(blocks: ChainReport['blocks'], acks: Ack[], driftMs: number): string[] {
  const violations: string[] = []
  const byHeight = [...acks].sort((a, b) => b.height - a.height)
  let committedBy = Date.now()
  let k = 0
  // From the top down: committedBy(h) = min over acks at heights >= h of the ack's time.
  for (let i = blocks.length - 1; i >= 0; i--) {
    const b = blocks[i]!
    while (k < byHeight.length && byHeight[k]!.height >= b.height)
      committedBy = Math.min(committedBy, byHeight[k++]!.at)
    if (b.time > committedBy + driftMs)
      violations.push(
        `block ${b.height} has time ${b.time} (${new Date(b.time).toISOString()}), ${b.time - committedBy} ms ahead of the real time it committed by (bound ${driftMs} ms)`,
      )
    const prev = blocks[i - 1]
    if (prev && b.time < prev.time)
      violations.push(`block ${b.height}'s time is before block ${prev.height}'s`)
  }
  return violations.slice(0, 10).concat(violations.length > 10 ? [`... ${violations.length - 10} more`] : [])
}

/** The kinds of tx the open-loop load sends (the setup and the final probe are not load). */
export const LOAD_KINDS: ReadonlySet<Ack['kind']> = new Set(['subject', 'transfer', 'ballot', 'large'])

/**
 * Phases: `bounds[k]` is the highest honest head when phase k started (the load's start, then each
 * fault's injection); phase k ends where phase k+1 starts, the last at `end`. Each phase must commit
 * at least one load tx (acknowledged at a height inside it), so a run that commits nothing, or only
 * its setup, fails.
 */
export function checkPhases(phases: { name: string; from: number }[], end: number, acks: Ack[]): string[] {
  const violations: string[] = []
  const load = acks.filter((a) => LOAD_KINDS.has(a.kind))
  for (const [k, p] of phases.entries()) {
    const to = phases[k + 1]?.from ?? end
    const n = load.filter((a) => a.height > p.from && a.height <= to).length
    if (n === 0) violations.push(`phase ${p.name} (heights ${p.from + 1}..${to}): no load tx committed`)
  }
  return violations
}

/** Certificates may carry different 2f+1 subsets on different nodes; each must be valid for its block. */
function certificateProblem(
  b: BlockView,
  validators: Uint8Array[],
  chainId: string,
  verdicts: Map<string, boolean>,
): string | undefined {
  const c = b.certificate
  if (!c) return 'no certificate'
  if (c.height !== b.header.height) return `certificate for height ${c.height}`
  const nullBlock = /^0+$/.test(c.blockHash)
  if (!nullBlock && c.blockHash !== b.hash) return `certificate for block ${c.blockHash}`
  const verdict = verifyCommitCertificate(
    {
      chainId: c.chainId,
      view: c.view,
      height: c.height,
      blockHash: fromHex(c.blockHash),
      signatures: c.signatures.map((s) => ({
        validator: fromHex(s.validator),
        signature: fromHex(s.signature),
      })),
    },
    validators,
    chainId,
    // Nodes hold the same signatures in their certificates: each is checked once.
    (check) => {
      const key = `${toHex(check.publicKey)}${toHex(check.signature)}${toHex(check.message)}`
      let ok = verdicts.get(key)
      if (ok === undefined) verdicts.set(key, (ok = referenceVerdict(check)))
      return ok
    },
  )
  return verdict.ok ? undefined : `invalid certificate (${verdict.code})`
}

/**
 * Token supply conserved on every honest node: minted - burned = sum of the balances of every holder
 * (the load's accounts are the only holders) + held, and no balance negative.
 */
export async function checkInvariants(
  cluster: Cluster,
  world: LoadWorld,
  acks: Ack[] = [],
): Promise<string[]> {
  const violations: string[] = []
  const hex = (k: Uint8Array) => Buffer.from(k).toString('hex')
  violations.push(...(await checkBallots(cluster, world, acks)))
  for (const node of cluster.honest()) {
    // Read at one height: retry while blocks commit between the queries.
    for (let attempt = 0; ; attempt++) {
      const found: string[] = []
      const q = await node.client.query('token', 'supply', { asset: ASSET })
      const sup = q.value as { minted: number; burned: number; held: number }
      const heights = new Set([q.height])
      let sum = 0
      for (const a of world.accounts) {
        const r = await node.client.query('token', 'balance', { asset: ASSET, owner: hex(a.key.publicKey) })
        heights.add(r.height)
        const bal = r.value as number
        if (!(bal >= 0)) found.push(`node ${node.index}: negative balance ${bal}`)
        sum += bal
      }
      if (heights.size > 1 && attempt < 10) {
        await new Promise((r) => setTimeout(r, 300))
        continue
      }
      if (sup.minted - sup.burned !== sum + sup.held)
        found.push(
          `node ${node.index}: supply not conserved (minted ${sup.minted} - burned ${sup.burned} != balances ${sum} + held ${sup.held})`,
        )
      violations.push(...found)
      break
    }
  }
  return violations
}

/**
 * One counted ballot per voter, on every honest node: no voter has two accepted ballots among the
 * acknowledgements, every voter whose ballot was acknowledged as accepted has voted, the poll counts
 * no more ballots than voters who voted, and its counts add up to its ballots.
 */
async function checkBallots(cluster: Cluster, world: LoadWorld, acks: Ack[]): Promise<string[]> {
  const violations: string[] = []
  const accepted = new Map<number, number>()
  for (const a of acks) {
    if (a.kind !== 'ballot' || a.status !== 'committed' || a.voter === undefined) continue
    accepted.set(a.voter, (accepted.get(a.voter) ?? 0) + 1)
  }
  for (const [voter, n] of accepted) if (n > 1) violations.push(`voter ${voter}: ${n} ballots accepted`)
  const cast = acks.filter((a) => a.kind === 'ballot').length
  if (world.voters.length && !cast) violations.push('no ballot was cast (acknowledged) during the run')
  else if (world.voters.length && !accepted.size) violations.push(`${cast} ballots cast, none accepted`)
  for (const node of cluster.honest()) {
    const r = (await node.client.query('voting', 'results', { pollId: POLL })).value as {
      counts: number[]
      ballots: number
    } | null
    if (!r) {
      violations.push(`node ${node.index}: poll ${POLL} missing`)
      continue
    }
    let voted = 0
    for (const [i, v] of world.voters.entries()) {
      const has = (
        await node.client.query('voting', 'hasVoted', {
          pollId: POLL,
          voter: Buffer.from(v.key.publicKey).toString('hex'),
        })
      ).value
      if (has) voted++
      if (accepted.has(i) && !has)
        violations.push(`node ${node.index}: voter ${i}'s accepted ballot is not recorded`)
    }
    const sum = r.counts.reduce((a, b) => a + b, 0)
    if (sum !== r.ballots)
      violations.push(`node ${node.index}: counts add up to ${sum}, ballots ${r.ballots}`)
    if (r.ballots !== voted)
      violations.push(`node ${node.index}: ${r.ballots} ballots counted, ${voted} voters voted`)
    if (r.ballots < accepted.size)
      violations.push(
        `node ${node.index}: ${r.ballots} ballots counted, ${accepted.size} acknowledged as accepted`,
      )
  }
  return violations
}

/** Time from `since` until a fresh tx commits through an honest live node (the network makes progress again). */
export async function measureRecovery(
  probe: () => Promise<Ack | undefined>,
  since: number,
  boundMs: number,
): Promise<{ ms: number; violation?: string }> {
  const ack = await Promise.race([
    probe(),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), boundMs).unref()),
  ])
  const ms = Date.now() - since
  return ack ? { ms } : { ms, violation: `no commit within ${boundMs} ms after the last fault healed` }
}
