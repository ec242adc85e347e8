import {
  CityError,
  type CommitCertificate,
  DOMAIN,
  LIMITS,
  type Value,
  consensusMessageLimit,
  type Vote,
  VoteKind,
  decodeCertificate,
  decodeStrict,
  decodeVote,
  encode,
  encodeCertificate,
  encodeVote,
  expectArray,
  expectBytes,
  expectString,
  expectUint,
  signingMessage,
} from '@cityledger/core'
import { CHAIN_ID_RE } from '@cityledger/core'
import { ConsensusError } from '../errors.ts'
import {
  type BlockRequestBody,
  type CheckpointProof,
  type ConsensusMessage,
  MESSAGE_TYPE,
  type MessageKind,
  type NewViewBody,
  type PreparedCertificate,
  type SignatureEntry,
  type StatusBody,
  type ViewChangeBody,
} from './types.ts'

const WIRE_VERSION = 1
const BODY_VERSION = 1
/** Cap on entries in any signature list or re-proposal list (far above any real validator set or window). */
const MAX_LIST = 4096

const KIND_BY_TYPE = new Map<number, MessageKind>(
  Object.entries(MESSAGE_TYPE).map(([k, v]) => [v, k as MessageKind]),
)
const VOTE_KIND: Partial<Record<MessageKind, VoteKind>> = {
  prePrepare: VoteKind.prepare,
  prepare: VoteKind.prepare,
  commit: VoteKind.commit,
  checkpoint: VoteKind.checkpoint,
}

function wire(
  type: MessageKind,
  body: Uint8Array,
  signature: Uint8Array,
  attachments: Uint8Array[] = [],
): Uint8Array {
  return encode([WIRE_VERSION, MESSAGE_TYPE[type], body, signature, attachments])
}

const sigList = (list: SignatureEntry[]) => list.map((s) => [s.validator, s.signature])

function readSigList(v: Value | undefined, field: string): SignatureEntry[] {
  if (!Array.isArray(v) || v.length > MAX_LIST)
    throw new ConsensusError('MALFORMED', `${field}: expected a list`)
  return v.map((e, i) => {
    const p = expectArray(e, 2, `${field}[${i}]`)
    return {
      validator: expectBytes(p[0], `${field}[${i}].validator`, 32),
      signature: expectBytes(p[1], `${field}[${i}].signature`, 64),
    }
  })
}

export function encodeViewChangeBody(b: ViewChangeBody): Uint8Array {
  return encode([
    BODY_VERSION,
    MESSAGE_TYPE.viewChange,
    b.chainId,
    b.view,
    b.validator,
    [b.checkpoint.height, b.checkpoint.digest, sigList(b.checkpoint.signatures)],
    b.prepared.map((p) => [p.height, p.view, p.digest, sigList(p.signatures)]),
  ])
}

export function encodeNewViewBody(b: NewViewBody): Uint8Array {
  return encode([
    BODY_VERSION,
    MESSAGE_TYPE.newView,
    b.chainId,
    b.view,
    b.validator,
    b.viewChanges.map((v) => [v.bodyBytes, v.signature]),
    b.reproposals.map((r) => [r.height, r.digest, r.signature]),
  ])
}

export function encodeStatusBody(b: StatusBody): Uint8Array {
  return encode([
    BODY_VERSION,
    MESSAGE_TYPE.status,
    b.chainId,
    b.view,
    b.committedHeight,
    b.validator,
    b.round ?? 0,
  ])
}

export function encodeBlockRequestBody(b: BlockRequestBody): Uint8Array {
  return encode([BODY_VERSION, MESSAGE_TYPE.blockRequest, b.chainId, b.height, b.digest, b.validator])
}

function encodeBlockBody(chainId: string, height: number, digest: Uint8Array): Uint8Array {
  return encode([BODY_VERSION, MESSAGE_TYPE.block, chainId, height, digest])
}

function header(f: Value[], type: number, what: string): void {
  if (f[0] !== BODY_VERSION) throw new ConsensusError('MALFORMED', `${what}.version: unsupported`)
  if (f[1] !== type) throw new ConsensusError('MALFORMED', `${what}.type: does not match the envelope`)
}

