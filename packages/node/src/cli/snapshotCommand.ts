import { existsSync, renameSync, rmSync, rmdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  ChainStore,
  CityError,
  type KvStore,
  STORE_PREFIX,
  type SnapshotManifest,
  blockHash,
  decodeCertificate,
  decodeHeader,
  exportSnapshot,
  importSnapshot,
  openLevelKv,
  readSnapshotManifest,
  referenceVerdict,
  subKv,
  toHex,
} from '@cityledger/core'
import { verifyCertificateAt } from '@cityledger/consensus'
import { type Command, InvalidArgumentError } from 'commander'
import {
  type Genesis,
  dataPath,
  genesisHash,
  loadConfig,
  loadGenesis,
  validatorKeys,
} from '../config/index.ts'
import { type HistoryEntry, decodeHistoryEntry, walkValidatorHistory } from '../node/validatorHistory.ts'
import { readHistory, saveHistory } from '../node/validatorHistoryStore.ts'

/** Where `snapshot import` leaves the verified state, inside the home. */
export const IMPORTED_STATE_DIR = 'state-snapshot'

const count = (name: string, min: number) => (v: string) => {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min)
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
  return n
}

const equal = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

const refuse = (why: string): CityError => new CityError('SNAPSHOT_NOT_CERTIFIED', `snapshot refused: ${why}`)

/**
 * Checks what a snapshot claims against this home's genesis: chain id and genesis hash; the manifest's
 * validator history walked from the genesis set (each entry certified by the sets before it,
 * validatorHistory.ts); block h's header certified by its certificate; block h + 1's header certified by
 * its own and naming block h as parent and the snapshot's state root as `prevStateRoot`. Each
 * certificate is checked against the set of its height in the walked schedule (the genesis set and
 * chain id until the first change, `<chainId>--e<N>` after), every signature with the pure-JS
 * verifier. A file that leaves out history entries can only be refused (the certificates of a hidden
 * epoch do not verify). Returns the walked entries, which the import stores.
 */
export function checkCertified(m: SnapshotManifest, genesis: Genesis): HistoryEntry[] {
  if (m.chainId !== genesis.chainId)
    throw refuse(`it is of chain ${m.chainId}, this home is ${genesis.chainId}`)
  if (!equal(m.genesisHash, genesisHash(genesis)))
    throw refuse(`its genesis hash ${toHex(m.genesisHash)} is not this home's genesis.json`)
  let entries: HistoryEntry[]
  let schedule: ReturnType<typeof walkValidatorHistory>['schedule']
  try {
    entries = (m.validatorHistory ?? []).map(decodeHistoryEntry)
    schedule = walkValidatorHistory(
      {
        chainId: genesis.chainId,
        genesisValidators: validatorKeys(genesis),
        checkpointInterval: genesis.consensus.checkpointInterval,
        verify: referenceVerdict,
      },
      entries,
    ).schedule
  } catch (err) {
    throw refuse(`its validator history does not check out (${(err as Error).message})`)
  }
  const setName = entries.length === 0 ? 'the genesis validator set' : 'the validator set of its height'
  const certified = (what: string, headerBytes: Uint8Array, certBytes: Uint8Array, height: number) => {
    let header: ReturnType<typeof decodeHeader>
    let cert: ReturnType<typeof decodeCertificate>
    try {
      header = decodeHeader(headerBytes)
      cert = decodeCertificate(certBytes)
    } catch (err) {
      throw refuse(`${what}: does not decode (${(err as Error).message})`)
    }
    if (header.height !== height || cert.height !== height) throw refuse(`${what}: not for height ${height}`)
    if (!equal(cert.blockHash, blockHash(headerBytes)))
      throw refuse(`${what}: the certificate is not for this header`)
    const verdict = verifyCertificateAt(cert, schedule, genesis.chainId, referenceVerdict)
    if (!verdict.ok)
      throw refuse(
        `${what}: certificate not valid for ${setName} (${verdict.code}${verdict.detail ? `: ${verdict.detail}` : ''})`,
      )
    return header
  }
  certified(`block ${m.height}`, m.header, m.certificate, m.height)
  const next = certified(`block ${m.height + 1}`, m.nextHeader, m.nextCertificate, m.height + 1)
  if (!equal(next.parentHash, blockHash(m.header)))
    throw refuse(`block ${m.height + 1} does not follow block ${m.height}`)
  if (!equal(next.prevStateRoot, m.stateRoot))
    throw refuse(
      `block ${m.height + 1} certifies state root ${toHex(next.prevStateRoot)}, not the snapshot's`,
    )
  return entries
}

/** Every validator history entry a node's store holds, from change 1 on (page by page). */
async function storedHistory(kv: KvStore): Promise<Uint8Array[]> {
  const history = subKv(kv, STORE_PREFIX.validatorHistory)
  const out: Uint8Array[] = []
  for (;;) {
    const page = await readHistory(history, out.length + 1, 64, 4 * 1024 * 1024)
    if (page.length === 0) return out
    out.push(...page)
  }
}

/**
 * `cityledger snapshot export|import`: a node's state at a height, with what certifies it, as one file
 * (core's snapshot.ts: chunks with a manifest), and its verified import into a fresh home: a store
 * that starts at the snapshot's height (as state sync builds one), in `<home>/state-snapshot`, or with
 * `--restore` in the data folder, from which `start` runs and block sync goes on.
 */
