// Coordinated upgrades (issue #13 item 6): a node whose code lacks the service version the chain
// activates at a height stops cleanly there (exit 7, the log names the service and version to
// install), commits nothing of that block, and stops the same way when restarted with the same code.
// That the right code goes on from there is core's runtime-versions and runtime-upgrade-authority tests.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EXIT } from '../src/cli/exitCodes.ts'
import { oneValidatorHome, startCli, withDir } from './cliHarness.ts'

const AT = 4

test(
  `at height ${AT} the chain runs token 9.9.9: this node (token 1.x) exits ${EXIT.UPGRADE_REQUIRED} saying what to install, again after a restart`,
  withDir('cityledger-upgrade-stop-', async (dir) => {
    const home = oneValidatorHome(dir, 'upgrade-stop')
    const file = join(home, 'genesis.json')
    const genesis = JSON.parse(readFileSync(file, 'utf8'))
    genesis.services._sys = {
      ...genesis.services._sys,
      upgrades: [{ service: 'token', version: '9.9.9', height: AT }],
    }
    writeFileSync(file, JSON.stringify(genesis, null, 2))
    for (const run of ['first start', 'restart']) {
      const node = await startCli(home)
      // No timer: the node stops by itself at the height (the test file's timeout bounds a node that does not).
      const code = await node.exited
      const out = node.output()
      assert.is(code, EXIT.UPGRADE_REQUIRED, `${run}: exit ${code}\n${out.slice(-2000)}`)
      assert.match(out, `install token 9.9.9 and restart`)
      assert.match(out, '"code":"SERVICE_UPGRADE_REQUIRED"')
      // Block AT was not committed: the restart stops at the same block (else it would be at AT + 1,
      // refused as SERVICE_VERSION_MISMATCH).
      assert.match(out, `block ${AT} runs token 9.9.9`)
    }
  }),
)

test.run()
