#!/usr/bin/env node
// Fails when src/api/schema.d.ts is not what `npm run gen:api` makes of openapi.json today,
// i.e. when the contract changed and the generated types were not regenerated (or were
// edited by hand). Regenerates into a temporary file and compares byte for byte.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const spec = join(root, 'openapi.json')
const committed = join(root, 'src/api/schema.d.ts')
const require = createRequire(import.meta.url)
const cli = join(dirname(require.resolve('openapi-typescript/package.json')), 'bin/cli.js')

if (!existsSync(spec)) {
  console.error('check:api: frontend/openapi.json is missing')
  process.exit(1)
}
if (!existsSync(committed)) {
  console.error('check:api: src/api/schema.d.ts is missing; run `npm run gen:api`')
  process.exit(1)
}

// Run exactly the `gen:api` command (same flags), writing to a temporary file instead.
const genApi = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts['gen:api']
const args = genApi.trim().split(/\s+/)
if (args[0] !== 'openapi-typescript') {
  console.error(`check:api: expected gen:api to run openapi-typescript, found: ${genApi}`)
  process.exit(1)
}
const dir = mkdtempSync(join(tmpdir(), 'ticketd-api-'))
const fresh = join(dir, 'schema.d.ts')
const out = args.findIndex((a) => a === '-o' || a === '--output')
if (out < 0 || out + 1 >= args.length) {
  console.error('check:api: gen:api has no `-o <file>`')
  process.exit(1)
}
args[out + 1] = fresh
try {
  execFileSync(process.execPath, [cli, ...args.slice(1)], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  const want = readFileSync(fresh, 'utf8')
  const have = readFileSync(committed, 'utf8')
  if (want !== have) {
    const a = have.split('\n')
    const b = want.split('\n')
    let line = 0
    while (line < a.length && a[line] === b[line]) line++
    console.error(`check:api: src/api/schema.d.ts differs from openapi.json (first at line ${line + 1}):`)
    console.error(`  committed: ${a[line] ?? '<end of file>'}`)
    console.error(`  generated: ${b[line] ?? '<end of file>'}`)
    console.error('Run `npm run gen:api` and commit the result.')
    process.exit(1)
  }
  console.log('check:api: src/api/schema.d.ts matches openapi.json')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
