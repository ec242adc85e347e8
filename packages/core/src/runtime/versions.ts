import type { Value } from '../codec/msgpack.ts'
import { CityError } from '../errors/index.ts'
import type { ServiceEvent } from './executor.ts'
import { synchronous } from './guards.ts'
import { hookKey } from './hooks.ts'
import { type Layer, Meter, type WorkLimits } from './layer.ts'
import type { BlockContext, ServiceDefinition } from './service.ts'

/**
 * Service versions are chain state. Genesis records each service's version (`_sys/version/<service>`)
 * and any scheduled upgrade (`_sys/upgrade/<service>` = { version, height }) from the genesis section
 * `_sys: { upgrades: [{ service, version, height }] }` (governance will write the same record later).
 *
 * Before each block's transactions, for every service:
 * - an upgrade due at this height (height >= its height) needs this node's code to have that version,
 *   else the block is refused with SERVICE_UPGRADE_REQUIRED (the node stops there, saying what to
 *   install); with the right code, the service's `migrate(ctx, fromVersion)` runs, the version record
 *   changes, the schedule and any halted-hook record are cleared and a `serviceUpgraded` event is recorded;
 * - otherwise the chain's version must equal this node's code version, else SERVICE_VERSION_MISMATCH
 *   (a node upgraded too early, or too late, refuses to execute rather than fork).
 * A chain whose state has no version record for a service (made before versions were recorded) runs
 * whatever code the node has for it.
 */

export const versionKey = (service: string) => `_sys/version/${service}`
export const upgradeKey = (service: string) => `_sys/upgrade/${service}`
/**
 * The service genesis names in `_sys.upgradeAuthority` (e.g. the governance service): the only one
 * whose transactions get `ctx.scheduleUpgrade`, so upgrades agreed on chain schedule themselves.
 */
export const upgradeAuthorityKey = '_sys/upgradeAuthority'

/** A scheduled version change: `service` runs `version` from block `height` on. */
export interface ServiceUpgrade {
  service: string
  version: string
  height: number
}

/** One service's versions, for operators. */
export interface VersionReport {
  service: string
  /** The version chain state records (undefined for a chain from before versions were recorded). */
  chain: string | undefined
  /** The version of this node's code. */
  code: string
  /** A scheduled upgrade not yet active. */
  upgrade?: { version: string; height: number }
}

function parseUpgrades(
  sys: Value | undefined,
  services: ReadonlyMap<string, ServiceDefinition>,
): ServiceUpgrade[] {
  if (sys === undefined || sys === null) return []
  const list = (sys as Record<string, Value>).upgrades
  if (list === undefined) return []
  if (!Array.isArray(list)) throw new CityError('BAD_GENESIS', '_sys.upgrades: expected a list')
  return list.map((u, i) => {
    const r = u as Record<string, Value>
    const ok =
      r !== null &&
      typeof r === 'object' &&
      typeof r.service === 'string' &&
      services.has(r.service) &&
      typeof r.version === 'string' &&
      r.version.length > 0 &&
      typeof r.height === 'number' &&
      Number.isSafeInteger(r.height) &&
      r.height >= 1
    if (!ok)
      throw new CityError(
        'BAD_GENESIS',
        `_sys.upgrades[${i}]: expected { service (known), version, height >= 1 }`,
      )
    return { service: r.service as string, version: r.version as string, height: r.height as number }
  })
}

function parseAuthority(
  sys: Value | undefined,
  services: ReadonlyMap<string, ServiceDefinition>,
): string | undefined {
  const a = sys === undefined || sys === null ? undefined : (sys as Record<string, Value>).upgradeAuthority
  if (a === undefined) return undefined
  if (typeof a !== 'string' || !services.has(a))
    throw new CityError('BAD_GENESIS', '_sys.upgradeAuthority: expected the name of a service of this chain')
  return a
}

/**
 * `ctx.scheduleUpgrade` of the upgrade authority's transactions: from block `height` on, `service`
 * runs `version` (see `applyUpgrades`). Written in the tx's layer, so it is dropped if the tx fails.
 * Refused (the tx fails): a malformed service name or version, a height not above the current block,
 * or a service that already has an upgrade scheduled at another height, still ahead. Whether this node's code has
 * the service is not asked: the tx's outcome must not depend on which release a node runs (the
 * nodes that do have it stop or migrate at the height; a service no node has keeps an inert record).
 * So an upgrade cannot add a new service to a running chain.
 */
