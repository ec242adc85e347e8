import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** Bytes of a folder: `apparent` (file sizes) and `allocated` (what `du` reports: blocks * 512). */
export function folderBytes(dir: string): { apparent: number; allocated: number } {
  let apparent = 0
  let allocated = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const st = statSync(join(e.parentPath, e.name))
    apparent += st.size
    allocated += st.blocks * 512
  }
  return { apparent, allocated }
}
