import { METHOD_RE, SERVICE_RE } from '../codec/limits.ts'

/** What the search index keeps of a transaction's body. */
export interface TxTerms {
  service: string
  method: string
  /** Ed25519 public key, 32 bytes (a view into the tx bytes). */
  signer: Uint8Array
}

/**
 * Reads service, method and signer out of an envelope `[bin(body), bin8(signature)]` whose body is
 * `[1, chainId, service, method, args, signer, nonce, expiry]`, skipping `args` without decoding it:
 * `decodeTx` costs about 25 µs a tx (strict decode of the args), which would add a tenth of a second
 * to the commit of a 5,000-tx block. Anything that is not that shape gives `undefined` (the tx is
 * then indexed by its events only). The tx was strictly decoded at admission and by the executor;
 * this only has to find the fields, and never throws.
 */
export function peekTx(b: Uint8Array): TxTerms | undefined {
  if (b.length < 4 || b[0] !== 0x92) return undefined
  let p: number
  if (b[1] === 0xc4) p = 3
  else if (b[1] === 0xc5) p = 4
  else return undefined
  // Body: fixarray of 8, version 1.
  if (b[p] !== 0x98 || b[p + 1] !== 0x01) return undefined
  p += 2
  const afterChainId = skipValue(b, p)
  if (afterChainId < 0) return undefined
  const service = readStr(b, afterChainId)
  if (!service || !SERVICE_RE.test(service.value)) return undefined
  const method = readStr(b, service.end)
  if (!method || !METHOD_RE.test(method.value)) return undefined
  const afterArgs = skipValue(b, method.end)
  if (afterArgs < 0 || b[afterArgs] !== 0xc4 || b[afterArgs + 1] !== 32 || afterArgs + 34 > b.length)
    return undefined
  return { service: service.value, method: method.value, signer: b.subarray(afterArgs + 2, afterArgs + 34) }
}

/** A short ASCII string (fixstr or str8; names are at most 64 characters) at `p`. */
function readStr(b: Uint8Array, p: number): { value: string; end: number } | undefined {
  const t = b[p]
  let len: number
  let off: number
  if (t !== undefined && t >= 0xa0 && t <= 0xbf) {
    len = t & 0x1f
    off = p + 1
  } else if (t === 0xd9) {
    len = b[p + 1] ?? 0
    off = p + 2
  } else return undefined
  if (off + len > b.length) return undefined
  let value = ''
  for (let i = off; i < off + len; i++) value += String.fromCharCode(b[i]!)
  return { value, end: off + len }
}

/** The offset after the msgpack value at `p`, or -1 when it is malformed or runs past the end. */
function skipValue(b: Uint8Array, p: number): number {
  let pending = 1
  while (pending > 0) {
    if (p >= b.length) return -1
    const t = b[p]!
    pending--
    const be = (n: number): number => {
      let v = 0
      for (let i = 1; i <= n; i++) v = v * 256 + (b[p + i] ?? 0)
      return v
    }
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) p += 1
    else if (t <= 0x8f) (pending += 2 * (t & 0x0f)), (p += 1)
    else if (t <= 0x9f) (pending += t & 0x0f), (p += 1)
    else if (t <= 0xbf) p += 1 + (t & 0x1f)
    else if (t === 0xc4 || t === 0xd9) p += 2 + be(1)
    else if (t === 0xc5 || t === 0xda) p += 3 + be(2)
    else if (t === 0xc6 || t === 0xdb) p += 5 + be(4)
    else if (t === 0xc7) p += 3 + be(1)
    else if (t === 0xc8) p += 4 + be(2)
    else if (t === 0xc9) p += 6 + be(4)
    else if (t === 0xca) p += 5
    else if (t === 0xcb) p += 9
    else if (t >= 0xcc && t <= 0xcf) p += 1 + (1 << (t - 0xcc))
    else if (t >= 0xd0 && t <= 0xd3) p += 1 + (1 << (t - 0xd0))
    else if (t >= 0xd4 && t <= 0xd8) p += 2 + (1 << (t - 0xd4))
    else if (t === 0xdc) (pending += be(2)), (p += 3)
    else if (t === 0xdd) (pending += be(4)), (p += 5)
    else if (t === 0xde) (pending += 2 * be(2)), (p += 3)
    else if (t === 0xdf) (pending += 2 * be(4)), (p += 5)
    else return -1 // 0xc1 is never used
    // A declared count larger than the bytes left cannot be real: stop before looping on it.
    if (pending > b.length - p) return -1
  }
  return p > b.length ? -1 : p
}
