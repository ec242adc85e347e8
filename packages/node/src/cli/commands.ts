import { spawn } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { LOG_LEVELS, type LogFormat, type LogLevel } from '../log/index.ts'
import { CHAIN_ID_RE, CityError, generateKeyPair, toHex } from '@cityledger/core'
import { createClient } from '../client/index.ts'
import {
  PASSPHRASE_FILE_ENV,
  loadConfig,
  loadGenesis,
  problemsText,
  readKeyFile,
  readPassphraseFile,
  validateConfigFile,
  validateGenesisFile,
  validatorKeys,
  valueFromJson,
  writeKey,
  writeKeyFile,
} from '../config/index.ts'
import { EXIT, TxRejected, isRefusal } from './exitCodes.ts'
import { INIT_P2P_PORT, INIT_RPC_PORT, initHome } from './initConfig.ts'
import { installRejectionGuard } from './rejectionGuard.ts'
import { createTestnet, prepareTestnetOut } from './testnet.ts'
import { runDevnet } from './devnet.ts'
import { registerRollbackCommand } from './rollbackCommand.ts'
import { registerSnapshotCommands } from './snapshotCommand.ts'
import { SIGNER_ENV } from '../signer/index.ts'

const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`)
  return n
}

// The rule every node applies to the genesis chain id at start (core's CHAIN_ID_RE), checked here
// so that a testnet its nodes would refuse is never written.
const chainId = (v: string): string => {
  if (!CHAIN_ID_RE.test(v))
    throw new InvalidArgumentError(
      `--chain-id ${JSON.stringify(v)}: lowercase letters, digits and dashes, starting with a letter or digit, at most 64 (${CHAIN_ID_RE})`,
    )
  return v
}

const DEFAULT_RPC = `http://127.0.0.1:${INIT_RPC_PORT}`

/** The RPC address of a command: --rpc, else the host, port and TLS setting in `<--home>/config.json`, else the default. */
function rpcUrl(o: { rpc?: string; home?: string }): string {
  if (o.rpc !== undefined) return o.rpc
  if (o.home === undefined) return DEFAULT_RPC
  const { host, port, tls } = loadConfig(resolve(o.home)).rpc
  if (port === 0)
    throw new InvalidArgumentError(
      `${join(resolve(o.home), 'config.json')} has rpc.port 0 (a free port picked at start): pass --rpc with the address the node printed`,
    )
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  // With rpc.tls the node serves HTTPS only (its CA for the CLI: NODE_EXTRA_CA_CERTS).
  return `${tls?.certFile ? 'https' : 'http'}://${h}:${port}`
}

const RPC_HELP = `node RPC address (default: from --home's config.json, else ${DEFAULT_RPC})`
const HOME_HELP = "node home folder: its config.json's rpc.host and rpc.port give the address"

const PASSPHRASE_HELP = `file holding the key's passphrase (mode 600; or set ${PASSPHRASE_FILE_ENV})`
const passphrase = (o: { passphraseFile?: string }) =>
  o.passphraseFile === undefined ? {} : { passphrase: readPassphraseFile(o.passphraseFile) }

