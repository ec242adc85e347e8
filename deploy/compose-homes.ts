// Turns the node homes of `cityledger testnet --validators 4 --out DIR` into homes for deploy/compose.yaml.
//   node deploy/compose-homes.ts DIR          (Node >= 24; nothing but node: built-ins)
// `testnet` writes a network for one machine: every node listens on 127.0.0.1 with its own ports and
// finds its peers there. In compose each validator is a container with its own address on the
// `cityledger` network (node<i> at 10.213.56.<10 + i>, the addresses compose.yaml fixes), all on the
// same ports: p2p 26656 and RPC 26657 on 0.0.0.0 (the image's EXPOSE and HEALTHCHECK). Keys, genesis
// and every other setting stay as `testnet` wrote them. Running it twice gives the same files.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const SUBNET_PREFIX = '10.213.56.'
export const P2P_PORT = 26656
export const RPC_PORT = 26657
/** The network's gateway: clients on the Docker host reach a published RPC port from it. */
export const GATEWAY = `${SUBNET_PREFIX}1`
export const addressOf = (i: number): string => `${SUBNET_PREFIX}${10 + i}`

interface Peer {
  publicKey: string
  addrs: string[]
}

const readJson = (file: string): any => {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`)
  }
}

/** Rewrites `<out>/node<i>/config.json` for i in 0..validators-1; returns the files written. */
export function composeHomes(out: string, validators = 4): string[] {
  const homes = Array.from({ length: validators }, (_, i) => join(resolve(out), `node${i}`))
  // A peer is found by its key (key.json), whatever address testnet gave it.
  const indexOf = new Map<string, number>(
    homes.map((home, i) => [String(readJson(join(home, 'key.json')).publicKey).toLowerCase(), i]),
  )
  const configs = homes.map((home) => readJson(join(home, 'config.json')))
  const updated = configs.map((cfg, i) => {
    const peers: Peer[] = cfg.p2p?.peers ?? []
    return {
      ...cfg,
      p2p: {
        ...cfg.p2p,
        listen: [`/ip4/0.0.0.0/tcp/${P2P_PORT}`],
        peers: peers.map((peer) => {
          const j = indexOf.get(peer.publicKey.toLowerCase())
          if (j === undefined)
            throw new Error(
              `${homes[i]}/config.json: peer ${peer.publicKey} is none of node0..node${validators - 1}`,
            )
          return { ...peer, addrs: [`/ip4/${addressOf(j)}/tcp/${P2P_PORT}`] }
        }),
      },
      rpc: {
        ...cfg.rpc,
        host: '0.0.0.0',
        port: RPC_PORT,
        exemptClients: [...new Set([...(cfg.rpc?.exemptClients ?? []), GATEWAY])],
      },
    }
  })
  // Every file is checked above before any is written: a bad folder is left as it was.
  return homes.map((home, i) => {
    const file = join(home, 'config.json')
    writeFileSync(`${file}.tmp`, `${JSON.stringify(updated[i], null, 2)}\n`)
    renameSync(`${file}.tmp`, file)
    return file
  })
}

if (import.meta.main) {
  const [out, ...rest] = process.argv.slice(2)
  if (!out || rest.length > 0) {
    process.stderr.write('usage: node deploy/compose-homes.ts <testnet --out folder>\n')
    process.exit(2)
  }
  try {
    for (const file of composeHomes(out)) process.stdout.write(`${file}: ready for deploy/compose.yaml\n`)
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
