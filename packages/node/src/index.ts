/** @cityledger/node: the validator node, its RPC server and client, and the `cityledger` CLI. */
export * from './node/index.ts'
export * from './config/index.ts'
export * from './client/index.ts'
export { createTestnet, type TestnetLayout, type TestnetOptions } from './cli/testnet.ts'
export { createP2P, type P2P, type P2POptions } from './p2p/index.ts'
export { EXIT, UPGRADE_CODES } from './cli/exitCodes.ts'
export { createLogger, type Logger } from './log/index.ts'
