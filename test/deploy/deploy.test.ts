// The deployment files (issue #15): Dockerfile, deploy/compose.yaml, deploy/cityledger.service.
// Without Docker, what Docker would run is run here: the compose file's per-service commands, behind
// the Dockerfile's ENTRYPOINT, start the four validators of a `cityledger testnet` folder prepared by
// deploy/compose-homes.ts; they connect, commit blocks, pass the image's HEALTHCHECK command and stop
// on SIGTERM with exit 0. Only what Docker itself provides is replaced, and each replacement is named
// where it is made: the image's installed bin by the same CLI from the sources, the container home by
// the host folder its volume line mounts, the containers' addresses and ports by free loopback ports.
// The systemd unit's ExecStart is checked to be the same command, and `systemd-analyze verify` checks
// the unit where systemd is installed. The image build runs only where a Docker engine answers.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createClient, createTestnet, validateConfigFile, validateGenesisFile } from '@cityledger/node'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { GATEWAY, P2P_PORT, RPC_PORT, SUBNET_PREFIX, addressOf } from '../../deploy/compose-homes.ts'
import { freePorts } from '../helpers/ports.ts'
import { type ComposeService, parseCompose, parseDockerfile, parseUnit, splitCommand } from './parse.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')
const SOURCE_ENTRY = join(ROOT, 'packages/node/src/cli/main.ts')
// `start`'s own bound on its shutdown (packages/node/src/node/run.ts, exitDeadlineMs).
const NODE_EXIT_DEADLINE_S = 5

const docker = parseDockerfile(read('Dockerfile'))
const compose = parseCompose(read('deploy/compose.yaml'))
const unit = parseUnit(read('deploy/cityledger.service'))
const nodePackage = JSON.parse(read('packages/node/package.json'))
const final = docker.stages.at(-1)!
const one = (op: string) => {
  const found = final.filter((i) => i.op === op)
  assert.is(found.length, 1, `the image stage has ${found.length} ${op} instructions`)
  return found[0]!.args
}
/** An exec-form (JSON array) instruction: no shell between Docker and node. */
const execForm = (op: string, args = one(op)): string[] => {
  assert.ok(
    args.startsWith('['),
    `${op} is in shell form (a shell would be PID 1 and keep the signals): ${args}`,
  )
  return JSON.parse(args)
}
const entrypoint = execForm('ENTRYPOINT')
const cmd = execForm('CMD')
const homeOf = (args: string[]) => args[args.indexOf('--home') + 1]!
const workdir = one('WORKDIR')
// Where the image installs the `cityledger` bin of @cityledger/node.
const IMAGE_ENTRY = join(workdir, 'node_modules/@cityledger/node', nodePackage.publishConfig.bin.cityledger)

test('Dockerfile: Node 24, a non-root user whose home is a volume, exec-form entry on the published bin', () => {
  for (const stage of docker.stages) assert.match(stage[0]!.args, /^node:24-[a-z]+(-slim)?\b/)
  const user = one('USER')
  assert.not.ok(/^(root|0)(:|$)/.test(user), `USER ${user}`)
  assert.match(
    final.find((i) => i.op === 'RUN' && i.args.includes('useradd'))!.args,
    new RegExp(`\\b${user}$`, 'm'),
  )
  assert.equal(entrypoint, ['node', IMAGE_ENTRY])
  assert.equal(cmd, ['start', '--home', homeOf(cmd)])
  const volume = one('VOLUME')
  assert.is(volume, homeOf(cmd), 'the volume is the home `start` runs on')
  assert.is(one('STOPSIGNAL'), 'SIGTERM')
  assert.equal(one('EXPOSE').split(/\s+/), ['26656', '26657'])
  // The tarballs the build stage packs are the ones the image installs.
  const image = JSON.parse(read('deploy/image/package.json'))
  for (const p of ['core', 'consensus', 'apps', 'node']) {
    assert.is(image.dependencies[`@cityledger/${p}`], `file:/packs/${p}.tgz`)
    assert.is(image.pnpm.overrides[`@cityledger/${p}`], `file:/packs/${p}.tgz`)
  }
  assert.match(docker.stages[0]!.map((i) => i.args).join('\n'), /for p in core consensus apps node;/)
  // Keys of a local testnet and installed modules are never sent to a build.
  const ignored = read('.dockerignore').split('\n')
  for (const p of ['**/node_modules', 'deploy/testnet', '.devnet']) assert.ok(ignored.includes(p), p)
})

