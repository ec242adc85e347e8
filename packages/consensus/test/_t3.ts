import { runSimulation } from '@cityledger/consensus'
const r = runSimulation({ seed: Number(process.argv[2]), n: Number(process.argv[3] ?? 4) })
console.log(r.violations, r.faultsInjected, r.byzantine, r.rejects)
console.table(r.finalStatus)
