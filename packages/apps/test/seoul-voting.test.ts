import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type KeyPair, type Value, generateKeyPair, sha256, toHex, utf8 } from '@cityledger/core'
import { Rng, createTestChain, seedFor, testSeed } from '@cityledger/core/testing'
import { baseServices, pseudonymCommitment } from '../src/base/index.ts'
import { PETITION_DEBATE, PETITION_MAYOR_ANSWER, nullifierOf, voting } from '../src/seoul/index.ts'

const SEED = testSeed(20261125)

const k = (label: string): KeyPair => generateKeyPair(seedFor(label))
const key = (label: string) => k(label).publicKey
const question = sha256(utf8.encode('Should Seoul extend late-night bus lines?'))

function setup(votingGenesis?: Value) {
  const chain = createTestChain({
    services: [...baseServices, voting],
    genesis: {
      voting: votingGenesis,
      identity: {
        admins: [{ key: key('city'), scopes: ['*'] }],
        roles: [
          { scope: 'voting', role: 'organizer', key: key('organizer') },
          { scope: 'voting', role: 'organizer', key: key('organizer-2') },
          { scope: 'voting', role: 'citizen', key: key('citizen-1') },
          { scope: 'voting', role: 'citizen', key: key('citizen-2') },
        ],
      },
    },
  })
  const tx = (who: string | KeyPair, method: string, args: Value) =>
    chain.tx(typeof who === 'string' ? k(who) : who, 'voting', method, args)
  const q = (name: string, args: Value) => chain.query('voting', name, args) as any
  /** A poll opening 20 blocks from now and closing 10 later. */
  const create = (pollId: string, over: Record<string, Value> = {}, who = 'organizer') => {
    const openAt = chain.height + 20
    return tx(who, 'createPoll', {
      pollId,
      mode: 'poll',
      title: 'Late-night buses',
      question,
      options: ['yes', 'no', 'abstain'],
      electorate: { voters: [key('v1'), key('v2'), key('v3')] },
      openAt,
      closeAt: openAt + 10,
      ...over,
    })
  }
  const openPoll = (pollId: string) => {
    const poll = q('poll', { pollId })
    chain.advance(Math.max(0, poll.openAt - chain.height - 1))
  }
  const closePoll = (pollId: string) => {
    const poll = q('poll', { pollId })
    chain.advance(Math.max(0, poll.closeAt - chain.height - 1))
  }
  /** Democracy Seoul enrols a citizen's voting key (city: admin of every scope). */
  const enrol = (who: string) =>
    chain.tx(k('city'), 'identity', 'enrol', {
      scope: 'voting',
      key: key(who),
      commitment: pseudonymCommitment(DEMOCRACY_SECRET, 'voting', `resident-${who}`),
    })
  return { chain, tx, q, create, openPoll, closePoll, enrol }
}

const DEMOCRACY_SECRET = sha256(utf8.encode('democracy-seoul enrolment secret'))

test('createPoll: organizers only; bad schedules, options and electorates are refused', () => {
  const { chain, create, q } = setup()
  assert.is(create('p1', {}, 'v1').code, 'UNAUTHORIZED')
  assert.is(create('p1').code, null)
  assert.is(create('p1', {}, 'organizer-2').code, 'ALREADY_EXISTS')
  assert.is(create('p2', { openAt: chain.height + 1 }).code, 'BAD_SCHEDULE', 'must start in draft')
  assert.is(create('p2', { openAt: chain.height + 5, closeAt: chain.height + 5 }).code, 'BAD_SCHEDULE')
  assert.is(create('p2', { options: ['yes'] }).code, 'BAD_OPTIONS')
  assert.is(create('p2', { options: ['yes', 'yes'] }).code, 'BAD_OPTIONS')
  assert.is(create('p2', { mode: 'petition' }).code, 'BAD_OPTIONS', 'petitions have no options')
  assert.is(create('p2', { electorate: {} }).code, 'BAD_ELECTORATE')
  assert.is(
    create('p2', { electorate: { voters: [], role: { scope: 'voting', role: 'citizen' } } }).code,
    'BAD_ELECTORATE',
  )
  assert.is(create('P 2').code, 'BAD_ARGS')
  assert.is(create('p2', { options: Array.from({ length: 33 }, (_, i) => `o${i}`) }).code, 'BAD_ARGS')
  assert.equal(q('poll', { pollId: 'p2' }), null)
  const p = q('poll', { pollId: 'p1' })
  assert.is(p.phase, 'draft')
  assert.equal(p.counts, [0, 0, 0])
  assert.equal(p.electorate, { kind: 'list', size: 3 })
})

