import { type KeyPair, generateKeyPair } from '@cityledger/core'
import { seedFor } from '@cityledger/core/testing'

/** The demo's keys: derived from their label, so a rerun on the same chain uses the same agencies. */
export const keyOf = (label: string): KeyPair => generateKeyPair(seedFor(`demo/${label}`))