export function registerSnapshotCommands(program: Command): void {
  const snapshot = program
    .command('snapshot')
    .description('state snapshots (backups; the base of state sync)')
  snapshot
    .command('export')
    .description(
      'write the state of a stopped node at a height, with the headers and certificates that certify it, to a file (chunks + manifest)',
    )
    .requiredOption('--home <dir>', 'node home folder')
    .requiredOption('--out <file>', 'snapshot file to write (refused if it exists)')
    .option(
      '--height <h>',
      'height (default: the head minus one, the highest whose root a stored header certifies)',
      count('--height', 1),
    )
    .option(
      '--chunk-bytes <n>',
      'bytes of keys and values per chunk',
      count('--chunk-bytes', 1),
      4 * 1024 * 1024,
    )
    .option(
      '--progress-every <n>',
      'a progress line (stderr) every n chunks',
      count('--progress-every', 1),
      16,
    )
    .action(
      async (o: {
        home: string
        out: string
        height?: number
        chunkBytes: number
        progressEvery: number
      }) => {
        const home = resolve(o.home)
        const config = loadConfig(home)
        const data = dataPath(home, config)
        const out = resolve(o.out)
        if (config.store.backend !== 'level')
          throw new InvalidArgumentError(
            `${join(home, 'config.json')}: store.backend is ${config.store.backend}: nothing on disk to export`,
          )
        if (!existsSync(data)) throw new InvalidArgumentError(`${data}: no data folder, nothing to export`)
        if (existsSync(out)) throw new InvalidArgumentError(`${out}: exists; choose another --out`)
        // Refused while the node runs: LevelDB's lock is held.
        const kv = await openLevelKv(data)
        try {
          const m = await exportSnapshot(kv, out, {
            height: o.height,
            chunkBytes: o.chunkBytes,
            validatorHistory: await storedHistory(kv),
            onChunk: (n, entries) => {
              if (n % o.progressEvery === 0)
                process.stderr.write(`exported ${n} chunks (${entries} entries)\n`)
            },
          })
          process.stdout.write(
            `${JSON.stringify({ out, chainId: m.chainId, height: m.height, stateRoot: toHex(m.stateRoot), entries: m.entries, chunks: m.chunks.length })}\n`,
          )
        } finally {
          await kv.close()
        }
      },
    )
  snapshot
    .command('import')
    .description(
      `check a snapshot file against this home's genesis (certificates, chunk hashes, state root) and write the verified store (starting at the snapshot's height) to <home>/${IMPORTED_STATE_DIR}, or with --restore to the data folder; refuses a home with blocks`,
    )
    .option(
      '--restore',
      'write the store into the data folder (which must hold no store): `start` then runs from the snapshot height',
      false,
    )
    .requiredOption('--home <dir>', 'node home folder (its genesis.json and config.json)')
    .requiredOption('--in <file>', 'snapshot file')
    .option(
      '--progress-every <n>',
      'a progress line (stderr) every n chunks',
      count('--progress-every', 1),
      16,
    )
    .action(async (o: { home: string; in: string; progressEvery: number; restore: boolean }) => {
      const home = resolve(o.home)
      const config = loadConfig(home)
      const genesis = loadGenesis(join(home, 'genesis.json'))
      const data = dataPath(home, config)
      const target = o.restore ? data : join(home, IMPORTED_STATE_DIR)
      if (o.restore && config.store.backend !== 'level')
        throw new InvalidArgumentError(`--restore: store.backend is ${config.store.backend}, not level`)
      if (o.restore && existsSync(join(data, 'CURRENT')))
        throw new InvalidArgumentError(
          `${data}: holds a store; --restore writes into a data folder without one (reset it first)`,
        )
      if (!o.restore && existsSync(target))
        throw new InvalidArgumentError(`${target}: exists (an earlier import); remove it first`)
      if (!o.restore && config.store.backend === 'level' && existsSync(data)) {
        const store = await ChainStore.open(await openLevelKv(data), { chainId: genesis.chainId })
        const height = store.height()
        await store.close()
        if (height >= 1)
          throw new InvalidArgumentError(
            `${data}: holds blocks up to ${height}: a snapshot is imported into a fresh home (reset it first)`,
          )
      }
      const file = resolve(o.in)
      const m = await readSnapshotManifest(file)
      const history = checkCertified(m, genesis)
      const partial = join(home, `.${IMPORTED_STATE_DIR}.partial-${process.pid}`)
      rmSync(partial, { recursive: true, force: true })
      try {
        const kv = await openLevelKv(partial)
        try {
          await importSnapshot(file, m, kv, {
            onChunk: (n, entries) => {
              if (n % o.progressEvery === 0)
                process.stderr.write(`checked ${n}/${m.chunks.length} chunks (${entries} entries)\n`)
            },
          })
          // The walked history, so that the restored node serves it to joiners and clients.
          await saveHistory(subKv(kv, STORE_PREFIX.validatorHistory), history)
        } finally {
          await kv.close()
        }
        // An empty data folder may be there already (rmdir refuses anything else).
        if (existsSync(target)) rmdirSync(target)
        renameSync(partial, target)
      } catch (err) {
        rmSync(partial, { recursive: true, force: true })
        throw err
      }
      process.stdout.write(
        `${JSON.stringify({ state: target, chainId: m.chainId, height: m.height, stateRoot: toHex(m.stateRoot), entries: m.entries, chunks: m.chunks.length })}\n`,
      )
    })
}
