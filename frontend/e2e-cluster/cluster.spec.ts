/**
 * Two `ticketd serve` processes (A and B) on one database behind nginx with the template from
 * deploy/, as scripts/two-process.sh starts them: requests go round robin; each security header
 * arrives exactly once; /metrics is not exposed; an event caused on A reaches an SSE client of B
 * within 1 s, and so does presence set on A; and after `kill -9` of the process that leads the projections the other takes the
 * lead and a ticket created afterwards is listed within 5 s.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'

function env(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run scripts/two-process.sh`)
  return value
}

const nginx = env('TICKETD_E2E_BASE_URL')
const processes = {
  a: { url: env('TICKETD_CLUSTER_A_URL'), pid: Number(env('TICKETD_CLUSTER_A_PID')), app: 'ticketd-a' },
  b: { url: env('TICKETD_CLUSTER_B_URL'), pid: Number(env('TICKETD_CLUSTER_B_PID')), app: 'ticketd-b' },
}
const databaseUrl = env('TICKETD_CLUSTER_DATABASE_URL')

/** A raw answer: the status, every header line as sent (repeats kept) and the body. */
function raw(url: string, headers: Record<string, string> = {}): Promise<{ status: number; lines: [string, string][]; body: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { headers }, (res) => {
      const lines: [string, string][] = []
      for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push([(res.rawHeaders[i] ?? '').toLowerCase(), res.rawHeaders[i + 1] ?? ''])
      let body = ''
      res.setEncoding('latin1')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => done({ status: res.statusCode ?? 0, lines, body }))
    })
    req.on('error', fail)
    req.end()
  })
}

async function call<T>(
  base: string,
  method: string,
  path: string,
  token: string,
  body?: unknown,
  extra: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}), ...extra },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    /* nginx's own error page */
  }
  return { status: response.status, body: parsed as T }
}

/** Which process (by its PGAPPNAME) holds each projection's leader lock. */
function leaders(): string[] {
  const out = execFileSync(
    'psql',
    [
      databaseUrl,
      '-At',
      '-c',
      `select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.granted and a.datname = current_database()
          and a.application_name like 'ticketd-%'`,
    ],
    { encoding: 'utf8' },
  )
  return out.split('\n').filter(Boolean)
}

/**
 * What a failed check leaves for the reader: the server's running transactions, in every
 * database (one of this database holds the projections back; until the log's horizon passed
 * over other databases, one anywhere did: CI once saw both live checks fail together that way),
 * and where each projection stands.
 */
function diagnostics(): string {
  const queries = [
    `select datname, application_name, state, backend_xid, now() - xact_start as open_for, left(query, 80) as query
       from pg_stat_activity where backend_xid is not null`,
    'select projection, last_txid, last_position, status, updated_at from projection_checkpoints order by 1',
    'select pg_current_snapshot()',
  ]
  try {
    return execFileSync('psql', [databaseUrl, ...queries.flatMap((q) => ['-c', q])], { encoding: 'utf8' })
  } catch (e) {
    return `(no diagnostics: ${String(e)})`
  }
}

let token = ''

/** An SSE client of `GET /api/v1/live` on one process: every event with the time it arrived. */
async function listen(base: string, query: string): Promise<{ events: { type: string; data: string; at: number }[]; close: () => Promise<void> }> {
  const controller = new AbortController()
  const stream = await fetch(`${base}/api/v1/live?${query}`, {
    headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
    signal: controller.signal,
  })
  expect(stream.status).toBe(200)
  const reader = stream.body!.getReader()
  const decoder = new TextDecoder()
  const events: { type: string; data: string; at: number }[] = []
  let buffer = ''
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const type = block.match(/^event: ?(.*)$/m)?.[1]
        const data = block.match(/^data: ?(.*)$/m)?.[1]
        if (type && data) events.push({ type, data, at: Date.now() })
      }
    }
  })().catch(() => undefined)
  // Let the subscription settle before anything is caused elsewhere.
  await new Promise((r) => setTimeout(r, 300))
  return {
    events,
    close: async () => {
      controller.abort()
      await reading
    },
  }
}

