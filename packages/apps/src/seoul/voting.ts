import {
  method,
  query,
  type TxContext,
  type Value,
  ServiceError,
  concatBytes,
  defineService,
  ensure,
  s,
  sha256,
  toHex,
  utf8,
} from '@cityledger/core'
import { refuseRevokedSigners } from '../base/common.ts'

/**
 * Seoul service 1: Democracy Seoul / m-Voting. Advisory polls and petitions, never binding elections.
 *
 * A poll has an electorate (a list of pseudonymous voter keys; every holder of an identity role granted
 * before the poll opened and still held at the ballot; or every citizen enrolled in scope 'voting' before
 * it opened: the electorate never grows while a poll is open), options, and phases fixed by height:
 *   draft (height < openAt) -> open (openAt <= height < closeAt) -> closed (height >= closeAt) -> tallied.
 * Options, electorate and schedule can change only in draft. One counted ballot per voter: the
 * nullifier hash(pollId, voter) is kept in state and a second ballot is REFUSED ('ALREADY_VOTED'),
 * never replaces the first. The tally is the per-option count of ballots, fixed by `tally`.
 * Petitions have one option ('support'); at `petitionDebate` ballots (default 100) the service emits
 * `debate` and at `petitionMayorAnswer` (default 1,000) `mayorAnswer`, each once. The thresholds are
 * parameters (genesis, then `setParams` by ('voting','admin')), copied into each petition at creation.
 * Organisers create polls and petitions; a citizen enrolled in 'voting' starts a petition open to every
 * enrolled citizen (Democracy Seoul's proposals).
 *
 * State (namespace `voting/`):
 * - `params`                    -> {@link VotingParams}
 * - `poll/<pollId>`             -> {@link PollRecord} (counts are updated with every ballot)
 * - `voter/<pollId>/<keyHex>`   -> true, for list electorates
 * - `ballot/<nullifierHex>`     -> { pollId, option, height }: the nullifier set and the ballots in one
 */

export type PollPhase = 'draft' | 'open' | 'closed' | 'tallied'
export type PollMode = 'poll' | 'petition'

/** Error codes of the voting service (besides the runtime's UNAUTHORIZED and BAD_ARGS). */
export type VotingErrorCode =
  | 'ALREADY_EXISTS'
  | 'NOT_FOUND'
  | 'BAD_SCHEDULE'
  | 'BAD_OPTIONS'
  | 'BAD_ELECTORATE'
  | 'FROZEN'
  | 'NOT_OPEN'
  | 'NOT_CLOSED'
  | 'ALREADY_TALLIED'
  | 'NOT_ELIGIBLE'
  | 'ALREADY_VOTED'
  | 'BAD_OPTION'
  | 'NOT_CREATOR'
  | 'BAD_PARAMS'
  | 'BAD_GENESIS'

/** Default petition thresholds (ballots); the chain's are parameters ({@link VotingParams}). */
export const PETITION_DEBATE = 100
export const PETITION_MAYOR_ANSWER = 1000

/** The voting parameters (genesis `voting: { petitionDebate, petitionMayorAnswer }`, then `setParams`). */
export interface VotingParams {
  [k: string]: Value
  petitionDebate: number
  petitionMayorAnswer: number
}
export const MAX_OPTIONS = 32

/** Who may vote: a fixed list (size counts the keys) or every holder of (scope, role). */
export type Electorate =
  | { kind: 'list'; size: number }
  | { kind: 'role'; scope: string; role: string }
  | { kind: 'enrolled' }

/** One poll or petition as stored. */
export interface PollRecord {
  [k: string]: Value
  creator: Uint8Array
  mode: PollMode
  title: string
  /** Commitment (hash) of the full published question text. */
  question: Uint8Array
  options: string[]
  electorate: Electorate
  openAt: number
  closeAt: number
  /** Ballots per option, live. */
  counts: number[]
  ballots: number
  /** Counts fixed by `tally`, or null before. */
  tally: number[] | null
  talliedAt: number | null
  /** Heights at which the petition thresholds were reached, or null. */
  debateAt: number | null
  mayorAnswerAt: number | null
  /** Petition thresholds, fixed at creation. */
  petitionDebate: number
  petitionMayorAnswer: number
}

