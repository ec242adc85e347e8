import { type SignatureCheck, equalBytes, toHex } from '@cityledger/core'
import { verifyCommitCertificate } from '../certificate.ts'
import type { Output } from '../replica/types.ts'
import { simBlockDigest, simValidate } from './blocks.ts'
import { decodeShared } from './decodeCache.ts'
import type { ViolationKind } from './types.ts'

/** What the checks need to know of a simulated node. */
export interface CheckedNode {
  id: number
  validator: number
  honest: boolean
  /** Blocks the node persisted, in height order. */
  stored: number
}

export interface OutputChecksOptions {
  chainId: string
  validators: Uint8Array[]
  verify: (c: SignatureCheck) => boolean
  retransmitMs: number
  scenario: () => string
  report: (kind: ViolationKind, message: string) => void
  count: (kind: string) => void
}

type Commit = Extract<Output, { type: 'commit' }>
type Reject = Extract<Output, { type: 'reject' }>

/**
 * The per-output properties: agreement (on what the node stores), integrity, certificates, honest
 * equivocation and penalties, amplification. `report` records a violation.
 */
export class OutputChecks {
  private readonly committed = new Map<number, string>()
  private readonly nullViews = new Map<number, Set<number>>()
  /** Times each honest node answered each validator's STATUS (recent ones). */
  private readonly statusAnswers = new Map<string, number[]>()

  private readonly o: OutputChecksOptions

  constructor(o: OutputChecksOptions) {
    this.o = o
  }

  /** The identity of what the node stores at a height: the block, or the null filler it builds. */
  private storedIdentity(c: Commit): string {
    // packages/node/src/node/nullBlock.ts: the node stores one canonical null block per height (view 0,
    // the parent's time + 1), whatever the view of the certificate that committed it, so two honest
    // nodes holding null certificates of different views for a height store the same block (counted
    // as `nullFillerViewsDiffer`). Both certify the null digest.
    return c.isNull ? 'null filler' : toHex(c.digest)
  }

  /** Returns false when the commit is out of order (the node must not store it). */
  commit(node: CheckedNode, c: Commit): boolean {
    const h = c.height
    const report = this.o.report
    if (h !== node.stored + 1) {
      report('integrity', `node ${node.id} committed height ${h} after ${node.stored}`)
      return false
    }
    if (!c.isNull && !simValidate(c.block, h))
      report('integrity', `node ${node.id} committed an invalid block at ${h}`)
    if (c.isNull !== equalBytes(c.digest, new Uint8Array(32)))
      report('integrity', `node ${node.id}: null flag mismatch at ${h}`)
    if (!c.isNull && !equalBytes(simBlockDigest(c.block), c.digest))
      report('integrity', `node ${node.id}: block does not match digest at ${h}`)
    const cert = verifyCommitCertificate(c.certificate, this.o.validators, this.o.chainId, this.o.verify)
    if (!cert.ok) report('certificate', `node ${node.id} height ${h}: ${cert.code} ${cert.detail ?? ''}`)
    else if (c.certificate.height !== h || !equalBytes(c.certificate.blockHash, c.digest))
      report('certificate', `node ${node.id} height ${h}: certificate for another block`)
    if (c.isNull) this.countNullFiller(h, c.view)
    const id = this.storedIdentity(c)
    const prev = this.committed.get(h)
    if (prev === undefined) this.committed.set(h, id)
    else if (prev !== id)
      report(
        'agreement',
        `height ${h}: node ${node.id} stores ${id.slice(0, 24)}, another honest node ${prev.slice(0, 24)} (${this.o.scenario()})`,
      )
    return true
  }

  /** Null fillers committed by honest replicas, and heights where they did so under certificates of different views. */
  private countNullFiller(height: number, view: number): void {
    this.o.count('nullFillers')
    const views = this.nullViews.get(height) ?? new Set<number>()
    if (views.size && !views.has(view)) this.o.count('nullFillerViewsDiffer')
    views.add(view)
    this.nullViews.set(height, views)
  }

  /** A penalty on an honest replica: blamed = the offender's nodes, or the node the bytes came from. */
  reject(node: CheckedNode, r: Reject, blamed: CheckedNode[]): void {
    if (!r.penalize || !node.honest) return
    if (blamed.length && blamed.every((x) => x.honest)) {
      // An honest replica caught signing two conflicting messages is a safety failure in itself.
      this.o.report(
        r.code === 'EQUIVOCATION' ? 'equivocation' : 'penalizedHonest',
        `node ${node.id} penalised honest ${r.offender !== undefined ? `validator ${r.offender}` : `node ${r.from}`}: ${r.code} ${r.reason}`,
      )
    }
  }

  /**
   * Amplification: a refused message that the sender is penalised for must get no answer at all; and a
   * replica answers one peer's STATUS at most 3 times per retransmission period (an honest laggard sends
   * one per period, network delays may bunch a few; replayed or duplicated copies must not each get the
   * whole window again).
   */
  answer(node: CheckedNode, bytes: Uint8Array, outputs: Output[], now: number): void {
    const sends = outputs.filter((x) => x.type === 'send' || x.type === 'broadcast')
    if (!sends.length) return
    const refused = outputs.find((x): x is Reject => x.type === 'reject' && x.penalize)
    if (refused) {
      const kinds = sends.map((x) => (x.type === 'send' || x.type === 'broadcast' ? x.kind : ''))
      this.o.report(
        'amplification',
        `node ${node.id} refused a ${refused.kind ?? 'message'} (${refused.code}: ${refused.reason}) and still sent ${sends.length} message(s) (${kinds.join(',')})`,
      )
      return
    }
    if (bytes.length > 512) return
    const m = decodeShared(bytes)
    if (m?.type !== 'status') return
    const who = this.o.validators.findIndex((k) => equalBytes(k, m.body.validator))
    const key = `${node.id}/${who}`
    const times = (this.statusAnswers.get(key) ?? []).filter((t) => t > now - this.o.retransmitMs)
    times.push(now)
    this.statusAnswers.set(key, times)
    if (times.length > 3)
      this.o.report(
        'amplification',
        `node ${node.id} answered ${times.length} STATUS of validator ${who} within ${this.o.retransmitMs} ms (${sends.length} message(s) this time; ${this.o.scenario()})`,
      )
  }
}
