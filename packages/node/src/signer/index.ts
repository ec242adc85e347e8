// The validator's signer: its key file (the default), or an operator's module (an HSM binding) behind
// the start checks and the double-sign guard. Consensus calls `sign` synchronously (see types.ts).
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CityError, type KeyPair } from '@cityledger/core'
import { fileSigner } from './fileSigner.ts'
import { guardSigner } from './guard.ts'
import { checkSigner, loadModuleSigner } from './moduleSigner.ts'
import type { SignerSettings, ValidatorSigner } from './types.ts'

export type { CreateSigner, SignerErrorCode, SignerSettings, ValidatorSigner } from './types.ts'
export { fileSigner } from './fileSigner.ts'
export { type GuardOptions, SIGNER_STATE_FORMAT, guardSigner } from './guard.ts'
export { checkSigner, loadModuleSigner } from './moduleSigner.ts'
export { libp2pKeyOfSigner } from './libp2pKey.ts'

/** The env variables `start --signer-module/--signer-options` set (until config.json has `signer`). */
export const SIGNER_ENV = {
  module: 'CITYLEDGER_SIGNER_MODULE',
  /** A JSON file whose contents are handed to `createSigner`. */
  options: 'CITYLEDGER_SIGNER_OPTIONS',
  /** The double-sign guard's state file (default: `signer-state.json` beside the data folder). */
  state: 'CITYLEDGER_SIGNER_STATE',
} as const

/** The signer settings in `env`, or undefined when no module is named. */
export function signerSettingsFromEnv(env: NodeJS.ProcessEnv, dataDir: string): SignerSettings | undefined {
  const module = env[SIGNER_ENV.module]
  if (!module) return undefined
  const optionsFile = env[SIGNER_ENV.options]
  return {
    module,
    ...(optionsFile ? { options: readSignerOptions(optionsFile) } : {}),
    stateFile: env[SIGNER_ENV.state] || join(resolve(dataDir), '..', 'signer-state.json'),
  }
}

/** The signer options file, parsed. Its contents are never quoted (it may name PINs or slots). */
export function readSignerOptions(path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new CityError(
      'SIGNER_LOAD',
      `cannot read the signer options file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    )
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new CityError('SIGNER_LOAD', `signer options file ${path}: not valid JSON (contents not shown)`)
  }
}

export interface OpenedSigner {
  signer: ValidatorSigner
  /** For log lines: `key file` or the module's path. */
  name: string
}

/**
 * The signer a node signs with. Without `settings`, its key (key.json): the consensus journal already
 * keeps it from contradicting itself, so no extra guard. With `settings`, the operator's module,
 * refused unless its public key is the node's own key (key.json is still the p2p identity) and it signs a
 * test message correctly (its key need not be in the genesis: a validator-set change may add it later); then behind the double-sign
 * guard (a module's key may be reachable from more than this home: an HSM shared by mistake).
 */
export async function openValidatorSigner(o: {
  /** key.json; its public key alone when the secret is in the signer module (`loadNodeKey`). */
  key: KeyPair | { publicKey: Uint8Array; secretKey?: undefined }
  validators: readonly Uint8Array[]
  chainId: string
  watermarkWindow: number
  settings?: SignerSettings
}): Promise<OpenedSigner> {
  if (!o.settings) {
    if (!o.key.secretKey)
      throw new CityError(
        'SIGNER_LOAD',
        'key.json holds only a public key: its secret must be in a signer module (signer.module in config.json, or start --signer-module)',
      )
    return { signer: fileSigner(o.key as KeyPair), name: 'key file' }
  }
  const name = resolve(o.settings.module)
  const inner = await loadModuleSigner(o.settings.module, o.settings.options)
  try {
    checkSigner(inner, {
      name,
      expected: o.key.publicKey,
      expectedWhat: "key.json's, this node's p2p identity",
    })
    const signer = guardSigner(inner, {
      path: o.settings.stateFile,
      chainId: o.chainId,
      keepHeights: Math.max(256, 2 * o.watermarkWindow),
    })
    return { signer, name }
  } catch (err) {
    await inner.close?.().catch(() => {})
    throw err
  }
}

/**
 * `signer` for consensus: a `sign` that throws, or returns anything but 64 bytes, calls `onFailure`
 * (the node's fatal stop) with a SIGNER_FAILED or DOUBLE_SIGN error naming the signer, then throws it:
 * the consensus step is abandoned, nothing it produced is journalled or sent.
 */
export function failStop(
  opened: OpenedSigner,
  onFailure: (err: CityError) => void,
): (message: Uint8Array) => Uint8Array {
  const { signer, name } = opened
  return (message) => {
    let failure: CityError
    try {
      const s = signer.sign(message)
      if (s instanceof Uint8Array && s.length === 64) return s
      failure = new CityError('SIGNER_FAILED', `signer ${name}: sign returned no 64-byte signature`, {
        signer: name,
      })
    } catch (err) {
      failure =
        err instanceof CityError && (err.code === 'DOUBLE_SIGN' || err.code === 'SIGNER_STATE')
          ? err
          : new CityError('SIGNER_FAILED', `signer ${name}: sign failed: ${(err as Error)?.message ?? err}`, {
              signer: name,
            })
    }
    onFailure(failure)
    throw failure
  }
}