export function decodeViewChangeBody(
  bytes: Uint8Array,
  maxBytes: number = LIMITS.maxConsensusBytes,
): ViewChangeBody {
  const f = expectArray(decodeStrict(bytes, { maxBytes, maxDepth: 5 }), 7, 'viewChange')
  header(f, MESSAGE_TYPE.viewChange, 'viewChange')
  const cp = expectArray(f[5] as Value, 3, 'viewChange.checkpoint')
  const checkpoint: CheckpointProof = {
    height: expectUint(cp[0], 'viewChange.checkpoint.height'),
    digest: expectBytes(cp[1], 'viewChange.checkpoint.digest', 32),
    signatures: readSigList(cp[2], 'viewChange.checkpoint.signatures'),
  }
  const list = f[6]
  if (!Array.isArray(list) || list.length > MAX_LIST)
    throw new ConsensusError('MALFORMED', 'viewChange.prepared: expected a list')
  const prepared: PreparedCertificate[] = list.map((e, i) => {
    const p = expectArray(e, 4, `viewChange.prepared[${i}]`)
    return {
      height: expectUint(p[0], 'prepared.height'),
      view: expectUint(p[1], 'prepared.view'),
      digest: expectBytes(p[2], 'prepared.digest', 32),
      signatures: readSigList(p[3], 'prepared.signatures'),
    }
  })
  return {
    chainId: expectString(f[2], 'viewChange.chainId', CHAIN_ID_RE),
    view: expectUint(f[3], 'viewChange.view'),
    validator: expectBytes(f[4], 'viewChange.validator', 32),
    checkpoint,
    prepared,
  }
}

function decodeNewViewBody(bytes: Uint8Array, maxBytes: number): NewViewBody {
  const f = expectArray(decodeStrict(bytes, { maxBytes, maxDepth: 3 }), 7, 'newView')
  header(f, MESSAGE_TYPE.newView, 'newView')
  const vcs = f[5]
  const rps = f[6]
  if (!Array.isArray(vcs) || vcs.length > MAX_LIST)
    throw new ConsensusError('MALFORMED', 'newView.viewChanges: expected a list')
  if (!Array.isArray(rps) || rps.length > MAX_LIST)
    throw new ConsensusError('MALFORMED', 'newView.reproposals: expected a list')
  return {
    chainId: expectString(f[2], 'newView.chainId', CHAIN_ID_RE),
    view: expectUint(f[3], 'newView.view'),
    validator: expectBytes(f[4], 'newView.validator', 32),
    viewChanges: vcs.map((e, i) => {
      const p = expectArray(e, 2, `newView.viewChanges[${i}]`)
      return {
        bodyBytes: expectBytes(p[0], 'viewChange.body'),
        signature: expectBytes(p[1], 'viewChange.signature', 64),
      }
    }),
    reproposals: rps.map((e, i) => {
      const p = expectArray(e, 3, `newView.reproposals[${i}]`)
      return {
        height: expectUint(p[0], 'reproposal.height'),
        digest: expectBytes(p[1], 'reproposal.digest', 32),
        signature: expectBytes(p[2], 'reproposal.signature', 64),
      }
    }),
  }
}

function decodeStatusBody(bytes: Uint8Array): StatusBody {
  const f = expectArray(decodeStrict(bytes, { maxBytes: 256, maxDepth: 1 }), 7, 'status')
  header(f, MESSAGE_TYPE.status, 'status')
  return {
    chainId: expectString(f[2], 'status.chainId', CHAIN_ID_RE),
    view: expectUint(f[3], 'status.view'),
    committedHeight: expectUint(f[4], 'status.committedHeight'),
    validator: expectBytes(f[5], 'status.validator', 32),
    round: expectUint(f[6], 'status.round'),
  }
}

function decodeBlockRequestBody(bytes: Uint8Array): BlockRequestBody {
  const f = expectArray(decodeStrict(bytes, { maxBytes: 256, maxDepth: 1 }), 6, 'blockRequest')
  header(f, MESSAGE_TYPE.blockRequest, 'blockRequest')
  return {
    chainId: expectString(f[2], 'blockRequest.chainId', CHAIN_ID_RE),
    height: expectUint(f[3], 'blockRequest.height'),
    digest: expectBytes(f[4], 'blockRequest.digest', 32),
    validator: expectBytes(f[5], 'blockRequest.validator', 32),
  }
}

/** Encodes a message; signatures must already be in it (see the builders in `sign.ts`). */
export function encodeMessage(m: ConsensusMessage): Uint8Array {
  switch (m.type) {
    case 'prePrepare':
      return wire(m.type, encodeVote(m.vote), m.signature, [m.block])
    case 'prepare':
    case 'commit':
    case 'checkpoint':
      return wire(m.type, encodeVote(m.vote), m.signature)
    case 'viewChange':
    case 'newView':
    case 'blockRequest':
      return wire(m.type, m.bodyBytes, m.signature)
    case 'status':
      return wire(m.type, m.bodyBytes, m.signature, m.certificate ? [encodeCertificate(m.certificate)] : [])
    case 'certificate':
      return wire(m.type, m.bodyBytes, new Uint8Array(0), m.block.length ? [m.block] : [])
    case 'block':
      return wire(m.type, encodeBlockBody(m.chainId, m.height, m.digest), new Uint8Array(0), [m.block])
  }
}

export interface DecodeOptions {
  /** Largest message accepted, bytes (checked before decoding). */
  maxBytes?: number
  /**
   * Accept (and drop) block attachments on a VIEW-CHANGE or NEW-VIEW, as written by versions before
   * they carried none. Only for reading this replica's own journal; the wire refuses them.
   */
  legacyAttachments?: boolean
}

