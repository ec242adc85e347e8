// test lane: beside the package tests
// Test ports: parallel test processes never hand out the same port (the suite runs three clusters at
// once; ports chosen at random from one shared range collided, and a node failed to start with
// EADDRINUSE), and a port handed out is free to bind.
import { spawn } from 'node:child_process'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { freePorts, portsFree } from '../helpers/ports.ts'

const HELPERS = new URL('../helpers/ports.ts', import.meta.url).href
// Each child takes 150 ports (three blocks), prints them, and stays alive until told to end, so that
// its blocks stay claimed while the others choose.
const CHILD = `
import { freePorts } from ${JSON.stringify(HELPERS)}
const ports = await freePorts(150)
console.log(JSON.stringify(ports))
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
`

function child(): Promise<{ ports: number[]; end: () => void }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    let out = ''
    c.stdout.on('data', (b) => {
      out += b
      if (out.includes('\n')) resolve({ ports: JSON.parse(out), end: () => c.stdin.end() })
    })
    c.once('exit', (code) => reject(new Error(`child exited with ${code} before answering`)))
  })
}

test('six processes choosing ports at once get disjoint sets, each port free to bind', async () => {
  const kids = await Promise.all(Array.from({ length: 6 }, child))
  try {
    const mine = await freePorts(150)
    const all = [...mine, ...kids.flatMap((k) => k.ports)]
    assert.is(new Set(all).size, all.length, 'no port handed out twice')
    assert.ok(await portsFree(mine), 'the ports are free to bind')
  } finally {
    for (const k of kids) k.end()
  }
})

test.run()
