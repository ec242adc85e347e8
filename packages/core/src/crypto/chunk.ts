import type { NativeVerifyFn } from './nativeBackend.ts'
import type { SignatureCheck } from './verifier.ts'

/*
 * Wire format of one pool chunk: a single ArrayBuffer, transferred (not cloned) to the worker.
 *   u32 LE count, then per check: publicKey (32) | signature (64) | u32 LE message length | message.
 * A check whose key or signature has the wrong length travels as 32 + 64 zero bytes: the all-zero R
 * is on the small-order blacklist, so the worker's precheck answers `false`, as every other path does.
 */

const ENTRY_FIXED = 32 + 64 + 4

/** Packs `checks[start..end)` into one transferable buffer. */
export function packChunk(checks: readonly SignatureCheck[], start: number, end: number): ArrayBuffer {
  let size = 4
  for (let i = start; i < end; i++) size += ENTRY_FIXED + checks[i]!.message.length
  const buf = new ArrayBuffer(size)
  const bytes = new Uint8Array(buf)
  const view = new DataView(buf)
  view.setUint32(0, end - start, true)
  let off = 4
  for (let i = start; i < end; i++) {
    const { publicKey, signature, message } = checks[i]!
    if (publicKey.length === 32 && signature.length === 64) {
      bytes.set(publicKey, off)
      bytes.set(signature, off + 32)
    } // else: left zero, see above
    view.setUint32(off + 96, message.length, true)
    bytes.set(message, off + ENTRY_FIXED)
    off += ENTRY_FIXED + message.length
  }
  return buf
}

/** Verifies every check of a packed chunk; returns one byte per check (1 valid, 0 invalid), in order. */
export function verifyChunk(buf: ArrayBuffer, verifyOne: NativeVerifyFn): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(buf)
  const view = new DataView(buf)
  const count = view.getUint32(0, true)
  const out = new Uint8Array(count)
  let off = 4
  for (let i = 0; i < count; i++) {
    const len = view.getUint32(off + 96, true)
    const publicKey = bytes.subarray(off, off + 32)
    const signature = bytes.subarray(off + 32, off + 96)
    const message = bytes.subarray(off + ENTRY_FIXED, off + ENTRY_FIXED + len)
    out[i] = verifyOne(publicKey, message, signature) ? 1 : 0
    off += ENTRY_FIXED + len
  }
  return out
}
