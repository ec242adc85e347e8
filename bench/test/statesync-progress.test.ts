import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runStateSyncBench } from '../src/stateSync.ts'

// `bench statesync` printed nothing while the sync ran (its logger was silent): minutes without a line
// at 1,000,000 keys. The sync's own progress lines now come through `log`.
test('statesync: the sync phase reports progress and its end through log', async () => {
  const lines: string[] = []
  await runStateSyncBench({ keys: 20_000, blocks: 2, log: (l) => lines.push(l) }, 'test')
  const during = lines.slice(lines.indexOf('state sync into a new store') + 1)
  const progress = during.filter((l) => l.includes('state sync: progress'))
  assert.ok(progress.length >= 3, lines.join('\n'))
  const pages = progress.map((l) => Number(/pages (\d+)/.exec(l)?.[1]))
  assert.ok(
    pages.every((p, i) => p > (pages[i - 1] ?? 0)),
    `pages grow from line to line: ${pages}`,
  )
  assert.ok(
    during.some((l) => l.includes('state sync: done') && /keys 20000\b/.test(l)),
    lines.join('\n'),
  )
})

test.run()