test('compose: four validators, each with its own home, address and published RPC port', () => {
  assert.equal(
    compose.map((s) => s.name),
    ['node0', 'node1', 'node2', 'node3'],
  )
  for (const [i, s] of compose.entries()) {
    assert.equal(s.command, cmd, `${s.name} runs the image's CMD`)
    assert.equal(s.volumes, [`./testnet/node${i}:${homeOf(cmd)}`], `${s.name} mounts its own home`)
    assert.is(s.ports.length, 1)
    assert.match(s.ports[0]!, /^127\.0\.0\.1:\d+:26657$/)
  }
  assert.is(new Set(compose.map((s) => s.ports[0])).size, 4)
  // The addresses and ports compose-homes.ts writes into the homes are the file's and the image's.
  assert.equal(
    compose.map((s) => s.address),
    compose.map((_, i) => addressOf(i)),
  )
  const yaml = read('deploy/compose.yaml')
  assert.match(yaml, `- subnet: ${SUBNET_PREFIX}0/24\n`)
  assert.match(yaml, `  gateway: ${GATEWAY}\n`)
  assert.equal(one('EXPOSE').split(/\s+/), [String(P2P_PORT), String(RPC_PORT)])
})

test('HEALTHCHECK runs GET /v1/health on the RPC port the image exposes', () => {
  const hc = one('HEALTHCHECK')
  const at = hc.indexOf('CMD [')
  assert.ok(at > 0, `HEALTHCHECK without an exec-form CMD: ${hc}`)
  const command = execForm('HEALTHCHECK', hc.slice(at + 4))
  assert.is(command[0], 'node')
  assert.match(command.join(' '), /http:\/\/127\.0\.0\.1:26657\/v1\/health/)
})

let work: string | undefined
let homes: string[] = []

test('compose-homes.ts turns a `cityledger testnet` folder into the homes compose.yaml mounts', () => {
  work = mkdtempSync(join(tmpdir(), 'cityledger-deploy-'))
  const out = join(work, 'testnet')
  const made = spawnSync(
    process.execPath,
    [SOURCE_ENTRY, 'testnet', '--validators', '4', '--out', out, '--chain-id', 'deploy-test'],
    { encoding: 'utf8' },
  )
  assert.is(made.status, 0, made.stderr)
  const ran = spawnSync(process.execPath, [join(ROOT, 'deploy/compose-homes.ts'), out], { encoding: 'utf8' })
  assert.is(ran.status, 0, ran.stderr)
  // Each service's home is the folder its volume line names (relative to deploy/, here to `work`).
  homes = compose.map((s) => join(work!, s.volumes[0]!.split(':')[0]!))
  const keyOf = (home: string) => JSON.parse(readFileSync(join(home, 'key.json'), 'utf8')).publicKey
  for (const [i, s] of compose.entries()) {
    const cfg = JSON.parse(readFileSync(join(homes[i]!, 'config.json'), 'utf8'))
    assert.equal(cfg.p2p.listen, ['/ip4/0.0.0.0/tcp/26656'], s.name)
    assert.is(cfg.rpc.host, '0.0.0.0', s.name)
    assert.is(cfg.rpc.port, 26657, s.name)
    const peers = compose.filter((_, j) => j !== i)
    assert.equal(
      cfg.p2p.peers.map((p: { publicKey: string; addrs: string[] }) => [p.publicKey, p.addrs]),
      peers.map((p) => [keyOf(homes[compose.indexOf(p)]!), [`/ip4/${p.address}/tcp/26656`]]),
      `${s.name}'s peers are the other services at their compose addresses`,
    )
    // What `cityledger config validate` and `start` check.
    assert.equal(validateConfigFile(join(homes[i]!, 'config.json')), [], s.name)
    assert.equal(validateGenesisFile(join(homes[i]!, 'genesis.json')), [], s.name)
  }
  // A second run changes nothing.
  const before = homes.map((h) => readFileSync(join(h, 'config.json'), 'utf8'))
  assert.is(spawnSync(process.execPath, [join(ROOT, 'deploy/compose-homes.ts'), out]).status, 0)
  assert.equal(
    homes.map((h) => readFileSync(join(h, 'config.json'), 'utf8')),
    before,
  )
})