test('draft edits by the creator; options, electorate and schedule frozen once open', () => {
  const { chain, create, tx, q, openPoll } = setup()
  assert.is(create('p1').code, null)
  assert.is(tx('organizer-2', 'setOptions', { pollId: 'p1', options: ['a', 'b'] }).code, 'NOT_CREATOR')
  assert.is(tx('organizer', 'setOptions', { pollId: 'p1', options: ['a', 'b'] }).code, null)
  assert.is(tx('organizer', 'setOptions', { pollId: 'p1', options: ['a'] }).code, 'BAD_OPTIONS')
  assert.is(tx('organizer', 'addVoters', { pollId: 'p1', voters: [key('v4'), key('v1')] }).code, null)
  assert.equal(
    q('poll', { pollId: 'p1' }).electorate,
    { kind: 'list', size: 4 },
    'duplicates are not counted twice',
  )
  assert.is(
    tx('organizer', 'reschedule', { pollId: 'p1', openAt: chain.height + 10, closeAt: chain.height + 16 })
      .code,
    null,
  )
  assert.is(
    tx('organizer', 'reschedule', { pollId: 'p1', openAt: chain.height + 10, closeAt: chain.height + 2 })
      .code,
    'BAD_SCHEDULE',
  )
  assert.is(
    tx('organizer', 'reschedule', { pollId: 'p1', openAt: chain.height, closeAt: chain.height + 2 }).code,
    'BAD_SCHEDULE',
  )
  assert.is(tx('organizer', 'setOptions', { pollId: 'nope', options: ['a', 'b'] }).code, 'NOT_FOUND')
  openPoll('p1')
  assert.is(q('poll', { pollId: 'p1' }).phase, 'draft', 'the next block opens it')
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 1 }).code, null)
  assert.is(tx('organizer', 'setOptions', { pollId: 'p1', options: ['c', 'd'] }).code, 'FROZEN')
  assert.is(tx('organizer', 'addVoters', { pollId: 'p1', voters: [key('v9')] }).code, 'FROZEN')
  assert.is(
    tx('organizer', 'reschedule', { pollId: 'p1', openAt: chain.height + 3, closeAt: chain.height + 9 }).code,
    'FROZEN',
  )
  const p = q('poll', { pollId: 'p1' })
  assert.equal(p.options, ['a', 'b'])
  assert.equal(p.electorate, { kind: 'list', size: 4 })
  assert.is(p.phase, 'open')
})

