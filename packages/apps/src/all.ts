import type { ServiceDefinition } from '@cityledger/core'
import { baseServices } from './base/index.ts'
import * as seoul from './seoul/index.ts'

const isService = (x: unknown): x is ServiceDefinition =>
  typeof x === 'object' &&
  x !== null &&
  typeof (x as ServiceDefinition).name === 'string' &&
  typeof (x as ServiceDefinition).methods === 'object'

/** The Seoul city services this package ships (every service exported by `seoul/index.ts`). */
export const seoulServices: ServiceDefinition[] = Object.values(seoul as Record<string, unknown>).filter(
  isService,
)

/** Everything a city node loads: the standard platform (base services) and the Seoul services. */
export const allServices: ServiceDefinition[] = [...baseServices, ...seoulServices]
