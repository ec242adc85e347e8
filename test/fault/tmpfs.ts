// A small, size-limited tmpfs for one node's data folder, so that LevelDB itself runs out of space
// (ENOSPC from the kernel, not from a test wrapper). Needs root and `mount`; `tmpfsUnavailable()`
// says why not, so callers can skip with a clear message. Every mount is undone by `unmount`, and by
// an exit hook if the harness dies first.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const mounted = new Set<string>()
process.once('exit', () => {
  for (const dir of mounted) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    } catch {}
  }
})

let probed: string | undefined | null = null

/** Undefined when a tmpfs can be mounted here; otherwise the reason (not root, no mount, ...). */
export function tmpfsUnavailable(): string | undefined {
  if (probed !== null) return probed
  if (process.platform !== 'linux') return (probed = `tmpfs mounts need Linux (this is ${process.platform})`)
  if (process.getuid?.() !== 0) return (probed = 'mounting a tmpfs needs root (the CI runs as root)')
  try {
    const dir = mountTmpfs(1)
    unmount(dir)
    probed = undefined
  } catch (err) {
    probed = `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`
  }
  return probed
}

/** Mounts a fresh tmpfs of `sizeMiB` MiB on a new temporary folder and returns the folder. */
export function mountTmpfs(sizeMiB: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  mounted.add(dir)
  return dir
}

/** Unmounts (lazily if still busy) and removes the folder. Safe to call twice. */
export function unmount(dir: string): void {
  if (!mounted.has(dir)) return
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' })
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
  }
  mounted.delete(dir)
  rmSync(dir, { recursive: true, force: true })
}

/** Writes `file` until the filesystem is full (ENOSPC); returns the bytes written. */
export function fillUp(file: string): number {
  const fd = openSync(file, 'w')
  let total = 0
  try {
    for (const size of [1 << 20, 1 << 12, 1 << 9]) {
      const chunk = Buffer.alloc(size, 0x5a)
      for (;;) {
        try {
          total += writeSync(fd, chunk)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
          throw err
        }
      }
    }
  } finally {
    closeSync(fd)
  }
  return total
}

/** Removes the filler written by `fillUp`. */
export function makeRoom(file: string): void {
  try {
    unlinkSync(file)
  } catch {}
}
