/**
 * Issue 17 in Chromium against a real `ticketd serve`: a manager drills from a dashboard bar into
 * the matching ticket list; an admin changes the SLA policy and applies it to the past; an
 * approver sees the inbox card's context and cannot reject without a comment; the same screens
 * in German show no raw key and no English catalogue text; in dark mode axe finds nothing serious.
 * Screenshots of the new screens land in e2e/screenshots/.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { untranslated } from './untranslated'
import { FRONTEND, api, checkA11y, launchBrowser, login, newUserPage, startServer, stopServer, uniqueWord, type ConsoleWatch, type Server, type Session } from './support'

const SHOTS = join(FRONTEND, 'e2e', 'screenshots')
const password = 'correct-horse-battery-9'
const manager = { name: 'Mona Manager', email: `${uniqueWord('mona-')}@example.com`, role: 'manager' }
const agent = { name: 'Alex Agent', email: `${uniqueWord('alex-')}@example.com`, role: 'agent' }
const requester = { name: 'Rita Requester', email: `${uniqueWord('rita-')}@example.com`, role: 'requester' }
const adminPerson = { name: 'Admin', email: 'admin@example.com' }

let server: Server
let browser: Browser
let admin: Session
let managerSession: Session
let requesterSession: Session
const contexts: BrowserContext[] = []
const watch: ConsoleWatch = { errors: [] }
const ids: Record<string, number> = {}
const tickets: Record<string, number> = {}

async function shot(page: Page, name: string): Promise<void> {
  await page
    .waitForFunction(() => !document.querySelector('.el-skeleton, [aria-busy="true"], .is-loading'), undefined, { timeout: 5000 })
    .catch(() => undefined)
  await page.waitForTimeout(300)
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

async function signIn(page: Page, who: { name: string; email: string }, pass = password): Promise<void> {
  await page.goto('/login')
  await page.getByLabel('Email').fill(who.email)
  await page.getByLabel('Password').fill(pass)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(/\/tickets/)
  await expect.poll(() => page.locator('.account .who').textContent(), { timeout: 15_000 }).toContain(who.name)
}

async function newTicket(title: string, priority: string, token: string, extra: Record<string, unknown> = {}): Promise<number> {
  const { status, body } = await api<{ id: number }>(server, 'POST', '/api/v1/tickets/', { title, description: 'e2e', priority, type: 'issue', ...extra }, token)
  expect(status).toBe(201)
  return body.id
}

describe('issue 17: dashboard, policies, approvals, German, dark', () => {
  beforeAll(async () => {
    server = await startServer()
    browser = await launchBrowser()
    admin = await login(server, server.adminEmail, server.adminPassword)
    for (const person of [manager, agent, requester]) {
      const { status, body } = await api<{ id: number }>(
        server, 'POST', '/api/v1/users/', { email: person.email, password, full_name: person.name, role: person.role }, admin.access_token,
      )
      expect(status).toBe(201)
      ids[person.role] = body.id
    }
    managerSession = await login(server, manager.email, password)
    requesterSession = await login(server, requester.email, password)
    tickets.high1 = await newTicket(`Drucker ${uniqueWord('h')}`, 'high', requesterSession.access_token)
    tickets.high2 = await newTicket(`Netzwerk ${uniqueWord('h')}`, 'high', requesterSession.access_token)
    tickets.low = await newTicket(`Monitor ${uniqueWord('l')}`, 'low', requesterSession.access_token)
    // A change waiting on the manager, with the ticket's context on the card.
    tickets.change = await newTicket(`Firewall ${uniqueWord('c')}`, 'critical', admin.access_token, { requester_id: ids.requester })
    const approval = await api(server, 'POST', '/api/v1/approvals/', {
      ticket_id: tickets.change,
      reason: 'Wartungsfenster Samstag',
      steps: [{ name: 'CAB', approver_ids: [ids.manager], rule: 'any' }],
    }, admin.access_token)
    expect(approval.status).toBe(201)
  }, 240_000)

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined)
    await browser?.close()
    await stopServer(server)
    expect(watch.errors).toEqual([])
  })

  it('a manager drills from a dashboard bar into the matching ticket list', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'manager' })
    contexts.push(context)
    await signIn(page, manager)
    await expect.poll(async () => {
      const { body } = await api<{ by_priority?: Record<string, number> }>(server, 'GET', '/api/v1/reports/dashboard', undefined, managerSession.access_token)
      return body?.by_priority?.high ?? 0
    }, { timeout: 20_000 }).toBe(2)
    await page.goto('/dashboard')
    const panel = page.getByTestId('chart-priority')
    await expect.poll(() => panel.locator('canvas').count(), { timeout: 15_000 }).toBe(1)
    await shot(page, 'i17-01-dashboard')

    // The priority axis is in workflow order, every bar named (also at zero).
    await panel.getByRole('button', { name: /View as table/ }).click()
    const labels = await panel.locator('tbody th').allTextContents()
    expect(labels.map((l) => l.trim())).toEqual(['Low', 'Medium', 'High', 'Critical'])
    await panel.getByRole('button', { name: /View as chart/ }).click()

    // Click the "High" bar itself: the third of four categories, the tallest bar.
    const canvas = panel.locator('canvas')
    const box = (await canvas.boundingBox())!
    const plotLeft = box.x + 40
    const plotWidth = box.width - 50
    await page.mouse.click(plotLeft + plotWidth * (2.5 / 4), box.y + box.height * 0.55)
    await page.waitForURL(/\/tickets\?.*priority=high/)
    const rows = page.locator('table.tickets tbody tr')
    await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(2)
    const titles = await page.locator('table.tickets tbody td.title').allTextContents()
    expect(titles.every((t) => /^(Drucker|Netzwerk)/.test(t.trim()))).toBe(true)
    await shot(page, 'i17-02-drilled-list')

    // Another bar through the table view: unassigned backlog.
    await page.goto('/dashboard')
    const assignee = page.getByTestId('chart-assignee')
    await assignee.getByRole('button', { name: /View as table/ }).click()
    await assignee.getByRole('link', { name: 'Unassigned' }).click()
    await page.waitForURL(/assignee_id=none/)
  })

  it('the approver sees the context, cannot reject without a comment, and the badge counts', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'approver' })
    contexts.push(context)
    await signIn(page, manager)
    await expect.poll(() => page.getByTestId('approvals-badge').textContent(), { timeout: 15_000 }).toBe('1')
    await page.getByRole('link', { name: /Approvals/ }).click()
    const card = page.locator('.approval').first()
    await expect.poll(() => card.textContent(), { timeout: 15_000 }).toContain('Firewall')
    const text = (await card.textContent()) ?? ''
    expect(text).toContain(requester.name)
    expect(text).toContain('Critical')
    expect(text).toContain('Wartungsfenster Samstag')
    expect(text).toContain('Step 1 of 1: CAB')
    await shot(page, 'i17-03-approvals-inbox')
    await card.getByRole('button', { name: 'Reject' }).click()
    await expect.poll(() => card.getByRole('alert').textContent()).toContain('A rejection needs a comment.')
    const still = await api<{ status: string }[]>(server, 'GET', `/api/v1/approvals/?ticket_id=${tickets.change}`, undefined, admin.access_token)
    expect(JSON.stringify(still.body)).toContain('"pending"')
    await card.getByLabel('Comment').fill('Zu riskant vor dem Quartalsende')
    await card.getByRole('button', { name: 'Reject' }).click()
    await expect.poll(() => page.locator('.approval').count(), { timeout: 15_000 }).toBe(0)
    await expect.poll(() => page.getByTestId('approvals-badge').count(), { timeout: 15_000 }).toBe(0)
  })

  it('an admin changes the SLA policy and applies it to the past', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'admin' })
    contexts.push(context)
    await signIn(page, adminPerson, server.adminPassword)
    await page.getByRole('link', { name: 'Policies' }).click()
    await page.waitForURL(/\/admin\/sla-policy/)
    const first = page.getByTestId('sla-high-first').locator('input')
    await expect.poll(() => first.count(), { timeout: 15_000 }).toBe(1)
    await first.fill('45')
    await first.press('Tab')
    await page.getByTestId('sla-use-hours').click()
    await page.getByTestId('sla-save').click()
    await expect.poll(async () => {
      const { body } = await api<{ version: number; targets: { high: { first_response_minutes: number } }; business_hours: unknown }>(
        server, 'GET', '/api/v1/reports/sla-policy', undefined, admin.access_token,
      )
      return [body.version, body.targets.high.first_response_minutes, body.business_hours !== null]
    }, { timeout: 15_000 }).toEqual([1, 45, true])
    await expect.poll(() => page.getByTestId('sla-applied').textContent()).toContain('older policy')
    await shot(page, 'i17-04-sla-policy')

    await page.getByTestId('sla-rebuild').click()
    // The progress shows while it runs (it may be quick on a small log), then the history is
    // computed with the new policy.
    await expect.poll(() => page.getByTestId('sla-applied').textContent(), { timeout: 60_000 }).toContain('uses this policy')
    const doc = await api<{ applied_to_history: boolean }>(server, 'GET', '/api/v1/reports/sla-policy', undefined, admin.access_token)
    expect(doc.body.applied_to_history).toBe(true)
    await shot(page, 'i17-05-sla-policy-applied')

    // The other admin screens open and show their policies.
    await page.goto('/admin/requester-policy')
    await expect.poll(() => page.getByTestId('rp-priority-critical').count()).toBe(1)
    await shot(page, 'i17-06-requester-policy')
    await page.goto('/admin/approval-policy')
    await expect.poll(() => page.getByTestId('ap-add-step').count()).toBe(1)
    await shot(page, 'i17-07-approval-policy')
  })

  it('a manager reads analytics and downloads the CSV', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'analytics' })
    contexts.push(context)
    await signIn(page, manager)
    await page.getByRole('link', { name: 'Analytics' }).click()
    await expect.poll(() => page.getByTestId('analytics-summary').textContent(), { timeout: 15_000 }).toContain('4 created')
    await page.getByTestId('analytics-group').getByText('Day').click()
    await expect.poll(() => page.getByTestId('analytics-table').locator('tbody tr').count()).toBeGreaterThan(30)
    await shot(page, 'i17-08-analytics')
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('analytics-download').click()])
    expect(download.suggestedFilename()).toMatch(/\.csv$/)
  })

  it('runs in German without an untranslated string, saved on the profile', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'german' })
    contexts.push(context)
    await signIn(page, manager)
    await page.getByTestId('language').selectOption('de')
    await expect.poll(() => page.evaluate(() => document.documentElement.lang)).toBe('de')
    await expect.poll(async () => (await api<{ locale: string }>(server, 'GET', '/api/v1/auth/profile', undefined, managerSession.access_token)).body.locale).toBe('de')

    const screens: Array<[string, string, string]> = [
      ['/dashboard', 'Übersicht', 'i17-10-de-dashboard'],
      ['/analytics', 'Auswertung', 'i17-11-de-analytics'],
      ['/approvals', 'Freigaben, die auf mich warten', 'i17-12-de-approvals'],
      ['/tickets/new', 'Neues Ticket', 'i17-13-de-new-ticket'],
    ]
    const found: string[] = []
    for (const [path, heading, name] of screens) {
      await page.goto(path)
      await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), { timeout: 15_000 }).toBe(heading)
      await shot(page, name)
      found.push(...(await untranslated(page)).map((f) => `${path}: ${f}`))
    }
    // A priority label and a date in German.
    await page.goto('/dashboard')
    const panel = page.getByTestId('chart-priority')
    await panel.getByRole('button', { name: /Als Tabelle/ }).click()
    expect((await panel.locator('tbody th').allTextContents()).map((s) => s.trim())).toEqual(['Niedrig', 'Mittel', 'Hoch', 'Kritisch'])
    expect(found).toEqual([])
    await page.getByTestId('language').selectOption('en')
  })

  it('passes axe in dark mode', async () => {
    const { context, page } = await newUserPage(browser, server, watch, { name: 'dark' })
    contexts.push(context)
    await signIn(page, adminPerson, server.adminPassword)
    await page.getByTestId('theme').selectOption('dark')
    await expect.poll(() => page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(true)
    const serious: string[] = []
    for (const [path, name] of [
      ['/dashboard', 'i17-20-dark-dashboard'],
      ['/analytics', 'i17-21-dark-analytics'],
      ['/admin/sla-policy', 'i17-22-dark-sla-policy'],
      ['/approvals', 'i17-23-dark-approvals'],
      ['/tickets/new', 'i17-24-dark-new-ticket'],
    ] as const) {
      await page.goto(path)
      await expect.poll(() => page.getByRole('heading', { level: 1 }).count(), { timeout: 15_000 }).toBe(1)
      await shot(page, name)
      const found = await checkA11y(page, name)
      serious.push(...found.map((f) => `${name} ${f.id} (${f.impact}): ${f.help} @ ${f.nodes.join(', ')}`))
    }
    expect(serious).toEqual([])
    // Saved on the profile: a reload stays dark.
    await page.reload()
    await expect.poll(() => page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(true)
  })
})
