/**
 * The agent's queue, end to end in Chromium against a real `ticketd serve` on a fresh database:
 * a saved view and its count, sorting by SLA due, bulk-assigning three tickets, applying a macro,
 * a triage pass with the keyboard only, and axe on the list, a ticket, the macros screen and the
 * command palette (no serious or critical findings).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { api, checkA11y, launchBrowser, login, newUserPage, screenshot, startServer, stopServer, uniqueWord, type ConsoleWatch, type Server, type Session } from './support'

interface Ticket {
  id: number
  title: string
  priority: string
  version: number
  assignee_id?: number | null
  sla: { due?: string | null; state: string }
}

let server: Server
let browser: Browser
let page: Page
let admin: Session
let agentId: number
const watch: ConsoleWatch = { errors: [] }
const agent = { name: 'Quinn Queue', email: `${uniqueWord('quinn-')}@example.com`, password: 'correct-horse-battery-9' }
const requester = { name: 'Rita Requester', email: `${uniqueWord('rita-')}@example.com`, password: 'correct-horse-battery-9' }
const word = uniqueWord('q')
const tickets: Ticket[] = []

async function ticketNow(id: number): Promise<Ticket> {
  return (await api<Ticket>(server, 'GET', `/api/v1/tickets/${id}`, undefined, admin.access_token)).body
}

async function axe(name: string): Promise<void> {
  await page.waitForTimeout(250)
  await screenshot(page, `queue-${name}`)
  const found = await checkA11y(page, `queue-${name}`)
  expect.soft(found.map((f) => `${f.id}: ${f.nodes.join(', ')}`), `axe serious/critical on ${name}`).toEqual([])
}

/** The ticket ids of the list's rows, top to bottom. */
async function rowIds(): Promise<number[]> {
  return page.locator('table.tickets tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-ticket-id'))))
}

