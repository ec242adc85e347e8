import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { nullifierOf } from '@cityledger/apps'
import { CityError, type KeyPair, fromHex, publicKeyOf, sha256, toHex, utf8 } from '@cityledger/core'
import { createClient } from '../client/index.ts'
import { keyOf } from './keys.ts'
import { verifyAnswer } from './proof.ts'
import { setUpCity } from './setup.ts'
import { type DemoCheck, DemoSession } from './session.ts'

/** Where the demo runs: the node RPC addresses and the city operator's key ('*' admin in the identity genesis). */
export interface DemoOptions {
  /** RPC base URLs; txs go to the first, the third-party verifier asks the last. */
  rpc: string[]
  /** The city operator's secret key (64 bytes) or key pair. */
  cityKey: Uint8Array | KeyPair
  /** Makes ids unique per run, so a rerun on the same chain passes; default from the clock. */
  runId?: string
  /** Where the story goes (default: stdout). */
  say?: (line: string) => void
  /** How long to wait for a commit or a height, ms (default 30000). */
  timeoutMs?: number
}

/** The outcome: every check, and the ids the story used. */
export interface DemoReport {
  ok: boolean
  runId: string
  checks: DemoCheck[]
  txs: number
}

/** Stable labels -> keys: the same agencies on every run (their setup is done once per chain). */
const h = (text: string): Uint8Array => sha256(utf8.encode(text))
const hex = toHex

/**
 * The city scenario against a running network: the city registers agencies and grants their roles,
 * a citizen gets a Citizen Card, votes in a poll, earns S-Coin for it and spends some at a merchant,
 * an office issues a certificate that a third party verifies with a state proof anchored in a
 * certified block, and a subcontract milestone pays out directly to the subcontractor and a worker.
 * Prints the story with tx hashes and checks every expected state at the end.
 *
 * `runDemo('.devnet')` reads `<devnet>/city-key.json` and `<devnet>/node<i>/config.json`.
 * Throws `CityError('DEMO_FAILED')` when a check does not hold (the CLI then exits non-zero).
 */
