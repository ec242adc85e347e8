// What a running node exposes on /metrics: names an operator can query (no doubled prefix), the
// counters that must move when the node works (signatures verified, submit-to-commit), a text that
// `promtool check metrics` accepts, and every metric the shipped Grafana dashboard queries.
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { generateKeyPair } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { type LocalNode, startLocalNode, subjectTx } from './nodeHarness.ts'

let local: LocalNode
let text = ''

/** Metric family names in an exposition text (from its `# TYPE` lines). */
function families(body: string): Set<string> {
  return new Set([...body.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!))
}

/** The value of one sample line, e.g. `sample(text, 'cityledger_chain_height')`; undefined if absent. */
function sample(body: string, series: string): number | undefined {
  for (const line of body.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return undefined
}

test.before(async () => {
  local = await startLocalNode()
  const key = generateKeyPair()
  // Two txs committed through the RPC: their signatures are verified on the way in and in the block.
  for (const nonce of [1, 2]) {
    const tx = subjectTx(local.chainId, key, nonce, 'metrics')
    const r = await fetch(`${local.url}/v1/txs?wait=commit`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: tx.bytes,
    })
    // uvu reports a failing hook without its message.
    if (r.status !== 200) throw new Error(`submit: ${r.status} ${await r.text()}`)
  }
  text = await (await fetch(`${local.url}/metrics`)).text()
})

test.after(async () => {
  await local?.close()
})

test('signatures verified are counted', () => {
  const counted = [...text.matchAll(/^cityledger_crypto_signatures_verified_total\{[^}]*\} (\S+)$/gm)]
  const total = counted.reduce((n, m) => n + Number(m[1]), 0)
  assert.ok(total >= 2, `signatures verified: ${total}\n${counted.map((m) => m[0]).join('\n')}`)
})

test('no metric name repeats its prefix; process metrics have their standard names', () => {
  const names = [...families(text)]
  for (const n of names) assert.not.match(n, /^cityledger_process_|^(\w+_)\1/, n)
  for (const n of names) assert.match(n, /^(cityledger_|process_|nodejs_)/, n)
  assert.ok(names.includes('process_cpu_seconds_total'))
})

test('what an operator watches is there, and moves when blocks commit', () => {
  const names = families(text)
  for (const n of [
    'cityledger_build_info',
    'cityledger_chain_last_block_timestamp_seconds',
    'cityledger_chain_block_interval_seconds',
    'cityledger_tx_submit_to_commit_seconds',
    'cityledger_crypto_verifier_pending_signatures',
    'cityledger_crypto_verifier_pool_chunks',
    'cityledger_sync_catching_up',
    'cityledger_sync_target_height',
    'cityledger_consensus_certificate_missing_signers',
    'cityledger_consensus_missing_signatures_total',
    'cityledger_rpc_requests_total',
    'cityledger_rpc_request_duration_seconds',
    'cityledger_store_write_seconds',
  ])
    assert.ok(names.has(n), `${n} is exported`)
  assert.is(sample(text, 'cityledger_tx_submit_to_commit_seconds_count'), 2)
  const last = sample(text, 'cityledger_chain_last_block_timestamp_seconds')!
  assert.ok(Math.abs(last - Date.now() / 1000) < 60, `last block time ${last}`)
  assert.ok(sample(text, 'cityledger_chain_block_interval_seconds_count')! >= 1)
  assert.is(sample(text, 'cityledger_consensus_certificate_missing_signers'), 0)
  assert.ok(sample(text, 'cityledger_store_write_seconds_count{store="chain"}')! >= 1)
  assert.ok(sample(text, 'cityledger_store_write_seconds_count{store="journal"}')! >= 1)
  assert.is(sample(text, 'cityledger_sync_catching_up'), 0)
  // The RPC server reports each answered request: the two submits, by route pattern.
  const posts = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('cityledger_rpc_requests_total{') &&
        l.includes('route="/v1/txs"') &&
        l.includes('method="POST"'),
    )
  assert.ok(posts, 'the submits are counted by route')
  assert.is(Number(posts!.split(' ').at(-1)), 2)
  assert.match(text, /^cityledger_build_info\{version="\d+\.\d+\.\d+[^"]*",nodejs="[^"]+"\} 1$/m)
})

test('histogram buckets fit the latencies: blocks 0.1-3 s, submit-to-commit 0.2-10 s', () => {
  const buckets = (name: string) =>
    [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}`, 'gm'))].map((m) => Number(m[1]))
  const inside = (b: number[], lo: number, hi: number) => b.filter((x) => x >= lo && x <= hi).length
  assert.ok(inside(buckets('cityledger_chain_block_interval_seconds'), 0.1, 3) >= 6)
  assert.ok(inside(buckets('cityledger_consensus_commit_latency_seconds'), 0.1, 3) >= 6)
  assert.ok(inside(buckets('cityledger_tx_submit_to_commit_seconds'), 0.2, 10) >= 7)
})

test('promtool check metrics accepts the output', () => {
  if (spawnSync('promtool', ['--version']).error) {
    console.log('  SKIP promtool check: promtool is not installed (Debian: apt-get install prometheus)')
    return
  }
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  assert.is(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`)
})

test('every metric the Grafana dashboard queries exists on a running node', () => {
  const dir = resolve(import.meta.dirname, '../../../deploy/grafana')
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
  assert.ok(files.length > 0, `a dashboard in ${dir}`)
  const names = families(text)
  // A histogram family is queried through its _bucket, _sum and _count series.
  const exists = (n: string) => names.has(n) || names.has(n.replace(/_(bucket|sum|count)$/, ''))
  for (const f of files) {
    const dash = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
      panels: { targets?: { expr: string }[] }[]
    }
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr))
    assert.ok(exprs.length >= 10, `${f} has panels with queries`)
    for (const expr of exprs) {
      const used = [...expr.matchAll(/\b((?:cityledger|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!)
      assert.ok(used.length > 0, `${f}: ${expr} queries a node metric`)
      for (const n of used) assert.ok(exists(n), `${f}: ${n} (in ${expr}) is not on /metrics`)
    }
  }
})

test.run()