test('compose-homes.ts refuses a folder it cannot ready, naming why, and writes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-deploy-bad-'))
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'deploy/compose-homes.ts'), ...args], { encoding: 'utf8' })
  try {
    assert.is(run().status, 2)
    // Seven validators: node0..node3 have peers that are no compose service.
    createTestnet({ validators: 7, out: join(dir, 'seven') })
    const config = (i: number) => readFileSync(join(dir, 'seven', `node${i}`, 'config.json'), 'utf8')
    const before = [0, 1, 2, 3].map(config)
    const seven = run(join(dir, 'seven'))
    assert.is(seven.status, 1)
    assert.match(seven.stderr, /node0\/config\.json: peer [0-9a-f]{64} is none of node0\.\.node3/)
    assert.equal([0, 1, 2, 3].map(config), before)
    // A broken node3/config.json: node0..node2 are left as they were too.
    createTestnet({ validators: 4, out: join(dir, 'broken') })
    writeFileSync(join(dir, 'broken', 'node3', 'config.json'), '{')
    const homeConfigs = () =>
      [0, 1, 2].map((i) => readFileSync(join(dir, 'broken', `node${i}`, 'config.json'), 'utf8'))
    const kept = homeConfigs()
    const broken = run(join(dir, 'broken'))
    assert.is(broken.status, 1)
    assert.match(broken.stderr, /node3\/config\.json: .*JSON/)
    assert.equal(homeConfigs(), kept)
    // One validator: there is no node1.
    createTestnet({ validators: 1, out: join(dir, 'one') })
    const one = run(join(dir, 'one'))
    assert.is(one.status, 1)
    assert.match(one.stderr, /node1\/key\.json: ENOENT/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

interface Running {
  service: ComposeService
  child: ChildProcess
  log: () => string
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** What Docker's network does for the validators, on loopback: each container address and port a free port. */
function mapToLoopback(ports: number[]): { rpc: string[] } {
  const p2p = (address: string) => {
    const j = compose.findIndex((s) => s.address === address)
    assert.ok(j >= 0, `peer address ${address} is no service's ipv4_address`)
    return ports[2 * j]!
  }
  const rpc: string[] = []
  for (const [i, home] of homes.entries()) {
    const file = join(home, 'config.json')
    const cfg = JSON.parse(readFileSync(file, 'utf8'))
    cfg.p2p.listen = [`/ip4/127.0.0.1/tcp/${ports[2 * i]}`]
    for (const peer of cfg.p2p.peers)
      peer.addrs = peer.addrs.map((a: string) => {
        const m = /^\/ip4\/([\d.]+)\/tcp\/26656$/.exec(a)
        assert.ok(m, `unexpected peer address ${a}`)
        return `/ip4/127.0.0.1/tcp/${p2p(m[1]!)}`
      })
    cfg.rpc.host = '127.0.0.1'
    cfg.rpc.port = ports[2 * i + 1]
    writeFileSync(file, JSON.stringify(cfg))
    rpc.push(`http://127.0.0.1:${cfg.rpc.port}`)
  }
  return { rpc }
}

/** The container's command line on this machine: ENTRYPOINT + the service's command. */
function commandLine(i: number): string[] {
  const [node, entry, ...rest] = [...entrypoint, ...compose[i]!.command]
  assert.is(node, 'node')
  assert.is(entry, IMAGE_ENTRY)
  // The image's bin is packages/node's `bin` built; here the same CLI runs from the sources.
  return [SOURCE_ENTRY, ...rest.map((a) => (a === homeOf(cmd) ? homes[i]! : a))]
}

function startService(i: number): Running {
  // Only the test's safety net is added: nodes it leaves behind when killed end with it.
  const child = spawn(process.execPath, commandLine(i), {
    env: { ...process.env, CITYLEDGER_EXIT_WITH_PARENT: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout!.on('data', (b) => (out += b))
  child.stderr!.on('data', (b) => (out += b))
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  )
  return { service: compose[i]!, child, log: () => out, exit }
}

/** Resolves once `check` returns true; polls every 100 ms, fails with `describe()` after `ms` or once `gaveUp` says why. */
async function until(
  check: () => Promise<boolean>,
  ms: number,
  describe: () => string,
  gaveUp: () => string | undefined,
): Promise<void> {
  const end = Date.now() + ms
  while (!(await check().catch(() => false))) {
    const why = gaveUp() ?? (Date.now() > end ? `timed out after ${ms} ms` : undefined)
    if (why) throw new Error(`${why}:\n${describe()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const healthcheck = (port: number) => {
  const hc = one('HEALTHCHECK')
  const [, ...args] = JSON.parse(hc.slice(hc.indexOf('CMD [') + 4)) as string[]
  return spawnSync(
    process.execPath,
    args.map((a) => a.replace('127.0.0.1:26657', `127.0.0.1:${port}`)),
    {
      encoding: 'utf8',
      timeout: 10_000,
    },
  )
}

test('the compose commands run the four validators: they commit, pass the HEALTHCHECK (and fail it without a quorum), stop on SIGTERM', async () => {
  assert.is(homes.length, 4, 'needs the homes of the compose-homes test')
  const { rpc } = mapToLoopback(await freePorts(8))
  const running: Running[] = []
  try {
    for (let i = 0; i < compose.length; i++) running.push(startService(i))
    const logs = () => running.map((r) => `--- ${r.service.name}\n${r.log().slice(-3000)}`).join('\n')
    const clients = rpc.map((url) => createClient({ url }))
    let last: unknown[] = []
    await until(
      async () => {
        last = await Promise.all(clients.map((c) => c.status().catch((e: Error) => e.message)))
        return last.every((s: any) => s.height >= 1 && s.peers === 3)
      },
      60_000,
      () =>
        `last status: ${JSON.stringify(last.map((s: any) => (s.height === undefined ? s : { height: s.height, peers: s.peers, view: s.view })))}\n${logs()}`,
      () => running.find((r) => r.child.exitCode !== null)?.service.name.concat(' exited'),
    )
    for (const url of rpc) {
      const hc = healthcheck(Number(new URL(url).port))
      assert.is(hc.status, 0, `HEALTHCHECK failed against ${url}: ${hc.stderr}`)
    }
    // Three stop: node0 runs on without a quorum of peers, /v1/health says 503 and the HEALTHCHECK fails.
    const stop = async (rs: Running[]) => {
      for (const r of rs) r.child.kill('SIGTERM')
      return Promise.all(
        rs.map((r) =>
          Promise.race([r.exit, new Promise((done) => setTimeout(done, 15_000, { code: 'still running' }))]),
        ),
      )
    }
    const exits = await stop(running.slice(1))
    await until(
      async () => (await fetch(`${rpc[0]}/v1/health`)).status === 503,
      15_000,
      logs,
      () => (running[0]!.child.exitCode !== null ? 'node0 exited' : undefined),
    )
    const unhealthy = healthcheck(Number(new URL(rpc[0]!).port))
    assert.is(unhealthy.status, 1, `HEALTHCHECK passed against a node that reports 503: ${unhealthy.stderr}`)
    exits.unshift(...(await stop(running.slice(0, 1))))
    for (const [i, r] of running.entries()) {
      assert.equal(exits[i], { code: 0, signal: null }, `${r.service.name}:\n${r.log().slice(-3000)}`)
      assert.match(r.log(), /"why":"SIGTERM","msg":"shutting down"/)
      assert.match(r.log(), /"msg":"node stopped"/)
      assert.not.match(r.log(), /shutdown did not finish in time/)
    }
    // And once nothing answers.
    assert.is(healthcheck(Number(new URL(rpc[0]!).port)).status, 1)
  } finally {
    for (const r of running)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL')
  }
})

test("systemd unit: ExecStart is the image's command (node on the same bin, start on its state directory)", () => {
  const s = unit.Service!
  const [node, ...args] = splitCommand(s.ExecStart!)
  assert.match(node!, /^\/.*\/node$/, 'node by absolute path (not a pnpm shim)')
  const home = `/var/lib/${s.StateDirectory}`
  assert.equal(args, [IMAGE_ENTRY, ...cmd.map((a) => (a === homeOf(cmd) ? home : a))])
  assert.ok(s.ReadWritePaths!.split(/\s+/).includes(home), 'the home is writable under ProtectSystem=strict')
  assert.ok(s.User && s.User !== 'root', `User=${s.User}`)
  assert.is(s.Restart, 'on-failure')
  assert.is(s.KillSignal, 'SIGTERM')
  assert.ok(Number(s.TimeoutStopSec) > NODE_EXIT_DEADLINE_S, `TimeoutStopSec=${s.TimeoutStopSec}`)
  assert.is(s.NoNewPrivileges, 'yes')
  assert.is(s.ProtectSystem, 'strict')
  assert.ok(Number(s.LimitNOFILE) >= 4096, `LimitNOFILE=${s.LimitNOFILE}`)
  // V8's JIT writes executable memory: this option would kill the node at start.
  assert.is(s.MemoryDenyWriteExecute, undefined)
})

const have = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 })

test('systemd-analyze verify accepts the unit, with no warning', () => {
  if (have('systemd-analyze', ['--version']).status !== 0) {
    console.log('skipped: systemd-analyze is not installed (apt-get install systemd)')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'cityledger-unit-'))
  try {
    // verify wants the ExecStart binary to exist; where it does not, the same unit names this Node.
    const file = join(dir, 'cityledger.service')
    const [node] = splitCommand(unit.Service!.ExecStart!)
    if (existsSync(node!)) copyFileSync(join(ROOT, 'deploy/cityledger.service'), file)
    else
      writeFileSync(
        file,
        read('deploy/cityledger.service').replace(`ExecStart=${node} `, `ExecStart=${process.execPath} `),
      )
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', cwd: dir, timeout: 20_000 })
    // It exits 0 on unknown keys and bad values, and prints them.
    assert.is(r.status, 0, r.stderr)
    assert.is(`${r.stdout}${r.stderr}`.trim(), '', 'systemd-analyze verify printed problems')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('compose.yaml read by a YAML parser gives what the line reader above gives', () => {
  const py = have('python3', ['-c', 'import yaml'])
  if (py.status !== 0) {
    console.log('skipped: no python3 with PyYAML to read compose.yaml with a full YAML parser')
    return
  }
  const r = have('python3', [
    '-c',
    'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))',
    join(ROOT, 'deploy/compose.yaml'),
  ])
  assert.is(r.status, 0, r.stderr)
  const doc = JSON.parse(r.stdout)
  assert.equal(
    Object.entries(doc.services).map(([name, s]: [string, any]) => ({
      name,
      command: s.command,
      volumes: s.volumes,
      ports: s.ports,
      address: s.networks.cityledger.ipv4_address,
    })),
    compose,
  )
  assert.equal(Object.keys(doc.networks), ['cityledger'])
})

test('compose.yaml passes the Compose schema (`docker compose config`, or docker-compose 1.29)', () => {
  const file = join(ROOT, 'deploy/compose.yaml')
  const tools: [string, string[]][] = [
    ['docker', ['compose', '-f', file, 'config', '-q']],
    ['docker-compose', ['-f', file, 'config', '-q']],
  ]
  const usable = tools.find(
    ([cmd, args]) => have(cmd, [...args.slice(0, args.indexOf('-f')), 'version']).status === 0,
  )
  if (!usable) {
    console.log(
      'skipped: neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)',
    )
    return
  }
  // Needs no engine: it reads the file and checks it against the schema.
  const r = have(usable[0], usable[1])
  assert.is(r.status, 0, `${usable[0]} ${usable[1].join(' ')}:\n${r.stderr}`)
})

test('docker build: the image builds and its entry runs (only where a Docker engine answers)', () => {
  const info = have('docker', ['info', '--format', '{{.ServerVersion}}'])
  if (info.status !== 0) {
    console.log(
      `skipped: no Docker engine answers here (${(info.error?.message ?? info.stderr).trim().split('\n')[0]}); the image build is not tested on this machine`,
    )
    return
  }
  const tag = `cityledger-test:${process.pid}`
  try {
    const build = spawnSync('docker', ['build', '-t', tag, ROOT], { encoding: 'utf8', timeout: 1_200_000 })
    assert.is(build.status, 0, build.stderr.slice(-4000))
    const version = spawnSync('docker', ['run', '--rm', tag, '--version'], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    assert.is(version.stdout.trim(), nodePackage.version, version.stderr)
    const id = spawnSync('docker', ['run', '--rm', '--entrypoint', 'id', tag, '-u'], { encoding: 'utf8' })
    assert.is.not(id.stdout.trim(), '0', 'the image runs as root')
  } finally {
    spawnSync('docker', ['rmi', '-f', tag])
  }
})

test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

test.run()
