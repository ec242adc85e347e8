// Key files: a validator's (or the city operator's) Ed25519 key, hex, readable by the owner only, and
// optionally encrypted at rest with a passphrase (scrypt, then AES-256-GCM, both from node:crypto).
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto'
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  CityError,
  type KeyPair,
  fromHex,
  generateKeyPair,
  isHex,
  publicKeyOf,
  toHex,
} from '@cityledger/core'

/** Names the encrypted form; a new form gets a new name. */
export const KEY_FILE_FORMAT = 'cityledger/key/v1'
/** scrypt cost: N = 2^15, r = 8 (32 MiB, ~0.1 s a try), p = 1. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }
/** The env variable naming a file that holds the passphrase (e.g. a systemd credential). */
export const PASSPHRASE_FILE_ENV = 'CITYLEDGER_KEY_PASSPHRASE_FILE'

interface Encrypted {
  format: string
  kdf: 'scrypt'
  N: number
  r: number
  p: number
  salt: string
  cipher: 'aes-256-gcm'
  iv: string
  ciphertext: string
  tag: string
}

export interface KeyFileOptions {
  /** The passphrase of an encrypted key file; read from `PASSPHRASE_FILE_ENV` when not given. */
  passphrase?: string
}

/** A passphrase file's contents without its final newline; refused when group or others may read it. */
export function readPassphraseFile(path: string): string {
  const text = readPrivate(path, 'passphrase file')
  const passphrase = text.replace(/\r?\n$/, '')
  if (passphrase.length < 8) throw new CityError('BAD_KEY', `${path}: a passphrase has at least 8 characters`)
  return passphrase
}

