// Holds many `GET /api/v1/live` connections open, as browser tabs would: each watches one ticket,
// a share of them are staff with `queue=true`, and each renews its presence every 15 s.
// Used by benches/live.sh; needs Node 20 (fetch streams), nothing else.
//
//   BASE=http://127.0.0.1:18080 USERS=users.json CLIENTS=1000 STAFF_SHARE=0.3 \
//     node benches/live_clients.mjs
//
// USERS is a JSON file `[{email, password, staff}]`. The script signs each user in once, makes
// sure every requester has a ticket, opens the connections (staggered), prints `connected N` when
// all are open, and on SIGTERM/SIGINT prints `totals ...` (events received, presence renewals,
// failures) and exits.

import { readFileSync } from 'node:fs'

const BASE = process.env.BASE ?? 'http://127.0.0.1:18080'
const CLIENTS = Number(process.env.CLIENTS ?? 1000)
const STAFF_SHARE = Number(process.env.STAFF_SHARE ?? 0.3)
const RENEW_MS = Number(process.env.RENEW_MS ?? 15000)
const users = JSON.parse(readFileSync(process.env.USERS, 'utf8'))

const totals = { events: 0, bytes: 0, renewals: 0, failures: 0, open: 0, ended: 0 }
const controller = new AbortController()

async function api(method, path, token, body) {
  const response = await fetch(BASE + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  })
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`)
  return response.status === 204 ? null : response.json()
}

async function signIn(user) {
  const tokens = await api('POST', '/api/v1/auth/login', null, { email: user.email, password: user.password })
  return { ...user, token: tokens.access_token }
}

/** Every requester's first ticket (one is created when there is none). */
async function ownTicket(user) {
  const page = await api('GET', '/api/v1/tickets/?size=1', user.token)
  if (page.items.length > 0) return page.items[0].id
  const ticket = await api('POST', '/api/v1/tickets/', user.token, {
    title: `Live bench ticket of ${user.email}`,
    description: 'watched by the live benchmark',
  })
  return ticket.id
}

/** One connection: reads the stream until it ends or the script stops. */
async function hold(client) {
  const query = `ticket=${client.ticket}${client.queue ? '&queue=true' : ''}`
  try {
    const response = await fetch(`${BASE}/api/v1/live?${query}`, {
      headers: { authorization: `Bearer ${client.token}`, accept: 'text/event-stream' },
      signal: controller.signal,
    })
    if (!response.ok) throw new Error(`live: ${response.status} ${await response.text()}`)
    totals.open += 1
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      totals.bytes += value.byteLength
      const text = decoder.decode(value, { stream: true })
      totals.events += text.split('\n').filter((line) => line.startsWith('event:')).length
    }
    totals.ended += 1
  } catch (e) {
    if (!controller.signal.aborted) {
      totals.failures += 1
      console.error(String(e))
    }
  }
}

async function renew(client) {
  try {
    await api('PUT', `/api/v1/tickets/${client.ticket}/presence`, client.token, { state: 'viewing' })
    totals.renewals += 1
  } catch (e) {
    totals.failures += 1
    console.error(String(e))
  }
}

const signedIn = await Promise.all(users.map(signIn))
const requesters = signedIn.filter((u) => !u.staff)
const staff = signedIn.filter((u) => u.staff)
for (const r of requesters) r.ticket = await ownTicket(r)
const tickets = requesters.map((r) => r.ticket)

const clients = []
for (let i = 0; i < CLIENTS; i += 1) {
  const isStaff = staff.length > 0 && i % 10 < Math.round(STAFF_SHARE * 10)
  if (isStaff) {
    const user = staff[i % staff.length]
    clients.push({ token: user.token, ticket: tickets[i % tickets.length], queue: true })
  } else {
    const user = requesters[i % requesters.length]
    clients.push({ token: user.token, ticket: user.ticket, queue: false })
  }
}

const held = []
for (const [i, client] of clients.entries()) {
  held.push(hold(client))
  await renew(client)
  // Each client renews every RENEW_MS, the renewals spread evenly over the period.
  const offset = (i * RENEW_MS) / clients.length
  setTimeout(() => {
    client.timer = setInterval(() => renew(client), RENEW_MS)
  }, offset)
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20))
}
while (totals.open + totals.failures < clients.length) await new Promise((r) => setTimeout(r, 50))
console.log(`connected ${totals.open} failures ${totals.failures}`)

function stop() {
  for (const client of clients) clearInterval(client.timer)
  controller.abort()
  console.log(
    `totals clients=${clients.length} open=${totals.open} events=${totals.events} bytes=${totals.bytes} ` +
      `renewals=${totals.renewals} ended=${totals.ended} failures=${totals.failures}`,
  )
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
await Promise.all(held)
