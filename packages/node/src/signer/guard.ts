// The double-sign guard: a record, outside the chain store, of every vote the signer signed, so that
// a validator never signs two different digests for one (kind, height, view), even when its consensus
// journal is gone (data folder lost, restored from an older backup, reset with --unsafe-forget-votes).
// It is written durably (fsync, atomic rename, fsync of the folder) before the signature is made.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import {
  CityError,
  DOMAIN,
  type Vote,
  VoteKind,
  decodeVote,
  domainPrefix,
  equalBytes,
  toHex,
} from '@cityledger/core'
import { epochOfChainId } from '@cityledger/consensus'
import type { SignerErrorCode, ValidatorSigner } from './types.ts'

/** Names the state file's form; a new form gets a new name. */
export const SIGNER_STATE_FORMAT = 'cityledger/signer-state/v1'

const KIND_NAME: Record<number, string> = {
  [VoteKind.prepare]: 'prepare',
  [VoteKind.commit]: 'commit',
  [VoteKind.checkpoint]: 'checkpoint',
}

interface StateFile {
  format: string
  chainId: string
  publicKey: string
  /** Votes below this height were pruned (see `keepHeights`). */
  floor: number
  /** `"<kind>/<height>/<view>"` -> digest hex. */
  votes: Record<string, string>
}

export interface GuardOptions {
  /** The state file (e.g. `<home>/signer-state.json`); created on the first vote. */
  path: string
  chainId: string
  /**
   * Heights kept below the highest one signed (default 256). A replica signs prepare and commit votes
   * only within its watermark window above its stable checkpoint, so twice that window is enough.
   */
  keepHeights?: number
}

const err = (code: SignerErrorCode, message: string, details: Record<string, unknown> = {}) =>
  new CityError(code, message, details)

/**
 * Wraps `inner`: a vote (a message under the vote domain) that conflicts with one recorded in the
 * state file (same kind, height and view, another digest) is refused with DOUBLE_SIGN before `inner`
 * sees it; a new one is recorded durably first. A prepare or commit vote below the pruned floor is
 * refused too (nothing left to prove it does not conflict); a checkpoint vote there is signed (its
 * digest is the state root, the same on every correct replica). Other messages pass through.
 */
export function guardSigner(inner: ValidatorSigner, o: GuardOptions): ValidatorSigner {
  const keep = o.keepHeights ?? 256
  const publicKey = toHex(inner.publicKey)
  const state = readState(o.path, o.chainId, publicKey)
  const votes = new Map(Object.entries(state.votes))
  let floor = state.floor
  let top = Math.max(floor, ...[...votes.keys()].map((k) => Number(k.split('/')[1])))
  const prefix = domainPrefix(DOMAIN.vote)

  const check = (vote: Vote) => {
    const kind = KIND_NAME[vote.kind]!
    const where = `${kind} vote at height ${vote.height}, view ${vote.view}`
    // The chain's own id, or one of its epochs' (validator-set changes: `epochChainId`).
    if (epochOfChainId(o.chainId, vote.chainId) === undefined)
      throw err('DOUBLE_SIGN', `refused to sign a ${where} for chain ${vote.chainId}, not ${o.chainId}`)
    if (toHex(vote.validator) !== publicKey)
      throw err('DOUBLE_SIGN', `refused to sign a ${where} in the name of another validator`)
    const slot = `${kind}/${vote.height}/${vote.view}`
    const digest = toHex(vote.digest)
    const had = votes.get(slot)
    if (had === digest) return
    if (had !== undefined)
      throw err(
        'DOUBLE_SIGN',
        `refused to sign a ${where} for digest ${digest}: ${o.path} records one for ${had} (a second validator on this key, or a restored data folder?)`,
        { slot, digest, signed: had, stateFile: o.path },
      )
    if (vote.height < floor && vote.kind !== VoteKind.checkpoint)
      throw err(
        'DOUBLE_SIGN',
        `refused to sign a ${where}: below ${o.path}'s floor ${floor}, so it cannot be shown not to conflict`,
        { slot, floor, stateFile: o.path },
      )
    votes.set(slot, digest)
    if (vote.height > top) top = vote.height
    if (top - keep > floor) {
      floor = top - keep
      for (const k of votes.keys()) if (Number(k.split('/')[1]) < floor) votes.delete(k)
    }
    writeState(o.path, {
      format: SIGNER_STATE_FORMAT,
      chainId: o.chainId,
      publicKey,
      floor,
      votes: Object.fromEntries(votes),
    })
  }

  const signer: ValidatorSigner = {
    publicKey: inner.publicKey,
    sign(message) {
      if (message.length > prefix.length && equalBytes(message.subarray(0, prefix.length), prefix)) {
        let vote: Vote
        try {
          vote = decodeVote(message.subarray(prefix.length))
        } catch (e) {
          throw err(
            'DOUBLE_SIGN',
            `refused to sign a message under the vote domain that is no vote (${(e as Error).message})`,
          )
        }
        check(vote)
      }
      return inner.sign(message)
    },
  }
  if (inner.close) signer.close = () => inner.close!()
  return signer
}

function readState(path: string, chainId: string, publicKey: string): StateFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return { format: SIGNER_STATE_FORMAT, chainId, publicKey, floor: 0, votes: {} }
    throw err('SIGNER_STATE', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? e}`)
  }
  const bad = (what: string) =>
    err(
      'SIGNER_STATE',
      `${path}: ${what}; the double-sign guard cannot tell what this key signed, so the node does not start (restore the file; delete it only if this key never signed on this chain)`,
      { path },
    )
  let s: Partial<StateFile>
  try {
    s = JSON.parse(text)
  } catch {
    throw bad('not valid JSON')
  }
  if (s === null || typeof s !== 'object' || s.format !== SIGNER_STATE_FORMAT)
    throw bad(`not a ${SIGNER_STATE_FORMAT} file`)
  if (!Number.isSafeInteger(s.floor) || (s.floor as number) < 0) throw bad('floor must be a height')
  if (s.votes === null || typeof s.votes !== 'object') throw bad('votes must be an object')
  for (const [k, v] of Object.entries(s.votes))
    if (!/^(prepare|commit|checkpoint)\/\d+\/\d+$/.test(k) || !/^[0-9a-f]{64}$/.test(String(v)))
      throw bad(`bad vote entry ${JSON.stringify(k)}`)
  if (s.publicKey !== publicKey)
    throw err(
      'SIGNER_STATE',
      `${path} is the state of key ${s.publicKey}, not of this signer's ${publicKey}`,
      { path },
    )
  if (s.chainId !== chainId)
    throw err(
      'SIGNER_STATE',
      `${path} is the state of chain ${s.chainId}, not ${chainId}: move it away to sign for another chain`,
      { path },
    )
  return s as StateFile
}

/** Durable when it returns: written to a temp file, fsynced, renamed over, and the folder fsynced. */
function writeState(path: string, s: StateFile): void {
  const tmp = `${path}.tmp-${process.pid}`
  try {
    const fd = openSync(tmp, 'w', 0o600)
    try {
      writeSync(fd, `${JSON.stringify(s)}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    const dir = openSync(dirname(path), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  } catch (e) {
    throw err(
      'SIGNER_STATE',
      `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? e}; the vote is not signed`,
      {
        path,
      },
    )
  }
}
