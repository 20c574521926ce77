/**
 * `/docs` is the API reference rendered by Swagger UI from our own origin: the page carries no
 * inline script, every request it makes stays on the server's origin, and it lists the
 * operations of the served OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { launchBrowser, startServer, stopServer, type Server } from './support'

let server: Server
let browser: Browser

beforeAll(async () => {
  server = await startServer()
  browser = await launchBrowser()
})

afterAll(async () => {
  await browser?.close()
  await stopServer(server)
})

describe('the API reference at /docs', () => {
  it('renders the served document with scripts and styles from our origin only', async () => {
    const page = await browser.newPage()
    const requested: string[] = []
    const errors: string[] = []
    page.on('request', (request) => requested.push(request.url()))
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text())
    })
    page.on('pageerror', (error) => errors.push(String(error)))

    const response = await page.goto(`${server.baseUrl}/docs`)
    expect(response?.status()).toBe(200)
    expect(response?.headers()['content-type']).toContain('text/html')

    // Operations of the served document appear (Swagger UI renders one block per operation).
    await page.locator('.opblock').nth(40).waitFor({ timeout: 30_000 })
    const paths = await page
      .locator('.opblock-summary-path')
      .evaluateAll((nodes) => nodes.map((node) => (node.textContent ?? '').replace(/\u200b/g, '')))
    expect(paths).toContain('/api/v1/tickets/{id}/history')
    expect(paths).toContain('/api/v1/attachments')

    const scripts = await page.locator('script').evaluateAll((nodes) =>
      nodes.map((node) => ({ src: node.getAttribute('src'), inline: (node.textContent ?? '').trim().length })),
    )
    expect(scripts.length).toBeGreaterThan(0)
    expect(scripts.filter((s) => !s.src || s.inline > 0)).toEqual([])

    const origin = new URL(server.baseUrl).origin
    const elsewhere = requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin)
    expect(elsewhere).toEqual([])
    expect(requested.some((url) => /\/assets\/docs-[\w-]+\.js$/.test(url))).toBe(true)
    expect(requested).toContain(`${origin}/api/v1/openapi.json`)
    expect(errors).toEqual([])
    await page.close()
  })
})
