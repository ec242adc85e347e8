import { join } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { CityError, isCityError, toHex } from '@cityledger/core'
import { InvalidArgumentError } from 'commander'
import { type Genesis, readKeyFile } from '../config/index.ts'

// What `reset` and `rollback` check before they touch a stopped node's data folder.

/** True if the home's key is a validator of `genesis` (an encrypted key we cannot read counts as one). */
export function isValidatorHome(home: string, genesis: Genesis): boolean {
  try {
    // The public key is in the file even when it is encrypted.
    const key = readKeyFile(join(home, 'key.json'))
    return genesis.validators.some((v) => v.publicKey.toLowerCase() === toHex(key.publicKey))
  } catch (err) {
    if (!isCityError(err, 'KEY_LOCKED')) throw err
    return true // unknown: treat as a validator
  }
}

/**
 * Asks the operator to type the chain id (unless `yes`); `verb` names the action in the refusal when
 * stdin is not a terminal, `nothing` what the abort leaves untouched.
 */
export async function confirmByChainId(o: {
  yes: boolean
  question: string
  chainId: string
  verb: string
  nothing: string
}): Promise<void> {
  if (o.yes) return
  if (!process.stdin.isTTY)
    throw new InvalidArgumentError(`stdin is not a terminal: pass --yes to ${o.verb} without asking`)
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const answer = await rl.question(`${o.question} Type the chain id (${o.chainId}) to confirm: `)
  rl.close()
  if (answer.trim() !== o.chainId) throw new CityError('ABORTED', `not confirmed: ${o.nothing}`)
}
