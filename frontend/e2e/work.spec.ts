/**
 * No typed word is lost, end to end in Chromium against a real `ticketd serve`: a reply draft
 * survives leaving the ticket and a reload (and leaving asks first); an edit that collides with
 * someone else's change on another field is merged on top of it; a collision on the same field
 * is shown side by side and the user's choice is saved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { api, launchBrowser, login, newUserPage, startServer, stopServer, uniqueWord, type ConsoleWatch, type Server, type Session } from './support'

interface Ticket {
  id: number
  title: string
  description: string
  priority: string
  status: string
  version: number
}

let server: Server
let browser: Browser
let page: Page
let admin: Session
const watch: ConsoleWatch = { errors: [] }
const agent = { name: 'Dana Desk', email: `${uniqueWord('dana-')}@example.com`, password: 'correct-horse-battery-9' }

async function newTicket(title: string): Promise<Ticket> {
  const body = { title, description: 'Written by the requester', priority: 'medium', type: 'issue' }
  const { status, body: ticket } = await api<Ticket>(server, 'POST', '/api/v1/tickets/', body, admin.access_token)
  expect(status).toBe(201)
  return ticket
}

async function ticketNow(id: number): Promise<Ticket> {
  return (await api<Ticket>(server, 'GET', `/api/v1/tickets/${id}`, undefined, admin.access_token)).body
}

/** Someone else saves a change to the ticket (with the version they saw). */
async function theyChange(id: number, changes: Record<string, unknown>): Promise<void> {
  const current = await ticketNow(id)
  const response = await fetch(`${server.baseUrl}/api/v1/tickets/${id}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${admin.access_token}`, 'If-Match': `"${current.version}"` },
    body: JSON.stringify(changes),
  })
  expect(response.status).toBe(200)
}

const composer = () => page.getByPlaceholder('Write a reply')

describe('no lost work', () => {
  beforeAll(async () => {
    server = await startServer()
    browser = await launchBrowser()
    admin = await login(server, server.adminEmail, server.adminPassword)
    const created = await api(server, 'POST', '/api/v1/users/', { email: agent.email, password: agent.password, full_name: agent.name, role: 'agent' }, admin.access_token)
    expect(created.status).toBe(201)
    page = (await newUserPage(browser, server, watch, { name: 'agent' })).page
    // Leaving with an unsent reply: the browser's own prompt (reload) is accepted by the user.
    page.on('dialog', (dialog) => void dialog.accept())
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

  it('keeps a half-written reply across leaving the ticket and a reload, and asks before leaving', async () => {
    const ticket = await newTicket('Draft keeper')
    const text = `Half a reply ${uniqueWord('w')}\nsecond line`
    await page.goto(`/tickets/${ticket.id}`)
    await composer().fill(text)

    // Leaving through the app asks first; staying keeps the page.
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Tickets' }).click()
    await page.getByRole('button', { name: 'Stay' }).click()
    expect(page.url()).toContain(`/tickets/${ticket.id}`)
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Tickets' }).click()
    await page.getByRole('button', { name: 'Leave' }).click()
    await page.waitForURL(/\/tickets$/)

    await page.goto(`/tickets/${ticket.id}`)
    await expect.poll(() => composer().inputValue()).toBe(text)
    await expect.poll(() => page.getByTestId('draft-restored').count()).toBe(1)
    await page.reload()
    await expect.poll(() => composer().inputValue()).toBe(text)

    // Sent, the draft is gone.
    await page.getByRole('button', { name: 'Post' }).click()
    await expect.poll(() => page.locator('.thread').textContent()).toContain('second line')
    await page.reload()
    await expect.poll(() => page.locator('.thread').textContent()).toContain('second line')
    expect(await composer().inputValue()).toBe('')
  })

  it('merges an edit with a change someone else saved to another field, losing no text', async () => {
    const ticket = await newTicket('Merge me')
    const typed = `A long description ${uniqueWord('d')}\nwith several lines\nthat must not be lost`
    await page.goto(`/tickets/${ticket.id}`)
    await page.getByRole('button', { name: 'Edit' }).click()
    await page.locator('#edit-description').fill(typed)
    await theyChange(ticket.id, { priority: 'critical' })
    await page.getByRole('button', { name: 'Save' }).click()

    await expect.poll(async () => (await ticketNow(ticket.id)).description).toBe(typed)
    const saved = await ticketNow(ticket.id)
    expect(saved.priority).toBe('critical')
    await expect.poll(() => page.locator('.description').textContent()).toContain('that must not be lost')
  })

  it('shows a collision on the same field side by side and saves the choice', async () => {
    const ticket = await newTicket('Collide')
    await page.goto(`/tickets/${ticket.id}`)
    await page.getByRole('button', { name: 'Edit' }).click()
    await page.locator('#edit-title').fill('My better title')
    await page.locator('#edit-description').fill('My description')
    await theyChange(ticket.id, { title: 'Their title' })
    await page.getByRole('button', { name: 'Save' }).click()

    const table = page.getByTestId('edit-conflicts')
    await expect.poll(() => table.textContent()).toContain('Their title')
    expect(await table.textContent()).toContain('My better title')
    await page.getByTestId('apply-merge').click()
    await expect.poll(async () => (await ticketNow(ticket.id)).title).toBe('My better title')
    expect((await ticketNow(ticket.id)).description).toBe('My description')
  })

  it('replies and resolves in one submit', async () => {
    const ticket = await newTicket('Reply and resolve')
    const started = await fetch(`${server.baseUrl}/api/v1/tickets/${ticket.id}/status`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${admin.access_token}`, 'If-Match': `"${(await ticketNow(ticket.id)).version}"` },
      body: JSON.stringify({ status: 'in_progress' }),
    })
    expect(started.status).toBe(200)
    await page.goto(`/tickets/${ticket.id}`)
    await composer().fill('New toner is in')
    await page.getByTestId('reply-and-resolved').click()
    await expect.poll(async () => (await ticketNow(ticket.id)).status).toBe('resolved')
    await expect.poll(() => page.locator('.thread').textContent()).toContain('New toner is in')
    await expect.poll(() => page.locator('.ticket-head').textContent()).toContain('Resolved')
  })

  it('logged no console error', () => {
    expect(watch.errors).toEqual([])
  })
})
