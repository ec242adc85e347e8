import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CityError, type KeyPair, generateKeyPair } from '@cityledger/core'
import { DEFAULT_CONFIG, type NodeConfig, writeKey } from '../config/index.ts'

/** Ports `init` writes (CometBFT's, so operators' firewall rules carry over). */
export const INIT_P2P_PORT = 26_656
export const INIT_RPC_PORT = 26_657

export interface InitOptions {
  moniker?: string
  /** Address p2p listens on; default 0.0.0.0 (peers on other machines dial it). */
  p2pHost?: string
  p2pPort?: number
  rpcPort?: number
}

// JSON has no comments: each section carries a `$comment` (the config schema allows and ignores it
// everywhere). Kept short; packages/node/README.md has the table of every field.
const COMMENTS: Record<string, string> = {
  $comment:
    'cityledger node config, written by `cityledger init`. Every field is shown with its default; see packages/node/README.md (Configuration) for each one.',
  p2p: 'listen: libp2p addresses of this node (peers on other machines dial them). peers: { publicKey, addrs } of every other validator. observers: non-validator keys (hex) allowed to connect.',
  rpc: 'HTTP API. host 127.0.0.1 keeps it on this machine; `cityledger status --home <home>` reads host and port from here. Limits are per client address; exemptClients lists your tools or proxy.',
  store:
    'backend "level" (LevelDB in <home>/<path>) or "memory" (tests; start refuses it unless allowUnsafeMemory).',
  verifier:
    'signature checks: "pool" (native, worker threads), "native" (one thread), "noble" (pure JS). workers 0 = cores / nodesOnMachine.',
  mempool: 'capacity in transactions and bytes; maxPerSigner: nonces one signer may queue ahead.',
  consensus:
    'emptyBlocks true: an empty block about every second while idle; false: one per heartbeatMs while idle, at once when txs arrive. Set it alike on every validator.',
  log: 'level: trace, debug, info, warn, error or silent (JSON lines on stdout).',
  metrics: 'Prometheus metrics at GET /metrics on the RPC port.',
}

/** The config `init` writes: every default, fixed ports, and a `$comment` per section. */
export function initConfig(o: InitOptions = {}): Record<string, unknown> {
  const cfg: NodeConfig = structuredClone(DEFAULT_CONFIG)
  if (o.moniker !== undefined) cfg.moniker = o.moniker
  cfg.p2p.listen = [`/ip4/${o.p2pHost ?? '0.0.0.0'}/tcp/${o.p2pPort ?? INIT_P2P_PORT}`]
  cfg.rpc.port = o.rpcPort ?? INIT_RPC_PORT
  const out: Record<string, unknown> = { $comment: COMMENTS.$comment }
  for (const [k, v] of Object.entries(cfg))
    out[k] = typeof v === 'object' && v !== null && !Array.isArray(v) ? { $comment: COMMENTS[k], ...v } : v
  return out
}

/**
 * `cityledger init`: writes `<home>/key.json` (a new key, mode 600) and `<home>/config.json`
 * (`initConfig`). Refuses (EXISTS) a home holding either, before writing anything; the config is
 * written to a temporary name and renamed, so a failure never leaves half a file.
 */
export function initHome(home: string, o: InitOptions = {}): { key: KeyPair; configPath: string } {
  const dir = resolve(home)
  for (const f of ['key.json', 'config.json'])
    if (existsSync(join(dir, f)))
      throw new CityError(
        'EXISTS',
        `${join(dir, f)} exists: init makes a new home (remove it or use another --home)`,
      )
  mkdirSync(dir, { recursive: true })
  const configPath = join(dir, 'config.json')
  const tmp = `${configPath}.tmp`
  writeFileSync(tmp, `${JSON.stringify(initConfig(o), null, 2)}\n`)
  try {
    const key = writeKey(dir, generateKeyPair())
    renameSync(tmp, configPath)
    return { key, configPath }
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}
