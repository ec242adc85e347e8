// Child process of test/determinism.test.ts: generates the seeded blocks, executes them on a fresh store
// ('memory', or 'level' in the given folder) and writes the trace as JSON to the given file. The
// services run as a validator process runs them: each module of src/ in its own SES Compartment, after
// lockdown (core's loadServiceFolder), in the order of `allServices`.
//   node determinism-child.ts <seed> memory|level <out.json> [<dbDir>]
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadServiceFolder, openLevelKv, openMemoryKv } from '@cityledger/core'
import { allServices } from '../src/all.ts'
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
const loaded = loadServiceFolder(fileURLToPath(new URL('../src', import.meta.url)), {
  exclude: ['index.ts', 'all.ts'],
})
const byName = new Map(loaded.map((s) => [s.name, s]))
const services = allServices.map((s) => {
  const sandboxed = byName.get(s.name)
  if (!sandboxed) throw new Error(`the sandbox did not load ${s.name}`)
  return sandboxed
})
const trace = await run(kv, genesis, blocks, services)
writeFileSync(out, JSON.stringify(trace))
