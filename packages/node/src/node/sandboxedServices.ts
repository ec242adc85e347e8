import { existsSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CityError, type ServiceDefinition, loadServiceFolder } from '@cityledger/core'
import { allServices } from '@cityledger/apps'

/**
 * The city services of @cityledger/apps, loaded from their source files into one SES Compartment per
 * module (lockdown first; see core's runtime/sandbox.ts). Refuses to start when the sandboxed set and
 * the package's `allServices` differ (a service module the loader did not find, or an extra one), so
 * the sandbox always runs exactly the services the package ships.
 */
export function sandboxedAppServices(): ServiceDefinition[] {
  // From the workspace the package resolves to its src/; installed, to dist/ (compiled), and the
  // sources the sandbox runs ship beside it in src/.
  const entry = dirname(fileURLToPath(import.meta.resolve('@cityledger/apps')))
  const src = basename(entry) === 'dist' ? join(dirname(entry), 'src') : entry
  if (!existsSync(src))
    throw new CityError(
      'SERVICE_LOAD_FAILED',
      `the sandbox needs the service sources of @cityledger/apps in ${src}`,
    )
  const loaded = loadServiceFolder(src, { exclude: ['index.ts', 'all.ts'] })
  const want = allServices.map((s) => `${s.name}@${s.version}`).sort()
  const got = loaded.map((s) => `${s.name}@${s.version}`).sort()
  if (want.join() !== got.join()) {
    throw new CityError(
      'SERVICE_LOAD_FAILED',
      `the sandbox loaded ${got.join(', ')} but @cityledger/apps ships ${want.join(', ')}`,
    )
  }
  const byName = new Map(loaded.map((s) => [s.name, s]))
  return allServices.map((s) => byName.get(s.name)!)
}
