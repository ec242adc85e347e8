import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createTestnet } from './testnet.ts'

export interface DevnetOptions {
  validators: number
  home: string
  basePort: number
  reset: boolean
}

// `.ts` when run from source (Node strips the types), `.js` in the built package.
const MAIN = join(import.meta.dirname, import.meta.filename.endsWith('.ts') ? 'main.ts' : 'main.js')

/**
 * Runs N validators as child processes of this one, on loopback, from `home` (created on first use,
 * reused afterwards so the chain survives a restart). Logs go to `<home>/nodeI/node.log`. Ctrl-C
 * (SIGINT) or SIGTERM stops every node cleanly before this process exits.
 */
export async function runDevnet(opts: DevnetOptions): Promise<void> {
  if (opts.reset && existsSync(opts.home)) rmSync(opts.home, { recursive: true, force: true })
  const fresh = !existsSync(join(opts.home, 'node0', 'genesis.json'))
  if (fresh) createTestnet({ validators: opts.validators, out: opts.home, basePort: opts.basePort })
  const homes = Array.from({ length: opts.validators }, (_, i) => join(opts.home, `node${i}`))
  for (const h of homes) {
    if (!existsSync(join(h, 'config.json'))) {
      throw new Error(`${opts.home} holds a devnet of another size: use --reset or another --home`)
    }
  }
  const rpc = homes.map((h) => {
    const cfg = JSON.parse(readFileSync(join(h, 'config.json'), 'utf8')) as {
      rpc: { host: string; port: number }
    }
    return `http://${cfg.rpc.host}:${cfg.rpc.port}`
  })
  const say = (s: string) => process.stdout.write(`${s}\n`)
  say(`devnet: ${opts.validators} validators in ${opts.home} (${fresh ? 'new' : 'resumed'})`)

  const children: ChildProcess[] = []
  let stopping = false
  const exited = homes.map((home, i) => {
    const log = createWriteStream(join(home, 'node.log'), { flags: 'a' })
    // CITYLEDGER_EXIT_WITH_PARENT: the node leaves once this process is gone, even after a SIGKILL
    // here that runs no handler (see node/run.ts).
    const child = spawn(process.execPath, [MAIN, 'start', '--home', home], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CITYLEDGER_EXIT_WITH_PARENT: '1' },
    })
    child.stdout!.pipe(log)
    child.stderr!.pipe(log)
    children.push(child)
    return new Promise<number | null>((done) =>
      child.on('exit', (code) => {
        if (!stopping) say(`devnet: validator ${i} exited (code ${code}); see ${join(home, 'node.log')}`)
        done(code)
      }),
    )
  })

  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    say(`devnet: ${signal}, stopping ${children.length} validators...`)
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
    const force = setTimeout(() => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    }, 10_000)
    await Promise.all(exited)
    clearTimeout(force)
    say('devnet: stopped')
    process.exit(0)
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))

  // Ready when every node answers /v1/health.
  for (const [i, url] of rpc.entries()) {
    for (let attempt = 0; ; attempt++) {
      if (stopping) return
      try {
        const r = await fetch(`${url}/v1/status`)
        if (r.ok) break
      } catch {}
      if (attempt > 600) throw new Error(`validator ${i} did not come up; see ${join(homes[i]!, 'node.log')}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    say(`  validator ${i}: RPC ${url}   log ${join(homes[i]!, 'node.log')}`)
  }
  say(`devnet: ready. City operator key: ${join(opts.home, 'city-key.json')}`)
  say(`  try: pnpm cityledger status --rpc ${rpc[0]}`)
  say('  Ctrl-C stops the network.')
  await Promise.all(exited)
}
