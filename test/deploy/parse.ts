// Readers for the deployment files, enough for deploy.test.ts and no more: the repository has no YAML
// or Dockerfile parser, and none is added for a test. Each reads the subset its file's header comment
// promises and throws on a line of that subset it cannot read.

export interface Instruction {
  op: string
  args: string
}

/** Dockerfile instructions by stage (each stage starts with its FROM); continuation lines joined. */
export function parseDockerfile(text: string): { stages: Instruction[][] } {
  const stages: Instruction[][] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === '')) continue
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()}\n`
      continue
    }
    const whole = (pending + line).trim()
    pending = ''
    if (whole === '') continue
    const m = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(whole)
    if (!m) throw new Error(`Dockerfile: cannot read ${JSON.stringify(whole)}`)
    const ins = { op: m[1]!.toUpperCase(), args: m[2]!.trim() }
    if (ins.op === 'FROM') stages.push([ins])
    else if (stages.length === 0) throw new Error(`Dockerfile: ${ins.op} before FROM`)
    else stages.at(-1)!.push(ins)
  }
  return { stages }
}

export interface ComposeService {
  name: string
  command: string[]
  volumes: string[]
  ports: string[]
  address: string
}

const unquote = (s: string) => s.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1')

/**
 * The services of deploy/compose.yaml: two-space indents, `command` a JSON array on one line, `- item`
 * list lines under `volumes` and `ports`, `ipv4_address` under `networks: cityledger:`.
 */
export function parseCompose(text: string): ComposeService[] {
  const services: ComposeService[] = []
  let inServices = false
  let list: 'volumes' | 'ports' | undefined
  for (const [n, raw] of text.split('\n').entries()) {
    if (raw.trim() === '' || raw.trim().startsWith('#')) continue
    const indent = raw.length - raw.trimStart().length
    const line = raw.trim()
    const where = `compose.yaml:${n + 1}`
    if (indent === 0) {
      inServices = line === 'services:'
      continue
    }
    if (!inServices) continue
    if (indent === 2) {
      const m = /^([a-z0-9_-]+):$/.exec(line)
      if (!m) throw new Error(`${where}: expected a service name, got ${line}`)
      services.push({ name: m[1]!, command: [], volumes: [], ports: [], address: '' })
      list = undefined
      continue
    }
    const s = services.at(-1)!
    if (indent === 4) {
      list = undefined
      const [key, ...rest] = line.split(':')
      const value = rest.join(':').trim()
      if (key === 'command') {
        if (!value.startsWith('[')) throw new Error(`${where}: command is not a one-line JSON array`)
        s.command = JSON.parse(value)
      } else if (key === 'volumes' || key === 'ports') list = key
      continue
    }
    if (list && line.startsWith('- ')) s[list].push(unquote(line.slice(2).trim()))
    else if (line.startsWith('ipv4_address:')) s.address = line.slice('ipv4_address:'.length).trim()
  }
  return services
}

/** A systemd unit: section -> key -> value (the last one wins, as for the keys used here). */
export function parseUnit(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = {}
  let current: Record<string, string> | undefined
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[(\w+)\]$/.exec(line)
    if (section) {
      current = sections[section[1]!] = {}
      continue
    }
    const eq = line.indexOf('=')
    if (!current || eq < 0 || line.endsWith('\\')) throw new Error(`unit line ${n + 1}: cannot read ${line}`)
    current[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return sections
}

/** An ExecStart command line of plain words (no quotes or specifiers, which this unit does not use). */
export function splitCommand(line: string): string[] {
  if (/["'%$\\]/.test(line)) throw new Error(`ExecStart uses quoting or specifiers: ${line}`)
  return line.trim().split(/\s+/)
}
