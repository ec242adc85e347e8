import {
  type BlockContext,
  type Infer,
  type QueryContext,
  type ReadonlyStateView,
  type ServiceDefinition,
  type TxContext,
  type Value,
  ServiceError,
  defineService,
  ensure,
  equalBytes,
  s,
} from '@cityledger/core'
import { parse, refuseRevokedSigners } from './common.ts'
import { parseGenesis } from './governance/genesis.ts'
import {
  MAX_OPEN_PROPOSALS,
  PARAMETERS,
  PAYLOADS,
  type MembershipPayload,
  type ParametersPayload,
  type ProposalKind,
  type UpgradePayload,
  type ValidatorChange,
  applyValidatorChanges,
  checkMembership,
  checkParameters,
  timelineAppend,
  timelineEntry,
  timelineLast,
  timelineLength,
} from './governance/rules.ts'
import {
  MAX_UPGRADED_SERVICES,
  type Meta,
  type ProposalRecord,
  type Rec,
  type UpgradeRecord,
  VSET,
  getProposal,
  isMember,
  lastValidatorSet,
  meta,
  pad,
  paramTimeline,
  parameterAt,
  pendingUpgrades,
  propKey,
  statusAt,
  upgradeTimeline,
  upgradedServices,
  upgradesAt,
  validatorSetAt,
} from './governance/state.ts'

export type { GovernanceGenesis } from './governance/genesis.ts'
export type { ProposalRecord, ProposalStatus, UpgradeRecord } from './governance/state.ts'
export { parameterAt } from './governance/state.ts'

/**
 * governance: the governing agencies (members, by public key) decide, k of n, on validator-set changes,
 * service upgrades, parameter changes and on their own membership and threshold.
 *
 * Rules (each refusal has its code; test/base-governance.test.ts):
 * - Only a current member proposes or approves (NOT_MEMBER); proposing counts as the proposer's approval;
 *   one approval per member per proposal (ALREADY_APPROVED).
 * - A proposal is open through height `expiresAt` (inclusive): expiresAt in (height, height +
 *   governance.maxProposalLifetime] (BAD_EXPIRY). Approvals above it are refused (PROPOSAL_EXPIRED); the
 *   end-of-block hook marks it expired and emits `expired`.
 * - It executes exactly once, in the tx whose approval reaches the threshold, after its payload is checked
 *   again against the state of that moment (the approval fails with the payload's error otherwise, and
 *   the proposal stays open until it expires).
 * - Validator, upgrade and parameter proposals take effect at `activationHeight` >= expiresAt +
 *   governance.minActivationDelay (checked at creation, and >= height + the delay again at execution), so
 *   a decision is always known at least that many blocks before it applies (BAD_ACTIVATION). Each
 *   timeline only moves forward: a validator change activates after every executed one, a parameter
 *   after that parameter's last change, an upgrade only when its service has none pending
 *   (UPGRADE_PENDING).
 * - A membership change (kind 'governance') has no activation height: it applies when it executes, and
 *   it cancels every other open proposal (their approvals were counted under the old membership; they
 *   must be proposed again). So every executed proposal had >= k approvals from the members, and k, of
 *   the membership it was created under.
 * - A revoked key (identity) loses its governance powers too (KEY_REVOKED), like every other power.
 *
 * State layout (no prefix listings: every read is one key, so any state backend serves it):
 *   meta                    -> { epoch, members, threshold, nextId, open: [{ id, expiresAt }] }
 *   epoch/<epoch:8>         -> { members, threshold, since }      every membership, for audits
 *   prop/<id:12>            -> ProposalRecord
 *   vset/<seq:8>, vset/n    -> timeline of validator sets (value: the whole set), seq 0 = genesis
 *   param/<name>/<seq:8>, param/<name>/n -> timeline of one parameter (no entries: the table's default)
 *   upg/<service>/<seq:8>, upg/<service>/n -> timeline of a service's upgrades (value: UpgradeRecord)
 *   upgraded                -> the services with upgrades, in order of their first
 */

