import 'ses'
import { readFileSync, readdirSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { CityError } from '../errors/index.ts'
import { LOCKDOWN_OPTIONS } from './lockdownOptions.ts'
import { SERVICE_SDK } from './sdk.ts'
import type { ServiceDefinition } from './service.ts'

/**
 * The service sandbox: Hardened JavaScript (SES). `hardenProcess()` runs `lockdown()` once (frozen
 * intrinsics, no prototype pollution); `loadServiceModules()` evaluates each service module's source in
 * a Compartment of its own whose globals are the deterministic JavaScript intrinsics only: no `Date`,
 * no `Math.random` (nor the float functions whose results differ between engines), no `crypto`, `Intl`,
 * timers, `process`, `require`, `Function`/`eval`, `Compartment` or dynamic `import()`, and a frozen
 * `globalThis`. A module may import only `@cityledger/core` (the service SDK, see `sdk.ts`) and `.ts`
 * files under its root folder; anything else refuses to load with `SERVICE_LOAD_FAILED`.
 *
 * @example
 * hardenProcess()
 * const services = loadServiceModules([new URL('./counter.ts', import.meta.url).href])
 * const runtime = createRuntime({ services })
 */

let hardened = false

/**
 * Runs SES `lockdown()` once for this process (idempotent). Nothing may change intrinsics after it.
 * Prefer `import '@cityledger/core/lockdown'` as a program's first import: modules evaluated before
 * lockdown keep untamed intrinsics (classes extending the original Error, for one).
 */
export function hardenProcess(): void {
  if (hardened || isProcessHardened()) {
    hardened = true
    return
  }
  lockdown(LOCKDOWN_OPTIONS)
  hardened = true
}

/** True once lockdown has run (intrinsics are frozen). */
export function isProcessHardened(): boolean {
  return hardened || Object.isFrozen(Array.prototype)
}

/** Math without `random` and without the functions whose float results are engine-dependent. */
function safeMath(): object {
  const exact = [
    'abs',
    'ceil',
    'clz32',
    'floor',
    'imul',
    'max',
    'min',
    'round',
    'sign',
    'trunc',
    'sqrt',
    'fround',
  ]
  const out: Record<string, unknown> = {}
  for (const k of exact) out[k] = (Math as unknown as Record<string, unknown>)[k]
  return harden(out)
}

/** Globals removed from every service compartment (ambient authority or engine-dependent results). */
const REMOVED = ['Date', 'Function', 'eval', 'Compartment', 'lockdown', 'Math', 'escape', 'unescape']

/**
 * Intrinsics handed to the module functor as parameters: the same values as the compartment's globals,
 * but read as locals (a global lookup inside a compartment goes through its scope proxy, ~0.1 us).
 */
const FAST = [
  'Object',
  'Array',
  'Number',
  'String',
  'Boolean',
  'Symbol',
  'Math',
  'JSON',
  'Map',
  'Set',
  'WeakMap',
  'WeakSet',
  'Uint8Array',
  'Error',
  'TypeError',
  'RangeError',
  'Reflect',
  'BigInt',
  'parseInt',
  'isNaN',
  'undefined',
  'structuredClone',
]

/** Deep copy of plain data (the `structuredClone` services get): maps, arrays, bytes and scalars only. */
function cloneData(v: unknown, depth = 0): unknown {
  if (v === null || typeof v !== 'object') return v
  if (depth > 32) throw new TypeError('structuredClone: value nested too deeply')
  if (v instanceof Uint8Array) return v.slice()
  if (Array.isArray(v)) return v.map((x) => cloneData(x, depth + 1))
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = cloneData((v as Record<string, unknown>)[k], depth + 1)
  return out
}

function makeCompartment(label: string): {
  compartment: { evaluate(src: string): unknown }
  fast: unknown[]
} {
  const compartment = new Compartment({ __options__: true, name: label, globals: {} })
  const g = compartment.globalThis as Record<string, unknown>
  for (const k of REMOVED) delete g[k]
  Object.defineProperty(g, 'Math', { value: safeMath(), enumerable: false })
  Object.defineProperty(g, 'structuredClone', {
    value: harden((v: unknown) => cloneData(v)),
    enumerable: false,
  })
  Object.freeze(g)
  const fast = FAST.map((k) => g[k])
  return { compartment, fast }
}

function loadFailed(file: string, why: string): never {
  throw new CityError('SERVICE_LOAD_FAILED', `service module ${file}: ${why}`, { file })
}

interface Functor {
  code: string
  /** Specifiers in the order the module imports them. */
  imports: string[]
}

const ID = '[A-Za-z_$][\\w$]*'
const IMPORT_RE = new RegExp(
  `^import\\s+(?:\\*\\s+as\\s+(${ID})|(${ID})\\s*(?:,\\s*\\{([^}]*)\\})?|\\{([^}]*)\\})\\s*from\\s*(['"])([^'"\\n]+)\\5[ \\t]*;?`,
  'gm',
)
const EXPORT_DECL_RE = new RegExp(
  `^export\\s+((?:async\\s+)?function\\*?|class|const|let|var)\\s+(${ID})`,
  'gm',
)
const EXPORT_LIST_RE = /^export\s*\{([^}]*)\}\s*(?:from\s*(['"])([^'"\n]+)\2)?[ \t]*;?/gm
const EXPORT_STAR_RE = new RegExp(
  `^export\\s*\\*\\s*(?:as\\s+(${ID})\\s+)?from\\s*(['"])([^'"\\n]+)\\2[ \\t]*;?`,
  'gm',
)

/** `a, b as c` -> [['a','a'], ['b','c']] (imported name, local name). */
function specifiers(list: string, file: string): [string, string][] {
  const out: [string, string][] = []
  for (const raw of list.split(',')) {
    const t = raw.trim()
    if (!t) continue
    const m = new RegExp(`^(${ID})(?:\\s+as\\s+(${ID}))?$`).exec(t)
    if (!m) loadFailed(file, `cannot read import/export specifier '${t}'`)
    out.push([m[1]!, m[2] ?? m[1]!])
  }
  return out
}

/** Keeps line numbers: a replacement takes as many lines as the text it replaces. */
const sameLines = (replaced: string, text: string) => text + '\n'.repeat(replaced.split('\n').length - 1)

/**
 * Turns an ES module (types already stripped) into the body of a function: imports become reads of
 * `__import(specifier, names)`, exports the object the function returns. Only the static forms are
 * accepted (named, namespace and re-exports); anything else refuses to load.
 */
export function moduleFunctor(source: string, file: string): Functor {
  const imports: string[] = []
  const exported: string[] = []
  const reexports: string[] = []
  let n = 0
  let code = source.replace(IMPORT_RE, (all, ns, def, withDef, named, _q, spec: string) => {
    if (def) loadFailed(file, `default imports are not supported (${def} from ${spec})`)
    imports.push(spec)
    const s = JSON.stringify(spec)
    if (ns) return sameLines(all, `const ${ns} = __import(${s}, null);`)
    const pairs = specifiers(named ?? withDef ?? '', file)
    const names = JSON.stringify(pairs.map(([a]) => a))
    const binds = pairs.map(([a, b]) => (a === b ? a : `${a}: ${b}`)).join(', ')
    return sameLines(all, `const { ${binds} } = __import(${s}, ${names});`)
  })
  code = code.replace(EXPORT_STAR_RE, (all, as, _q, spec: string) => {
    imports.push(spec)
    const s = JSON.stringify(spec)
    if (as) {
      exported.push(`${as}: __import(${s}, null)`)
      return sameLines(all, '')
    }
    reexports.push(`...__import(${s}, null)`)
    return sameLines(all, '')
  })
  code = code.replace(EXPORT_LIST_RE, (all, list: string, _q, spec: string | undefined) => {
    const pairs = specifiers(list, file)
    if (spec === undefined) {
      for (const [local, as] of pairs) exported.push(as === local ? local : `${as}: ${local}`)
      return sameLines(all, '')
    }
    imports.push(spec)
    const tmp = `__re${n++}`
    for (const [name, as] of pairs) exported.push(`${as}: ${tmp}.${name}`)
    return sameLines(
      all,
      `const ${tmp} = __import(${JSON.stringify(spec)}, ${JSON.stringify(pairs.map(([a]) => a))});`,
    )
  })
  code = code.replace(EXPORT_DECL_RE, (_all, kind: string, name: string) => {
    exported.push(name)
    return `${kind} ${name}`
  })
  const left = /^[ \t]*(import|export)\b(?!\s*\()/m.exec(code)
  if (left) {
    const line = code.slice(0, left.index).split('\n').length
    loadFailed(file, `line ${line}: an import/export form the sandbox does not support`)
  }
  const body = `(function (${FAST.join(', ')}) { return function (__import) { 'use strict'; ${code}
;return { ${[...reexports, ...exported].join(', ')} };
} })`
  return { code: body, imports }
}

/** Options of `loadServiceModules`. */
export interface SandboxOptions {
  /** Folder whose `.ts` files the modules may import (default: the folder of each entry file). */
  root?: string
}

/**
 * Loads service modules (file URLs or paths), each in a Compartment of its own, and returns every
 * service definition they export, hardened (deeply frozen). Runs `hardenProcess()` first.
 * Throws CityError('SERVICE_LOAD_FAILED') for a module that imports what services may not use, uses a
 * syntax the loader refuses (dynamic import, direct eval, default exports) or throws while it loads.
 */
export function loadServiceModules(entries: string[], opts: SandboxOptions = {}): ServiceDefinition[] {
  hardenProcess()
  // Locked down late (after our modules loaded): CityError still extends the original Error, and
  // hardening the SDK would freeze that constructor (its stackTraceLimit with it). Re-parent it onto
  // the tamed Error first; a process that imported '@cityledger/core/lockdown' first has nothing to do.
  if (Object.getPrototypeOf(CityError) !== Error) Object.setPrototypeOf(CityError, Error)
  const sdk = harden({ ...SERVICE_SDK })
  const out: ServiceDefinition[] = []
  for (const entry of entries) {
    const file = entry.startsWith('file:') ? fileURLToPath(entry) : resolve(entry)
    const root = resolve(opts.root ?? dirname(file))
    const { compartment, fast } = makeCompartment(relative(root, file))
    const cache = new Map<string, Record<string, unknown>>()
    const loading = new Set<string>()
    const load = (path: string): Record<string, unknown> => {
      const done = cache.get(path)
      if (done) return done
      if (loading.has(path)) loadFailed(path, 'import cycle (the sandbox loader does not support cycles)')
      loading.add(path)
      let source: string
      try {
        source = stripTypes(readFileSync(path, 'utf8'), pathToFileURL(path).href)
      } catch (err) {
        return loadFailed(path, `cannot read or strip types: ${(err as Error).message}`)
      }
      const { code } = moduleFunctor(source, path)
      const linker = (spec: string, names: string[] | null): Record<string, unknown> => {
        const ns = spec === '@cityledger/core' ? sdk : load(resolveSpecifier(spec, path, root))
        for (const name of names ?? []) {
          if (!Object.hasOwn(ns, name)) {
            loadFailed(
              path,
              spec === '@cityledger/core'
                ? `imports ${name} from @cityledger/core, which is not part of the service SDK`
                : `imports ${name} from ${spec}, which does not export it`,
            )
          }
        }
        return ns
      }
      let exports: Record<string, unknown>
      try {
        const make = compartment.evaluate(`${code}\n//# sourceURL=${pathToFileURL(path).href}`) as (
          ...a: unknown[]
        ) => (i: typeof linker) => Record<string, unknown>
        exports = make(...fast)(harden(linker))
      } catch (err) {
        if (err instanceof CityError) throw err
        return loadFailed(path, `failed while loading: ${(err as Error)?.message ?? String(err)}`)
      }
      loading.delete(path)
      cache.set(path, exports)
      return exports
    }
    const ns = load(file)
    for (const v of Object.values(ns)) {
      if (isServiceDefinition(v)) out.push(harden(v))
    }
  }
  return out
}

/**
 * Loads every service module under `dir` (recursively, `.ts` files, in name order), each in its own
 * Compartment, with `dir` as the import root. Files named in `exclude` (default `index.ts`, usually
 * re-export hubs) are not entries (they may still be imported). Two modules exporting a service of the
 * same name refuse to load.
 */
export function loadServiceFolder(dir: string, opts: { exclude?: string[] } = {}): ServiceDefinition[] {
  const exclude = new Set(opts.exclude ?? ['index.ts'])
  const files: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !exclude.has(e.name))
        files.push(p)
    }
  }
  walk(resolve(dir))
  const out = loadServiceModules(files, { root: dir })
  const seen = new Set<string>()
  for (const svc of out) {
    if (seen.has(svc.name)) loadFailed(dir, `two modules export a service named ${svc.name}`)
    seen.add(svc.name)
  }
  return out
}

/** Node's type stripping, without its one-time "experimental" warning on the node's stderr. */
function stripTypes(code: string, sourceUrl: string): string {
  const emit = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (!String(warning).includes('stripTypeScriptTypes'))
      (emit as (...a: unknown[]) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return stripTypeScriptTypes(code, { sourceUrl })
  } finally {
    process.emitWarning = emit
  }
}

function resolveSpecifier(spec: string, from: string, root: string): string {
  if (!spec.startsWith('./') && !spec.startsWith('../'))
    loadFailed(from, `imports '${spec}': services may import only @cityledger/core and their own .ts files`)
  if (!spec.endsWith('.ts')) loadFailed(from, `imports '${spec}': relative imports name a .ts file`)
  const path = resolve(dirname(from), spec)
  if (path !== root && !path.startsWith(root + sep)) loadFailed(from, `imports '${spec}', outside ${root}`)
  return path
}

function isServiceDefinition(x: unknown): x is ServiceDefinition {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as ServiceDefinition).name === 'string' &&
    typeof (x as ServiceDefinition).methods === 'object'
  )
}
