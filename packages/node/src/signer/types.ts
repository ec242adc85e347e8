import type { CityError } from '@cityledger/core'

/**
 * What signs for a validator: the consensus votes and messages, and (through the p2p identity) the
 * Noise handshake. `sign` returns the 64-byte Ed25519 signature of `message` by `publicKey`.
 *
 * `sign` is synchronous on purpose. Consensus is a pure synchronous state machine that calls
 * `config.sign(bytes)` inside a step (packages/consensus/src/replica/*.ts), and the calls an HSM
 * offers are synchronous too: PKCS#11 `C_Sign` blocks until the token answers, and the Node bindings
 * of PKCS#11 (pkcs11js, graphene) and of YubiHSM / cloud HSM SDKs that run on the machine expose it as
 * a synchronous call. A signer across the network (a remote KMS, tmkms) would need an asynchronous
 * sign, hence a consensus that can wait in the middle of a step: out of scope here. Opening a session
 * (PIN, slot) may be asynchronous: that is what the factory and `close` are for.
 *
 * @example
 * // my-hsm.mjs, given to `cityledger start --signer-module ./my-hsm.mjs --signer-options hsm.json`
 * export async function createSigner(options) {
 *   const session = await openSession(options.slot, options.pinFile)
 *   return {
 *     publicKey: session.publicKey, // Uint8Array(32)
 *     sign: (message) => session.signEd25519(message), // Uint8Array(64), synchronous
 *     close: () => session.logout(),
 *   }
 * }
 */
export interface ValidatorSigner {
  /** The 32-byte Ed25519 public key; it must be a validator key of the genesis. */
  readonly publicKey: Uint8Array
  /** The 64-byte Ed25519 signature of `message` (the exact bytes, domain prefix included). Synchronous. */
  sign(message: Uint8Array): Uint8Array
  /** Ends the session (called once when the node stops). */
  close?(): Promise<void>
}

/** The signature of an operator's signer module: `export async function createSigner(options)`. */
export type CreateSigner = (options: unknown) => ValidatorSigner | Promise<ValidatorSigner>

/** Where the node finds an external signer (today from `start --signer-module/--signer-options`). */
export interface SignerSettings {
  /** Path of the ES module exporting `createSigner(options)`. */
  module: string
  /** Handed to `createSigner` as they are (parsed from the options JSON file). */
  options?: unknown
  /** The double-sign guard's state file (`<home>/signer-state.json` when started by the CLI). */
  stateFile: string
}

export type SignerErrorCode =
  /** The module cannot be imported or has no `createSigner` export, or `createSigner` threw. */
  | 'SIGNER_LOAD'
  /** The signer object is malformed (publicKey not 32 bytes, no sign function). */
  | 'SIGNER_BAD'
  /** The signer's public key is not the validator key expected (genesis, key.json). */
  | 'SIGNER_KEY_MISMATCH'
  /** `sign` gave no valid 64-byte signature at start, or returned a Promise. */
  | 'SIGNER_BAD_SIGNATURE'
  /** `sign` threw or gave a bad signature while the node ran. */
  | 'SIGNER_FAILED'
  /** The double-sign guard refused a vote that conflicts with one already signed. */
  | 'DOUBLE_SIGN'
  /** The double-sign guard's state file is unreadable or cannot be written. */
  | 'SIGNER_STATE'

export type SignerError = CityError<SignerErrorCode>
