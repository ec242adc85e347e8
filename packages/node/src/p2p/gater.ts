import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { DenyReason } from './types.ts'

/**
 * The connection gater: only allowed, unbanned validator keys get a connection, in both directions.
 * The remote key is only proven after the Noise handshake, so the decisive checks are the
 * `*EncryptedConnection` hooks; `denyDialPeer` merely saves a pointless dial.
 */
export function createGater(
  admit: (peerId: PeerId) => DenyReason | undefined,
  onDeny: (peerId: PeerId, reason: DenyReason, direction: 'inbound' | 'outbound') => void,
): ConnectionGater {
  const check =
    (direction: 'inbound' | 'outbound') =>
    (peerId: PeerId): boolean => {
      const reason = admit(peerId)
      if (reason === undefined) return false
      onDeny(peerId, reason, direction)
      return true
    }
  return {
    denyDialPeer: check('outbound'),
    denyInboundEncryptedConnection: check('inbound'),
    denyOutboundEncryptedConnection: check('outbound'),
  }
}