describe('the agent queue', () => {
  beforeAll(async () => {
    server = await startServer()
    browser = await launchBrowser()
    admin = await login(server, server.adminEmail, server.adminPassword)
    const created = await api<{ id: number }>(server, 'POST', '/api/v1/users/', { email: agent.email, password: agent.password, full_name: agent.name, role: 'agent' }, admin.access_token)
    expect(created.status).toBe(201)
    agentId = created.body.id
    const req = await api<{ id: number }>(server, 'POST', '/api/v1/users/', { email: requester.email, password: requester.password, full_name: requester.name, role: 'requester' }, admin.access_token)
    expect(req.status).toBe(201)
    // Different priorities give different SLA targets (written by the desk on Rita's behalf).
    for (const [i, priority] of ['low', 'critical', 'medium', 'high', 'high'].entries()) {
      const body = { title: `${word} ticket ${i}`, description: 'Printer on fire', priority, type: 'incident', requester_id: req.body.id }
      const { status, body: ticket } = await api<Ticket>(server, 'POST', '/api/v1/tickets/', body, admin.access_token)
      expect(status).toBe(201)
      tickets.push(ticket)
    }
    page = (await newUserPage(browser, server, watch, { name: 'agent' })).page
    await page.goto('/login')
    await page.getByLabel('Email').fill(agent.email)
    await page.getByLabel('Password').fill(agent.password)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(/\/tickets/)
  })

  afterAll(async () => {
    await browser?.close()
    await stopServer(server)
  })

  it('shows the list with names, SLA countdowns and the desk views with counts', async () => {
    await page.goto(`/tickets?q=${word}`)
    await expect.poll(() => rowIds().then((ids) => ids.length)).toBe(5)
    const first = page.locator('table.tickets tbody tr').first()
    expect(await first.locator('[data-col="requester"]').textContent()).toContain(requester.name)
    // The SLA column: a state badge with words and a countdown ("in 4 h").
    expect(await first.locator('[data-col="sla"]').textContent()).toMatch(/(On track|Due soon).*in \d+ (min|h|d)/s)
    const sidebar = page.getByTestId('views-sidebar')
    await expect.poll(() => sidebar.getByRole('button', { name: /^Unassigned: 5 tickets$/ }).count()).toBe(1)
    await axe('list')
  })

  it('saves the filters as a view and shows its count', async () => {
    await page.goto(`/tickets?q=${word}&priority=high`)
    await expect.poll(() => rowIds().then((ids) => ids.length)).toBe(2)
    await page.getByTestId('save-view').click()
    await page.getByLabel('Name', { exact: true }).fill('High printers')
    await page.getByRole('dialog').getByRole('button', { name: 'Save', exact: true }).click()
    await page.waitForURL(/view=\d+/)
    const mine = page.getByTestId('views-mine')
    await expect.poll(() => mine.getByRole('button', { name: 'High printers: 2 tickets' }).count()).toBe(1)
    // It is the server's: a fresh load shows it, and clicking it gives its tickets.
    await page.goto('/tickets')
    await mine.getByRole('button', { name: /^High printers:/ }).click()
    await expect.poll(() => rowIds().then((ids) => ids.sort())).toEqual([tickets[3]!.id, tickets[4]!.id].sort())
  })

  it('sorts by SLA due, earliest first', async () => {
    await page.goto(`/tickets?q=${word}`)
    await page.getByTestId('sort-sla').click()
    await page.waitForURL(/sort=sla_due/)
    const fresh = await Promise.all(tickets.map((t) => ticketNow(t.id)))
    const expected = [...fresh].sort((a, b) => (a.sla.due ?? '9').localeCompare(b.sla.due ?? '9')).map((t) => t.id)
    await expect.poll(() => rowIds()).toEqual(expected)
    expect(await page.locator('th[aria-sort="ascending"]').textContent()).toContain('SLA')
  })

  it('bulk-assigns three tickets to me with a shift-click range', async () => {
    await page.goto(`/tickets?q=${word}&sort=created_at`)
    await expect.poll(() => rowIds().then((ids) => ids.length)).toBe(5)
    const ids = await rowIds()
    await page.getByRole('checkbox', { name: `Select ticket TKT-${ids[0]}` }).click()
    await page.getByRole('checkbox', { name: `Select ticket TKT-${ids[2]}` }).click({ modifiers: ['Shift'] })
    await expect.poll(() => page.getByTestId('announcer').textContent()).toBe('3 tickets selected')
    await page.getByTestId('bulk-assign').click()
    await page.getByRole('option', { name: 'Assign to me' }).click()
    await page.getByTestId('bulk-apply').click()
    await expect.poll(() => page.getByTestId('bulk-results').textContent()).toContain('3 updated')
    for (const id of ids.slice(0, 3)) expect((await ticketNow(id)).assignee_id).toBe(agentId)
    expect((await ticketNow(ids[3]!)).assignee_id ?? null).toBeNull()
    await expect.poll(() => page.locator(`tr[data-ticket-id="${ids[0]}"] [data-col="assignee"]`).textContent()).toContain(agent.name)
    await page.getByRole('button', { name: 'Clear selection' }).click()
  })

  it('creates a macro on the macros screen and applies it on a ticket', async () => {
    await page.goto('/macros')
    await page.getByTestId('new-macro').click()
    await page.getByLabel('Name', { exact: true }).fill('Greet and take')
    await page.locator('#macro-content').fill('Hello {{requester.name}}, **on it**.')
    await page.getByText('Assign to whoever applies it').click()
    await axe('macros')
    await page.getByTestId('macro-form').getByRole('button', { name: 'Save' }).click()
    await expect.poll(() => page.locator('table.macros').textContent()).toContain('Greet and take')

    const target = tickets[3]!
    await page.goto(`/tickets/${target.id}`)
    await page.getByTestId('macro-select').click()
    await page.getByRole('option', { name: 'Greet and take' }).click()
    await page.getByTestId('macro-apply').click()
    // The reply is rendered from Markdown by the server, with the placeholder filled in.
    await expect.poll(() => page.locator('.thread .body.html strong').first().textContent().catch(() => '')).toBe('on it')
    expect(await page.locator('.thread').textContent()).toContain(`Hello ${requester.name}`)
    expect((await ticketNow(target.id)).assignee_id).toBe(agentId)
    await expect.poll(() => page.getByTestId('assignee-name').textContent()).toContain(agent.name)
    expect(await page.getByTestId('sla-first-response').textContent()).toMatch(/Met|On track|Due soon/)
    await axe('ticket')
  })

  it('triages with the keyboard only', async () => {
    await page.goto(`/tickets?q=${word}&sort=created_at`)
    await expect.poll(() => rowIds().then((ids) => ids.length)).toBe(5)
    const ids = await rowIds()
    await page.keyboard.press('j')
    await page.keyboard.press('j')
    await page.keyboard.press('j')
    await page.keyboard.press('j')
    await page.keyboard.press('j')
    await page.keyboard.press('k')
    // The cursor is on the fourth row (the last one still unassigned besides the fifth).
    expect(await page.evaluate(() => document.activeElement?.closest('tr')?.getAttribute('data-ticket-id'))).toBe(String(ids[3]))
    await page.keyboard.press('x')
    await expect.poll(() => page.getByTestId('announcer').textContent()).toBe('1 ticket selected')
    await page.keyboard.press('a')
    await expect.poll(async () => (await ticketNow(ids[3]!)).assignee_id).toBe(agentId)
    await page.keyboard.press('Escape')
    // `/` focuses the search; keys typed there are text, not shortcuts.
    await page.keyboard.press('/')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('ticket-search')
    await page.keyboard.press('j')
    expect(await page.locator('#ticket-search').inputValue()).toBe(`${word}j`)
    await page.keyboard.press('Backspace')
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
    await page.waitForURL(new RegExp(`q=${word}(&|$)`))
    await expect.poll(() => rowIds().then((r) => r.length)).toBe(5)
    // Open the fifth ticket, take it, write an internal note.
    for (let i = 0; i < 5; i++) await page.keyboard.press('j')
    await page.keyboard.press('Enter')
    await page.waitForURL(new RegExp(`/tickets/${ids[4]}$`))
    await expect.poll(() => page.getByTestId('assignee-name').count()).toBe(1)
    await page.keyboard.press('a')
    await expect.poll(async () => (await ticketNow(ids[4]!)).assignee_id).toBe(agentId)
    await page.keyboard.press('i')
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('TEXTAREA')
    expect(await page.getByPlaceholder('Internal note (requester will not see it)').count()).toBe(1)
    await page.keyboard.type('Checked the toner')
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab')
      if ((await page.evaluate(() => document.activeElement?.textContent?.trim())) === 'Post') break
    }
    await page.keyboard.press('Enter')
    await expect.poll(() => page.locator('.thread').textContent()).toContain('Checked the toner')
    // `?` shows the shortcut sheet.
    await page.keyboard.press('?')
    await expect.poll(() => page.getByRole('dialog', { name: 'Keyboard shortcuts' }).isVisible()).toBe(true)
    await page.keyboard.press('Escape')
    // `g` then `v`: back to the list with the views in focus.
    await page.keyboard.press('g')
    await page.keyboard.press('v')
    await page.waitForURL(/\/tickets(\?|$)/)
    await expect.poll(() => page.evaluate(() => Boolean(document.activeElement?.closest('[data-testid="views-sidebar"]')))).toBe(true)
  })

  it('finds a ticket by number in the command palette', async () => {
    await page.keyboard.press('Control+k')
    const dialog = page.getByRole('dialog', { name: 'Command palette' })
    await expect.poll(() => dialog.isVisible()).toBe(true)
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('palette-input')
    await page.keyboard.type(`TKT-${tickets[1]!.id}`)
    await expect.poll(() => dialog.getByRole('option').first().textContent()).toContain(`${word} ticket 1`)
    await axe('palette')
    await page.keyboard.press('Enter')
    await page.waitForURL(new RegExp(`/tickets/${tickets[1]!.id}$`))
    expect(watch.errors).toEqual([])
  })
})
