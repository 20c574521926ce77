/**
 * A live ticket, end to end in Chromium against a real `ticketd serve`, an agent and a requester
 * in two browser contexts: what one does appears for the other without a reload, each sees the
 * other on the ticket and typing, an edit merges with a change that arrived live meanwhile, the
 * bell is a dropdown that opening a ticket reads, and the agent's list takes changes in place.
 * (A draft surviving navigation and reload is work.spec.ts's.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import {
  api,
  checkA11y,
  launchBrowser,
  login,
  newUserPage,
  screenshot,
  startServer,
  stopServer,
  uniqueWord,
  type ConsoleWatch,
  type Server,
  type Session,
} from './support'

interface Ticket {
  id: number
  title: string
  description: string
  status: string
  version: number
}

let server: Server
let browser: Browser
let admin: Session
let agentPage: Page
let requesterPage: Page
let rita: Session
let dana: Session
let ticket: Ticket
const watch: ConsoleWatch = { errors: [] }
const password = 'correct-horse-battery-9'
const agent = { name: 'Dana Desk', email: `${uniqueWord('dana-')}@example.com`, role: 'agent' }
const requester = { name: 'Rita Requester', email: `${uniqueWord('rita-')}@example.com`, role: 'requester' }

async function signIn(page: Page, who: { email: string }): Promise<void> {
  await page.goto('/login')
  await page.getByLabel('Email').fill(who.email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(/\/tickets/)
}

async function ticketNow(id: number): Promise<Ticket> {
  return (await api<Ticket>(server, 'GET', `/api/v1/tickets/${id}`, undefined, admin.access_token)).body
}

/** Opens the ticket and waits until the tab's live connection is up. */
async function openTicket(page: Page, id: number): Promise<void> {
  await page.goto(`/tickets/${id}`)
  await expect.poll(() => page.getByTestId('ticket-title').count()).toBe(1)
  await expect.poll(() => page.locator('.live-dot').count(), { timeout: 10_000 }).toBe(1)
}

/** A value the page keeps in `window` until it is reloaded. */
async function markNoReload(page: Page): Promise<void> {
  await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true))
}
async function stillSameDocument(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument === true)
}

/** The ticket's details panel (comments have Edit buttons of their own). */
const details = (page: Page) => page.getByRole('region', { name: 'Details' })
const composer = (page: Page) => page.getByPlaceholder(/^(Write a reply|Internal note)/)

