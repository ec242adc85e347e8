import { toHex } from '@cityledger/core'

/**
 * Service genesis for a local network: the city operator's key is admin of every scope ('*'), so the
 * demo and the tests can register agencies and grant roles from there. It also holds the admin roles
 * that services check by their own scope only (a '*' admin may grant them, but does not hold them):
 * token admin (creates the S-Coin and settlement assets) and scoin admin (programs, merchants).
 * The qualification service starts with its default predicates, usedcar with its default validities.
 * Governance has the city key as its one member (k = 1 of 1, so a proposal executes at once) and the
 * genesis validators as its validator set; the parameters keep their defaults. The validators' keys are
 * not its members: a testnet may have up to 64 validators, governance at most 32 members.
 * Governance is the chain's upgrade authority (`_sys.upgradeAuthority`): an executed upgrade proposal
 * schedules the runtime's upgrade, and a node without that service version stops at its height. It is
 * the validator authority too (`_sys.validatorAuthority`): an executed validator-set proposal records
 * the new set in the runtime's schedule (`_sys/validators/*`), the record consensus is to follow.
 */
export function defaultServiceGenesis(city: Uint8Array, validators: Uint8Array[]): Record<string, unknown> {
  const key = `0x${toHex(city)}`
  return {
    identity: {
      admins: [{ key, scopes: ['*'] }],
      roles: [
        { scope: 'token', role: 'admin', key },
        { scope: 'scoin', role: 'admin', key },
      ],
    },
    scoin: { asset: 'SCOIN' },
    governance: { members: [key], threshold: 1, validators: validators.map((v) => `0x${toHex(v)}`) },
    _sys: { upgradeAuthority: 'governance', validatorAuthority: 'governance' },
  }
}