export function scheduleUpgrade(
  layer: Layer,
  now: number,
  service: unknown,
  version: unknown,
  height: unknown,
): void {
  if (typeof service !== 'string' || !/^[a-z][a-z0-9_-]{0,63}$/.test(service))
    throw new CityError(
      'BAD_UPGRADE',
      `scheduleUpgrade: ${String(service).slice(0, 80)} is not a service name`,
    )
  if (typeof version !== 'string' || version.length === 0 || version.length > 80)
    throw new CityError('BAD_UPGRADE', 'scheduleUpgrade: version must be a string of 1 to 80 characters')
  if (typeof height !== 'number' || !Number.isSafeInteger(height) || height <= now)
    throw new CityError('BAD_UPGRADE', `scheduleUpgrade: height must be an integer above ${now}`)
  const pending = layer.get(upgradeKey(service)) as { version: string; height: number } | undefined
  // A record at or below this height is past: the nodes that run the service applied and cleared it;
  // one that stays is of a service this node does not run, and may be replaced.
  if (pending && pending.height !== height && pending.height > now)
    throw new CityError(
      'BAD_UPGRADE',
      `scheduleUpgrade: ${service} already upgrades to ${pending.version} at height ${pending.height}`,
    )
  layer.set(upgradeKey(service), { version, height })
}

/** The state writes genesis makes for versions: each service's version, and the scheduled upgrades. */
export function genesisVersionWrites(
  services: ReadonlyMap<string, ServiceDefinition>,
  sys: Value | undefined,
): [string, Value][] {
  const out: [string, Value][] = []
  const upgrades = parseUpgrades(sys, services)
  const authority = parseAuthority(sys, services)
  if (authority !== undefined) out.push([upgradeAuthorityKey, authority])
  for (const [name, svc] of services) {
    const up = upgrades.find((u) => u.service === name)
    // Genesis runs this node's code, so that is the version the chain starts with.
    out.push([versionKey(name), svc.version])
    if (up) out.push([upgradeKey(name), { version: up.version, height: up.height }])
  }
  return out
}

export function applyUpgrades(o: {
  layer: Layer
  height: number
  services: ReadonlyMap<string, ServiceDefinition>
  order: string[]
  limits: WorkLimits
  context: (layer: Layer, service: string, events: ServiceEvent[]) => BlockContext & { end(): void }
}): ServiceEvent[] {
  const events: ServiceEvent[] = []
  for (const name of o.order) {
    const svc = o.services.get(name)!
    const chain = o.layer.get(versionKey(name)) as string | undefined
    const up = o.layer.get(upgradeKey(name)) as { version: string; height: number } | undefined
    if (up && o.height >= up.height) {
      if (svc.version !== up.version) {
        throw new CityError(
          'SERVICE_UPGRADE_REQUIRED',
          `block ${o.height} runs ${name} ${up.version} (activated at height ${up.height}); this node has ${name} ${svc.version}: install ${name} ${up.version} and restart`,
          { service: name, version: up.version, height: up.height, code: svc.version },
        )
      }
      const layer = o.layer.child(
        new Meter({ ...o.limits, maxReads: Infinity, maxWrites: Infinity, maxEvents: Infinity }),
      )
      const mine: ServiceEvent[] = []
      const ctx = o.context(layer, name, mine)
      try {
        synchronous(svc.migrate?.(ctx, chain) as unknown, `${name}.migrate`)
      } catch (err) {
        throw new CityError(
          'MIGRATION_FAILED',
          `migration of ${name} from ${chain} to ${up.version} at height ${o.height} failed: ${(err as Error)?.message ?? err}`,
          { service: name, height: o.height },
        )
      } finally {
        ctx.end()
      }
      layer.commit()
      o.layer.set(versionKey(name), up.version)
      o.layer.delete(upgradeKey(name))
      if (o.layer.get(hookKey(name)) !== undefined) o.layer.delete(hookKey(name))
      events.push(...mine, {
        service: name,
        name: 'serviceUpgraded',
        data: { from: chain ?? null, to: up.version },
      })
      continue
    }
    if (chain !== undefined && chain !== svc.version) {
      throw new CityError(
        'SERVICE_VERSION_MISMATCH',
        `chain runs ${name} ${chain} at height ${o.height}${up ? ` (${up.version} activates at ${up.height})` : ''}; this node has ${name} ${svc.version}: run the code of ${name} ${chain}`,
        { service: name, chain, code: svc.version },
      )
    }
  }
  return events
}

export function serviceVersions(
  layer: Layer,
  services: ReadonlyMap<string, ServiceDefinition>,
  order: string[],
): VersionReport[] {
  return order.map((name) => {
    const up = layer.get(upgradeKey(name)) as { version: string; height: number } | undefined
    const r: VersionReport = {
      service: name,
      chain: layer.get(versionKey(name)) as string | undefined,
      code: services.get(name)!.version,
    }
    if (up) r.upgrade = { version: up.version, height: up.height }
    return r
  })
}
