/**
 * Issue 20's webhook screens in Chromium against a real `ticketd serve` (started with
 * `TICKETD_WEBHOOK_ALLOW_LOOPBACK=true`, so it may post to this spec's own receiver on loopback):
 * - an admin creates a webhook for `ticket.created` to a tiny `node:http` receiver and sees its
 *   signing secret once (copy button, then gone for good);
 * - a ticket is opened through the API; the receiver answers 500, the delivery log shows the
 *   delivery pending with last status 500; the receiver recovers, the admin clicks Retry and the
 *   delivery turns delivered; each attempt carried the same webhook-id and a valid signature;
 * - the active switch pauses the hook (PATCH), a deletion asks first;
 * - the list, the delivery log and the profile's notification choices pass axe in light and dark,
 *   and in German show no raw key and no English; screenshots land in e2e/screenshots/.
 */
import { createHmac } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { untranslated } from './untranslated'
import { FRONTEND, api, checkA11y, launchBrowser, login, newUserPage, startServer, stopServer, type ConsoleWatch, type Server, type Session } from './support'

const SHOTS = join(FRONTEND, 'e2e', 'screenshots')
const adminPerson = { name: 'Admin', email: 'admin@example.com' }

let server: Server
let browser: Browser
let admin: Session
const contexts: BrowserContext[] = []
const watch: ConsoleWatch = { errors: [] }

// ------------------------------------------------------------ the receiver
interface Received {
  headers: IncomingHttpHeaders
  body: string
  answered: number
}
const received: Received[] = []
/** While true the receiver answers 500; the spec flips it before clicking Retry. */
let failing = true
let receiver: HttpServer
let hookUrl = ''