test('vote: open phase, electorate, one counted ballot per voter (a second is refused)', () => {
  const { chain, create, tx, q, openPoll, closePoll } = setup()
  assert.is(create('p1').code, null)
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 0 }).code, 'NOT_OPEN', 'draft')
  openPoll('p1')
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 0 }).code, null)
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 1 }).code, 'ALREADY_VOTED', 'refused, not replaced')
  assert.is(tx('outsider', 'vote', { pollId: 'p1', option: 0 }).code, 'NOT_ELIGIBLE')
  assert.is(tx('v2', 'vote', { pollId: 'p1', option: 3 }).code, 'BAD_OPTION')
  assert.is(tx('v2', 'vote', { pollId: 'nope', option: 0 }).code, 'NOT_FOUND')
  // Two ballots of the same voter in one block: the second is refused too.
  const rs = chain.block([
    { key: k('v2'), service: 'voting', method: 'vote', args: { pollId: 'p1', option: 2 } },
    { key: k('v2'), service: 'voting', method: 'vote', args: { pollId: 'p1', option: 1 } },
  ])
  assert.equal(
    rs.map((r) => r.code),
    [null, 'ALREADY_VOTED'],
  )
  const r = q('results', { pollId: 'p1' })
  assert.equal(r.counts, [1, 0, 1])
  assert.is(r.ballots, 2)
  assert.is(q('hasVoted', { pollId: 'p1', voter: key('v1') }), true)
  assert.is(q('hasVoted', { pollId: 'p1', voter: key('v3') }), false)
  assert.is(toHex(q('nullifier', { pollId: 'p1', voter: key('v1') })), toHex(nullifierOf('p1', key('v1'))))
  assert.ok(
    chain.state().has(`voting/ballot/${toHex(nullifierOf('p1', key('v1')))}`),
    'the nullifier is kept in state',
  )
  closePoll('p1')
  assert.is(tx('v3', 'vote', { pollId: 'p1', option: 0 }).code, 'NOT_OPEN', 'closed')
  assert.is(q('poll', { pollId: 'p1' }).phase, 'closed')
})

test('nullifiers are per poll: the same voter votes once in each poll', () => {
  const { create, tx, openPoll } = setup()
  assert.is(create('p1').code, null)
  assert.is(create('p2').code, null)
  openPoll('p2')
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 0 }).code, null)
  assert.is(tx('v1', 'vote', { pollId: 'p2', option: 0 }).code, null)
  assert.is(tx('v1', 'vote', { pollId: 'p2', option: 0 }).code, 'ALREADY_VOTED')
  assert.not.equal(toHex(nullifierOf('p1', key('v1'))), toHex(nullifierOf('p2', key('v1'))))
})

test('role electorate: holders of the role since before the poll opened, still holding it', () => {
  const { chain, create, tx, q, openPoll } = setup()
  assert.is(create('r1', { electorate: { role: { scope: 'voting', role: 'citizen' } } }).code, null)
  assert.equal(q('poll', { pollId: 'r1' }).electorate, { kind: 'role', scope: 'voting', role: 'citizen' })
  assert.is(tx('organizer', 'addVoters', { pollId: 'r1', voters: [key('v1')] }).code, 'BAD_ELECTORATE')
  openPoll('r1')
  assert.is(q('eligible', { pollId: 'r1', voter: key('citizen-1') }), true)
  assert.is(q('eligible', { pollId: 'r1', voter: key('v1') }), false)
  assert.is(tx('citizen-1', 'vote', { pollId: 'r1', option: 0 }).code, null)
  assert.is(tx('v1', 'vote', { pollId: 'r1', option: 0 }).code, 'NOT_ELIGIBLE')
  assert.is(
    chain.tx(k('city'), 'identity', 'revokeRole', { scope: 'voting', role: 'citizen', key: key('citizen-2') })
      .code,
    null,
  )
  assert.is(tx('citizen-2', 'vote', { pollId: 'r1', option: 0 }).code, 'NOT_ELIGIBLE', 'role revoked')
  assert.is(
    chain.tx(k('city'), 'identity', 'grantRole', { scope: 'voting', role: 'citizen', key: key('v1') }).code,
    null,
  )
  // The electorate is fixed when the poll opens: a role granted since then gives no ballot.
  assert.is(tx('v1', 'vote', { pollId: 'r1', option: 1 }).code, 'NOT_ELIGIBLE', 'role granted after openAt')
})

