/**
 * Import this first (before any other module) to harden the process: SES `lockdown()` freezes the
 * intrinsics before any of our modules or libraries load, so nothing can depend on changing them, and
 * classes such as CityError extend the tamed Error. Services loaded with `loadServiceModules` then run
 * in Compartments of this locked-down realm. The validator CLI imports it. It imports nothing else of
 * ours on purpose (a module evaluated before lockdown keeps the untamed intrinsics).
 *
 * @example
 * import '@cityledger/core/lockdown'
 */
import 'ses'
import { LOCKDOWN_OPTIONS } from './lockdownOptions.ts'

if (!Object.isFrozen(Array.prototype)) lockdown(LOCKDOWN_OPTIONS)
