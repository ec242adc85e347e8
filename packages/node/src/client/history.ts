// The light client's view of the validator set across changes: it walks the chain's validator history
// (GET /v1/validators/history, node/validatorHistory.ts) from the genesis set the caller trusts, so it
// can check a certificate of any epoch against the set of its height. The node only supplies evidence:
// every entry is checked against the sets walked so far.
import type { ValidatorSchedule } from '@cityledger/consensus'
import { fromHex, isHex, referenceVerdict, toHex } from '@cityledger/core'
import { type ChainSchedule, genesisChainSchedule } from '../node/schedule.ts'
import { type HistoryEntry, decodeHistoryEntry, walkValidatorHistory } from '../node/validatorHistory.ts'
import { type Http, clientError } from './http.ts'

/** One answer of `GET /v1/validators/history?from=`: the encoded entries, `[]` past the last. */
export async function fetchHistoryPage(
  http: Http,
  from: number,
  signal?: AbortSignal,
): Promise<Uint8Array[]> {
  if (!Number.isSafeInteger(from) || from < 1) throw new RangeError('from: expected an integer >= 1')
  const { body } = await http.json(`/v1/validators/history?from=${from}`, signal ? { signal } : {})
  const entries = (body as { entries?: unknown } | null)?.entries
  if (!Array.isArray(entries) || !entries.every((e) => isHex(e)))
    throw clientError('BAD_RESPONSE', 'validator history: expected { entries: [hex...] }')
  return entries.map((e: string) => fromHex(e, 'entry'))
}

/** What the walk starts from: the caller's genesis. */
export interface HistoryTrust {
  chainId: string
  validators: readonly Uint8Array[]
  /** The genesis `consensus.checkpointInterval` (K). */
  checkpointInterval: number
}

/**
 * The schedule walked so far, kept between calls and extended from its last change: each call asks for
 * the entries after it, page by page, until an empty answer. Entries that do not extend the walk are
 * refused with BAD_PROOF (and what was walked before them stays); a node that withholds entries leaves
 * the walk short, so certificates of the epochs it hides do not verify (WRONG_CHAIN: they carry the
 * later epoch's chain id). A new genesis (chain id, set or K) starts a new walk.
 */
export function createScheduleCache(page: (from: number, signal?: AbortSignal) => Promise<Uint8Array[]>) {
  let cached: { key: string; chain: ChainSchedule } | undefined
  return async (t: HistoryTrust, signal?: AbortSignal): Promise<ValidatorSchedule> => {
    if (!Number.isSafeInteger(t.checkpointInterval) || t.checkpointInterval < 1)
      throw new TypeError('checkpointInterval: expected the genesis consensus.checkpointInterval (>= 1)')
    const key = [t.chainId, t.checkpointInterval, ...t.validators.map(toHex)].join(' ')
    const walk = {
      chainId: t.chainId,
      genesisValidators: t.validators,
      checkpointInterval: t.checkpointInterval,
      verify: referenceVerdict,
    }
    let chain = cached?.key === key ? cached.chain : genesisChainSchedule(t.validators, t.checkpointInterval)
    for (;;) {
      const raw = await page(chain.seq + 1, signal)
      if (raw.length === 0) return chain.schedule
      let entries: HistoryEntry[]
      try {
        entries = raw.map(decodeHistoryEntry)
        chain = walkValidatorHistory(walk, entries, chain)
      } catch (err) {
        throw clientError('BAD_PROOF', `validator history from ${chain.seq + 1}: ${(err as Error).message}`)
      }
      if (cached?.key !== key || cached.chain.seq < chain.seq) cached = { key, chain }
    }
  }
}
