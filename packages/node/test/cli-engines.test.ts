// The Node version the project states is one that runs its sources: `.ts` files run as they are
// (type stripping, on by default from Node 22.18/23.6; this project is built and tested on Node 24).
// Node 20 fails on the first import (ERR_UNKNOWN_FILE_EXTENSION), so `engines` must not say >= 20.
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

const ROOT = resolve(import.meta.dirname, '../../..')

test('engines.node says >=24, and this Node satisfies it', () => {
  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as {
    engines?: { node?: string }
  }
  assert.is(pkg.engines?.node, '>=24')
  assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `running on ${process.versions.node}`)
})

test('the README states the same Node version', () => {
  const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8')
  assert.match(readme, 'Node >= 24')
  assert.not.match(readme, '>= 20')
})

test.run()