/**
 * Strict decode of one consensus message: size cap first, canonical msgpack, every field typed and
 * range-checked, vote kind matching the message type. Signatures are NOT checked here (that needs the
 * validator set): the replica checks them. Throws ConsensusError('MALFORMED', penalize = true).
 */
export function decodeMessage(bytes: Uint8Array, opts: DecodeOptions = {}): ConsensusMessage {
  try {
    return decodeUnsafe(bytes, opts.maxBytes ?? consensusMessageLimit(), opts.legacyAttachments === true)
  } catch (err) {
    if (err instanceof ConsensusError) throw err
    if (err instanceof CityError) throw new ConsensusError('MALFORMED', err.message, { cause: err.code })
    throw new ConsensusError('MALFORMED', `undecodable message: ${(err as Error).message}`)
  }
}

function decodeUnsafe(bytes: Uint8Array, maxBytes: number, legacy: boolean): ConsensusMessage {
  const f = expectArray(decodeStrict(bytes, { maxBytes, maxDepth: 2 }), 5, 'message')
  if (f[0] !== WIRE_VERSION) throw new ConsensusError('MALFORMED', 'message.version: unsupported')
  const type = KIND_BY_TYPE.get(expectUint(f[1], 'message.type', 255))
  if (!type) throw new ConsensusError('MALFORMED', 'message.type: unknown')
  const body = expectBytes(f[2], 'message.body')
  const att = f[4]
  if (!Array.isArray(att) || att.length > MAX_LIST)
    throw new ConsensusError('MALFORMED', 'message.attachments: expected a list')
  const blocks = att.map((b, i) => expectBytes(b, `message.attachments[${i}]`))
  const noAttachments = () => {
    if (blocks.length) throw new ConsensusError('MALFORMED', `${type}: unexpected attachments`)
  }
  if (type === 'block') {
    expectBytes(f[3], 'message.signature', 0)
    if (blocks.length !== 1) throw new ConsensusError('MALFORMED', 'block: expected exactly one block')
    const b = expectArray(decodeStrict(body, { maxBytes: 256, maxDepth: 1 }), 5, 'block')
    header(b, MESSAGE_TYPE.block, 'block')
    return {
      type,
      chainId: expectString(b[2], 'block.chainId', CHAIN_ID_RE),
      height: expectUint(b[3], 'block.height'),
      digest: expectBytes(b[4], 'block.digest', 32),
      block: blocks[0]!,
    }
  }
  if (type === 'certificate') {
    expectBytes(f[3], 'message.signature', 0)
    if (blocks.length > 1) throw new ConsensusError('MALFORMED', 'certificate: at most one block')
    return {
      type,
      certificate: decodeCertificate(body),
      bodyBytes: body,
      block: blocks[0] ?? new Uint8Array(0),
    }
  }
  const signature = expectBytes(f[3], 'message.signature', 64)
  const voteKind = VOTE_KIND[type]
  if (voteKind !== undefined) {
    const vote = decodeVote(body)
    if (vote.kind !== voteKind)
      throw new ConsensusError('MALFORMED', `${type}: vote kind ${vote.kind} does not match`)
    if (type === 'prePrepare') {
      if (blocks.length !== 1) throw new ConsensusError('MALFORMED', 'prePrepare: expected exactly one block')
      return { type, vote, signature, block: blocks[0]! }
    }
    noAttachments()
    return { type: type as 'prepare' | 'commit' | 'checkpoint', vote, signature }
  }
  if (type === 'status') {
    if (blocks.length > 1) throw new ConsensusError('MALFORMED', 'status: at most one certificate')
    const body_ = decodeStatusBody(body)
    return blocks[0]
      ? { type, body: body_, bodyBytes: body, signature, certificate: decodeCertificate(blocks[0]) }
      : { type, body: body_, bodyBytes: body, signature }
  }
  if (!legacy || type === 'blockRequest') noAttachments()
  if (type === 'viewChange')
    return { type, body: decodeViewChangeBody(body, maxBytes), bodyBytes: body, signature }
  if (type === 'newView') return { type, body: decodeNewViewBody(body, maxBytes), bodyBytes: body, signature }
  return { type: 'blockRequest', body: decodeBlockRequestBody(body), bodyBytes: body, signature }
}

/** The exact message signed for a VIEW-CHANGE, NEW-VIEW or STATUS body. */
export function consensusSigningMessage(bodyBytes: Uint8Array): Uint8Array {
  return signingMessage(DOMAIN.consensus, bodyBytes)
}

/** Convenience for certificates travelling in CERTIFICATE messages. */
export function certificateMessage(certificate: CommitCertificate, block: Uint8Array): ConsensusMessage {
  return { type: 'certificate', certificate, bodyBytes: encodeCertificate(certificate), block }
}

export type { Vote }
