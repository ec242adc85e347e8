import { toHex } from '@cityledger/core'
import { NULL_DIGEST } from '../config.ts'
import type { CheckpointProof, ViewChangeBody } from '../messages/types.ts'

/** One height of a NEW-VIEW as every replica recomputes it from the VIEW-CHANGEs. */
export interface PlannedReproposal {
  height: number
  digest: Uint8Array
  /** The view of the prepared certificate carried over, or -1 for a null filler. */
  fromView: number
}

export interface NewViewPlan {
  /** The highest stable checkpoint among the VIEW-CHANGEs (min-s in the paper). */
  checkpoint: CheckpointProof
  /** Heights min-s+1 .. max-s, ascending, one entry each. */
  reproposals: PlannedReproposal[]
}

/**
 * Castro & Liskov, section 4.4 (NEW-VIEW): min-s is the latest stable checkpoint in V, max-s the highest
 * height of a prepared certificate in V. For every height in (min-s, max-s] the new primary re-proposes
 * the digest of the prepared certificate with the highest view, or a null request when V has none.
 * Deterministic in its input (ties between equal views, impossible with at most f faults, go to the
 * smallest digest), so backups recompute it and compare. `ignorePrepared` is a deliberate bug for tests.
 */
export function planNewView(viewChanges: readonly ViewChangeBody[], ignorePrepared = false): NewViewPlan {
  let checkpoint = viewChanges[0]!.checkpoint
  for (const vc of viewChanges) if (vc.checkpoint.height > checkpoint.height) checkpoint = vc.checkpoint
  const minS = checkpoint.height
  const best = new Map<number, { view: number; digest: Uint8Array; hex: string }>()
  let maxS = minS
  for (const vc of viewChanges) {
    for (const p of vc.prepared) {
      if (p.height <= minS) continue
      if (p.height > maxS) maxS = p.height
      const hex = toHex(p.digest)
      const cur = best.get(p.height)
      if (!cur || p.view > cur.view || (p.view === cur.view && hex < cur.hex))
        best.set(p.height, { view: p.view, digest: p.digest, hex })
    }
  }
  const reproposals: PlannedReproposal[] = []
  for (let h = minS + 1; h <= maxS; h++) {
    const b = ignorePrepared ? undefined : best.get(h)
    reproposals.push(
      b
        ? { height: h, digest: b.digest, fromView: b.view }
        : { height: h, digest: NULL_DIGEST, fromView: -1 },
    )
  }
  return { checkpoint, reproposals }
}