/** Error codes of governance. */
export type GovernanceErrorCode =
  | 'UNAUTHORIZED'
  | 'BAD_ARGS'
  | 'BAD_GENESIS'
  | 'KEY_REVOKED'
  | 'NOT_MEMBER'
  | 'NO_SUCH_PROPOSAL'
  | 'ALREADY_APPROVED'
  | 'PROPOSAL_EXPIRED'
  | 'PROPOSAL_EXECUTED'
  | 'PROPOSAL_CANCELLED'
  | 'TOO_MANY_OPEN'
  | 'BAD_EXPIRY'
  | 'BAD_ACTIVATION'
  | 'DUPLICATE_MEMBER'
  | 'BAD_THRESHOLD'
  | 'DUPLICATE_VALIDATOR'
  | 'NO_SUCH_VALIDATOR'
  | 'TOO_FEW_VALIDATORS'
  | 'TOO_MANY_VALIDATORS'
  | 'UNKNOWN_PARAMETER'
  | 'PARAMETER_OUT_OF_RANGE'
  | 'DUPLICATE_PARAMETER'
  | 'UPGRADE_PENDING'
  | 'TOO_MANY_SERVICES'

/** At most this many proposals expire per block (the rest the next block: approvals check the height). */
const EXPIRIES_PER_BLOCK = 32

const args = {
  propose: s.object({
    kind: s.literal('validators', 'upgrade', 'parameters', 'governance'),
    payload: s.any(),
    expiresAt: s.uint({ min: 1 }),
    activationHeight: s.optional(s.uint({ min: 1 })),
  }),
  approve: s.object({ id: s.uint() }),
  id: s.object({ id: s.uint() }),
  height: s.object({ height: s.uint() }),
  optHeight: s.object({ height: s.optional(s.uint()) }),
  none: s.object({}),
  parameter: s.object({ name: s.string({ min: 1, max: 64 }) }),
}

/**
 * Checks a proposal's payload and activation height against the state now. Runs at creation and again
 * at execution (other proposals may have executed in between). Returns the parsed payload.
 */
function checkProposal(
  ctx: TxContext,
  kind: ProposalKind,
  rawPayload: Value,
  expiresAt: number,
  activation: number | null,
): Value {
  const delay = parameterAt(ctx.state, 'governance.minActivationDelay', ctx.height)
  if (kind === 'governance') {
    ensure(
      activation === null,
      'BAD_ACTIVATION',
      'a membership change applies when it executes: no activationHeight',
    )
    const p = PAYLOADS.governance.parse(rawPayload, 'args.payload') as MembershipPayload
    checkMembership(p.members, p.threshold, 'payload.members', 'BAD_ARGS')
    return p as unknown as Value
  }
  ensure(activation !== null, 'BAD_ACTIVATION', `a ${kind} proposal needs an activationHeight`)
  ensure(
    activation >= expiresAt + delay && activation >= ctx.height + delay,
    'BAD_ACTIVATION',
    `activationHeight ${activation} must be at least expiresAt (${expiresAt}) + governance.minActivationDelay (${delay})`,
    { activationHeight: activation, expiresAt, minActivationDelay: delay },
  )
  if (kind === 'validators') {
    ensure(
      typeof ctx.scheduleValidators === 'function',
      'NO_VALIDATOR_AUTHORITY',
      "this chain's genesis does not name governance as _sys.validatorAuthority: validator changes cannot be scheduled on chain",
    )
    const p = PAYLOADS.validators.parse(rawPayload, 'args.payload')
    const last = timelineLast(ctx.state, VSET)
    ensure(
      !last || activation > last.activationHeight,
      'BAD_ACTIVATION',
      `validator changes activate in order: after ${last?.activationHeight}, the last scheduled one`,
    )
    applyValidatorChanges(lastValidatorSet(ctx.state), p.changes as ValidatorChange[])
    return p as unknown as Value
  }
  if (kind === 'upgrade') {
    ensure(
      typeof ctx.scheduleUpgrade === 'function',
      'NO_UPGRADE_AUTHORITY',
      "this chain's genesis does not name governance as _sys.upgradeAuthority: upgrades cannot be scheduled on chain",
    )
    const p = PAYLOADS.upgrade.parse(rawPayload, 'args.payload') as UpgradePayload
    const last = timelineLast(ctx.state, upgradeTimeline(p.service))?.activationHeight
    ensure(
      last === undefined || last <= ctx.height,
      'UPGRADE_PENDING',
      `${p.service} already has an upgrade scheduled at height ${last}`,
      { service: p.service, activationHeight: last },
    )
    const known = upgradedServices(ctx.state)
    ensure(
      known.includes(p.service) || known.length < MAX_UPGRADED_SERVICES,
      'TOO_MANY_SERVICES',
      `upgrades name at most ${MAX_UPGRADED_SERVICES} services`,
    )
    return p as unknown as Value
  }
  const p = PAYLOADS.parameters.parse(rawPayload, 'args.payload') as ParametersPayload
  checkParameters(p)
  for (const c of p.changes) {
    const last = timelineLast(ctx.state, paramTimeline(c.name))
    ensure(
      !last || activation > last.activationHeight,
      'BAD_ACTIVATION',
      `${c.name} already changes at height ${last?.activationHeight}: a new change activates after it`,
    )
  }
  return p as unknown as Value
}

