import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { ConfigProblem } from './validate.ts'

/**
 * What is wrong with a TLS certificate and key pair: a file that cannot be read, is not PEM, or a
 * key that does not belong to the certificate. Each problem names its config field.
 */
export function tlsProblems(certPath: string, keyPath: string): ConfigProblem[] {
  const read = (field: string, path: string): ConfigProblem | Buffer => {
    try {
      return readFileSync(path)
    } catch (err) {
      return { field, message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}` }
    }
  }
  const cert = read('rpc.tls.certFile', certPath)
  const key = read('rpc.tls.keyFile', keyPath)
  const problems = [cert, key].filter((x): x is ConfigProblem => !Buffer.isBuffer(x))
  if (problems.length > 0) return problems
  try {
    new X509Certificate(cert as Buffer)
  } catch (err) {
    return [
      {
        field: 'rpc.tls.certFile',
        message: `${certPath}: not a PEM certificate (${(err as Error).message})`,
      },
    ]
  }
  try {
    createSecureContext({ cert: cert as Buffer, key: key as Buffer })
  } catch (err) {
    return [
      {
        field: 'rpc.tls.keyFile',
        message: `${keyPath}: not the PEM private key of rpc.tls.certFile (${(err as Error).message})`,
      },
    ]
  }
  return []
}
