// Child process of test/determinism.test.ts: generates the seeded blocks, executes them on a fresh store
// ('memory', or 'level' in the given folder) and writes the trace as JSON to the given file.
//   node determinism-child.ts <seed> memory|level <out.json> [<dbDir>]
import { writeFileSync } from 'node:fs'
import { openLevelKv, openMemoryKv } from '@cityledger/core'
import { generate, run } from './determinism-fixtures.ts'

const [seedText, kind, out, dbDir] = process.argv.slice(2)
const seed = Number(seedText)
if (
  !Number.isSafeInteger(seed) ||
  (kind !== 'memory' && kind !== 'level') ||
  !out ||
  (kind === 'level' && !dbDir)
)
  throw new Error('usage: determinism-child.ts <seed> memory|level <out.json> [<dbDir>]')
const { genesis, blocks } = generate(seed)
const kv = kind === 'memory' ? await openMemoryKv() : await openLevelKv(dbDir!)
const trace = await run(kv, genesis, blocks)
writeFileSync(out, JSON.stringify(trace))
