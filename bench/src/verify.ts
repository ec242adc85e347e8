import { type KeyObject, createPublicKey, verify as opensslVerify } from 'node:crypto'
import {
  type SignatureCheck,
  type SignatureVerifier,
  createNativeVerifier,
  createPureVerifier,
  createVerifierPool,
  defaultPoolSize,
  sha256,
  txSignatureCheck,
} from '@cityledger/core'
import {
  type BenchResult,
  type Figures,
  type RoundOptions,
  fmt,
  machine,
  measure,
  progress,
  round3,
  table,
  targetCheck,
} from './harness.ts'
import { benchKey, checkSignerMatchesNoble, signFast, sodium } from './signer.ts'

export interface VerifyOptions extends RoundOptions {
  /** Signed transactions in the fixed set. */
  count: number
  /** Distinct signers among them. */
  signers: number
  /** noble is ~20x slower: it verifies only this many of the set per round. */
  nobleCount: number
  /** Pool workers (default: every core). */
  poolSize?: number
}

export const VERIFY_DEFAULTS: VerifyOptions = {
  warmup: 1,
  rounds: 5,
  count: 20_000,
  signers: 2_000,
  nobleCount: 800,
}

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** A fixed set of signed S-Coin-like transactions, signed once (with libsodium). */
export function signedChecks(count: number, signers: number, chainId = 'bench-verify'): SignatureCheck[] {
  checkSignerMatchesNoble(chainId)
  const keys = Array.from({ length: Math.min(signers, count) }, (_, i) => benchKey(`verify/${i}`))
  const nonces = new Array<number>(keys.length).fill(0)
  const out: SignatureCheck[] = []
  for (let i = 0; i < count; i++) {
    const k = i % keys.length
    const key = keys[k]!
    const tx = signFast(
      {
        chainId,
        service: 'identity',
        method: 'registerSubject',
        args: { subject: sha256(new Uint8Array(new Uint32Array([i]).buffer)) },
        signer: key.publicKey,
        nonce: ++nonces[k]!,
        expiry: 0,
      },
      key,
    )
    out.push(txSignatureCheck(tx))
  }
  return out
}

async function batchRound(v: SignatureVerifier, checks: SignatureCheck[]): Promise<void> {
  const verdicts = await v.verifyBatch(checks)
  if (verdicts.some((ok) => !ok)) throw new Error(`invariant broken: ${v.name} rejected a valid signature`)
}

/** Ed25519 verification: the engine's verifiers against bare one-core loops of the two native libraries. */
export async function runVerify(opts: VerifyOptions, command: string): Promise<BenchResult> {
  progress(`verify: signing ${opts.count} transactions from ${opts.signers} signers`)
  const checks = signedChecks(opts.count, opts.signers)
  const nobleChecks = checks.slice(0, Math.min(opts.nobleCount, checks.length))
  const poolSize = opts.poolSize ?? defaultPoolSize()
  const results: Record<string, Figures> = {}

  const noble = createPureVerifier()
  results.noble = await measure('noble', opts, nobleChecks.length, 'verify/s', () =>
    batchRound(noble, nobleChecks),
  )
  await noble.close()

  const native = await createNativeVerifier()
  const nativeBackend = native.name
  results.native = await measure(`native (${native.name})`, opts, checks.length, 'verify/s', () =>
    batchRound(native, checks),
  )
  await native.close()

  const pool = await createVerifierPool({ size: poolSize })
  try {
    results['native-pool'] = await measure(
      `native-pool (${poolSize} workers)`,
      opts,
      checks.length,
      'verify/s',
      () => batchRound(pool, checks),
    )
  } finally {
    await pool.close()
  }

  // The ceilings: nothing but the library call, keys decoded beforehand, one core.
  const keyObjects = new Map<string, KeyObject>()
  const opensslKeys = checks.map((c) => {
    const id = Buffer.from(c.publicKey).toString('latin1')
    let k = keyObjects.get(id)
    if (!k) {
      k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, c.publicKey]), format: 'der', type: 'spki' })
      keyObjects.set(id, k)
    }
    return k
  })
  results['openssl-raw'] = await measure('openssl-raw', opts, checks.length, 'verify/s', () => {
    let ok = 0
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!
      if (opensslVerify(null, c.message, opensslKeys[i]!, c.signature)) ok++
    }
    if (ok !== checks.length) throw new Error('invariant broken: openssl rejected a valid signature')
  })
  results['sodium-raw'] = await measure('sodium-raw', opts, checks.length, 'verify/s', () => {
    let ok = 0
    for (const c of checks) if (sodium.crypto_sign_verify_detached(c.signature, c.message, c.publicKey)) ok++
    if (ok !== checks.length) throw new Error('invariant broken: libsodium rejected a valid signature')
  })

  const raw = Math.max(results['openssl-raw']!.median, results['sodium-raw']!.median)
  const ratios = {
    poolVsRaw: round3(results['native-pool']!.median / raw),
    nativeVsRaw: round3(results.native!.median / raw),
    nativeVsNoble: round3(results.native!.median / results.noble!.median),
  }
  const m = machine()
  return {
    id: 'verify',
    command,
    date: new Date().toISOString(),
    machine: m,
    params: {
      ...opts,
      poolSize,
      nativeBackend,
      rawCeiling:
        results['sodium-raw']!.median >= results['openssl-raw']!.median ? 'sodium-raw' : 'openssl-raw',
    },
    variants: results as unknown as Record<string, Record<string, unknown>>,
    ratios,
    targets: {
      poolVsRaw: targetCheck(ratios.poolVsRaw, '>=', m.cores >= 2 ? 1.8 : 0.9, 'poolVsRaw'),
      nativeVsRaw: targetCheck(ratios.nativeVsRaw, '>=', 0.9, 'nativeVsRaw'),
    },
  }
}

export function verifyTable(r: BenchResult): string {
  const rows: (string | number)[][] = [['variant', 'median verify/s', 'min', 'max', 'spread %']]
  for (const [name, f] of Object.entries(r.variants as unknown as Record<string, Figures>))
    rows.push([name, f.median, f.min, f.max, fmt(f.spread * 100, 1)])
  return table(rows)
}
