/**
 * The journey, end to end, against a real `ticketd serve` and the built SPA:
 * a requester registers and opens a ticket with an attachment; the admin creates an agent and a
 * manager; the agent finds the ticket by search, writes an internal note and a public reply,
 * assigns it and walks it through its statuses; the requester sees the reply and not the note;
 * a change request waits for the manager's approval from the inbox; the dashboard counts it;
 * the history shows every step. Every main screen is screenshotted and checked with axe-core.
 *
 * Steps run in order and share state; a step whose backend part is missing fails on its own
 * and the report names it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import {
  RESULTS,
  api,
  axeFindings,
  checkA11y,
  launchBrowser,
  login,
  newUserPage,
  screenshot,
  startServer,
  stopServer,
  uniqueWord,
  writeReport,
  type ConsoleWatch,
  type Server,
  type Session,
} from './support'

let server: Server
let browser: Browser
const watch: ConsoleWatch = { errors: [] }
const contexts: BrowserContext[] = []

const password = 'correct-horse-battery-9'
const requester = { name: 'Rita Requester', email: `${uniqueWord('rita-')}@example.com` }
const agent = { name: 'Alex Agent', email: `${uniqueWord('alex-')}@example.com` }
const manager = { name: 'Mona Manager', email: `${uniqueWord('mona-')}@example.com` }
const keyword = uniqueWord('zebrafish')
const noteText = `Internal: ${uniqueWord('secret-')} check the RADIUS logs`
const replyText = `Public: ${uniqueWord('reply-')} we are on it`

let requesterPage: Page
let agentPage: Page
let managerPage: Page
let adminPage: Page
let ticketId = 0
let changeId = 0
let agentSession: Session | undefined
let managerSession: Session | undefined
const serious: Record<string, string[]> = {}

/** Screenshot plus axe; serious/critical findings fail the step that showed the screen. */
async function evidence(page: Page, name: string): Promise<void> {
  // Not 'networkidle': the notification stream keeps a request open for good.
  await page
    .waitForFunction(() => !document.querySelector('.el-skeleton, [aria-busy="true"], .is-loading'), undefined, { timeout: 5000 })
    .catch(() => undefined)
  await page.waitForTimeout(250)
  await screenshot(page, name)
  const found = await checkA11y(page, name)
  if (found.length) serious[name] = found.map((f) => `${f.id} (${f.impact}): ${f.help} @ ${f.nodes.join(', ')}`)
  expect.soft(found.map((f) => `${f.id}: ${f.nodes.join(', ')}`), `axe serious/critical on ${name}`).toEqual([])
}

const signedIn = new Map<Page, string>()

async function signIn(page: Page, email: string): Promise<void> {
  signedIn.set(page, email)
  await page.goto('/login')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(/\/tickets/)
}

/** Signs in unless this page already is (so a step still runs when an earlier one failed). */
async function ensureSignedIn(page: Page, email: string): Promise<void> {
  if (signedIn.get(page) !== email) await signIn(page, email)
}

/** Choose `option` in the Element Plus select named `label`, typing `search` first if given. */
async function choose(page: Page, label: string, option: string | RegExp, search?: string): Promise<void> {
  const box = page.getByRole('combobox', { name: label })
  // Element Plus lays the selected value over its input: click the select's box, as a user does.
  await box.locator('xpath=ancestor::div[contains(concat(" ", @class, " "), " el-select__wrapper ")][1]').click()
  if (search) await box.pressSequentially(search, { delay: 20 })
  await page.getByRole('option', { name: option }).locator('visible=true').first().click()
}

async function openTicket(page: Page, id: number): Promise<void> {
  await page.goto(`/tickets/${id}`)
  await expect.poll(() => page.getByTestId('ticket-title').count(), { timeout: 15_000 }).toBe(1)
}

async function statusOf(id: number, token: string): Promise<string | undefined> {
  const { body } = await api<{ status?: string }>(server, 'GET', `/api/v1/tickets/${id}`, undefined, token)
  return body?.status
}