function startReceiver(): Promise<void> {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const answered = failing ? 500 : 204
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered })
      res.writeHead(answered)
      res.end()
    })
  })
  return new Promise((done) => {
    receiver.listen(0, '127.0.0.1', () => {
      hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`
      done()
    })
  })
}

// ------------------------------------------------------------ helpers
async function shot(page: Page, name: string): Promise<void> {
  await page
    .waitForFunction(() => !document.querySelector('.el-skeleton, [aria-busy="true"], .is-loading'), undefined, { timeout: 5000 })
    .catch(() => undefined)
  await page.waitForTimeout(300)
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

async function signIn(page: Page): Promise<void> {
  await page.goto('/login')
  await page.locator('input[type="email"], input[autocomplete="email"], input[name="email"]').first().fill(adminPerson.email)
  await page.locator('input[type="password"]').first().fill(server.adminPassword)
  await page.locator('form button[type="submit"]').click()
  await page.waitForURL(/\/tickets/)
  await expect.poll(() => page.locator('.account .who').textContent(), { timeout: 15_000 }).toContain(adminPerson.name)
}

async function newPage(name: string): Promise<{ context: BrowserContext; page: Page }> {
  const made = await newUserPage(browser, server, watch, { name })
  contexts.push(made.context)
  return made
}

async function serious(page: Page, name: string): Promise<string[]> {
  const found = await checkA11y(page, name)
  return found.map((f) => `${name} ${f.id} (${f.impact}): ${f.help} @ ${f.nodes.join(', ')}`)
}

/** The Standard Webhooks signature of a received request, with the secret shown at creation. */
function signatureOf(secret: string, r: Received): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const signed = `${r.headers['webhook-id']}.${r.headers['webhook-timestamp']}.${r.body}`
  return `v1,${createHmac('sha256', key).update(signed).digest('base64')}`
}

let eventTypes: string[] = []
let hookId = 0
let secret = ''

describe('issue 20: webhooks in the SPA', () => {
  beforeAll(async () => {
    await startReceiver()
    server = await startServer({ env: { TICKETD_WEBHOOK_ALLOW_LOOPBACK: 'true' } })
    browser = await launchBrowser()
    admin = await login(server, server.adminEmail, server.adminPassword)
    const types = await api<string[]>(server, 'GET', '/api/v1/webhooks/event-types', undefined, admin.access_token)
    expect(types.status).toBe(200)
    eventTypes = types.body
    expect(eventTypes).toContain('ticket.created')
  }, 240_000)

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined)
    await browser?.close()
    await stopServer(server)
    await new Promise<void>((done) => (receiver ? receiver.close(() => done()) : done()))
    expect(watch.errors).toEqual([])
  })

  it('an admin creates a webhook from the menu and sees its secret once', async () => {
    const { context, page } = await newPage('admin-create')
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl })
    await signIn(page)
    await page.locator('#primary-nav').getByRole('link', { name: 'Webhooks' }).click()
    await page.waitForURL(/\/admin\/webhooks$/)
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Webhooks')
    await expect.poll(() => page.locator('.state-empty').count(), { timeout: 15_000 }).toBe(1)

    await page.getByTestId('webhook-new').click()
    await page.locator('#webhook-url').fill(hookUrl)
    await page.locator('#webhook-description').fill('Loopback receiver')
    await page.getByTestId('webhook-events').click()
    await page.locator('.el-select-dropdown__item', { hasText: 'ticket.created' }).first().click()
    await page.locator('#webhook-description').click() // close the dropdown, keep the dialog
    await shot(page, 'i20-01-webhook-dialog')
    await page.getByTestId('webhook-save').click()

    const shown = page.getByTestId('webhook-secret')
    await expect.poll(() => shown.count(), { timeout: 15_000 }).toBe(1)
    secret = await shown.inputValue()
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/)
    expect(await page.locator('.el-dialog').filter({ has: shown }).textContent()).toContain('it will not be shown again')
    await page.getByTestId('webhook-secret-copy').click()
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(secret)
    await shot(page, 'i20-02-webhook-secret')
    await page.getByTestId('webhook-secret-done').click()
    await expect.poll(() => shown.count()).toBe(0)

    // The list shows the hook; the secret is nowhere any more, in the page or from the API.
    const list = await api<{ items: Array<{ id: number; url: string; events: string[]; active: boolean }> }>(
      server, 'GET', '/api/v1/webhooks', undefined, admin.access_token,
    )
    expect(list.body.items).toHaveLength(1)
    hookId = list.body.items[0]!.id
    expect(list.body.items[0]).toMatchObject({ url: hookUrl, events: ['ticket.created'], active: true })
    expect(JSON.stringify(list.body)).not.toContain(secret)
    const row = page.getByTestId(`webhook-row-${hookId}`)
    await expect.poll(() => row.textContent()).toContain(hookUrl)
    expect(await row.textContent()).toContain('ticket.created')
    await page.reload()
    await expect.poll(() => row.count(), { timeout: 15_000 }).toBe(1)
    expect(await page.content()).not.toContain(secret)
    await shot(page, 'i20-03-webhooks-list')
    expect(await serious(page, 'i20-webhooks-light')).toEqual([])
  })

  it('a failed delivery shows its 500 and turns delivered after Retry', async () => {
    expect(hookId).toBeGreaterThan(0)
    const ticket = await api<{ id: number }>(
      server, 'POST', '/api/v1/tickets/', { title: 'Webhook probe', description: 'e2e', priority: 'medium', type: 'issue' }, admin.access_token,
    )
    expect(ticket.status).toBe(201)
    await expect.poll(() => received.length, { timeout: 30_000 }).toBeGreaterThan(0)
    expect(received[0]!.answered).toBe(500)

    const { page } = await newPage('admin-deliveries')
    await signIn(page)
    await page.goto('/admin/webhooks')
    await page.getByTestId(`webhook-deliveries-${hookId}`).click()
    await page.waitForURL(new RegExp(`/admin/webhooks/${hookId}$`))
    const row = page.locator('[data-testid^="delivery-row-"]').first()
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('pending')
    await expect.poll(() => row.getByTestId('delivery-code').textContent()).toBe('500')
    expect(await row.getByTestId('delivery-status').textContent()).toContain('Pending')
    expect(await row.textContent()).toContain('ticket.created')
    await shot(page, 'i20-04-deliveries-failing')
    expect(await serious(page, 'i20-deliveries-light')).toEqual([])

    // The filter: nothing delivered yet.
    await page.getByTestId('deliveries-status').click()
    await page.locator('.el-select-dropdown__item', { hasText: 'Delivered' }).first().click()
    await page.waitForURL(/status=delivered/)
    await expect.poll(() => page.locator('.state-empty').count(), { timeout: 15_000 }).toBe(1)
    await page.goto(`/admin/webhooks/${hookId}`)
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 15_000 }).toBe('pending')

    const before = received.length
    failing = false
    await row.getByTestId('delivery-retry').click()
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000 }).toBe('delivered')
    expect(await row.getByTestId('delivery-status').textContent()).toContain('Delivered')
    expect(await row.getByTestId('delivery-code').textContent()).toBe('204')
    expect(await row.getByTestId('delivery-retry').count()).toBe(0)
    await shot(page, 'i20-05-deliveries-delivered')

    // Every attempt was the same message, signed with the secret shown once.
    expect(received.length).toBeGreaterThan(before)
    const ids = new Set(received.map((r) => r.headers['webhook-id']))
    expect(ids.size).toBe(1)
    for (const r of received) {
      expect(String(r.headers['webhook-signature']).split(' ')).toContain(signatureOf(secret, r))
      expect(JSON.parse(r.body)).toMatchObject({ type: 'ticket.created' })
    }
    expect(received.at(-1)!.answered).toBe(204)
  })

  it('the active switch pauses the hook and a deletion asks first', async () => {
    const { page } = await newPage('admin-toggle')
    await signIn(page)
    await page.goto('/admin/webhooks')
    const toggle = page.getByTestId(`webhook-active-${hookId}`)
    await expect.poll(() => toggle.count(), { timeout: 15_000 }).toBe(1)
    await toggle.click()
    await expect.poll(async () => (await api<{ active: boolean }>(server, 'GET', `/api/v1/webhooks/${hookId}`, undefined, admin.access_token)).body.active).toBe(false)
    await expect.poll(() => page.getByTestId(`webhook-row-${hookId}`).getAttribute('class')).toContain('paused')
    await toggle.click()
    await expect.poll(async () => (await api<{ active: boolean }>(server, 'GET', `/api/v1/webhooks/${hookId}`, undefined, admin.access_token)).body.active).toBe(true)

    // A second hook to delete: cancel first, then confirm.
    const extra = await api<{ id: number }>(server, 'POST', '/api/v1/webhooks', { url: `${hookUrl}/other`, events: [] }, admin.access_token)
    expect(extra.status).toBe(201)
    await page.reload()
    const extraRow = page.getByTestId(`webhook-row-${extra.body.id}`)
    await expect.poll(() => extraRow.count(), { timeout: 15_000 }).toBe(1)
    expect(await extraRow.textContent()).toContain('All events')
    await extraRow.getByRole('button', { name: /^Delete/ }).click()
    const box = page.locator('.el-message-box')
    await expect.poll(() => box.count()).toBe(1)
    await box.getByRole('button', { name: 'Cancel' }).click()
    await expect.poll(() => box.isVisible()).toBe(false)
    expect((await api(server, 'GET', `/api/v1/webhooks/${extra.body.id}`, undefined, admin.access_token)).status).toBe(200)
    await extraRow.getByRole('button', { name: /^Delete/ }).click()
    await box.getByRole('button', { name: 'Delete' }).click()
    await expect.poll(() => extraRow.count(), { timeout: 15_000 }).toBe(0)
    expect((await api(server, 'GET', `/api/v1/webhooks/${extra.body.id}`, undefined, admin.access_token)).status).toBe(404)
  })

  it('the notification choices on the profile say e-mail and in the app, and save', async () => {
    const { page } = await newPage('admin-profile')
    await signIn(page)
    await page.goto('/profile')
    const table = page.getByTestId('notify-preferences')
    await expect.poll(() => table.locator('thead th').allTextContents(), { timeout: 15_000 }).toEqual(['Notification', 'E-mail', 'In the app'])
    const box = page.getByTestId('notify-email-comment')
    expect(await box.locator('input').isChecked()).toBe(true)
    await box.click()
    await expect.poll(async () => (await api<{ notify: { email: string[] } }>(server, 'GET', '/api/v1/auth/profile', undefined, admin.access_token)).body.notify.email).not.toContain('comment')
    await shot(page, 'i20-06-profile-notifications')
    expect(await serious(page, 'i20-profile-light')).toEqual([])
    await box.click()
    await expect.poll(async () => (await api<{ notify: { email: string[] } }>(server, 'GET', '/api/v1/auth/profile', undefined, admin.access_token)).body.notify.email).toContain('comment')
  })

  it('passes axe in dark mode', async () => {
    const { page } = await newPage('admin-dark')
    await signIn(page)
    await page.getByTestId('theme').selectOption('dark')
    await expect.poll(() => page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(true)
    await expect.poll(async () => (await api<{ theme: string }>(server, 'GET', '/api/v1/auth/profile', undefined, admin.access_token)).body.theme).toBe('dark')
    const found: string[] = []
    for (const [path, name, ready] of [
      ['/admin/webhooks', 'i20-10-dark-webhooks', `webhook-row-${hookId}`],
      [`/admin/webhooks/${hookId}`, 'i20-11-dark-deliveries', 'deliveries-table'],
      ['/profile', 'i20-12-dark-profile', 'notify-preferences'],
    ] as const) {
      await page.goto(path)
      await expect.poll(() => page.getByTestId(ready).count(), { timeout: 15_000 }).toBe(1)
      await shot(page, name)
      found.push(...(await serious(page, name)))
    }
    // The dialog too.
    await page.goto('/admin/webhooks')
    await page.getByTestId('webhook-new').click()
    await expect.poll(() => page.locator('#webhook-url').count()).toBe(1)
    await page.waitForTimeout(400)
    await shot(page, 'i20-13-dark-dialog')
    found.push(...(await serious(page, 'i20-13-dark-dialog')))
    expect(found).toEqual([])
    await page.getByTestId('theme').selectOption('light')
    await expect.poll(async () => (await api<{ theme: string }>(server, 'GET', '/api/v1/auth/profile', undefined, admin.access_token)).body.theme).toBe('light')
  })

  it('runs in German without an untranslated string', async () => {
    const { page } = await newPage('admin-german')
    await signIn(page)
    await page.getByTestId('language').selectOption('de')
    await expect.poll(() => page.evaluate(() => document.documentElement.lang)).toBe('de')
    // Saved on the profile before the next navigation (a reload follows the profile's language).
    await expect.poll(async () => (await api<{ locale: string }>(server, 'GET', '/api/v1/auth/profile', undefined, admin.access_token)).body.locale).toBe('de')
    const found: string[] = []
    for (const [path, heading, name, ready] of [
      ['/admin/webhooks', 'Webhooks', 'i20-20-de-webhooks', `webhook-row-${hookId}`],
      [`/admin/webhooks/${hookId}`, 'Zustellungen', 'i20-21-de-deliveries', 'deliveries-table'],
      ['/profile', 'Profil', 'i20-22-de-profile', 'notify-preferences'],
    ] as const) {
      await page.goto(path)
      await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), { timeout: 15_000 }).toBe(heading)
      await expect.poll(() => page.getByTestId(ready).count(), { timeout: 15_000 }).toBe(1)
      await shot(page, name)
      // Event types are wire names and stay as they are; some spell catalogue keys.
      found.push(...(await untranslated(page, 'de', eventTypes)).map((f) => `${path}: ${f}`))
    }
    expect(await page.getByTestId('notify-preferences').locator('thead th').allTextContents()).toEqual(['Benachrichtigung', 'E-Mail', 'In der App'])
    await page.goto(`/admin/webhooks/${hookId}`)
    await expect.poll(() => page.locator('[data-testid="delivery-status"]').first().textContent(), { timeout: 15_000 }).toContain('Zugestellt')
    // The dialog in German.
    await page.goto('/admin/webhooks')
    await page.getByTestId('webhook-new').click()
    await expect.poll(() => page.locator('#webhook-url').count()).toBe(1)
    await page.waitForTimeout(400)
    found.push(...(await untranslated(page, 'de', eventTypes)).map((f) => `dialog: ${f}`))
    await shot(page, 'i20-23-de-dialog')
    expect(found).toEqual([])
    await page.getByTestId('language').selectOption('en')
    await expect.poll(async () => (await api<{ locale: string }>(server, 'GET', '/api/v1/auth/profile', undefined, admin.access_token)).body.locale).toBe('en')
  })
})