const print = (v: unknown): void => {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`)
}

export function registerCommands(program: Command): void {
  program
    .command('init')
    .description(
      `create a node's home. Writes <home>/key.json (a new Ed25519 key, mode 600) and <home>/config.json (every setting with its default, a "$comment" per section; p2p listens on 0.0.0.0:${INIT_P2P_PORT}, RPC on 127.0.0.1:${INIT_RPC_PORT}, so \`status --home\` finds it). Refuses a home that has either file. Add the network's genesis.json and the peers (config.json p2p.peers) yourself, then: cityledger start --home <dir>`,
    )
    .requiredOption('--home <dir>', 'node home folder (created if missing)')
    .option('--moniker <name>', 'name in logs', 'validator')
    .option('--p2p-host <ip>', 'p2p listen address', '0.0.0.0')
    .option('--p2p-port <port>', 'p2p port', int('--p2p-port', 1, 65535), INIT_P2P_PORT)
    .option('--rpc-port <port>', 'RPC port (on 127.0.0.1)', int('--rpc-port', 1, 65535), INIT_RPC_PORT)
    .action((o: { home: string; moniker: string; p2pHost: string; p2pPort: number; rpcPort: number }) => {
      const home = resolve(o.home)
      const { key, configPath } = initHome(home, o)
      print({
        home,
        publicKey: toHex(key.publicKey),
        key: join(home, 'key.json'),
        config: configPath,
        next: 'put the network genesis.json in the home and the peers in config.json, then: cityledger start --home <dir>',
      })
    })

  program
    .command('testnet')
    .description('write the folders of an N-validator network on this machine (keys, configs, one genesis)')
    .option('--validators <n>', 'number of validators', int('--validators', 1, 64), 4)
    .requiredOption('--out <dir>', 'output folder')
    .option('--chain-id <id>', 'chain id (lowercase letters, digits, dashes)', chainId, 'seoul-devnet')
    .option(
      '--base-port <port>',
      'first port (p2p = base + 2i, rpc = base + 2i + 1)',
      int('--base-port', 1024, 65000),
      26656,
    )
    .option(
      '--force',
      'replace an earlier testnet in --out (deletes its node*/, observer*/ and city-key.json)',
      false,
    )
    .action((o: { validators: number; out: string; chainId: string; basePort: number; force: boolean }) => {
      prepareTestnetOut(o.out, o.force)
      const t = createTestnet({
        validators: o.validators,
        out: o.out,
        chainId: o.chainId,
        basePort: o.basePort,
      })
      print({ homes: t.homes, rpc: t.rpc, cityKey: join(resolve(o.out), 'city-key.json') })
    })

  program
    .command('start')
    .description('run a validator from its home folder (key.json, config.json, genesis.json)')
    .requiredOption('--home <dir>', 'node home folder')
    .option(
      '--unsafe-memory-store',
      'allow store.backend "memory" (commits are lost on exit; for tests only)',
      false,
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'json (log stores) or pretty (humans); default: config log.format',
      ).choices(['json', 'pretty']),
    )
    .addOption(new Option('--log-level <level>', 'default: config log.level').choices([...LOG_LEVELS]))
    .option('--passphrase-file <file>', `for an encrypted key.json: ${PASSPHRASE_HELP}`)
    .option(
      '--state-sync',
      'on an empty data folder, start from the certified state of a recent height fetched from the validators instead of replaying every block (as config sync.stateSync)',
      false,
    )
    .option(
      '--signer-module <path>',
      `sign votes with the createSigner(options) of this ES module (an HSM binding; or set ${SIGNER_ENV.module}); its key must be the validator key of key.json; double-sign guard in <home>/signer-state.json`,
    )
    .option(
      '--signer-options <file>',
      `JSON file handed to the signer module's createSigner (or set ${SIGNER_ENV.options})`,
    )
    .action(
      async (o: {
        home: string
        unsafeMemoryStore: boolean
        logFormat?: LogFormat
        logLevel?: LogLevel
        passphraseFile?: string
        signerModule?: string
        signerOptions?: string
        stateSync: boolean
      }) => {
        if (o.signerOptions !== undefined && o.signerModule === undefined)
          throw new InvalidArgumentError('--signer-options needs --signer-module')
        // Handed to createNode through the env until config.json has a `signer` section.
        if (o.signerModule !== undefined) process.env[SIGNER_ENV.module] = resolve(o.signerModule)
        if (o.signerOptions !== undefined) process.env[SIGNER_ENV.options] = resolve(o.signerOptions)
        if (process.env[SIGNER_ENV.module] && !process.env[SIGNER_ENV.state])
          process.env[SIGNER_ENV.state] = join(resolve(o.home), 'signer-state.json')
        // Before any service loads: a rejection a service drops is logged, not the end of the node.
        installRejectionGuard()
        const { runNode } = await import('../node/run.ts')
        await runNode(resolve(o.home), {
          allowUnsafeMemory: o.unsafeMemoryStore,
          stateSync: o.stateSync,
          ...(o.logFormat ? { logFormat: o.logFormat } : {}),
          ...(o.logLevel ? { logLevel: o.logLevel } : {}),
          ...passphrase(o),
        })
      },
    )

  program
    .command('devnet')
    .description(
      'a whole local network in one command: N validators with the services loaded; Ctrl-C stops it',
    )
    .option('--validators <n>', 'number of validators', int('--validators', 1, 16), 4)
    .option('--home <dir>', 'where the network lives', '.devnet')
    .option('--base-port <port>', 'first port', int('--base-port', 1024, 65000), 26656)
    .option('--reset', 'wipe an existing devnet folder first', false)
    .action(async (o: { validators: number; home: string; basePort: number; reset: boolean }) => {
      await runDevnet({
        validators: o.validators,
        home: resolve(o.home),
        basePort: o.basePort,
        reset: o.reset,
      })
    })

  const keys = program.command('keys').description('key files')
  keys
    .command('new')
    .description('write a new key.json into a folder (refuses to replace one unless --force)')
    .requiredOption('--home <dir>', 'folder')
    .option('--force', 'replace an existing key.json (the old key is lost)', false)
    .option('--passphrase-file <file>', `encrypt the key with this passphrase: ${PASSPHRASE_HELP}`)
    .action((o: { home: string; force: boolean; passphraseFile?: string }) => {
      if (!o.force && existsSync(join(o.home, 'key.json')))
        throw new CityError(
          'EXISTS',
          `${join(resolve(o.home), 'key.json')}: the folder already has a key.json; a new key would lose it (pass --force to replace it)`,
        )
      mkdirSync(o.home, { recursive: true })
      print({ publicKey: toHex(writeKey(resolve(o.home), generateKeyPair(), passphrase(o)).publicKey) })
    })
  keys
    .command('encrypt')
    .description(
      'encrypt a key file in place with a passphrase (scrypt + AES-256-GCM); the key stays the same',
    )
    .requiredOption('--key <file>', 'key file')
    .requiredOption('--passphrase-file <file>', PASSPHRASE_HELP)
    .action((o: { key: string; passphraseFile: string }) => {
      const { passphrase: p } = passphrase(o)
      const key = readKeyFile(o.key, { passphrase: p })
      writeKeyFile(o.key, key, { passphrase: p })
      print({ publicKey: toHex(key.publicKey), encrypted: true })
    })
  keys
    .command('show')
    .description('print the public key of a key file')
    .requiredOption('--key <file>', 'key file')
    .option('--passphrase-file <file>', `for an encrypted key: ${PASSPHRASE_HELP}`)
    .action((o: { key: string; passphraseFile?: string }) =>
      print({ publicKey: toHex(readKeyFile(o.key, passphrase(o)).publicKey) }),
    )

  program
    .command('tx <service> <method> [args]')
    .description('sign and submit a transaction; args is JSON (bytes as "0x..." hex)')
    .requiredOption('--key <file>', 'signer key file (e.g. .devnet/city-key.json)')
    .option('--rpc <url>', RPC_HELP)
    .option('--home <dir>', HOME_HELP)
    .option('--no-wait', 'return once admitted instead of waiting for the commit')
    .option('--passphrase-file <file>', `for an encrypted key: ${PASSPHRASE_HELP}`)
    .action(
      async (
        service: string,
        method: string,
        argsText: string | undefined,
        o: { key: string; rpc?: string; home?: string; wait: boolean; passphraseFile?: string },
      ) => {
        let args: unknown
        try {
          args = argsText === undefined ? {} : JSON.parse(argsText)
        } catch (err) {
          throw new InvalidArgumentError(`args is not JSON: ${(err as Error).message}`)
        }
        const key = readKeyFile(o.key, passphrase(o))
        const client = createClient({ url: rpcUrl(o) })
        const status = await client.status()
        const nonce = await client.query('_sys', 'nonce', { signer: toHex(key.publicKey) })
        const body = {
          chainId: status.chainId,
          service,
          method,
          args: valueFromJson(args),
          signer: key.publicKey,
          nonce: Number(nonce.value) + 1,
          expiry: 0,
        }
        let res: Awaited<ReturnType<typeof client.submitTx>>
        try {
          res = await client.submitTx(body, key.secretKey, o.wait ? { wait: 'commit' } : {})
        } catch (err) {
          if (isRefusal(err)) throw new TxRejected((err as CityError).code, (err as Error).message)
          throw err
        }
        print(res)
        if (res.status === 'failed') process.exitCode = EXIT.REJECTED
      },
    )

  program
    .command('query <service> <query>')
    .description('read a service query: key=value pairs (bytes as hex)')
    .argument('[params...]', 'key=value')
    .option('--rpc <url>', RPC_HELP)
    .option('--home <dir>', HOME_HELP)
    .option(
      '--verify',
      "prove the answer: its state entries against a root the validators of the trusted genesis (--genesis, else --home's genesis.json) certified; exit 6 if the proof fails",
    )
    .option('--genesis <file>', 'the genesis file trusted by --verify')
    .option(
      '--timeout-ms <ms>',
      'with --verify: wait this long for the block that certifies the root',
      int('--timeout-ms', 1, 600_000),
      30_000,
    )
    .action(
      async (
        service: string,
        query: string,
        params: string[],
        o: { rpc?: string; home?: string; verify?: boolean; genesis?: string; timeoutMs: number },
      ) => {
        const args = Object.fromEntries(
          params.map((p) => {
            const i = p.indexOf('=')
            if (i < 1) throw new InvalidArgumentError(`parameter ${p} is not key=value`)
            return [p.slice(0, i), p.slice(i + 1)]
          }),
        )
        const client = createClient({ url: rpcUrl(o) })
        if (!o.verify) return print(await client.query(service, query, args))
        const file = o.genesis ?? (o.home === undefined ? undefined : join(resolve(o.home), 'genesis.json'))
        if (file === undefined)
          throw new InvalidArgumentError(
            '--verify needs the genesis it trusts: --genesis <file> or --home <dir>',
          )
        // The validator set comes from the operator's own genesis file, never from the node asked.
        const genesis = loadGenesis(resolve(file))
        const answer = await client.queryVerified(service, query, args, {
          chainId: genesis.chainId,
          validators: validatorKeys(genesis),
          // Walks the validator history from the genesis set: answers verify after a set change too.
          checkpointInterval: genesis.consensus.checkpointInterval,
          timeoutMs: o.timeoutMs,
        })
        print({
          value: answer.value,
          height: answer.height,
          root: answer.root,
          anchor: answer.anchor,
          verified: true,
        })
      },
    )

  const config = program.command('config').description('node configuration files')
  config
    .command('validate')
    .description(
      "check <home>/config.json and <home>/genesis.json against their schemas (packages/node/schema); prints one 'field: problem' line each, exit 1 if any",
    )
    .requiredOption('--home <dir>', 'node home folder')
    .action((o: { home: string }) => {
      const home = resolve(o.home)
      const files: [string, (path: string) => { field: string; message: string }[]][] = [
        [join(home, 'config.json'), validateConfigFile],
        [join(home, 'genesis.json'), validateGenesisFile],
      ]
      let problems = 0
      for (const [path, check] of files) {
        // A home without a config.json runs on the defaults; a genesis is needed to start.
        if (!existsSync(path) && path.endsWith('config.json')) {
          process.stdout.write(`${path}: absent (the defaults apply)\n`)
          continue
        }
        const found = check(path)
        problems += found.length
        if (found.length === 0) process.stdout.write(`${path}: ok\n`)
        else process.stdout.write(`${problemsText(path, found)}\n`)
      }
      if (problems > 0) process.exitCode = EXIT.FAILURE
    })

  program
    .command('status')
    .description("a node's status")
    .option('--rpc <url>', RPC_HELP)
    .option('--home <dir>', HOME_HELP)
    .action(async (o: { rpc?: string; home?: string }) =>
      print(await createClient({ url: rpcUrl(o) }).status()),
    )

  program
    .command('bench [id]')
    .description(
      'run a benchmark: verify, block, mempool, network, disk, statesync, abuse (see bench/README.md)',
    )
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .helpOption(false)
    .action(async () => {
      // The harness lives in bench/ (it drives nodes, so it cannot be a dependency of the node package).
      const cli = join(import.meta.dirname, '..', '..', '..', '..', 'bench', 'src', 'cli.ts')
      if (!existsSync(cli))
        throw new CityError(
          'BAD_INPUT',
          'the benchmarks run from a checkout of the cityledger repository (bench/), not from an installed package',
        )
      const i = process.argv.indexOf('bench')
      const child = spawn(process.execPath, [cli, ...process.argv.slice(i + 1)], { stdio: 'inherit' })
      process.exitCode = await new Promise<number>((done) => child.on('exit', (code) => done(code ?? 1)))
    })

  program
    .command('demo')
    .description(
      'the city scenario against a running devnet (agencies, card, vote, S-Coin, certificate, subcontract)',
    )
    .option('--devnet <dir>', 'devnet folder (for city-key.json and the RPC addresses)', '.devnet')
    .action(async (o: { devnet: string }) => {
      const { runDemo } = await import('../demo/run.ts')
      await runDemo(resolve(o.devnet))
    })

  registerRollbackCommand(program)
  registerSnapshotCommands(program)
}
