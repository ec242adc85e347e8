// The JSON Schemas published for editors (packages/node/schema/) are exactly the ones the loaders
// validate with, and their defaults are the defaults the node uses. After changing a schema:
//   UPDATE_SCHEMA=1 node packages/node/test/config-published.test.ts
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  CONFIG_SCHEMA,
  DEFAULT_CONFIG,
  DEFAULT_CONSENSUS,
  GENESIS_SCHEMA,
  type JsonSchema,
} from '../src/config/index.ts'

const DIR = join(import.meta.dirname, '..', 'schema')
const FILES: [string, JsonSchema][] = [
  ['config.schema.json', CONFIG_SCHEMA],
  ['genesis.schema.json', GENESIS_SCHEMA],
]

/** The object of `default`s a schema declares, at every depth. */
function defaultsOf(s: JsonSchema): unknown {
  if (s.type === 'object' && s.properties) {
    const out: Record<string, unknown> = {}
    for (const [k, p] of Object.entries(s.properties as Record<string, JsonSchema>)) {
      const v = defaultsOf(p)
      if (v !== undefined) out[k] = v
    }
    return out
  }
  return s.default
}

for (const [file, schema] of FILES) {
  test(`${file} is the schema the loader validates with`, () => {
    const text = `${JSON.stringify(schema, null, 2)}\n`
    if (process.env.UPDATE_SCHEMA) writeFileSync(join(DIR, file), text)
    assert.fixture(readFileSync(join(DIR, file), 'utf8'), text)
  })
}

test('every config default is declared in the schema, and only those', () => {
  assert.equal(defaultsOf(CONFIG_SCHEMA), DEFAULT_CONFIG)
})

test('every consensus default is declared in the genesis schema, and only those', () => {
  const props = GENESIS_SCHEMA.properties as Record<string, JsonSchema>
  assert.equal(defaultsOf(props.consensus!), DEFAULT_CONSENSUS)
})

test.run()