beforeAll(async () => {
  server = await startServer()
  browser = await launchBrowser()
  for (const [who, width] of [['requester', 1280], ['agent', 1280], ['manager', 1280], ['admin', 1280]] as const) {
    const { context, page } = await newUserPage(browser, server, watch, { name: who, width })
    contexts.push(context)
    if (who === 'requester') requesterPage = page
    if (who === 'agent') agentPage = page
    if (who === 'manager') managerPage = page
    if (who === 'admin') adminPage = page
  }
}, 180_000)

// A failed step leaves a picture of every signed-in page behind, for the report.
afterEach(async ({ task }) => {
  if (task.result?.state !== 'fail') return
  const slug = task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 50)
  for (const [name, page] of [['requester', requesterPage], ['agent', agentPage], ['manager', managerPage], ['admin', adminPage]] as const) {
    if (page && page.url() !== 'about:blank') await screenshot(page, `failed-${slug}-${name}`).catch(() => undefined)
  }
})

afterAll(async () => {
  writeReport('axe-report.json', axeFindings)
  writeReport('journey-summary.json', { ticketId, changeId, serious, consoleErrors: watch.errors })
  for (const context of contexts) await context.close().catch(() => undefined)
  await browser?.close().catch(() => undefined)
  await stopServer(server)
}, 60_000)