export async function runDemo(target: string | DemoOptions): Promise<DemoReport> {
  const o = typeof target === 'string' ? fromDevnet(target) : target
  const say = o.say ?? ((line: string) => process.stdout.write(`${line}\n`))
  const timeoutMs = o.timeoutMs ?? 30_000
  const runId = o.runId ?? Date.now().toString(36)
  if (!/^[a-z0-9-]{1,20}$/.test(runId)) throw new CityError('BAD_ARGS', 'runId: 1..20 of [a-z0-9-]')
  const city: KeyPair =
    o.cityKey instanceof Uint8Array ? { secretKey: o.cityKey, publicKey: publicKeyOf(o.cityKey) } : o.cityKey
  if (o.rpc.length === 0) throw new CityError('BAD_ARGS', 'rpc: at least one node address')
  const client = createClient({ url: o.rpc[0]! })
  const status = await client.status()
  const s = new DemoSession({ client, chainId: status.chainId, say, timeoutMs })
  const tx: DemoSession['tx'] = (c, story) => s.tx(c, story)

  say(
    `cityledger demo (run ${runId}) on chain ${status.chainId}, node ${o.rpc[0]} at height ${status.height}`,
  )
  say(`city operator ${hex(city.publicKey).slice(0, 16)}...`)

  // --- 1. The city sets up agencies, roles and assets (once per chain; reruns find them in place) ----
  const { agencies, merchant } = await setUpCity(s, city, say)

  // --- 2. A citizen gets a Citizen Card ---------------------------------------------------------------
  say('\n2. A citizen gets a Seoul Citizen Card')
  const citizen = keyOf(`citizen-${runId}`)
  // The holder is a salted commitment: the salt stays with the citizen, no personal data on chain.
  const holder = sha256(utf8.encode(`salt-${runId}`), citizen.publicKey)
  const cardId = h(`demo/card/${runId}`)
  const cardHash = h(`demo/card-data/${runId}`)
  await tx(
    {
      who: agencies.cards.key,
      service: 'certificates',
      method: 'issueCard',
      args: { id: cardId, holder, hash: cardHash, validUntil: 0 },
    },
    `the card office issues card ${hex(cardId).slice(0, 16)}... to holder commitment ${hex(holder).slice(0, 16)}...`,
  )

  // --- 3. The citizen votes in a poll -----------------------------------------------------------------
  say('\n3. Democracy Seoul opens a poll and the citizen votes')
  const pollId = `park-trees-${runId}`
  const neighbours = [keyOf(`neighbour-a-${runId}`), keyOf(`neighbour-b-${runId}`)]
  const now = (await client.status()).height
  const openAt = now + 5
  const closeAt = openAt + 12
  await tx(
    {
      who: agencies.democracy.key,
      service: 'voting',
      method: 'createPoll',
      args: {
        pollId,
        mode: 'poll',
        title: 'Which park gets new trees first?',
        question: h(`Which park should the city plant 1,000 new trees in first? (${runId})`),
        options: ['Seoul Forest', 'Yeouido Park', 'Olympic Park'],
        electorate: { voters: [citizen.publicKey, ...neighbours.map((k) => k.publicKey)] },
        openAt,
        closeAt,
      },
    },
    `poll "${pollId}" for 3 voters, open at heights ${openAt}..${closeAt - 1}`,
  )
  await s.waitHeight(openAt)
  const vote = await tx(
    { who: citizen, service: 'voting', method: 'vote', args: { pollId, option: 0 } },
    'the citizen votes for Seoul Forest (only a nullifier is in the event)',
  )
  await tx(
    { who: neighbours[0]!, service: 'voting', method: 'vote', args: { pollId, option: 1 } },
    'a neighbour votes for Yeouido Park',
  )

  // --- 4. The citizen earns S-Coin for voting and spends some at a merchant ----------------------------
  say('\n4. The citizen earns S-Coin for voting and spends some at a merchant')
  const program = `civic-${runId}`
  await tx(
    {
      who: city,
      service: 'scoin',
      method: 'createProgram',
      args: { program, operators: [agencies.mileage.key.publicKey], budget: 1_000, expiryBlocks: 100_000 },
    },
    `city opens mileage program "${program}" (budget 1,000 miles)`,
  )
  const merchantBefore = await s.query<{ usable: number }>('scoin', 'balance', {
    holder: hex(merchant.publicKey),
  })
  await tx(
    {
      who: agencies.mileage.key,
      service: 'scoin',
      method: 'award',
      args: { program, to: citizen.publicKey, amount: 50, ref: nullifierOf(pollId, citizen.publicKey) },
    },
    'the mileage office awards 50 miles for taking part (ref = the ballot nullifier)',
  )
  await tx(
    {
      who: citizen,
      service: 'scoin',
      method: 'spend',
      args: { to: merchant.publicKey, amount: 20, ref: h(`receipt/${runId}`) },
    },
    'the citizen pays 20 miles at the Mangwon market cafe',
  )

  // --- 5. A certificate, verified by a third party with a proof ----------------------------------------
  say('\n5. The district office issues a certificate; a third party verifies it with a proof')
  const certId = h(`demo/family-relation/${runId}`)
  // The office keeps the document and the salt; the chain keeps only the commitment.
  const certHash = sha256(
    utf8.encode(`salt/${runId}`),
    utf8.encode('family relation certificate of the citizen'),
  )
  const issued = await tx(
    {
      who: agencies.jongno.key,
      service: 'certificates',
      method: 'issue',
      args: { id: certId, type: 'family-relation', hash: certHash, validUntil: 0 },
    },
    `Jongno-gu issues family-relation certificate ${hex(certId).slice(0, 16)}...`,
  )
  // The verifier holds (id, document hash) from the citizen and asks another node than the one used so far.
  const verifierNode = o.rpc[o.rpc.length - 1]!
  const verifier = createClient({ url: verifierNode })
  // The verifier's node may be a block behind the one that answered the commit.
  await new DemoSession({ client: verifier, chainId: status.chainId, say, timeoutMs }).waitHeight(
    issued.height ?? 0,
  )
  const validators = (await verifier.validators()).map((v) => fromHex(v.publicKey))
  const answer = await verifier.query('certificates', 'verify', { id: hex(certId), hash: hex(certHash) })
  const verdict = answer.value as { valid: boolean; status: string; type: string; issuer: string }
  let proven: Awaited<ReturnType<typeof verifyAnswer>> | undefined
  try {
    proven = await verifyAnswer(answer, { client: verifier, chainId: status.chainId, validators, timeoutMs })
    say(
      `  a bank asks ${verifierNode}: valid=${verdict.valid}, status ${verdict.status}, issuer ${String(verdict.issuer).slice(0, 16)}...`,
    )
    say(
      `      proof: ${proven.keys.length} state entr${proven.keys.length === 1 ? 'y' : 'ies'} (${proven.keys.join(', ')}) verify against root ${proven.root.slice(0, 16)}... at height ${proven.height}`,
    )
    say(
      `      that root is in block ${proven.height + 1} (${proven.anchorBlock.slice(0, 16)}...), certified by ${proven.signers} of ${validators.length} validators`,
    )
  } catch (err) {
    s.check('certificate proof verifies', false, (err as Error).message)
  }
  const forged = await verifier.query('certificates', 'verify', {
    id: hex(certId),
    hash: hex(h('a forged document')),
  })
  say(`  the same question with a forged document: valid=${(forged.value as { valid: boolean }).valid}`)

  // --- 6. A subcontract milestone pays out -------------------------------------------------------------
  say('\n6. A public works contract: a certified milestone pays the subcontractor and a worker directly')
  const prime = keyOf('hanbit-construction')
  const sub = keyOf('mirae-electric')
  const worker = keyOf(`electrician-${runId}`)
  const contract = `bridge-${runId}`
  const balance = async (k: KeyPair) =>
    Number(await s.query('token', 'balance', { asset: 'KRW', owner: hex(k.publicKey) }))
  const subBefore = await balance(sub)
  await tx(
    {
      who: agencies.treasury.key,
      service: 'token',
      method: 'mint',
      args: { asset: 'KRW', to: agencies.works.key.publicKey, amount: 50_000 },
    },
    'the treasury allots 50,000 KRW to the public works department',
  )
  await tx(
    {
      who: agencies.works.key,
      service: 'subcontract',
      method: 'createContract',
      args: {
        id: contract,
        prime: prime.publicKey,
        asset: 'KRW',
        value: 50_000,
        terms: h(`terms/${contract}`),
      },
    },
    `public works awards contract "${contract}" (50,000 KRW) to Hanbit Construction`,
  )
  await tx(
    { who: agencies.works.key, service: 'subcontract', method: 'fund', args: { contract, amount: 20_000 } },
    'public works escrows 20,000 KRW',
  )
  await tx(
    {
      who: prime,
      service: 'subcontract',
      method: 'propose',
      args: {
        contract,
        sub: 'electrical',
        subcontractor: sub.publicKey,
        terms: h(`terms/${contract}/electrical`),
        milestones: [
          {
            id: 'wiring',
            amount: 12_000,
            payouts: [
              { to: sub.publicKey, amount: 9_000 },
              { to: worker.publicKey, amount: 3_000 },
            ],
          },
        ],
      },
    },
    'Hanbit proposes the electrical subcontract to Mirae Electric: milestone "wiring" 12,000 = 9,000 Mirae + 3,000 its electrician',
  )
  await tx(
    { who: sub, service: 'subcontract', method: 'sign', args: { contract, sub: 'electrical' } },
    'Mirae Electric co-signs',
  )
  await tx(
    {
      who: agencies.works.key,
      service: 'subcontract',
      method: 'approve',
      args: { contract, sub: 'electrical' },
    },
    'public works approves the subcontract',
  )
  const certified = await tx(
    {
      who: agencies.inspector.key,
      service: 'subcontract',
      method: 'certify',
      args: { contract, sub: 'electrical', milestone: 'wiring', report: h(`inspection/${contract}/wiring`) },
    },
    'the inspection bureau certifies "wiring": the escrow pays the table in the same tx',
  )

  // --- 7. The poll closes and is tallied ---------------------------------------------------------------
  say('\n7. The poll closes and is tallied')
  await s.waitHeight(closeAt)
  await tx(
    { who: neighbours[1]!, service: 'voting', method: 'tally', args: { pollId } },
    'anyone tallies the closed poll',
  )

  // --- Checks ------------------------------------------------------------------------------------------
  say('\nChecks')
  const card = await s.query<{ id: string; status: string } | null>('certificates', 'card', {
    holder: hex(holder),
  })
  s.check(
    'the citizen holds an active Citizen Card',
    card?.id === hex(cardId) && card.status === 'active',
    JSON.stringify(card),
  )
  s.check(
    'the ballot was counted once, under its nullifier',
    (await s.query('voting', 'hasVoted', { pollId, voter: hex(citizen.publicKey) })) === true,
  )
  s.check(
    'the vote event carries the nullifier, not the option',
    JSON.stringify(vote.events ?? []).includes(hex(nullifierOf(pollId, citizen.publicKey))) &&
      !JSON.stringify(vote.events ?? []).includes('"option"'),
  )
  const results = await s.query<{ phase: string; tally: number[] | null; ballots: number }>(
    'voting',
    'results',
    { pollId },
  )
  s.check(
    'the poll is tallied: 1 vote each for Seoul Forest and Yeouido Park',
    results.phase === 'tallied' && JSON.stringify(results.tally) === '[1,1,0]' && results.ballots === 2,
    JSON.stringify(results),
  )
  const miles = await s.query<{ usable: number }>('scoin', 'balance', { holder: hex(citizen.publicKey) })
  s.check('the citizen has 50 - 20 = 30 usable miles', miles.usable === 30, JSON.stringify(miles))
  const merchantAfter = await s.query<{ usable: number }>('scoin', 'balance', {
    holder: hex(merchant.publicKey),
  })
  s.check(
    'the merchant received 20 miles',
    merchantAfter.usable - merchantBefore.usable === 20,
    `${merchantBefore.usable} -> ${merchantAfter.usable}`,
  )
  const prog = await s.query<{ awarded: number; budget: number }>('scoin', 'program', { program })
  s.check(
    'the program awarded 50 of its 1,000 budget',
    prog.awarded === 50 && prog.budget === 1_000,
    JSON.stringify(prog),
  )
  s.check(
    'the certificate verifies as valid and active',
    verdict.valid === true &&
      verdict.status === 'active' &&
      verdict.type === 'family-relation' &&
      verdict.issuer === hex(agencies.jongno.key.publicKey),
    JSON.stringify(verdict),
  )
  s.check(
    'the proof covers the certificate record and verifies against a certified root',
    proven?.present.includes(`certificates/doc/${hex(certId)}`) === true,
  )
  s.check('a forged document does not verify', (forged.value as { valid: boolean }).valid === false)
  const paid = await s.query<{ paid: number; pending: number }>('subcontract', 'payee', {
    contract,
    key: hex(worker.publicKey),
  })
  s.check(
    'the electrician was paid 3,000 KRW directly',
    (await balance(worker)) === 3_000 && paid.paid === 3_000,
    JSON.stringify(paid),
  )
  s.check('Mirae Electric received 9,000 KRW', (await balance(sub)) - subBefore === 9_000)
  const c = await s.query<{ released: number; escrow: number }>('subcontract', 'contract', { contract })
  s.check(
    'the contract released 12,000 and keeps 8,000 in escrow',
    c.released === 12_000 && c.escrow === 8_000,
    JSON.stringify({ released: c.released, escrow: c.escrow }),
  )
  s.check(
    'the milestone payout event lists both payees',
    JSON.stringify(certified.events ?? []).includes(hex(worker.publicKey)),
  )
  const heads = await Promise.all(o.rpc.map(async (url) => (await createClient({ url }).status()).height))
  s.check(
    `every node is past the demo's last block (${heads.join(', ')})`,
    heads.every((x) => x >= (certified.height ?? 0)),
  )

  for (const c of s.checks)
    say(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.ok || c.detail === undefined ? '' : `: ${c.detail}`}`)
  const failed = s.checks.filter((c) => !c.ok)
  say(
    failed.length
      ? `\n${failed.length} of ${s.checks.length} checks failed`
      : `\nAll ${s.checks.length} checks hold (${s.submitted} txs, run ${runId}).`,
  )
  const report: DemoReport = { ok: failed.length === 0, runId, checks: s.checks, txs: s.submitted }
  if (!report.ok)
    throw new CityError(
      'DEMO_FAILED',
      `${failed.length} checks failed: ${failed.map((c) => c.name).join('; ')}`,
      { report },
    )
  return report
}

/** Reads a devnet folder: `city-key.json` and the RPC address of every `node<i>/config.json`. */
function fromDevnet(dir: string): DemoOptions {
  let key: { secretKey?: string }
  try {
    key = JSON.parse(readFileSync(join(dir, 'city-key.json'), 'utf8'))
  } catch (err) {
    throw new CityError(
      'NO_DEVNET',
      `no city key in ${dir} (start one with \`pnpm devnet\`): ${(err as Error).message}`,
    )
  }
  if (typeof key.secretKey !== 'string')
    throw new CityError('NO_DEVNET', `${dir}/city-key.json has no secretKey`)
  const nodes = readdirSync(dir)
    .filter((d) => /^node\d+$/.test(d))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
  const rpc = nodes.map((d) => {
    const cfg = JSON.parse(readFileSync(join(dir, d, 'config.json'), 'utf8')) as {
      rpc: { host: string; port: number }
    }
    return `http://${cfg.rpc.host}:${cfg.rpc.port}`
  })
  if (rpc.length === 0) throw new CityError('NO_DEVNET', `${dir} has no node folders`)
  return { rpc, cityKey: fromHex(key.secretKey, 'secretKey') }
}