test('tally: after close, once; equals the counts; then the poll is final', () => {
  const { create, tx, q, openPoll, closePoll } = setup()
  assert.is(create('p1').code, null)
  openPoll('p1')
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 2 }).code, null)
  assert.is(tx('v2', 'vote', { pollId: 'p1', option: 2 }).code, null)
  assert.is(tx('v3', 'vote', { pollId: 'p1', option: 0 }).code, null)
  assert.is(tx('anyone', 'tally', { pollId: 'p1' }).code, 'NOT_CLOSED')
  closePoll('p1')
  const r = tx('anyone', 'tally', { pollId: 'p1' })
  assert.is(r.code, null)
  assert.equal(
    r.events.map((e) => [e.name, e.data]),
    [['tallied', { pollId: 'p1', counts: [1, 0, 2], ballots: 3 }]],
  )
  assert.is(tx('anyone', 'tally', { pollId: 'p1' }).code, 'ALREADY_TALLIED')
  assert.is(tx('v1', 'vote', { pollId: 'p1', option: 0 }).code, 'NOT_OPEN')
  const res = q('results', { pollId: 'p1' })
  assert.is(res.phase, 'tallied')
  assert.equal(res.tally, [1, 0, 2])
  assert.is(tx('anyone', 'tally', { pollId: 'nope' }).code, 'NOT_FOUND')
})

test(`tally equals the sum of ballots in state (seed ${SEED})`, () => {
  const { chain, create, tx, q, openPoll, closePoll } = setup()
  const rng = new Rng(SEED)
  const voters = Array.from({ length: 120 }, (_, i) => k(`voter-${i}`))
  const options = ['a', 'b', 'c', 'd', 'e']
  assert.is(
    create('big', { options, electorate: { voters: voters.slice(0, 100).map((v) => v.publicKey) } }).code,
    null,
  )
  assert.is(
    tx('organizer', 'addVoters', { pollId: 'big', voters: voters.slice(100).map((v) => v.publicKey) }).code,
    null,
  )
  openPoll('big')
  const expected = [0, 0, 0, 0, 0]
  const voted = new Set<number>()
  for (let round = 0; round < 8; round++) {
    const calls = Array.from({ length: 30 }, () => {
      const i = rng.int(voters.length)
      return { i, option: rng.int(options.length) }
    })
    const rs = chain.block(
      calls.map(({ i, option }) => ({
        key: voters[i]!,
        service: 'voting',
        method: 'vote',
        args: { pollId: 'big', option },
      })),
    )
    calls.forEach(({ i, option }, j) => {
      const want = voted.has(i) ? 'ALREADY_VOTED' : null
      assert.is(rs[j]!.code, want, `seed ${SEED} round ${round} voter ${i}`)
      if (want === null) {
        voted.add(i)
        expected[option]!++
      }
    })
  }
  closePoll('big')
  assert.is(tx('anyone', 'tally', { pollId: 'big' }).code, null)
  const fromState = [0, 0, 0, 0, 0]
  let ballots = 0
  for (const [key, v] of chain.state()) {
    if (!key.startsWith('voting/ballot/') || (v as { pollId: string }).pollId !== 'big') continue
    fromState[(v as { option: number }).option]!++
    ballots++
  }
  const res = q('results', { pollId: 'big' })
  assert.equal(res.tally, expected, `seed ${SEED}`)
  assert.equal(res.tally, fromState, `seed ${SEED}`)
  assert.is(res.ballots, ballots)
  assert.is(ballots, voted.size)
})

