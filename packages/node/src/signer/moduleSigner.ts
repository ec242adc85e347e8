// An operator's signer module (their HSM binding), loaded once at start and checked before the node
// joins: a wrong key or a signer that cannot sign stops the start with an error naming the module.
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CityError, referenceVerdict, toHex, utf8 } from '@cityledger/core'
import type { CreateSigner, SignerErrorCode, ValidatorSigner } from './types.ts'

const fail = (code: SignerErrorCode, message: string, details: Record<string, unknown> = {}) =>
  new CityError(code, message, details)

const why = (err: unknown) => String((err as Error)?.message ?? err)

/**
 * Imports `modulePath` (an ES module; relative to the working directory) and calls its
 * `createSigner(options)`. SIGNER_LOAD when it cannot be imported, has no such export or the call
 * fails; SIGNER_BAD when what it returns is not a signer.
 */
export async function loadModuleSigner(modulePath: string, options: unknown): Promise<ValidatorSigner> {
  const path = resolve(modulePath)
  let mod: { createSigner?: unknown }
  try {
    mod = await import(pathToFileURL(path).href)
  } catch (err) {
    throw fail('SIGNER_LOAD', `signer module ${path} cannot be loaded: ${why(err)}`, { module: path })
  }
  if (typeof mod.createSigner !== 'function')
    throw fail('SIGNER_LOAD', `signer module ${path} has no createSigner export (a function)`, {
      module: path,
    })
  let signer: ValidatorSigner
  try {
    signer = await (mod.createSigner as CreateSigner)(options)
  } catch (err) {
    throw fail('SIGNER_LOAD', `signer module ${path}: createSigner failed: ${why(err)}`, { module: path })
  }
  const s = signer as Partial<ValidatorSigner> | null
  if (s === null || typeof s !== 'object')
    throw fail('SIGNER_BAD', `signer module ${path}: createSigner returned no object`, { module: path })
  if (!(s.publicKey instanceof Uint8Array) || s.publicKey.length !== 32)
    throw fail('SIGNER_BAD', `signer module ${path}: publicKey must be a Uint8Array of 32 bytes`, {
      module: path,
    })
  if (typeof s.sign !== 'function')
    throw fail('SIGNER_BAD', `signer module ${path}: sign must be a function`, { module: path })
  if (s.close !== undefined && typeof s.close !== 'function')
    throw fail('SIGNER_BAD', `signer module ${path}: close must be a function when given`, { module: path })
  return signer
}

/**
 * The checks the node makes at start, before it opens the network: `signer.publicKey` is `expected`
 * (the validator key of this node), and `sign` gives, synchronously, a 64-byte signature that verifies
 * on a random test message. The test message is under a domain no consensus message uses, so the
 * signature proves nothing to anyone but this check.
 */
export function checkSigner(
  signer: ValidatorSigner,
  o: { name: string; expected: Uint8Array; expectedWhat: string },
): void {
  const got = toHex(signer.publicKey)
  if (got !== toHex(o.expected))
    throw fail(
      'SIGNER_KEY_MISMATCH',
      `signer ${o.name} has public key ${got}, not ${toHex(o.expected)} (${o.expectedWhat}): refusing to start`,
      { signer: o.name, publicKey: got, expected: toHex(o.expected) },
    )
  const message = new Uint8Array([...utf8.encode('cityledger/signer-check/v1\0'), ...randomBytes(32)])
  let signature: unknown
  try {
    signature = signer.sign(message)
  } catch (err) {
    throw fail('SIGNER_BAD_SIGNATURE', `signer ${o.name} failed to sign a test message: ${why(err)}`, {
      signer: o.name,
    })
  }
  if (signature instanceof Promise || typeof (signature as { then?: unknown })?.then === 'function') {
    ;(signature as Promise<unknown>).catch?.(() => {})
    throw fail(
      'SIGNER_BAD_SIGNATURE',
      `signer ${o.name}: sign returned a Promise; it must return the signature synchronously (consensus signs inside a step)`,
      { signer: o.name },
    )
  }
  if (!(signature instanceof Uint8Array) || signature.length !== 64)
    throw fail(
      'SIGNER_BAD_SIGNATURE',
      `signer ${o.name}: sign must return a Uint8Array of 64 bytes (got ${describe(signature)})`,
      { signer: o.name },
    )
  if (!referenceVerdict({ publicKey: signer.publicKey, message, signature }))
    throw fail(
      'SIGNER_BAD_SIGNATURE',
      `signer ${o.name}: its signature of a test message does not verify against its public key ${got}`,
      { signer: o.name },
    )
}

function describe(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`
  return v === null ? 'null' : typeof v
}