describe.sequential('ticketd journey', () => {
  it('shows the sign-in page', async () => {
    await requesterPage.goto('/tickets')
    await requesterPage.waitForURL(/\/login\?redirect=/)
    await expect.poll(() => requesterPage.getByRole('heading', { name: 'Sign in' }).count()).toBe(1)
    await evidence(requesterPage, '01-login')
  })

  it('a requester registers and opens a ticket with an attachment', async () => {
    const page = requesterPage
    await page.getByRole('link', { name: 'Create an account' }).click()
    await page.getByLabel('Full name').fill(requester.name)
    await page.getByLabel('Email').fill(requester.email)
    await page.getByLabel('Password', { exact: true }).fill(password)
    await page.getByLabel('Repeat password').fill(password)
    await evidence(page, '02-register')
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.waitForURL(/\/tickets(\?|$)/)
    signedIn.set(page, requester.email)
    await evidence(page, '03-ticket-list-requester')

    await page.getByRole('link', { name: 'New ticket' }).first().click()
    await page.waitForURL(/\/tickets\/new/)
    await page.getByLabel('Title').fill(`VPN drops every ${keyword} minute`)
    await page.getByLabel('Description').fill('Since Monday the VPN disconnects every few minutes.')
    await choose(page, 'Priority', 'High')
    await page.locator('input[type=file]').setInputFiles({
      name: 'vpn-log.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('12:00 disconnect\n12:03 disconnect\n'),
    })
    await expect.poll(() => page.getByText('vpn-log.txt').count()).toBeGreaterThan(0)
    await evidence(page, '04-ticket-create')
    await page.getByRole('button', { name: 'Create ticket' }).click()
    await page.waitForURL(/\/tickets\/\d+$/, { timeout: 30_000 })
    ticketId = Number(/\/tickets\/(\d+)/.exec(page.url())?.[1])
    expect(ticketId).toBeGreaterThan(0)
    await expect.poll(() => page.getByTestId('ticket-title').textContent()).toContain(keyword)
    // The attachment was uploaded with the ticket and is listed on it.
    await expect.poll(() => page.getByRole('button', { name: /^Download vpn-log\.txt/ }).count(), { timeout: 15_000 }).toBe(1)
    await evidence(page, '05-ticket-detail-requester')
  })

  it('the admin creates an agent and a manager', async () => {
    const admin = await login(server, server.adminEmail, server.adminPassword)
    for (const [who, role] of [[agent, 'agent'], [manager, 'manager']] as const) {
      const { status, body } = await api(server, 'POST', '/api/v1/users/', { email: who.email, password, full_name: who.name, role }, admin.access_token)
      expect(status, JSON.stringify(body)).toBe(201)
    }
    agentSession = await login(server, agent.email, password)
    managerSession = await login(server, manager.email, password)
    expect(agentSession.user.role).toBe('agent')
    expect(managerSession.user.role).toBe('manager')
  })

  it('the admin screens: users and items', async () => {
    await adminPage.goto('/login')
    await adminPage.getByLabel('Email').fill(server.adminEmail)
    await adminPage.getByLabel('Password').fill(server.adminPassword)
    await adminPage.getByRole('button', { name: 'Sign in' }).click()
    await adminPage.waitForURL(/\/tickets/)
    await adminPage.goto('/admin/users')
    await expect.poll(() => adminPage.getByText(agent.email).count(), { timeout: 15_000 }).toBeGreaterThan(0)
    await evidence(adminPage, '06-admin-users')
    await adminPage.goto('/admin/items')
    await adminPage.getByRole('button', { name: 'New item' }).click()
    await adminPage.getByLabel('Name').fill('vpn-gateway-1')
    await adminPage.getByLabel('Kind').fill('server')
    await adminPage.getByRole('button', { name: 'Create item' }).click()
    await expect.poll(() => adminPage.getByText('vpn-gateway-1').count(), { timeout: 15_000 }).toBeGreaterThan(0)
    await evidence(adminPage, '07-admin-items')
  })

  it('the agent finds the ticket by search', async () => {
    const page = agentPage
    await ensureSignedIn(page, agent.email)
    await page.goto('/tickets')
    await page.locator('#ticket-search').fill(keyword)
    await page.waitForURL(new RegExp(`[?&]q=${keyword}`))
    const row = page.getByRole('link', { name: new RegExp(keyword) })
    for (let attempt = 0; attempt < 10 && (await row.count()) === 0; attempt++) {
      await page.waitForTimeout(1000)
      if ((await row.count()) === 0) await page.reload() // the search index may lag a moment
    }
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1)
    await evidence(page, '08-ticket-search-agent')
    await row.click()
    await page.waitForURL(new RegExp(`/tickets/${ticketId}`))
  })

  it('the agent writes an internal note and a public reply', async () => {
    const page = agentPage
    await ensureSignedIn(page, agent.email)
    await openTicket(page, ticketId)
    const composer = page.locator('.new-comment')
    await composer.getByLabel('Add a comment').fill(noteText)
    const internal = composer.getByRole('switch', { name: 'Internal note' })
    await composer.locator('label', { hasText: 'Internal note' }).click()
    await expect.poll(() => internal.getAttribute('aria-checked')).toBe('true')
    await composer.getByRole('button', { name: 'Post' }).click()
    await expect.poll(() => page.locator('.comment.internal', { hasText: noteText }).count()).toBe(1)

    await composer.locator('label', { hasText: 'Internal note' }).click()
    await expect.poll(() => internal.getAttribute('aria-checked')).toBe('false')
    await composer.getByLabel('Add a comment').fill(replyText)
    await composer.getByRole('button', { name: 'Post' }).click()
    await expect.poll(() => page.locator('.comment:not(.internal)', { hasText: replyText }).count()).toBe(1)
  })

  it('the agent assigns the ticket and moves it through its statuses', async () => {
    const page = agentPage
    await ensureSignedIn(page, agent.email)
    await openTicket(page, ticketId)
    await page.getByRole('button', { name: 'Assign to me' }).click()
    await expect.poll(() => page.getByTestId('assignee-name').textContent()).toContain(agent.name)
    const moves: Array<[string, string]> = [
      ['in_progress', 'In progress'],
      ['pending', 'Pending'],
      ['in_progress', 'In progress'],
      ['resolved', 'Resolved'],
    ]
    for (const [status, label] of moves) {
      await page.locator(`button[data-status="${status}"]`).click()
      await expect.poll(() => page.locator('.ticket-head .el-tag').first().textContent()).toContain(label)
    }
    await evidence(page, '09-ticket-detail-agent')
    await page.locator('button[data-status="closed"]').click()
    await expect.poll(() => page.locator('.ticket-head .el-tag').first().textContent()).toContain('Closed')
    expect(await statusOf(ticketId, agentSession!.access_token)).toBe('closed')
  })

  it('the requester sees the public reply and not the internal note', async () => {
    const page = requesterPage
    await ensureSignedIn(page, requester.email)
    await openTicket(page, ticketId)
    await expect.poll(() => page.getByText(replyText).count(), { timeout: 15_000 }).toBe(1)
    expect(await page.getByText(noteText).count()).toBe(0)
    expect(await page.getByText('Internal note').count()).toBe(0)
    await evidence(page, '10-ticket-detail-requester-after')
  })

  it('a change request cannot start until the manager approves it from the inbox', async () => {
    const page = agentPage
    await ensureSignedIn(page, agent.email)
    await page.goto('/tickets/new')
    await page.getByLabel('Title').fill(`Upgrade the ${keyword} firewall`)
    await page.getByLabel('Description').fill('Firmware 9.2 fixes the VPN drops. Needs a maintenance window.')
    await choose(page, 'Type', 'Change request')
    await page.getByRole('button', { name: 'Create ticket' }).click()
    await page.waitForURL(/\/tickets\/\d+$/, { timeout: 30_000 })
    changeId = Number(/\/tickets\/(\d+)/.exec(page.url())?.[1])
    expect(changeId).toBeGreaterThan(0)

    // The approval panel: one step, the manager as approver.
    await page.getByRole('button', { name: 'Request approval' }).click()
    const form = page.getByRole('form', { name: 'Request an approval' })
    await form.getByLabel('Reason').fill('Production change')
    await choose(page, 'Approvers of step 1', new RegExp(manager.name), 'Mona')
    await form.getByRole('heading', { name: 'Request an approval' }).click() // closes the list
    await form.getByRole('button', { name: 'Request approval' }).click()
    await expect.poll(() => page.locator('.approval').count(), { timeout: 15_000 }).toBe(1)
    await expect.poll(() => page.locator('button[data-status="in_progress"]').isDisabled()).toBe(true)
    await evidence(page, '11-change-request-awaiting-approval')
    // The server refuses too.
    const refused = await api(server, 'PATCH', `/api/v1/tickets/${changeId}/status`, { status: 'in_progress' }, agentSession!.access_token)
    expect(refused.status).toBe(409)

    // The manager approves it from the inbox.
    await ensureSignedIn(managerPage, manager.email)
    await managerPage.getByRole('link', { name: 'Approvals' }).click()
    const card = managerPage.locator('.approval', { has: managerPage.getByRole('link', { name: `TKT-${changeId}` }) })
    await expect.poll(() => card.count(), { timeout: 15_000 }).toBe(1)
    await evidence(managerPage, '12-approvals-inbox')
    await card.getByLabel('Comment').fill('Approved for Saturday 02:00')
    await card.getByRole('button', { name: 'Approve' }).click()
    await expect.poll(() => card.count(), { timeout: 15_000 }).toBe(0)

    // Now work can start.
    await expect.poll(async () => {
      const { body } = await api<{ approval_status?: string }>(server, 'GET', `/api/v1/tickets/${changeId}`, undefined, agentSession!.access_token)
      return body?.approval_status
    }, { timeout: 15_000 }).toBe('approved')
    await openTicket(page, changeId)
    await page.locator('button[data-status="in_progress"]').click()
    await expect.poll(() => page.locator('.ticket-head .el-tag').first().textContent()).toContain('In progress')
  })

  it('the dashboard counts it and exports CSV', async () => {
    const page = managerPage
    await ensureSignedIn(page, manager.email)
    await page.getByRole('link', { name: 'Dashboard' }).click()
    await page.waitForURL(/\/dashboard/)
    await expect.poll(async () => Number((await page.getByTestId('kpi-total').locator('.kpi-value').textContent()) ?? 0), { timeout: 20_000 }).toBeGreaterThanOrEqual(2)
    const statusPanel = page.locator('.chart-panel', { has: page.getByRole('heading', { name: 'Tickets by status' }) })
    await statusPanel.getByRole('button', { name: /View as table/ }).click()
    const statusTable = statusPanel.locator('table.data')
    await expect.poll(() => statusTable.locator('tr', { hasText: 'In progress' }).locator('td').first().textContent()).toMatch(/^[1-9]/)
    await expect.poll(() => statusTable.locator('tr', { hasText: 'Closed' }).locator('td').first().textContent()).toMatch(/^[1-9]/)
    await evidence(page, '13-dashboard')
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()])
    const path = join(RESULTS, 'export.csv')
    await download.saveAs(path)
    const { readFileSync } = await import('node:fs')
    expect(readFileSync(path, 'utf8')).toContain(String(changeId))
  })

  it('the history shows every step, and the ticket can be viewed as of an earlier time', async () => {
    const page = agentPage
    await ensureSignedIn(page, agent.email)
    await openTicket(page, ticketId)
    const entries = page.getByTestId('history').locator(':scope > li')
    await expect.poll(() => entries.count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(8)
    const text = (await page.getByTestId('history').textContent()) ?? ''
    // opened, two comments, attachment, assigned, four status changes, closed
    for (const word of [/open/i, /comment/i, /assign/i, /status/i]) expect.soft(text).toMatch(word)
    expect.soft(text).toMatch(/closed/i)
    await evidence(page, '14-history')
    await entries.first().getByRole('button', { name: /View as of this point/ }).click()
    await page.waitForURL(/as_of=/)
    await expect.poll(() => page.getByText(/as it was on/).count()).toBe(1)
    await expect.poll(() => page.locator('.ticket-head .el-tag').first().textContent()).toContain('Open')
    await screenshot(page, '15-ticket-as-of')
  })

  it('notifications and profile', async () => {
    const page = requesterPage
    await ensureSignedIn(page, requester.email)
    await page.goto('/notifications')
    await expect.poll(() => page.getByRole('heading', { name: 'Notifications' }).count()).toBe(1)
    await expect.poll(() => page.getByTestId('stream-state').textContent(), { timeout: 10_000 }).toMatch(/^Live:/)
    // The public reply (not the internal note) reached the requester.
    await expect.poll(() => page.locator('.list li', { hasText: `TKT-${ticketId}` }).count(), { timeout: 10_000 }).toBeGreaterThan(0)
    // A new reply arrives live, over the stream, without a reload.
    const before = await page.locator('.list li').count()
    const live = await api(server, 'POST', '/api/v1/comments/', { ticket_id: ticketId, content: 'Live: one more thing', is_internal: false }, agentSession!.access_token)
    expect(live.status).toBe(201)
    await expect.poll(() => page.locator('.list li').count(), { timeout: 15_000 }).toBeGreaterThan(before)
    await expect.poll(async () => Number((await page.getByTestId('bell').locator('.badge').textContent()) ?? 0)).toBeGreaterThan(0)
    await evidence(page, '16-notifications')
    await page.goto('/profile')
    await expect.poll(() => page.getByRole('heading', { name: 'Profile' }).count()).toBe(1)
    await evidence(page, '17-profile')
  })

  it('works on a 375 px phone', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'phone', width: 375, height: 812 })
    contexts.push(context)
    await signIn(page, agent.email)
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect.soft(await overflow()).toBeLessThanOrEqual(1)
    await evidence(page, '18-phone-ticket-list')
    await page.getByRole('button', { name: 'Menu' }).click()
    await expect.poll(() => page.getByRole('link', { name: 'Approvals' }).isVisible()).toBe(true)
    await screenshot(page, '19-phone-menu')
    await page.keyboard.press('Escape')
    await openTicket(page, ticketId)
    expect.soft(await overflow()).toBeLessThanOrEqual(1)
    await evidence(page, '20-phone-ticket-detail')
  })

  it('left no console errors', () => {
    writeFileSync(join(RESULTS, 'console-errors.txt'), watch.errors.join('\n'))
    expect(watch.errors).toEqual([])
  })
})