beforeAll(async () => {
  const response = await fetch(`${nginx}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: env('TICKETD_E2E_ADMIN_EMAIL'), password: env('TICKETD_E2E_ADMIN_PASSWORD') }),
  })
  expect(response.status).toBe(200)
  token = ((await response.json()) as { access_token: string }).access_token
})

beforeEach(({ task, onTestFailed }) => {
  onTestFailed(() => console.log(`after the failure of "${task.name}":\n${diagnostics()}`))
})

describe('two ticketd processes behind nginx', () => {
  it('sends each security header exactly once, proxies /docs and the probes, hides /metrics', async () => {
    const page = await raw(`${nginx}/login`)
    const script = page.body.match(/src="(\/assets\/[^"]+\.js)"/)?.[1]
    expect(script).toBeTruthy()
    const paths = ['/login', '/tickets/42', '/docs', script!, '/api/v1/openapi.json', '/api/v1/tickets', '/healthz', '/readyz', '/assets/missing.js']
    for (const path of paths) {
      const answer = await raw(`${nginx}${path}`, { 'Accept-Encoding': 'br, gzip' })
      expect(answer.status, path).toBeLessThan(path === '/api/v1/tickets' ? 500 : 600)
      // Scripts and styles are no documents: `nosniff` only (policy headers there are dead weight).
      const asset = path.startsWith('/assets/')
      for (const name of ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'referrer-policy']) {
        const values = answer.lines.filter(([n]) => n === name).map(([, v]) => v)
        expect(values, `${name} on ${path}`).toHaveLength(asset && name !== 'x-content-type-options' ? 0 : 1)
      }
      if (!asset) expect(answer.lines.find(([n]) => n === 'x-frame-options')?.[1], path).toBe('DENY')
    }
    expect((await raw(`${nginx}/docs`)).status).toBe(200)
    expect((await raw(`${nginx}/healthz`)).body).toContain('ok')
    expect((await raw(`${nginx}/readyz`)).body).toContain('projections')
    // Not exposed through nginx; each process still answers it on its own port.
    expect((await raw(`${nginx}/metrics`)).status).toBe(404)
    expect((await raw(`${processes.a.url}/metrics`)).status).toBe(200)

    // Hashed assets precompressed and immutable through nginx; JSON gzipped by nginx.
    const asset = await raw(`${nginx}${script}`, { 'Accept-Encoding': 'br, gzip' })
    expect(asset.lines.find(([n]) => n === 'content-encoding')?.[1]).toBe('br')
    expect(asset.lines.filter(([n]) => n === 'cache-control').map(([, v]) => v)).toEqual(['public, max-age=31536000, immutable'])
    const json = await raw(`${nginx}/api/v1/openapi.json`, { 'Accept-Encoding': 'gzip' })
    expect(json.lines.find(([n]) => n === 'content-encoding')?.[1]).toBe('gzip')
  })

  it('sends requests to both processes, round robin', () => {
    const log = readFileSync(env('TICKETD_CLUSTER_NGINX_ACCESS_LOG'), 'utf8')
    for (const p of Object.values(processes)) {
      expect(log, `nginx sent nothing to ${p.url}`).toContain(new URL(p.url).host)
    }
  })

  it('delivers an event caused on A to an SSE client of B within 1 s', async () => {
    const client = await listen(processes.b.url, 'queue=true')
    const created = await call<{ id: number }>(processes.a.url, 'POST', '/api/v1/tickets', token, {
      title: 'Caused on process A',
      description: 'An SSE client of process B should hear of this.',
    })
    expect(created.status).toBe(201)
    const committedAt = Date.now()
    const heard = () => client.events.find((e) => e.type === 'queue' && (JSON.parse(e.data) as { ticket_id: number }).ticket_id === created.body.id)
    await expect.poll(heard, { timeout: 1000, interval: 20 }).toBeTruthy()
    const latency = heard()!.at - committedAt
    console.log(`event from process A reached the SSE client of process B after ${latency} ms`)
    expect(latency).toBeLessThanOrEqual(1000)
    await client.close()
  })

  it('shows on B who is on a ticket by way of A (presence) within 1 s', async () => {
    const email = `presence-${Date.now()}@example.com`
    const registered = await fetch(`${processes.a.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct-horse-battery-9', full_name: 'Petra Presence' }),
    })
    expect(registered.status).toBe(201)
    const signedIn = await fetch(`${processes.a.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password: 'correct-horse-battery-9' }),
    })
    expect(signedIn.status).toBe(200)
    const requester = ((await signedIn.json()) as { access_token: string }).access_token
    const ticket = await call<{ id: number }>(processes.a.url, 'POST', '/api/v1/tickets', requester, {
      title: 'Somebody is looking',
      description: 'Presence set on A, seen on B.',
    })
    expect(ticket.status).toBe(201)
    const client = await listen(processes.b.url, `ticket=${ticket.body.id}`)
    const setAt = Date.now()
    const put = await call(processes.a.url, 'PUT', `/api/v1/tickets/${ticket.body.id}/presence`, requester, { state: 'viewing' })
    expect(put.status).toBeLessThan(300)
    const seen = () => client.events.find((e) => e.type === 'presence' && e.data.includes('Petra Presence'))
    await expect.poll(seen, { timeout: 1000, interval: 20 }).toBeTruthy()
    console.log(`presence set on process A reached the SSE client of process B after ${seen()!.at - setAt} ms`)
    await client.close()
  })

  it('fails over: kill -9 of the projection leader, a ticket created afterwards is listed within 5 s', async () => {
    await expect.poll(() => leaders().length, { timeout: 10_000 }).toBeGreaterThan(0)
    const before = leaders()
    const counts = new Map<string, number>()
    for (const app of before) counts.set(app, (counts.get(app) ?? 0) + 1)
    const leaderApp = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]?.[0]
    const [victim, survivor] = leaderApp === processes.a.app ? [processes.a, processes.b] : [processes.b, processes.a]
    console.log(`projection locks before the kill: ${JSON.stringify(Object.fromEntries(counts))}; killing ${victim.app}`)

    process.kill(victim.pid, 'SIGKILL')
    const killedAt = Date.now()
    // Through nginx: new connections to the dead process are refused and nginx passes the
    // request on; a POST already sent on a kept-alive connection to it comes back 502, and the
    // client repeats it under the same Idempotency-Key (as API clients are told to), so it is
    // created once.
    const key = `failover-${Date.now()}`
    let created = { status: 0, body: { id: 0 } }
    const answers: number[] = []
    for (let attempt = 0; attempt < 3 && created.status !== 201; attempt++) {
      created = await call<{ id: number }>(
        nginx,
        'POST',
        '/api/v1/tickets',
        token,
        { title: 'Created after the leader died', description: 'The surviving process projects it.' },
        { 'Idempotency-Key': key },
      )
      answers.push(created.status)
    }
    expect(created.status, `answers: ${answers.join(', ')}`).toBe(201)
    const createdAt = Date.now()
    await expect
      .poll(
        async () => {
          const list = await call<{ items: { id: number }[] }>(nginx, 'GET', '/api/v1/tickets?size=50', token)
          return list.body.items.some((t) => t.id === created.body.id)
        },
        { timeout: 5000, interval: 100 },
      )
      .toBe(true)
    console.log(`after kill -9 of ${victim.app}: ticket created ${createdAt - killedAt} ms after the kill (answers ${answers.join(', ')}), listed ${Date.now() - createdAt} ms after its creation`)
    // Every projection lock passes to the survivor, within the same 5 s (each of its standby
    // workers tries its lock on its own one-second tick, so the last may come after the listing).
    await expect.poll(() => leaders().length, { timeout: 5000, interval: 100 }).toBe(before.length)
    const after = leaders()
    expect(new Set(after)).toEqual(new Set([survivor.app]))
    expect((await raw(`${survivor.url}/healthz`)).status).toBe(200)
  })
})
