// The packages as a user installs them (issue #15): built to JavaScript with declarations, packed,
// installed into an empty folder from the tarballs (their dependencies from the registry, as for
// anyone), then used with Node's type stripping off, so nothing of the repository's sources is needed:
// the `cityledger` bin brings up a one-validator devnet, README's client example commits a tx against
// it, a TypeScript consumer type-checks (and a wrong type is an error), and the light client entry
// loads none of libp2p, fastify, pino or LevelDB.
// test lane: beside the package tests
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { freePortPair } from '../helpers/ports.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const PACKAGES = ['core', 'consensus', 'apps', 'node']
// Node 24 first on PATH (the bin's `#!/usr/bin/env node`, pnpm's shims), type stripping off.
const ENV = {
  ...process.env,
  PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
  NODE_OPTIONS: '--no-experimental-strip-types',
  npm_config_yes: 'true',
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = ENV, timeoutMs = 300_000) {
  return new Promise<{ code: number | null; out: string }>((done) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (b) => (out += b))
    child.stderr.on('data', (b) => (out += b))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, out })
    })
  })
}

/** `npx -y pnpm@10 ...` as README tells a newcomer; the build runs with type stripping on (tsc is TS). */
const pnpm = (args: string[], cwd: string, env: NodeJS.ProcessEnv = ENV) =>
  run('npx', ['-y', 'pnpm@10', ...args], cwd, env)

/** The first ```js block after the `<!-- client-example -->` marker in README.md. */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const at = readme.indexOf('<!-- client-example -->')
  assert.ok(at >= 0, 'README.md has no <!-- client-example --> marker')
  const block = /```js\n([\s\S]*?)```/.exec(readme.slice(at))
  assert.ok(block, 'no ```js block after the marker')
  return block[1]!
}

const CONSUMER_TS = `import { type KeyPair, generateKeyPair } from '@cityledger/core'
import { createClient, createSigner, type TxSigner } from '@cityledger/node/client'
import type { NodeConfig } from '@cityledger/node'
const key: KeyPair = generateKeyPair()
const signer: TxSigner = createSigner(createClient({ url: 'http://127.0.0.1:1' }), key)
const level: NodeConfig['log']['level'] = 'debug'
export const used = [signer.publicKey.length, level]
`
const WRONG_TS = `import { generateKeyPair } from '@cityledger/core'
export const n: number = generateKeyPair().publicKey
`
const LIGHT_MJS = `import { registerHooks } from 'node:module'
const seen = []
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); seen.push(r.url); return r } })
await import('@cityledger/node/client')
const heavy = seen.filter((u) => /node_modules\\/(\\.pnpm\\/)?(libp2p|@libp2p|fastify|classic-level|level|pino|@chainsafe)[@/+]/.test(u))
console.log(JSON.stringify({ modules: seen.length, heavy }))
`

test('the packed packages install into an empty folder and run without the sources', async () => {
  const work = mkdtempSync(join(tmpdir(), 'cityledger-pack-'))
  let devnet: ChildProcess | undefined
  try {
    const build = await pnpm(['run', 'build'], ROOT, { ...ENV, NODE_OPTIONS: '' })
    assert.is(build.code, 0, `build failed:\n${build.out}`)
    const packs = join(work, 'packs')
    for (const p of PACKAGES) {
      const r = await pnpm(['pack', '--pack-destination', packs], join(ROOT, 'packages', p))
      assert.is(r.code, 0, `pack ${p} failed:\n${r.out}`)
    }
    const tarball = (p: string) =>
      `file:${join(packs, readdirSync(packs).find((f) => f.includes(`-${p}-`))!)}`
    const tarballs = Object.fromEntries(PACKAGES.map((p) => [`@cityledger/${p}`, tarball(p)]))
    const version = (dep: string) =>
      JSON.parse(readFileSync(join(ROOT, 'node_modules', dep, 'package.json'), 'utf8')).version as string
    const app = join(work, 'app')
    mkdirSync(app)
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        type: 'module',
        dependencies: tarballs,
        devDependencies: { typescript: version('typescript'), '@types/node': version('@types/node') },
        // The packages depend on each other by version; point those at the tarballs too.
        pnpm: { overrides: tarballs },
      }),
    )
    const install = await pnpm(['install', '--prefer-offline'], app)
    assert.is(install.code, 0, `install failed:\n${install.out}`)

    // Types: a consumer type-checks against the published declarations; a wrong type is an error.
    writeFileSync(join(app, 'consumer.ts'), CONSUMER_TS)
    writeFileSync(join(app, 'wrong.ts'), WRONG_TS)
    const tsc = join(app, 'node_modules', 'typescript', 'bin', 'tsc')
    const tscArgs = ['--noEmit', '--strict', '--module', 'nodenext', '--skipLibCheck', '--types', 'node']
    const good = await run(process.execPath, [tsc, ...tscArgs, 'consumer.ts'], app)
    assert.is(good.code, 0, `consumer.ts does not type-check:\n${good.out}`)
    const wrong = await run(process.execPath, [tsc, ...tscArgs, 'wrong.ts'], app)
    assert.match(wrong.out, /TS2322/, `wrong.ts should not type-check:\n${wrong.out}`)

    // The light client entry point.
    writeFileSync(join(app, 'light.mjs'), LIGHT_MJS)
    const light = await run(process.execPath, ['light.mjs'], app)
    assert.is(light.code, 0, light.out)
    const loaded = JSON.parse(light.out.trim().split('\n').at(-1)!) as { modules: number; heavy: string[] }
    assert.ok(loaded.modules > 10, light.out)
    assert.equal(loaded.heavy, [], 'the light client loaded node-only modules')

    // The bin brings up a devnet; README's example commits a tx against it.
    const port = await freePortPair()
    devnet = spawn(
      join(app, 'node_modules', '.bin', 'cityledger'),
      ['devnet', '--validators', '1', '--home', join(work, 'devnet'), '--base-port', String(port)],
      { cwd: app, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let devnetOut = ''
    devnet.stderr!.on('data', (b) => (devnetOut += b))
    const rpc = await new Promise<string>((ready, fail) => {
      devnet!.stdout!.on('data', (b) => {
        devnetOut += b
        const m = /RPC (http:\/\/\S+)/.exec(devnetOut)
        if (m && devnetOut.includes('devnet: ready')) ready(m[1]!)
      })
      devnet!.once('exit', (code) => fail(new Error(`devnet exited with ${code}:\n${devnetOut}`)))
    })
    writeFileSync(join(app, 'example.mjs'), readmeExample())
    const example = await run(process.execPath, ['example.mjs'], app, { ...ENV, CITYLEDGER_RPC: rpc }, 60_000)
    assert.is(example.code, 0, `README's client example failed:\n${example.out}\n${devnetOut}`)
    assert.match(example.out, /committed at height \d+/)
    const stopped = new Promise((r) => devnet!.once('exit', r))
    devnet.kill('SIGINT')
    await stopped
    devnet = undefined
  } finally {
    devnet?.kill('SIGKILL')
    rmSync(work, { recursive: true, force: true })
  }
})

test.run()
