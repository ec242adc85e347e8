import { readFileSync } from 'node:fs'

/** The version of @cityledger/node this process runs (its package.json), or 'unknown'. */
export const NODE_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    return pkg.version
  } catch {
    return 'unknown'
  }
})()