const SCOPE = 'voting'
const ORGANIZER = 'organizer'
const NULLIFIER_DOMAIN = utf8.encode('cityledger/voting/nullifier/v1')

/** The nullifier of `voter` in `pollId`: SHA-256(domain 0x00 pollId 0x00 voter). */
export function nullifierOf(pollId: string, voter: Uint8Array): Uint8Array {
  return sha256(
    concatBytes(NULLIFIER_DOMAIN, new Uint8Array([0]), utf8.encode(pollId), new Uint8Array([0]), voter),
  )
}

/** The phase of a poll at `height`. */
export function phaseOf(poll: PollRecord, height: number): PollPhase {
  if (poll.tally !== null) return 'tallied'
  if (height < poll.openAt) return 'draft'
  if (height < poll.closeAt) return 'open'
  return 'closed'
}

const pollKey = (id: string) => `poll/${id}`
const voterKey = (id: string, voter: Uint8Array) => `voter/${id}/${toHex(voter)}`
const ballotKey = (nullifier: Uint8Array) => `ballot/${toHex(nullifier)}`

const pollId = s.string({ min: 1, max: 64, pattern: /^[a-z0-9][a-z0-9-]*$/ })
const option = s.string({ min: 1, max: 80 })
const scopeName = s.string({ min: 1, max: 64 })

function getPoll(ctx: TxContext, id: string): PollRecord {
  const poll = ctx.state.get<PollRecord>(pollKey(id))
  if (!poll) throw new ServiceError('NOT_FOUND', `no poll ${id}`)
  return poll
}

/** Edits by the creator while the poll is in draft. */
function editable(ctx: TxContext, id: string): PollRecord {
  const poll = getPoll(ctx, id)
  ensure(toHex(poll.creator) === ctx.signerHex, 'NOT_CREATOR', 'only the poll creator may edit it')
  ensure(
    phaseOf(poll, ctx.height) === 'draft',
    'FROZEN',
    `poll ${id} is ${phaseOf(poll, ctx.height)}: options, electorate and schedule are frozen`,
  )
  return poll
}

function checkOptions(mode: PollMode, options: string[]): string[] {
  if (mode === 'petition') {
    ensure(options.length === 0, 'BAD_OPTIONS', 'a petition has no options (its only option is support)')
    return ['support']
  }
  ensure(options.length >= 2, 'BAD_OPTIONS', 'a poll needs at least two options')
  ensure(new Set(options).size === options.length, 'BAD_OPTIONS', 'options must be distinct')
  return options
}

/** Adds list voters; returns how many were new. */
function addVoterKeys(ctx: TxContext, id: string, voters: Uint8Array[]): number {
  let added = 0
  for (const v of voters) {
    const k = voterKey(id, v)
    if (ctx.state.has(k)) continue
    ctx.state.set(k, true)
    added++
  }
  return added
}

/** Eligible: on the list, or a role / an enrolment since before openAt, still held (no growth once open). */
function isEligible(
  state: { has(k: string): boolean },
  call: (service: string, fn: string, args: Value) => Value | undefined,
  id: string,
  poll: PollRecord,
  voter: Uint8Array,
): boolean {
  const e = poll.electorate
  if (e.kind === 'list') return state.has(voterKey(id, voter))
  const since =
    e.kind === 'role'
      ? call('identity', 'roleSince', { scope: e.scope, role: e.role, key: voter })
      : call('identity', 'enrolledSince', { scope: SCOPE, key: voter })
  return typeof since === 'number' && since < poll.openAt
}

function params(state: { get(k: string): Value | undefined }): VotingParams {
  return (
    (state.get('params') as VotingParams | undefined) ?? {
      petitionDebate: PETITION_DEBATE,
      petitionMayorAnswer: PETITION_MAYOR_ANSWER,
    }
  )
}