/** Applies an executed proposal. The payload was checked in this same tx. */
function execute(ctx: TxContext, p: ProposalRecord, m: Meta): void {
  const at = p.activationHeight ?? ctx.height
  if (p.kind === 'validators') {
    const changes = (p.payload as { changes: ValidatorChange[] }).changes
    const set = applyValidatorChanges(lastValidatorSet(ctx.state), changes)
    // The runtime's record, which consensus follows (at its first checkpoint boundary from `at`).
    ctx.scheduleValidators!(set as Uint8Array[], at)
    timelineAppend(ctx.state, VSET, { activationHeight: at, value: set, proposal: p.id })
  } else if (p.kind === 'upgrade') {
    const u = p.payload as unknown as UpgradePayload
    // The runtime's own schedule: from `at` on, a node without this version of the service stops.
    ctx.scheduleUpgrade!(u.service, u.version, at)
    const rec: UpgradeRecord = { ...u, activationHeight: at, proposal: p.id }
    const known = upgradedServices(ctx.state)
    if (!known.includes(u.service)) ctx.state.set('upgraded', [...known, u.service])
    timelineAppend(ctx.state, upgradeTimeline(u.service), {
      activationHeight: at,
      value: rec as unknown as Rec,
      proposal: p.id,
    })
  } else if (p.kind === 'parameters') {
    for (const c of (p.payload as unknown as ParametersPayload).changes)
      timelineAppend(ctx.state, paramTimeline(c.name), {
        activationHeight: at,
        value: c.value,
        proposal: p.id,
      })
  } else {
    changeMembership(ctx, p, m)
  }
}

/** A new membership: cancels every other open proposal (see the rules above). */
function changeMembership(ctx: TxContext, p: ProposalRecord, m: Meta): void {
  const next = p.payload as unknown as MembershipPayload
  const cancelled: number[] = []
  // p itself has left `open` already.
  for (const { id } of m.open) {
    const other = getProposal(ctx.state, id)
    ctx.state.set(propKey(id), { ...other, status: 'cancelled', closedAt: ctx.height } as unknown as Rec)
    cancelled.push(id)
  }
  m.epoch += 1
  m.members = next.members
  m.threshold = next.threshold
  m.open = []
  ctx.state.set(`epoch/${pad(m.epoch, 8)}`, {
    members: next.members,
    threshold: next.threshold,
    since: ctx.height,
  })
  ctx.emit('membershipChanged', {
    epoch: m.epoch,
    members: next.members,
    threshold: next.threshold,
    cancelled,
  })
}

