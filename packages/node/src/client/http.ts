import { CityError } from '@cityledger/core'

/**
 * Codes the client raises itself; every other code on a thrown `CityError` came from the server's
 * `{ error: { code } }` body unchanged.
 */
export type ClientErrorCode =
  /** The server could not be reached or the connection broke. */
  | 'UNAVAILABLE'
  /** The caller's signal aborted the request. */
  | 'ABORTED'
  /** The server answered something that is not RPC v1. */
  | 'BAD_RESPONSE'
  /** The caller asked for a proof check and the answer carried no proof. */
  | 'PROOF_MISSING'
  /** The caller's proof check rejected the answer. */
  | 'BAD_PROOF'
  /** An argument given to the client is invalid (e.g. a hash that is not 32 bytes of hex). */
  | 'BAD_HEX'
  /** What the client waited for (e.g. the block that anchors a proof) did not come in time. */
  | 'TIMEOUT'

export function clientError(
  code: ClientErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): CityError<ClientErrorCode> {
  return new CityError(code, message, details)
}

/** Performs requests against one RPC base URL and turns every failure into a `CityError`. */
export interface Http {
  /** The raw response of a successful (2xx) request; error bodies are thrown as `CityError`. */
  request(path: string, init?: RequestInit & { okStatuses?: number[] }): Promise<Response>
  /** `request` and the parsed JSON body. */
  json(
    path: string,
    init?: RequestInit & { okStatuses?: number[] },
  ): Promise<{ status: number; body: unknown }>
}

export function createHttp(baseUrl: string, fetchFn: typeof fetch): Http {
  let base: URL
  try {
    base = new URL(baseUrl)
  } catch {
    throw new TypeError(`url: not a valid URL: ${baseUrl}`)
  }
  const root = base.href.replace(/\/+$/, '')

  const request = async (
    path: string,
    init: RequestInit & { okStatuses?: number[] } = {},
  ): Promise<Response> => {
    const { okStatuses, ...rest } = init
    let res: Response
    try {
      res = await fetchFn(root + path, rest)
    } catch (err) {
      if (rest.signal?.aborted) throw clientError('ABORTED', 'request aborted', { cause: rest.signal.reason })
      throw clientError('UNAVAILABLE', `cannot reach ${root}: ${(err as Error).message}`, { cause: err })
    }
    if (res.ok || okStatuses?.includes(res.status)) return res
    throw await errorFrom(res)
  }

  return {
    request,
    async json(path, init) {
      const res = await request(path, {
        ...init,
        headers: { accept: 'application/json', ...(init?.headers ?? {}) },
      })
      return { status: res.status, body: await readJson(res) }
    },
  }
}

async function readJson(res: Response): Promise<unknown> {
  let text: string
  try {
    text = await res.text()
  } catch (err) {
    throw clientError('UNAVAILABLE', `connection broke while reading the answer: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw clientError('BAD_RESPONSE', `status ${res.status}: body is not JSON`, { status: res.status })
  }
}

/** The server's `{ error: { code, message } }` as a `CityError` with the same code. */
async function errorFrom(res: Response): Promise<CityError> {
  let body: unknown
  try {
    body = await readJson(res)
  } catch {
    return clientError('BAD_RESPONSE', `status ${res.status} without an RPC error body`, {
      status: res.status,
    })
  }
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
  if (e && typeof e.code === 'string' && e.code !== '') {
    return new CityError(e.code, typeof e.message === 'string' ? e.message : e.code, { status: res.status })
  }
  return clientError('BAD_RESPONSE', `status ${res.status} without an RPC error body`, { status: res.status })
}
