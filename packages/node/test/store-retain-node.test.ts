// store.retainBlocks on a running node: after commits the node prunes its block history in the
// background, GET /v1/blocks/:h of a pruned height is 410 PRUNED, recent blocks still answer; the sync
// server answers a request for pruned blocks with none (the peer tries another) instead of failing.
import { CityError, decodeStrict, encode } from '@cityledger/core'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { loadConfig } from '../src/config/index.ts'
import { serveSync } from '../src/node/sync.ts'
import { type LocalNode, startLocalNode } from './nodeHarness.ts'

const RETAIN = 3

let local: LocalNode

test.before(async () => {
  local = await startLocalNode((cfg) => {
    cfg.store.retainBlocks = RETAIN
  })
})

test.after(async () => {
  await local?.close()
})

const get = async (path: string) => {
  const r = await fetch(`${local.url}${path}`)
  return { status: r.status, body: (await r.json()) as any }
}

/** Polls `check` until it returns a value, for at most `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('archive mode is the default', () => {
  assert.is(loadConfig(local.home).store.retainBlocks, 0)
})

test('a pruned height is 410 PRUNED; the retained blocks answer', async () => {
  const pruned = await until('block 1 to be pruned', async () => {
    const r = await get('/v1/blocks/1')
    return r.status === 410 ? r : undefined
  })
  assert.is(pruned.body.error.code, 'PRUNED')
  assert.ok(/height 1\b/.test(pruned.body.error.message), pruned.body.error.message)
  const head = local.node.ledger.head.height
  assert.ok(head >= RETAIN + 1, `head ${head}`)
  for (let h = head - RETAIN + 1; h <= head; h++) {
    const r = await get(`/v1/blocks/${h}`)
    assert.is(r.status, 200, `block ${h} of head ${head}: ${JSON.stringify(r.body)}`)
  }
  assert.is((await get('/v1/blocks/latest')).status, 200)
  assert.is((await get('/v1/status')).status, 200)
})

test('status names the lowest kept height; a stream resuming below it is 410 PRUNED before it starts', async () => {
  const status = await until('status to report pruning', async () => {
    const r = await get('/v1/status')
    return r.body.lowestHeight > 1 ? r.body : undefined
  })
  assert.ok(status.lowestHeight <= status.height - RETAIN + 1, JSON.stringify(status))
  const r = await fetch(`${local.url}/v1/events?fromHeight=1`)
  assert.is(r.status, 410)
  const body = (await r.json()) as any
  assert.is(body.error.code, 'PRUNED')
  assert.ok(/from height 1\b/.test(body.error.message), body.error.message)
  const kept = Number(/keeps blocks from height (\d+)/.exec(body.error.message)?.[1])
  assert.ok(kept >= status.lowestHeight, body.error.message)
  const range = await get('/v1/blocks?from=1')
  assert.is(range.status, 410, JSON.stringify(range.body))
  assert.is(range.body.error.code, 'PRUNED')
})

test('the sync server answers a request for pruned blocks with none', async () => {
  const prunedErr = () =>
    new CityError('PRUNED', 'block of height 2 was pruned: this store keeps heights from 9 on')
  const source = {
    height: () => 12,
    blockBytes: async (h: number) => {
      if (h < 9) throw prunedErr()
      return new Uint8Array(0)
    },
    certificate: async (h: number) => {
      if (h < 9) throw prunedErr()
      return new Uint8Array(0)
    },
  }
  const res = decodeStrict(await serveSync(source, encode(['blocks', 2, 64])), {
    maxBytes: 1024,
    maxDepth: 2,
  })
  assert.equal(res, [])
  // Other errors still fail the request.
  const broken = { ...source, blockBytes: async () => Promise.reject(new Error('disk')) }
  try {
    await serveSync(broken, encode(['blocks', 10, 1]))
    assert.unreachable('served from a broken store')
  } catch (err) {
    assert.is((err as Error).message, 'disk')
  }
})

test.run()
