/**
 * The first load, as a browser sees it: the login page in a fresh Chromium profile transfers at
 * most 150 KB in total (headers included), hashed assets arrive precompressed (brotli) and
 * cacheable for a year, `index.html` is revalidated, and a missing asset is a 404 rather than
 * the SPA's page. Runs against ticketd alone, and through nginx in scripts/two-process.sh.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { launchBrowser, startServer, stopServer, writeReport, type Server } from './support'

const LOGIN_BUDGET_BYTES = 150 * 1024

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

describe('static assets', () => {
  it(`loads the login page within ${LOGIN_BUDGET_BYTES / 1024} KB, assets in brotli and immutable`, async () => {
    const context = await browser.newContext({ baseURL: server.baseUrl })
    const page = await context.newPage()
    // The bytes on the wire (headers and compressed bodies), as Chromium's network stack counts them.
    const cdp = await context.newCDPSession(page)
    await cdp.send('Network.enable')
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true })
    const urls = new Map<string, string>()
    const transferred = new Map<string, number>()
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url))
    cdp.on('Network.loadingFinished', (e) => transferred.set(e.requestId, e.encodedDataLength))
    const assets: { url: string; encoding: string | undefined; cache: string | undefined; vary: string | undefined }[] = []
    page.on('response', (response) => {
      if (new URL(response.url()).pathname.startsWith('/assets/')) {
        const headers = response.headers()
        assets.push({ url: response.url(), encoding: headers['content-encoding'], cache: headers['cache-control'], vary: headers.vary })
      }
    })

    const document = await page.goto('/login')
    expect(document?.status()).toBe(200)
    expect(document?.headers()['cache-control']).toBe('no-cache')
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    await page.waitForLoadState('networkidle')

    const requests = [...transferred.entries()].map(([id, bytes]) => ({ url: urls.get(id) ?? id, bytes }))
    const total = requests.reduce((sum, r) => sum + r.bytes, 0)
    writeReport(`login-transfer-${new URL(server.baseUrl).port}.json`, { baseUrl: server.baseUrl, total, requests })
    console.log(`login page through ${server.baseUrl}: ${requests.length} requests, ${(total / 1024).toFixed(1)} KB transferred`)

    expect(assets.length).toBeGreaterThan(0)
    for (const asset of assets) {
      // (The build compresses files above 1 KB; smaller ones travel as they are.)
      const bytes = requests.find((r) => r.url === asset.url)?.bytes ?? 0
      if (bytes > 2000) expect.soft(asset.encoding, asset.url).toBe('br')
      expect.soft(asset.cache, asset.url).toBe('public, max-age=31536000, immutable')
      expect.soft(asset.vary ?? '', asset.url).toMatch(/accept-encoding/i)
    }
    expect(total).toBeLessThanOrEqual(LOGIN_BUDGET_BYTES)
    await context.close()
  })

  it('answers gzip to a client without brotli, and 404 for a missing asset', async () => {
    const html = await (await fetch(`${server.baseUrl}/login`)).text()
    const script = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1]
    expect(script, 'index.html names its entry script').toBeTruthy()

    const gzip = await fetch(`${server.baseUrl}${script}`, { headers: { 'Accept-Encoding': 'gzip' } })
    expect(gzip.status).toBe(200)
    expect(gzip.headers.get('content-encoding')).toBe('gzip')
    expect(gzip.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect((await gzip.text()).length).toBeGreaterThan(1000)

    const missing = await fetch(`${server.baseUrl}/assets/index-doesnotexist.js`, { headers: { 'Accept-Encoding': 'br, gzip' } })
    expect(missing.status).toBe(404)
    expect(missing.headers.get('cache-control') ?? '').not.toContain('immutable')
    expect(missing.headers.get('content-type') ?? '').not.toContain('text/html')
  })
})