function propose(ctx: TxContext, a: Infer<typeof args.propose>): Value {
  const m = meta(ctx.state)
  ensure(
    m.open.length < MAX_OPEN_PROPOSALS,
    'TOO_MANY_OPEN',
    `${MAX_OPEN_PROPOSALS} proposals are open already`,
  )
  const lifetime = parameterAt(ctx.state, 'governance.maxProposalLifetime', ctx.height)
  ensure(
    a.expiresAt > ctx.height && a.expiresAt <= ctx.height + lifetime,
    'BAD_EXPIRY',
    `expiresAt must be ${ctx.height + 1}..${ctx.height + lifetime}, not ${a.expiresAt}`,
    { expiresAt: a.expiresAt, height: ctx.height, maxProposalLifetime: lifetime },
  )
  const activation = a.activationHeight ?? null
  const payload = checkProposal(ctx, a.kind, a.payload, a.expiresAt, activation)
  const p: ProposalRecord = {
    id: m.nextId,
    kind: a.kind,
    payload,
    proposer: ctx.signer,
    epoch: m.epoch,
    createdAt: ctx.height,
    expiresAt: a.expiresAt,
    activationHeight: activation,
    approvals: [],
    status: 'open',
    closedAt: null,
  }
  m.nextId += 1
  m.open.push({ id: p.id, expiresAt: p.expiresAt })
  ctx.emit('created', {
    id: p.id,
    kind: p.kind,
    proposer: ctx.signer,
    expiresAt: p.expiresAt,
    activationHeight: activation,
  })
  approveAs(ctx, p, m)
  return p.id
}

/** Records the signer's approval and executes when it reaches the threshold; writes meta and the proposal. */
function approveAs(ctx: TxContext, p: ProposalRecord, m: Meta): void {
  p.approvals.push(ctx.signer)
  ctx.emit('approved', { id: p.id, by: ctx.signer, approvals: p.approvals.length, threshold: m.threshold })
  if (p.approvals.length >= m.threshold) {
    // Checked again: other proposals may have executed since this one was made.
    checkProposal(ctx, p.kind, p.payload, p.expiresAt, p.activationHeight)
    p.status = 'executed'
    p.closedAt = ctx.height
    m.open = m.open.filter((o) => o.id !== p.id)
    ctx.emit('executed', { id: p.id, kind: p.kind, activationHeight: p.activationHeight ?? ctx.height })
    execute(ctx, p, m)
  }
  ctx.state.set(propKey(p.id), p as unknown as Rec)
  ctx.state.set('meta', m as unknown as Rec)
}

function approve(ctx: TxContext, id: number): void {
  const p = getProposal(ctx.state, id)
  const m = meta(ctx.state)
  ensure(p.status !== 'executed', 'PROPOSAL_EXECUTED', `proposal ${id} was executed at ${p.closedAt}`)
  ensure(
    p.status !== 'cancelled' && p.epoch === m.epoch,
    'PROPOSAL_CANCELLED',
    `proposal ${id} was cancelled by a membership change`,
  )
  ensure(statusAt(p, ctx.height) === 'open', 'PROPOSAL_EXPIRED', `proposal ${id} expired at ${p.expiresAt}`, {
    expiresAt: p.expiresAt,
  })
  ensure(
    !p.approvals.some((k) => equalBytes(k, ctx.signer)),
    'ALREADY_APPROVED',
    `${ctx.signerHex} already approved proposal ${id}`,
  )
  approveAs(ctx, p, m)
}

/**
 * Marks open proposals whose expiry has passed, at most EXPIRIES_PER_BLOCK a block (the rest the next
 * block; approvals check the height themselves). One read when nothing is due.
 */
function expire(ctx: BlockContext): void {
  const due = meta(ctx.state)
    .open.filter((o) => o.expiresAt <= ctx.height)
    .slice(0, EXPIRIES_PER_BLOCK)
  for (const { id } of due) {
    ctx.attempt(`proposal ${id}`, () => {
      const p = getProposal(ctx.state, id)
      const m = meta(ctx.state)
      ctx.state.set(propKey(id), { ...p, status: 'expired', closedAt: ctx.height } as unknown as Rec)
      ctx.state.set('meta', { ...m, open: m.open.filter((o) => o.id !== id) } as unknown as Rec)
      ctx.emit('expired', { id, expiresAt: p.expiresAt, approvals: p.approvals.length })
    })
  }
}

const memberAuth = (ctx: { signer: Uint8Array; state: ReadonlyStateView }) => {
  if (!isMember(meta(ctx.state), ctx.signer))
    throw new ServiceError('NOT_MEMBER', 'only a governing member proposes or approves')
  return true
}

const proposalView = (p: ProposalRecord, height: number): Value =>
  ({ ...p, status: statusAt(p, height) }) as unknown as Value