test('petition: debate at 100 ballots and mayorAnswer at 1,000, each emitted once', () => {
  const { chain, create, tx, q, openPoll } = setup()
  const n = PETITION_MAYOR_ANSWER + 5
  const signers = Array.from({ length: n }, (_, i) => k(`petitioner-${i}`))
  assert.is(
    create('bike-lanes', {
      mode: 'petition',
      options: [],
      electorate: { voters: signers.slice(0, 256).map((s) => s.publicKey) },
      openAt: chain.height + 10,
      closeAt: chain.height + 100,
    }).code,
    null,
  )
  for (let i = 256; i < n; i += 256) {
    assert.is(
      tx('organizer', 'addVoters', {
        pollId: 'bike-lanes',
        voters: signers.slice(i, i + 256).map((s) => s.publicKey),
      }).code,
      null,
    )
  }
  assert.equal(q('poll', { pollId: 'bike-lanes' }).options, ['support'])
  openPoll('bike-lanes')
  const events: { name: string; data: Value; at: number }[] = []
  let cast = 0
  for (let i = 0; i < n; i += 200) {
    const rs = chain.block(
      signers.slice(i, i + 200).map((s) => ({
        key: s,
        service: 'voting',
        method: 'vote',
        args: { pollId: 'bike-lanes', option: 0 },
      })),
    )
    for (const r of rs) {
      assert.is(r.code, null)
      cast++
      for (const e of r.events) if (e.name !== 'voted') events.push({ name: e.name, data: e.data, at: cast })
    }
  }
  assert.equal(events, [
    { name: 'debate', data: { pollId: 'bike-lanes', ballots: PETITION_DEBATE }, at: PETITION_DEBATE },
    {
      name: 'mayorAnswer',
      data: { pollId: 'bike-lanes', ballots: PETITION_MAYOR_ANSWER },
      at: PETITION_MAYOR_ANSWER,
    },
  ])
  const p = q('poll', { pollId: 'bike-lanes' })
  assert.is(p.ballots, n)
  assert.ok(p.debateAt !== null && p.mayorAnswerAt !== null)
  assert.is(tx(signers[0]!, 'vote', { pollId: 'bike-lanes', option: 0 }).code, 'ALREADY_VOTED')
  assert.is(tx(signers[0]!, 'vote', { pollId: 'bike-lanes', option: 1 }).code, 'BAD_OPTION')
})

test('scenario: a policy poll from draft to tally', () => {
  const { chain, tx, q } = setup()
  const openAt = chain.height + 4
  const created = tx('organizer', 'createPoll', {
    pollId: 'night-bus-2026',
    mode: 'poll',
    title: 'Late-night buses',
    question,
    options: ['extend', 'keep'],
    electorate: { voters: [key('v1'), key('v2')] },
    openAt,
    closeAt: openAt + 3,
  })
  assert.equal(
    created.events.map((e) => e.name),
    ['pollCreated'],
  )
  assert.is(tx('organizer', 'addVoters', { pollId: 'night-bus-2026', voters: [key('v3')] }).code, null)
  chain.advance(openAt - chain.height - 1)
  assert.is(q('poll', { pollId: 'night-bus-2026' }).phase, 'draft')
  const rs = chain.block(
    ['v1', 'v2', 'v3'].map((v, i) => ({
      key: k(v),
      service: 'voting',
      method: 'vote',
      args: { pollId: 'night-bus-2026', option: i === 1 ? 1 : 0 },
    })),
  )
  assert.equal(
    rs.map((r) => r.code),
    [null, null, null],
  )
  assert.is(q('poll', { pollId: 'night-bus-2026' }).phase, 'open')
  chain.advance(2)
  assert.is(q('poll', { pollId: 'night-bus-2026' }).phase, 'open', 'open for heights openAt..closeAt-1')
  chain.advance(1)
  assert.is(q('poll', { pollId: 'night-bus-2026' }).phase, 'closed')
  assert.is(tx('v1', 'tally', { pollId: 'night-bus-2026' }).code, null)
  assert.equal(q('results', { pollId: 'night-bus-2026' }), {
    phase: 'tallied',
    options: ['extend', 'keep'],
    counts: [2, 1],
    ballots: 3,
    tally: [2, 1],
  })
})

// ---- holes of issue #12 ----