function checkParams(p: { petitionDebate: number; petitionMayorAnswer: number }): string | null {
  if (p.petitionDebate < 1) return 'petitionDebate must be >= 1'
  if (p.petitionMayorAnswer < p.petitionDebate) return 'petitionMayorAnswer must be >= petitionDebate'
  return null
}

const isOrganizer = (ctx: TxContext) =>
  ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role: ORGANIZER, key: ctx.signer }) === true
const isCitizen = (ctx: TxContext) =>
  ctx.call<number | null>('identity', 'enrolledSince', { scope: SCOPE, key: ctx.signer }) !== null

export const voting = refuseRevokedSigners(
  defineService({
    name: 'voting',
    version: '1.0.0',
    dependencies: ['identity'],
    genesis(ctx, config) {
      const c = (config ?? {}) as Record<string, Value>
      const int = (v: Value | undefined, d: number, field: string): number => {
        const x = v ?? d
        if (typeof x !== 'number' || !Number.isSafeInteger(x))
          throw new ServiceError('BAD_GENESIS', `voting genesis: ${field} must be an integer`)
        return x
      }
      const p = {
        petitionDebate: int(c.petitionDebate, PETITION_DEBATE, 'petitionDebate'),
        petitionMayorAnswer: int(c.petitionMayorAnswer, PETITION_MAYOR_ANSWER, 'petitionMayorAnswer'),
      }
      const why = checkParams(p)
      if (why) throw new ServiceError('BAD_GENESIS', `voting genesis: ${why}`)
      ctx.state.set('params', p)
    },
    methods: {
      createPoll: method({
        doc: "Create a poll or petition in draft. Role ('voting', 'organizer'). Exactly one of electorate.voters / electorate.role.",
        args: s.object({
          pollId,
          mode: s.literal('poll', 'petition'),
          title: s.string({ min: 1, max: 200 }),
          question: s.hash(),
          options: s.array(option, { max: MAX_OPTIONS }),
          electorate: s.object({
            voters: s.optional(s.array(s.key(), { max: 256 })),
            role: s.optional(s.object({ scope: scopeName, role: scopeName })),
            enrolled: s.optional(s.bool()),
          }),
          openAt: s.uint(),
          closeAt: s.uint(),
        }),
        // Organisers create polls and petitions; an enrolled citizen starts a petition.
        auth: (ctx, a) => isOrganizer(ctx) || (a.mode === 'petition' && isCitizen(ctx)),
        handler(ctx, a) {
          ensure(!ctx.state.has(pollKey(a.pollId)), 'ALREADY_EXISTS', `poll ${a.pollId} exists`)
          ensure(
            a.openAt > ctx.height,
            'BAD_SCHEDULE',
            'openAt must be after the current height (polls start in draft)',
          )
          ensure(a.closeAt > a.openAt, 'BAD_SCHEDULE', 'closeAt must be after openAt')
          const options = checkOptions(a.mode, a.options)
          const { voters, role, enrolled } = a.electorate
          ensure(
            [voters, role, enrolled].filter((x) => x !== undefined).length === 1,
            'BAD_ELECTORATE',
            'give exactly one of electorate.voters, electorate.role and electorate.enrolled',
          )
          ensure(
            enrolled !== undefined || isOrganizer(ctx),
            'BAD_ELECTORATE',
            "a citizen's petition is open to every enrolled citizen (electorate.enrolled)",
          )
          ensure(enrolled !== false, 'BAD_ELECTORATE', 'electorate.enrolled is true when given')
          const electorate: Electorate = enrolled
            ? { kind: 'enrolled' }
            : role
              ? { kind: 'role', scope: role.scope, role: role.role }
              : { kind: 'list', size: addVoterKeys(ctx, a.pollId, voters!) }
          const th = params(ctx.state)
          const poll: PollRecord = {
            creator: ctx.signer,
            mode: a.mode,
            title: a.title,
            question: a.question,
            options,
            electorate,
            openAt: a.openAt,
            closeAt: a.closeAt,
            counts: options.map(() => 0),
            ballots: 0,
            tally: null,
            talliedAt: null,
            debateAt: null,
            mayorAnswerAt: null,
            petitionDebate: th.petitionDebate,
            petitionMayorAnswer: th.petitionMayorAnswer,
          }
          ctx.state.set(pollKey(a.pollId), poll)
          ctx.emit('pollCreated', { pollId: a.pollId, mode: a.mode, openAt: a.openAt, closeAt: a.closeAt })
        },
      }),
      addVoters: method({
        doc: 'Add keys to a list electorate (creator, draft only).',
        args: s.object({ pollId, voters: s.array(s.key(), { min: 1, max: 256 }) }),
        handler(ctx, a) {
          const poll = editable(ctx, a.pollId)
          ensure(poll.electorate.kind === 'list', 'BAD_ELECTORATE', 'this poll is open to a role, not a list')
          const size = poll.electorate.size + addVoterKeys(ctx, a.pollId, a.voters)
          ctx.state.set(pollKey(a.pollId), { ...poll, electorate: { kind: 'list', size } })
        },
      }),
      setOptions: method({
        doc: 'Replace the options of a poll (creator, draft only; petitions have none).',
        args: s.object({ pollId, options: s.array(option, { max: MAX_OPTIONS }) }),
        handler(ctx, a) {
          const poll = editable(ctx, a.pollId)
          const options = checkOptions(poll.mode, a.options)
          ctx.state.set(pollKey(a.pollId), { ...poll, options, counts: options.map(() => 0) })
        },
      }),
      reschedule: method({
        doc: 'Move the open and close heights (creator, draft only).',
        args: s.object({ pollId, openAt: s.uint(), closeAt: s.uint() }),
        handler(ctx, a) {
          const poll = editable(ctx, a.pollId)
          ensure(a.openAt > ctx.height, 'BAD_SCHEDULE', 'openAt must be after the current height')
          ensure(a.closeAt > a.openAt, 'BAD_SCHEDULE', 'closeAt must be after openAt')
          ctx.state.set(pollKey(a.pollId), { ...poll, openAt: a.openAt, closeAt: a.closeAt })
        },
      }),
      vote: method({
        doc: 'Cast one ballot (eligible voter, open phase). A second ballot is refused with ALREADY_VOTED.',
        args: s.object({ pollId, option: s.uint({ max: MAX_OPTIONS - 1 }) }),
        handler(ctx, a) {
          const poll = getPoll(ctx, a.pollId)
          const phase = phaseOf(poll, ctx.height)
          ensure(phase === 'open', 'NOT_OPEN', `poll ${a.pollId} is ${phase}`)
          ensure(a.option < poll.options.length, 'BAD_OPTION', `option ${a.option} does not exist`)
          ensure(
            isEligible(ctx.state, ctx.call, a.pollId, poll, ctx.signer),
            'NOT_ELIGIBLE',
            'signer is not in the electorate (or joined it after the poll opened)',
          )
          const nullifier = nullifierOf(a.pollId, ctx.signer)
          ensure(!ctx.state.has(ballotKey(nullifier)), 'ALREADY_VOTED', 'one ballot per voter')
          ctx.state.set(ballotKey(nullifier), { pollId: a.pollId, option: a.option, height: ctx.height })
          const counts = poll.counts.map((c, i) => (i === a.option ? c + 1 : c))
          const next: PollRecord = { ...poll, counts, ballots: poll.ballots + 1 }
          ctx.emit('voted', { pollId: a.pollId, nullifier })
          if (poll.mode === 'petition') {
            if (next.debateAt === null && next.ballots >= (poll.petitionDebate ?? PETITION_DEBATE)) {
              next.debateAt = ctx.height
              ctx.emit('debate', { pollId: a.pollId, ballots: next.ballots })
            }
            if (
              next.mayorAnswerAt === null &&
              next.ballots >= (poll.petitionMayorAnswer ?? PETITION_MAYOR_ANSWER)
            ) {
              next.mayorAnswerAt = ctx.height
              ctx.emit('mayorAnswer', { pollId: a.pollId, ballots: next.ballots })
            }
          }
          ctx.state.set(pollKey(a.pollId), next)
        },
      }),
      setParams: method({
        doc: "Set the petition thresholds for petitions created from now on. Role ('voting', 'admin').",
        args: s.object({ petitionDebate: s.uint({ min: 1 }), petitionMayorAnswer: s.uint({ min: 1 }) }),
        auth: (ctx) =>
          ctx.call<boolean>('identity', 'hasRole', { scope: SCOPE, role: 'admin', key: ctx.signer }) === true,
        handler(ctx, a) {
          const why = checkParams(a)
          ensure(why === null, 'BAD_PARAMS', why ?? '')
          ctx.state.set('params', {
            petitionDebate: a.petitionDebate,
            petitionMayorAnswer: a.petitionMayorAnswer,
          })
          ctx.emit('paramsSet', {
            petitionDebate: a.petitionDebate,
            petitionMayorAnswer: a.petitionMayorAnswer,
          })
        },
      }),
      tally: method({
        doc: 'Fix the result of a closed poll (anyone, once).',
        args: s.object({ pollId }),
        handler(ctx, a) {
          const poll = getPoll(ctx, a.pollId)
          const phase = phaseOf(poll, ctx.height)
          ensure(phase !== 'tallied', 'ALREADY_TALLIED', `poll ${a.pollId} is tallied`)
          ensure(phase === 'closed', 'NOT_CLOSED', `poll ${a.pollId} is ${phase}`)
          const sum = poll.counts.reduce((x, y) => x + y, 0)
          if (sum !== poll.ballots)
            throw new Error(`invariant broken: poll ${a.pollId} counts sum ${sum} != ballots ${poll.ballots}`)
          ctx.state.set(pollKey(a.pollId), { ...poll, tally: [...poll.counts], talliedAt: ctx.height })
          ctx.emit('tallied', { pollId: a.pollId, counts: [...poll.counts], ballots: poll.ballots })
        },
      }),
    },
    queries: {
      poll: query({
        doc: 'A poll with its phase at the current height, or null.',
        args: s.object({ pollId }),
        handler(q, a) {
          const poll = q.state.get<PollRecord>(pollKey(a.pollId))
          return poll ? { ...poll, phase: phaseOf(poll, q.height) } : null
        },
      }),
      results: query({
        doc: '{ phase, counts, ballots, tally } of a poll (tally is null until tallied).',
        args: s.object({ pollId }),
        handler(q, a) {
          const poll = q.state.get<PollRecord>(pollKey(a.pollId))
          if (!poll) return null
          return {
            phase: phaseOf(poll, q.height),
            options: poll.options,
            counts: poll.counts,
            ballots: poll.ballots,
            tally: poll.tally,
          }
        },
      }),
      nullifier: query({
        doc: 'The nullifier of a voter in a poll (computed, no state read).',
        args: s.object({ pollId, voter: s.key() }),
        handler: (_q, a) => nullifierOf(a.pollId, a.voter),
      }),
      hasVoted: query({
        doc: 'Has this voter a counted ballot in this poll?',
        args: s.object({ pollId, voter: s.key() }),
        handler: (q, a) => q.state.has(ballotKey(nullifierOf(a.pollId, a.voter))),
      }),
      params: query({
        doc: '{ petitionDebate, petitionMayorAnswer } for petitions created now.',
        args: s.object({}),
        handler: (q) => params(q.state),
      }),
      eligible: query({
        doc: 'Is this key in the electorate (role and enrolled electorates: since before openAt, still now)?',
        args: s.object({ pollId, voter: s.key() }),
        handler(q, a) {
          const poll = q.state.get<PollRecord>(pollKey(a.pollId))
          if (!poll) return false
          return isEligible(q.state, q.query, a.pollId, poll, a.voter)
        },
      }),
    },
  }),
)