/** The governance service; one of `baseServices`, so every node runs it (dormant without a genesis section). */
export const governance: ServiceDefinition = refuseRevokedSigners(
  defineService({
    name: 'governance',
    version: '1.0.0',
    dependencies: ['identity'],
    methods: {
      propose: {
        doc: "Proposes a change (kind, payload, expiresAt, activationHeight); counts as the proposer's approval. Members only.",
        args: args.propose,
        auth: memberAuth,
        handler: (ctx, a) => propose(ctx, a),
      },
      approve: {
        doc: 'Approves an open proposal; the approval that reaches the threshold executes it. Members only.',
        args: args.approve,
        auth: memberAuth,
        handler: (ctx, a) => approve(ctx, a.id),
      },
    },
    exports: {
      /** A parameter's value at this height (UNKNOWN_PARAMETER for a name outside the table). */
      parameter(ctx: TxContext, raw: Value): Value {
        return parameterAt(ctx.state, parse(args.parameter, raw).name, ctx.height)
      },
      /** The validator set in effect at a height. */
      validatorSetAt(ctx: TxContext, raw: Value): Value {
        return validatorSetAt(ctx.state, parse(args.height, raw).height)
      },
    },
    queries: {
      proposal: {
        doc: 'A proposal with its status at the queried height (open, executed, expired, cancelled).',
        args: args.id,
        handler: (q: QueryContext, a) => proposalView(getProposal(q.state, a.id), q.height),
      },
      membership: {
        doc: '{ epoch, members, threshold, open }: the current governing members and k.',
        args: args.none,
        handler: (q: QueryContext) => {
          const m = meta(q.state)
          return { epoch: m.epoch, members: m.members, threshold: m.threshold, open: m.open.length }
        },
      },
      validatorSetAt: {
        doc: 'The validator set in effect at a height: the genesis set plus the executed changes activated by then.',
        args: args.height,
        handler: (q: QueryContext, a) => validatorSetAt(q.state, a.height),
      },
      pendingValidatorChanges: {
        doc: 'Executed validator-set changes not active yet: [{ activationHeight, set, proposal }].',
        args: args.none,
        handler: (q: QueryContext) => {
          const out: Value[] = []
          for (let i = timelineLength(q.state, VSET) - 1; i >= 0; i--) {
            const e = timelineEntry(q.state, VSET, i)
            if (e.activationHeight <= q.height) break
            out.unshift({ activationHeight: e.activationHeight, set: e.value, proposal: e.proposal })
          }
          return out
        },
      },
      upgradesAt: {
        doc: 'The upgrades that activate at exactly this height.',
        args: args.height,
        handler: (q: QueryContext, a) => upgradesAt(q.state, a.height),
      },
      pendingUpgrades: {
        doc: 'Executed upgrades that activate above the queried height, earliest first.',
        args: args.none,
        handler: (q: QueryContext) => pendingUpgrades(q.state, q.height),
      },
      parameters: {
        doc: 'Every parameter of the table and its value at a height (default: the queried height).',
        args: args.optHeight,
        handler: (q: QueryContext, a) => {
          const h = a.height ?? q.height
          const out: Rec = {}
          for (const name of Object.keys(PARAMETERS)) out[name] = parameterAt(q.state, name, h)
          return out
        },
      },
      parameterTable: {
        doc: 'The settable parameters with their ranges and defaults.',
        args: args.none,
        handler: () => PARAMETERS as unknown as Value,
      },
    },
    genesis(ctx: BlockContext, config: Value | undefined) {
      // No section: governance is dormant (no members, so nobody can propose) and the set is empty.
      const g = parseGenesis(config)
      if (!g) return
      const m: Meta = { epoch: 0, members: g.members, threshold: g.threshold, nextId: 0, open: [] }
      ctx.state.set('meta', m as unknown as Rec)
      ctx.state.set(`epoch/${pad(0, 8)}`, { members: g.members, threshold: g.threshold, since: 0 })
      ctx.state.set(`${VSET}${pad(0, 8)}`, { activationHeight: 0, value: g.validators, proposal: null })
      ctx.state.set(`${VSET}n`, 1)
      for (const [name, value] of g.parameters)
        timelineAppend(ctx.state, paramTimeline(name), { activationHeight: 0, value, proposal: null })
    },
    endBlock: expire,
  }),
)
