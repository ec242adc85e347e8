import { runSimulation } from '@cityledger/consensus'
const bug = JSON.parse(process.argv[2]!)
const faults = process.argv[5] ? process.argv[5].split(',') as any : undefined
const n = Number(process.argv[4] ?? 4)
const crashes = process.argv[6] ? Number(process.argv[6]) : undefined
let found = 0; const t0 = Date.now(); const kinds: Record<string, number> = {}
for (let s = 1; s <= Number(process.argv[3] ?? 50); s++) {
  const r = runSimulation({ seed: s, n, bug, faults, stopOnViolation: false, crashes, allFaults: true })
  const ag = r.violations.find(v => v.kind === 'agreement')
  for (const k of new Set(r.violations.map(v => v.kind))) kinds[k] = (kinds[k] ?? 0) + 1
  if (ag) { found++; if (found <= 2) console.log(ag.message.slice(0, 200)) }
}
console.log({ found, kinds, ms: Date.now() - t0 })
