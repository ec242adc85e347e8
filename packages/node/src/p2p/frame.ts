import { p2pError } from './errors.ts'

/**
 * Length-prefixed frames: an unsigned LEB128 varint byte length, then the payload. The header is at most
 * 5 bytes and must be minimal, so one payload has exactly one encoding.
 */

const MAX_HEADER_BYTES = 5

/** Upper bound of a frame payload this encoding can carry (2^32 - 1); real limits are far lower. */
export const MAX_FRAME_PAYLOAD = 0xffffffff

/** `varint(payload.length) || payload`, in one fresh buffer. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const len = payload.length
  if (len > MAX_FRAME_PAYLOAD)
    throw p2pError('P2P_MESSAGE_TOO_LARGE', `frame payload of ${len} bytes cannot be encoded`)
  let headerLen = 1
  for (let v = len; v >= 0x80; v = Math.floor(v / 128)) headerLen++
  const out = new Uint8Array(headerLen + len)
  let v = len
  for (let i = 0; i < headerLen - 1; i++) {
    out[i] = (v % 128) | 0x80
    v = Math.floor(v / 128)
  }
  out[headerLen - 1] = v
  out.set(payload, headerLen)
  return out
}

/**
 * Incremental frame decoder for one stream. The length is checked against `maxBytes` as soon as the header
 * is complete, before any payload byte is kept, so a peer cannot make us buffer an oversized frame.
 * After an error the decoder is poisoned: the stream must be reset.
 */
export class FrameDecoder {
  readonly maxBytes: number
  private header = 0
  private headerBytes = 0
  /** Payload length of the frame being read, or -1 while reading a header. */
  private need = -1
  private parts: Uint8Array[] = []
  private have = 0
  /** True while the payload of the current frame is read and dropped (refused from its header). */
  private skipping = false
  private failed = false
  /** Frames finished so far (delivered or skipped). */
  completed = 0

  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0 || maxBytes > MAX_FRAME_PAYLOAD) {
      throw p2pError('P2P_BAD_OPTIONS', `maxBytes must be an integer in [0, 2^32), got ${maxBytes}`)
    }
    this.maxBytes = maxBytes
  }

  /** Bytes held for a frame not yet complete (never more than `maxBytes`; 0 while skipping one). */
  get buffered(): number {
    return this.skipping ? 0 : this.have
  }

  /** True between the first header byte of a frame and its last payload byte. */
  get inFrame(): boolean {
    return this.headerBytes > 0 || this.need >= 0
  }

  /**
   * Feeds a chunk; calls `onFrame` for every frame it completes, in order, each payload a fresh copy.
   * `accept`, if given, sees each frame's length as soon as its header is complete: returning false
   * drops the frame, whose payload is then read past without being kept.
   * Throws `P2P_FRAME_TOO_LARGE` or `P2P_BAD_FRAME` (with `penalize`) once the input is known bad;
   * frames completed earlier in the same chunk have been delivered by then.
   */
  push(
    chunk: Uint8Array,
    onFrame: (payload: Uint8Array) => void,
    accept?: (length: number) => boolean,
  ): void {
    if (this.failed) throw p2pError('P2P_BAD_FRAME', 'decoder already failed; reset the stream', {}, true)
    let off = 0
    while (off < chunk.length) {
      if (this.need < 0) {
        const byte = chunk[off++]!
        this.header += (byte & 0x7f) * 2 ** (7 * this.headerBytes)
        this.headerBytes++
        if (byte & 0x80) {
          if (this.headerBytes >= MAX_HEADER_BYTES)
            this.fail('P2P_BAD_FRAME', 'frame header longer than 5 bytes')
          // Refuse as early as possible: the bits seen so far already exceed the limit.
          if (this.header > this.maxBytes) this.tooLarge(this.header)
          continue
        }
        if (byte === 0 && this.headerBytes > 1)
          this.fail('P2P_BAD_FRAME', 'frame header is not a minimal varint')
        if (this.header > this.maxBytes) this.tooLarge(this.header)
        this.need = this.header
        this.header = 0
        this.headerBytes = 0
        this.skipping = accept !== undefined && !accept(this.need)
        if (this.need === 0) {
          this.need = -1
          this.completed++
          if (!this.skipping) onFrame(new Uint8Array(0))
          this.skipping = false
        }
        continue
      }
      const take = Math.min(this.need - this.have, chunk.length - off)
      if (this.skipping) {
        this.have += take
        off += take
        if (this.have === this.need) {
          this.have = 0
          this.need = -1
          this.skipping = false
          this.completed++
        }
        continue
      }
      // A part that stays buffered past this call is copied: the transport may reuse the chunk's memory.
      const completes = this.have + take === this.need
      this.parts.push(completes ? chunk.subarray(off, off + take) : chunk.slice(off, off + take))
      this.have += take
      off += take
      if (this.have === this.need) {
        const payload = new Uint8Array(this.need)
        let at = 0
        for (const p of this.parts) {
          payload.set(p, at)
          at += p.length
        }
        this.parts = []
        this.have = 0
        this.need = -1
        this.completed++
        onFrame(payload)
      }
    }
  }

  private tooLarge(len: number): never {
    this.fail('P2P_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the limit of ${this.maxBytes}`, {
      size: len,
    })
  }

  private fail(
    code: 'P2P_FRAME_TOO_LARGE' | 'P2P_BAD_FRAME',
    message: string,
    details: Record<string, unknown> = {},
  ): never {
    this.failed = true
    this.parts = []
    this.have = 0
    throw p2pError(code, message, { ...details, limit: this.maxBytes }, true)
  }
}