test('hole: the electorate cannot grow while a poll is open (role and enrolled electorates)', () => {
  const { chain, create, tx, q, openPoll, enrol } = setup()
  for (const c of ['c1', 'c2']) assert.is(enrol(c).code, null)
  assert.is(create('r', { electorate: { role: { scope: 'voting', role: 'citizen' } } }).code, null)
  assert.is(create('e', { electorate: { enrolled: true } }).code, null)
  assert.equal(q('poll', { pollId: 'e' }).electorate, { kind: 'enrolled' })
  openPoll('e')
  // Joined after the poll opened: no ballot in it.
  assert.is(
    chain.tx(k('city'), 'identity', 'grantRole', { scope: 'voting', role: 'citizen', key: key('late') }).code,
    null,
  )
  assert.is(enrol('late').code, null)
  assert.is(tx('late', 'vote', { pollId: 'r', option: 0 }).code, 'NOT_ELIGIBLE', 'role granted while open')
  assert.is(tx('late', 'vote', { pollId: 'e', option: 0 }).code, 'NOT_ELIGIBLE', 'enrolled while open')
  assert.is(q('eligible', { pollId: 'e', voter: key('late') }), false)
  assert.is(q('eligible', { pollId: 'e', voter: key('c1') }), true)
  assert.is(tx('c1', 'vote', { pollId: 'e', option: 0 }).code, null)
  assert.is(tx('citizen-1', 'vote', { pollId: 'r', option: 0 }).code, null)
})

test('hole: citizens start petitions (Democracy Seoul proposals); only organisers create polls', () => {
  const { chain, tx, q, enrol } = setup({ petitionDebate: 2, petitionMayorAnswer: 3 })
  for (const c of ['c1', 'c2', 'c3']) assert.is(enrol(c).code, null)
  const petition = (who: string, over: Record<string, Value> = {}) =>
    tx(who, 'createPoll', {
      pollId: 'more-trees',
      mode: 'petition',
      title: 'Plant more street trees',
      question,
      options: [],
      electorate: { enrolled: true },
      openAt: chain.height + 3,
      closeAt: chain.height + 50,
      ...over,
    })
  assert.is(petition('stranger').code, 'UNAUTHORIZED', 'not an enrolled citizen')
  assert.is(
    petition('c1', { mode: 'poll', options: ['a', 'b'] }).code,
    'UNAUTHORIZED',
    'citizens start petitions only',
  )
  assert.is(
    petition('c1', { electorate: { voters: [key('c1')] } }).code,
    'BAD_ELECTORATE',
    "a citizen's petition is open to every citizen",
  )
  assert.is(petition('c1').code, null)
  assert.is(toHex(q('poll', { pollId: 'more-trees' }).creator), toHex(key('c1')))
})

test('hole: petition thresholds are parameters (genesis, then the voting admin), fixed per petition', () => {
  const { chain, tx, q, enrol, create, openPoll } = setup({ petitionDebate: 2, petitionMayorAnswer: 3 })
  for (const c of ['c1', 'c2', 'c3', 'c4']) assert.is(enrol(c).code, null)
  assert.equal(q('params', {}), { petitionDebate: 2, petitionMayorAnswer: 3 })
  assert.is(create('p', { mode: 'petition', options: [], electorate: { enrolled: true } }).code, null)
  // A change applies to petitions created afterwards, never to one already created.
  assert.is(tx('city', 'setParams', { petitionDebate: 10, petitionMayorAnswer: 20 }).code, 'UNAUTHORIZED')
  assert.is(
    chain.tx(k('city'), 'identity', 'grantRole', { scope: 'voting', role: 'admin', key: key('city') }).code,
    null,
  )
  assert.is(tx('city', 'setParams', { petitionDebate: 10, petitionMayorAnswer: 5 }).code, 'BAD_PARAMS')
  assert.is(tx('city', 'setParams', { petitionDebate: 10, petitionMayorAnswer: 20 }).code, null)
  openPoll('p')
  const seen: string[] = []
  for (const c of ['c1', 'c2', 'c3', 'c4']) {
    const r = tx(c, 'vote', { pollId: 'p', option: 0 })
    assert.is(r.code, null)
    for (const e of r.events)
      if (e.name !== 'voted') seen.push(`${e.name}@${(e.data as { ballots: number }).ballots}`)
  }
  assert.equal(seen, ['debate@2', 'mayorAnswer@3'])
  assert.throws(() => setup({ petitionDebate: 0 }), /voting genesis/)
})

test.run()
