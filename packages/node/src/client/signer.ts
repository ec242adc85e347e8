import { CityError, type KeyPair, type Value, isCityError, toHex } from '@cityledger/core'
import type { TxStatus } from '../rpc/backend.ts'
import type { CityledgerClient, SubmitOptions } from './client.ts'

/** A service call to sign: everything of a tx body but the chain, the signer and the nonce. */
export interface Call {
  service: string
  method: string
  args: Value
  /** Last height at which the tx may be included; 0 (default) means no expiry. */
  expiry?: number
}

/** Signs and submits one key's txs with consecutive nonces (see `createSigner`). */
export interface TxSigner {
  readonly publicKey: Uint8Array
  /** Signs `call` with the next nonce and submits it; `{ wait: 'commit' }` resolves once it is in a block. */
  submit(call: Call, opts?: SubmitOptions): Promise<TxStatus>
}

/** The admission refusals after which the counted nonce is no longer the node's next one. */
const RESYNC = new Set(['NONCE_TOO_LOW', 'NONCE_TAKEN', 'NONCE_GAP'])

/**
 * A nonce manager for one key: the first nonce comes from the node (`_sys/nonce`, the signer's last
 * committed nonce), the next ones are counted here, and submissions are sent one after another so
 * that concurrent `submit` calls get consecutive nonces. A tx the node refuses at admission used no
 * nonce: the count steps back, and after a nonce refusal it is read from the node again.
 * The chain id comes from the node's status unless given.
 *
 * @example
 * const client = createClient({ url: 'http://127.0.0.1:26657' })
 * const citizen = createSigner(client, generateKeyPair())
 * await citizen.submit({ service: 'identity', method: 'registerSubject', args: { subject } }, { wait: 'commit' })
 */
export function createSigner(
  client: CityledgerClient,
  key: KeyPair,
  opts: { chainId?: string } = {},
): TxSigner {
  const signer = toHex(key.publicKey)
  let chainId = opts.chainId
  let last: number | undefined
  let queue: Promise<unknown> = Promise.resolve()

  const nextNonce = async (): Promise<number> => {
    if (last === undefined) {
      const v = (await client.query('_sys', 'nonce', { signer })).value
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
        throw new CityError('BAD_RESPONSE', `_sys/nonce answered ${JSON.stringify(v)} for ${signer}`)
      last = v
    }
    return last + 1
  }

  const send = async (call: Call, o: SubmitOptions): Promise<TxStatus> => {
    chainId ??= (await client.status()).chainId
    const nonce = await nextNonce()
    const body = {
      chainId,
      service: call.service,
      method: call.method,
      args: call.args,
      signer: key.publicKey,
      nonce,
      expiry: call.expiry ?? 0,
    }
    last = nonce
    try {
      return await client.submitTx(body, key.secretKey, o)
    } catch (err) {
      const status = isCityError(err) ? err.details.status : undefined
      if (isCityError(err) && typeof status === 'number' && status >= 400 && status < 500) {
        // Refused at admission: the nonce was not used.
        last = RESYNC.has(err.code) ? undefined : nonce - 1
      }
      throw err
    }
  }

  return {
    publicKey: key.publicKey,
    submit(call, o = {}) {
      const result = queue.then(() => send(call, o))
      queue = result.catch(() => {})
      return result
    },
  }
}