/** The text of a file only its owner may read (UNSAFE_KEY_FILE otherwise, BAD_KEY if unreadable). */
function readPrivate(path: string, what: string): string {
  checkPrivate(path, what)
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new CityError('BAD_KEY', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

function checkPrivate(path: string, what: string): void {
  if (process.platform === 'win32') return
  let mode: number
  try {
    mode = statSync(path).mode & 0o777
  } catch (err) {
    throw new CityError('BAD_KEY', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (mode & 0o077)
    throw new CityError(
      'UNSAFE_KEY_FILE',
      `${path} may be read by group or others (mode ${mode.toString(8).padStart(4, '0')}); a ${what} must be private: chmod 600 ${path}`,
      { path, mode },
    )
}

const passphraseOf = (opts: KeyFileOptions): string | undefined => {
  if (opts.passphrase !== undefined) return opts.passphrase
  const file = process.env[PASSPHRASE_FILE_ENV]
  return file ? readPassphraseFile(file) : undefined
}

// The public key and the format are authenticated with the secret: a file whose publicKey was
// swapped, or whose parameters were edited, does not decrypt.
const aad = (publicKeyHex: string) => Buffer.from(`${KEY_FILE_FORMAT}\n${publicKeyHex}`)

function encrypt(key: KeyPair, passphrase: string): Encrypted {
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const k = scryptSync(passphrase, salt, 32, SCRYPT)
  const cipher = createCipheriv('aes-256-gcm', k, iv)
  cipher.setAAD(aad(toHex(key.publicKey)))
  const ciphertext = Buffer.concat([cipher.update(key.secretKey), cipher.final()])
  return {
    format: KEY_FILE_FORMAT,
    kdf: 'scrypt',
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString('hex'),
    cipher: 'aes-256-gcm',
    iv: iv.toString('hex'),
    ciphertext: ciphertext.toString('hex'),
    tag: cipher.getAuthTag().toString('hex'),
  }
}

function decrypt(path: string, e: Partial<Encrypted>, publicKeyHex: string, passphrase: string): Uint8Array {
  const bad = (what: string) => new CityError('BAD_KEY', `${path}: encrypted ${what}`)
  if (e.format !== KEY_FILE_FORMAT)
    throw bad(`format ${JSON.stringify(e.format)}, expected ${KEY_FILE_FORMAT}`)
  if (e.kdf !== 'scrypt' || e.cipher !== 'aes-256-gcm') throw bad('with an unknown kdf or cipher')
  // Bounded so that a crafted file cannot make the node spend unbounded memory or time.
  if (e.N !== SCRYPT.N || e.r !== SCRYPT.r || e.p !== SCRYPT.p) throw bad('with other scrypt parameters')
  if (!isHex(e.salt, 16) || !isHex(e.iv, 12) || !isHex(e.ciphertext, 32) || !isHex(e.tag, 16))
    throw bad('fields are not the expected hex')
  const k = scryptSync(passphrase, Buffer.from(e.salt, 'hex'), 32, SCRYPT)
  const decipher = createDecipheriv('aes-256-gcm', k, Buffer.from(e.iv, 'hex'))
  decipher.setAAD(aad(publicKeyHex))
  decipher.setAuthTag(Buffer.from(e.tag, 'hex'))
  try {
    return new Uint8Array(
      Buffer.concat([decipher.update(Buffer.from(e.ciphertext, 'hex')), decipher.final()]),
    )
  } catch {
    throw new CityError(
      'BAD_PASSPHRASE',
      `${path}: cannot decrypt the key: wrong passphrase, or the file was changed`,
    )
  }
}

/**
 * Reads a key file: `{ publicKey?, secretKey }` (hex) or `{ publicKey, encrypted }` (see `writeKeyFile`).
 * Refused, as ssh refuses a private key, when group or others may read it (UNSAFE_KEY_FILE);
 * malformed files are BAD_KEY; an encrypted one without a passphrase is KEY_LOCKED, with a wrong one
 * BAD_PASSPHRASE. No message ever quotes the file's contents: JSON.parse's own message would echo the
 * first characters of the key.
 */
export function readKeyFile(path: string, opts: KeyFileOptions = {}): KeyPair {
  const text = readPrivate(path, 'secret key')
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new CityError(
      'BAD_KEY',
      `${path}: not valid JSON (contents not shown: the file holds a secret key)`,
    )
  }
  const f = (json ?? {}) as { secretKey?: unknown; publicKey?: unknown; encrypted?: unknown }
  let secretKey: Uint8Array
  if (f.encrypted !== undefined) {
    if (!isHex(f.publicKey, 32))
      throw new CityError('BAD_KEY', `${path}: publicKey must be 64 hex characters`)
    if (typeof f.encrypted !== 'object' || f.encrypted === null)
      throw new CityError('BAD_KEY', `${path}: encrypted must be an object`)
    const passphrase = passphraseOf(opts)
    if (passphrase === undefined)
      throw new CityError(
        'KEY_LOCKED',
        `${path} is encrypted: give the file that holds its passphrase with --passphrase-file or ${PASSPHRASE_FILE_ENV}`,
      )
    secretKey = decrypt(path, f.encrypted as Partial<Encrypted>, f.publicKey.toLowerCase(), passphrase)
  } else {
    if (!isHex(f.secretKey, 32))
      throw new CityError('BAD_KEY', `${path}: secretKey must be 64 hex characters`)
    secretKey = fromHex(f.secretKey)
  }
  const publicKey = publicKeyOf(secretKey)
  if (
    f.publicKey !== undefined &&
    (typeof f.publicKey !== 'string' || f.publicKey.toLowerCase() !== toHex(publicKey))
  )
    throw new CityError('BAD_KEY', `${path}: publicKey does not match secretKey`)
  return { secretKey, publicKey }
}

/**
 * Writes a key file, mode 600, through a temporary file and a rename (a crash never leaves half a key).
 * With a passphrase the secret key is stored encrypted: scrypt (N = 2^15, r = 8, p = 1) derives an
 * AES-256-GCM key; the public key stays readable and is authenticated with the secret.
 */
export function writeKeyFile(path: string, key: KeyPair, opts: { passphrase?: string } = {}): KeyPair {
  const publicKey = toHex(key.publicKey)
  const body =
    opts.passphrase === undefined
      ? { publicKey, secretKey: toHex(key.secretKey) }
      : { publicKey, encrypted: encrypt(key, opts.passphrase) }
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
  return key
}

/** `<home>/key.json`: the node's key. */
export function loadKey(home: string, opts: KeyFileOptions = {}): KeyPair {
  return readKeyFile(join(home, 'key.json'), opts)
}

/** A validator key whose secret is held by a signer module (an HSM): `key.json` names the public key only. */
export interface PublicOnlyKey {
  publicKey: Uint8Array
  secretKey?: undefined
}

/**
 * `<home>/key.json` for a node whose validator signer is a module: the file may hold the public key
 * alone (`{ "publicKey": "<64 hex>" }`, the secret stays in the HSM); a full key file works as before.
 */
export function loadNodeKey(home: string, opts: KeyFileOptions = {}): KeyPair | PublicOnlyKey {
  const path = join(home, 'key.json')
  let f: { publicKey?: unknown; secretKey?: unknown; encrypted?: unknown } | undefined
  try {
    f = JSON.parse(readPrivate(path, 'secret key'))
  } catch {
    return readKeyFile(path, opts) // the same errors as a plain key file
  }
  if (f && typeof f === 'object' && f.secretKey === undefined && f.encrypted === undefined) {
    if (!isHex(f.publicKey, 32))
      throw new CityError('BAD_KEY', `${path}: publicKey must be 64 hex characters`)
    return { publicKey: fromHex(f.publicKey) }
  }
  return readKeyFile(path, opts)
}

export function writeKey(
  home: string,
  key: KeyPair = generateKeyPair(),
  opts: { passphrase?: string } = {},
): KeyPair {
  return writeKeyFile(join(home, 'key.json'), key, opts)
}