describe('a live ticket', () => {
  beforeAll(async () => {
    server = await startServer()
    browser = await launchBrowser()
    admin = await login(server, server.adminEmail, server.adminPassword)
    for (const person of [agent, requester]) {
      const created = await api(server, 'POST', '/api/v1/users/', { email: person.email, password, full_name: person.name, role: person.role }, admin.access_token)
      expect(created.status).toBe(201)
    }
    rita = await login(server, requester.email, password)
    dana = await login(server, agent.email, password)
    const opened = await api<Ticket>(server, 'POST', '/api/v1/tickets/', { title: 'Printer jams on page two', description: 'Every print job', priority: 'medium', type: 'issue' }, rita.access_token)
    expect(opened.status).toBe(201)
    ticket = opened.body
    agentPage = (await newUserPage(browser, server, watch, { name: 'agent' })).page
    requesterPage = (await newUserPage(browser, server, watch, { name: 'requester' })).page
    for (const page of [agentPage, requesterPage]) page.on('dialog', (dialog) => void dialog.accept())
    await signIn(agentPage, agent)
    await signIn(requesterPage, requester)
  })

  afterAll(async () => {
    await browser?.close()
    await stopServer(server)
  })

  it("shows the agent's reply and status change on the requester's open ticket without a reload, keeping what she types", async () => {
    await openTicket(requesterPage, ticket.id)
    await markNoReload(requesterPage)
    const typing = `Half a question ${uniqueWord('q')}`
    await composer(requesterPage).fill(typing)

    await openTicket(agentPage, ticket.id)
    const reply = `We are on it ${uniqueWord('r')}`
    await composer(agentPage).fill(reply)
    await agentPage.getByRole('button', { name: 'Post' }).click()
    await expect.poll(() => agentPage.locator('.thread').textContent()).toContain(reply)
    await agentPage.locator('button[data-status="in_progress"]').click()
    await expect.poll(() => agentPage.locator('.ticket-head').textContent()).toContain('In progress')

    await expect.poll(() => requesterPage.locator('.thread').textContent(), { timeout: 10_000 }).toContain(reply)
    await expect.poll(() => requesterPage.locator('.ticket-head .el-tag').first().textContent(), { timeout: 10_000 }).toContain('In progress')
    await expect.poll(() => requesterPage.getByTestId('live-updated').textContent()).toContain(agent.name)
    expect(await composer(requesterPage).inputValue()).toBe(typing)
    expect(await stillSameDocument(requesterPage)).toBe(true)
    // The agent's own changes carry no "updated by" mark for the agent.
    expect(await agentPage.getByTestId('live-updated').textContent()).not.toContain(agent.name)
    await screenshot(requesterPage, 'live-01-requester-updated')
    await composer(requesterPage).fill('')
  })

  it('shows each on the ticket to the other, the requester typing to the agent, and the agent typing a reply, not an internal note, to the requester', async () => {
    // Both are on the ticket (previous step): each sees the other's avatar, never their own.
    await expect.poll(() => agentPage.getByTestId('presence').textContent(), { timeout: 10_000 }).toContain(requester.name)
    await expect.poll(() => requesterPage.getByTestId('presence').textContent(), { timeout: 10_000 }).toContain(agent.name)
    expect(await agentPage.getByTestId('presence').textContent()).not.toContain(agent.name)

    await composer(requesterPage).pressSequentially('Is there', { delay: 30 })
    await expect.poll(() => agentPage.getByTestId('typing').textContent(), { timeout: 10_000 }).toContain(`${requester.name} is typing…`)
    const found = await checkA11y(agentPage, 'live-ticket-presence')
    expect(found.map((f) => `${f.id}: ${f.nodes.join(', ')}`)).toEqual([])
    await screenshot(agentPage, 'live-02-agent-sees-typing')
    // A few idle seconds later she is back to viewing.
    await expect.poll(() => agentPage.getByTestId('typing').textContent(), { timeout: 15_000 }).toBe('')
    await composer(requesterPage).fill('')

    // Everything the requester's typing line shows from now on is recorded.
    await requesterPage.evaluate(() => {
      const line = document.querySelector('[data-testid="typing"]')!
      const seen: string[] = ((window as unknown as { __typingSeen: string[] }).__typingSeen = [])
      new MutationObserver(() => seen.push(line.textContent ?? '')).observe(line, { childList: true, subtree: true, characterData: true })
    })
    await agentPage.getByTestId('internal-switch').click()
    await composer(agentPage).pressSequentially('Check the fuser', { delay: 30 })
    await expect.poll(() => requesterPage.getByTestId('presence').textContent()).toContain(agent.name)
    await composer(agentPage).fill('')
    await agentPage.getByTestId('internal-switch').click()
    // The marker: a public reply being typed reaches her; the internal note before it did not.
    await composer(agentPage).pressSequentially('Dear Rita', { delay: 30 })
    await expect.poll(() => requesterPage.getByTestId('typing').textContent(), { timeout: 10_000 }).toContain(`${agent.name} is typing a reply…`)
    const seen = await requesterPage.evaluate(() => (window as unknown as { __typingSeen: string[] }).__typingSeen)
    // The server shows her someone typing an internal note as viewing.
    expect([...new Set(seen.filter((text) => text.includes(agent.name)))]).toEqual([`${agent.name} is typing a reply…`])
    await composer(agentPage).fill('')
  })

  it("merges the agent's edit with the requester's change to another field that arrived live, losing no text", async () => {
    const typed = `Paper tray 2 only ${uniqueWord('d')}\nafter the firmware update\nand only duplex`
    await details(agentPage).getByRole('button', { name: 'Edit' }).click()
    await agentPage.locator('#edit-description').fill(typed)

    const title = `Printer jams on duplex ${uniqueWord('t')}`
    await details(requesterPage).getByRole('button', { name: 'Edit' }).click()
    await requesterPage.locator('#edit-title').fill(title)
    await requesterPage.getByRole('button', { name: 'Save' }).click()
    await expect.poll(async () => (await ticketNow(ticket.id)).title).toBe(title)

    // It arrived on the agent's page while the form is open: the untouched title follows, the
    // typed description stays.
    await expect.poll(() => agentPage.getByTestId('live-updated').textContent(), { timeout: 10_000 }).toContain(requester.name)
    await expect.poll(() => agentPage.locator('#edit-title').inputValue(), { timeout: 10_000 }).toBe(title)
    expect(await agentPage.locator('#edit-description').inputValue()).toBe(typed)
    await agentPage.getByRole('button', { name: 'Save' }).click()

    await expect.poll(async () => (await ticketNow(ticket.id)).description).toBe(typed)
    expect((await ticketNow(ticket.id)).title).toBe(title)
    await expect.poll(() => agentPage.locator('.description').textContent()).toContain('and only duplex')
    await expect.poll(() => requesterPage.locator('.description').textContent(), { timeout: 10_000 }).toContain('and only duplex')
  })

  it("rings the bell live; the bell is a dropdown, and opening the ticket from it reads the ticket's notifications", async () => {
    await requesterPage.goto('/tickets')
    await expect.poll(() => requesterPage.locator('.live-dot').count(), { timeout: 10_000 }).toBe(1)
    const badge = requesterPage.getByTestId('bell').locator('.badge')
    const before = Number((await badge.count()) ? await badge.textContent() : 0)
    const text = `Try tray 1 ${uniqueWord('b')}`
    const posted = await api(server, 'POST', '/api/v1/comments/', { ticket_id: ticket.id, content: text, is_internal: false }, dana.access_token)
    expect(posted.status).toBe(201)
    await expect.poll(async () => Number((await badge.count()) ? await badge.textContent() : 0), { timeout: 10_000 }).toBeGreaterThan(before)

    await requesterPage.getByTestId('bell').click()
    const panel = requesterPage.getByTestId('bell-panel')
    await expect.poll(() => panel.isVisible()).toBe(true)
    expect(await requesterPage.getByTestId('bell').getAttribute('aria-expanded')).toBe('true')
    const found = await checkA11y(requesterPage, 'live-bell-open')
    expect(found.map((f) => `${f.id}: ${f.nodes.join(', ')}`)).toEqual([])
    await screenshot(requesterPage, 'live-03-bell-open')
    await panel.getByRole('link', { name: new RegExp(`New reply on TKT-${ticket.id}`) }).first().click()
    await requesterPage.waitForURL(new RegExp(`/tickets/${ticket.id}$`))
    await expect.poll(() => badge.count(), { timeout: 10_000 }).toBe(0)
    const unread = await api<{ items: Array<{ ticket_id: number | null }> }>(server, 'GET', '/api/v1/notifications/?unread=true&size=100', undefined, rita.access_token)
    expect(unread.body.items.filter((n) => n.ticket_id === ticket.id)).toEqual([])
  })

  it("updates a row of the agent's list in place and offers a new ticket instead of inserting it", async () => {
    await agentPage.goto('/tickets')
    await expect.poll(() => agentPage.locator('.live-dot').count(), { timeout: 10_000 }).toBe(1)
    const rows = agentPage.locator('table.tickets tbody tr')
    await expect.poll(() => rows.count()).toBe(1)
    await markNoReload(agentPage)

    const renamed = `Printer fixed? ${uniqueWord('n')}`
    const current = await ticketNow(ticket.id)
    const patched = await fetch(`${server.baseUrl}/api/v1/tickets/${ticket.id}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${rita.access_token}`, 'If-Match': `"${current.version}"` },
      body: JSON.stringify({ title: renamed }),
    })
    expect(patched.status).toBe(200)
    await expect.poll(() => rows.first().textContent(), { timeout: 10_000 }).toContain(renamed)

    const fresh = await api<Ticket>(server, 'POST', '/api/v1/tickets/', { title: `Scanner offline ${uniqueWord('s')}`, description: 'Since Monday', priority: 'low', type: 'issue' }, rita.access_token)
    expect(fresh.status).toBe(201)
    const bar = agentPage.getByTestId('incoming')
    await expect.poll(() => bar.textContent(), { timeout: 10_000 }).toContain('1 new ticket')
    expect(await rows.count()).toBe(1)
    await screenshot(agentPage, 'live-04-list-new-bar')
    await bar.getByRole('button', { name: 'Show' }).click()
    await expect.poll(() => rows.count()).toBe(2)
    expect(await rows.first().textContent()).toContain(fresh.body.title)
    expect(await stillSameDocument(agentPage)).toBe(true)
  })

  it('logged no console error', () => {
    expect(watch.errors).toEqual([])
  })
})
