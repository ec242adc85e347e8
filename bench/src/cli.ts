/**
 * `cityledger bench <id> [--json] [--rounds N] [--warmup N] ...`: runs one benchmark, prints a table
 * (or one JSON object with --json) on stdout, progress on stderr, and writes bench/results/<id>.json.
 */
import { parseArgs } from 'node:util'
import { type BenchResult, writeResult } from './harness.ts'
import { BENCHMARKS, type BenchId, formatResult, runBenchmark } from './index.ts'
import { abuseOptions, abuseTable, runAbuse } from './abuse.ts'

const USAGE = `usage: cityledger bench <${[...BENCHMARKS, 'abuse'].join('|')}> [options]

common:   --json  --rounds N  --warmup N  --out DIR (default bench/results)  --no-write
verify:   --count N (20000)  --signers N (2000)  --noble N (800)  --pool-size N
block:    --sizes 1000,5000,10000  --signers N (10000)  --sandbox (services in the SES sandbox, as validators run them)
mempool:  --txs N (100000)  --signers N (10000)  --block N (5000)
network:  --validators N (4)  --rate TX/S (3000) | --ramp FROM:TO:STEP  --seconds N (20)  --signers N (10000)
          --submit-to all|primary (all: each signer to one node; primary: everything to node 0)
disk:     --idle-blocks N (2000)  --loaded-blocks N (600)  --rate TX/S (100)  --retain N (256)
          --heartbeat-ms N (30000)  --signers N (2000)  --network-seconds N (20; 0 = no real network)
          --network-heartbeat-ms N (5000)
statesync: --keys N (1000000)  --blocks N (100): state sync against replay of a chain of N keys
abuse:    --seconds N (10 per phase)  --rate TX/S (20)  --sse N (2000)  --slow-loris N (200)
          --flood-connections N (32)  --partial-frames N (4)  --partial-frame-mib N (60)  --pre-prepares N (300)`

/** A usage error: printed with the usage, exit code 2 (the CLI's usage code), no stack trace. */
class UsageError extends Error {}

function parse() {
  try {
    return parseCommandLine()
  } catch (err) {
    // parseArgs throws ERR_PARSE_ARGS_* for unknown flags and flags without their value.
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message)
    throw err
  }
}

function parseCommandLine() {
  return parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      count: { type: 'string' },
      signers: { type: 'string' },
      noble: { type: 'string' },
      'pool-size': { type: 'string' },
      sizes: { type: 'string' },
      sandbox: { type: 'boolean', default: false },
      txs: { type: 'string' },
      block: { type: 'string' },
      validators: { type: 'string' },
      rate: { type: 'string' },
      ramp: { type: 'string' },
      seconds: { type: 'string' },
      'submit-to': { type: 'string' },
      sse: { type: 'string' },
      'slow-loris': { type: 'string' },
      'flood-connections': { type: 'string' },
      'partial-frames': { type: 'string' },
      'partial-frame-mib': { type: 'string' },
      'pre-prepares': { type: 'string' },
      'idle-blocks': { type: 'string' },
      'loaded-blocks': { type: 'string' },
      retain: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'network-seconds': { type: 'string' },
      'network-heartbeat-ms': { type: 'string' },
      keys: { type: 'string' },
      blocks: { type: 'string' },
    },
  })
}

async function main(): Promise<number> {
  const { values, positionals } = parse()
  const id = positionals[0]
  if (values.help || !id) {
    process.stdout.write(`${USAGE}\n`)
    return values.help ? 0 : 2
  }
  if (id === 'abuse') {
    const result = await runAbuse(
      abuseOptions(values),
      `pnpm cityledger bench ${process.argv.slice(2).join(' ')}`,
    )
    if (!values['no-write']) process.stderr.write(`wrote ${writeResult(result, values.out)}\n`)
    process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${abuseTable(result)}\n`)
    return 0
  }
  if (!BENCHMARKS.includes(id as BenchId)) {
    process.stderr.write(`unknown benchmark ${JSON.stringify(id)}\n${USAGE}\n`)
    return 2
  }
  const command = `pnpm cityledger bench ${process.argv.slice(2).join(' ')}`
  const result: BenchResult = await runBenchmark(id as BenchId, values, command)
  if (!values['no-write']) {
    const path = writeResult(result, values.out)
    process.stderr.write(`wrote ${path}\n`)
  }
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${formatResult(result)}\n`)
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`)
      process.exitCode = 2
      return
    }
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  },
)
