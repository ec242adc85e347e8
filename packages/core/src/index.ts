/** @cityledger/core: types, codec, hashing, signatures, Merkle, stores, mempool and service runtime. */
export * from './errors/index.ts'
export * from './bytes/index.ts'
export * from './crypto/index.ts'
export * from './codec/index.ts'
export * from './merkle/index.ts'
export * from './runtime/index.ts'
export * from './mempool/index.ts'
export * from './store/index.ts'
