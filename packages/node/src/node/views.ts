import {
  type Block,
  type CommitCertificate,
  type ServiceEvent,
  type Value,
  decodeCertificate,
  decodeTx,
  toHex,
} from '@cityledger/core'
import { valueToRpcJson } from '../config/json.ts'
import type { BlockView, CertificateView, TxEventView } from '../rpc/index.ts'

/** JSON forms of core structures for RPC v1 (bytes as lowercase hex). */
export function certificateView(c: CommitCertificate): CertificateView {
  return {
    chainId: c.chainId,
    view: c.view,
    height: c.height,
    blockHash: toHex(c.blockHash),
    signatures: c.signatures.map((s) => ({ validator: toHex(s.validator), signature: toHex(s.signature) })),
  }
}

export function blockView(block: Block, certBytes: Uint8Array | undefined): BlockView {
  const h = block.header
  return {
    hash: toHex(block.hash),
    header: {
      chainId: h.chainId,
      height: h.height,
      view: h.view,
      time: h.time,
      parentHash: toHex(h.parentHash),
      txRoot: toHex(h.txRoot),
      prevStateRoot: toHex(h.prevStateRoot),
      proposer: toHex(h.proposer),
    },
    txs: block.txs.map((t) => toHex(decodeTx(t).hash)),
    certificate: certBytes
      ? certificateView(decodeCertificate(certBytes))
      : { chainId: h.chainId, view: h.view, height: h.height, blockHash: toHex(block.hash), signatures: [] },
  }
}

export function eventView(e: ServiceEvent): TxEventView {
  return { service: e.service, type: e.name, data: valueToRpcJson(e.data as Value) }
}
