/**
 * End-to-end support: a real `ticketd serve` on a private database and port, headless Debian
 * Chromium driven by playwright-core, axe-core checks and screenshots.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, createWriteStream, existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import AxeBuilder from '@axe-core/playwright'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

export const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const RESULTS = join(FRONTEND, 'test-results')
export const SCREENSHOTS = join(RESULTS, 'screenshots')

export interface Server {
  baseUrl: string
  database: string
  adminEmail: string
  adminPassword: string
  /** Absent when the run uses a server started elsewhere (`TICKETD_E2E_BASE_URL`). */
  process?: ChildProcess
  dataDir: string
  logFile: string
}

/**
 * A server somebody else started and stops (scripts/two-process.sh: nginx in front of two
 * `ticketd serve` processes): `TICKETD_E2E_BASE_URL` with the admin it was seeded with in
 * `TICKETD_E2E_ADMIN_EMAIL` / `TICKETD_E2E_ADMIN_PASSWORD`. Unset: each spec starts its own.
 */
export function externalServer(): Server | undefined {
  const baseUrl = process.env.TICKETD_E2E_BASE_URL
  if (!baseUrl) return undefined
  const adminEmail = process.env.TICKETD_E2E_ADMIN_EMAIL
  const adminPassword = process.env.TICKETD_E2E_ADMIN_PASSWORD
  if (!adminEmail || !adminPassword) {
    throw new Error('TICKETD_E2E_BASE_URL needs TICKETD_E2E_ADMIN_EMAIL and TICKETD_E2E_ADMIN_PASSWORD')
  }
  return { baseUrl: baseUrl.replace(/\/$/, ''), database: '', adminEmail, adminPassword, dataDir: '', logFile: '' }
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer()
    probe.once('error', fail)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => done(port))
    })
  })
}

async function waitForHealth(baseUrl: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ticketd exited with code ${child.exitCode} before it was healthy`)
    try {
      const response = await fetch(`${baseUrl}/healthz`)
      if (response.ok) return
      last = `HTTP ${response.status}`
    } catch (error) {
      last = String(error)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`ticketd did not answer /healthz within ${timeoutMs} ms (${last})`)
}

/** What a spec may add to the server it starts. */
export interface ServerOptions {
  /** Extra environment of `ticketd serve` (`TICKETD_WEBHOOK_ALLOW_LOOPBACK`, ...); wins over the
   *  defaults here. Ignored for an external server, which must be started with it. */
  env?: Record<string, string>
}

/** Starts `$TICKETD_BIN serve` (default `../target/debug/ticketd`) on its own database and port. */
export async function startServer(options: ServerOptions = {}): Promise<Server> {
  const external = externalServer()
  if (external) return external
  const bin = resolve(FRONTEND, process.env.TICKETD_BIN ?? '../target/debug/ticketd')
  if (!existsSync(bin)) throw new Error(`ticketd binary not found at ${bin} (set TICKETD_BIN or run cargo build)`)
  const staticDir = join(FRONTEND, 'dist')
  if (!existsSync(join(staticDir, 'index.html'))) throw new Error('frontend/dist is missing: run `vite build` first')

  mkdirSync(RESULTS, { recursive: true })
  const port = await freePort()
  const database = `ticketd_e2e_${randomBytes(6).toString('hex')}`
  const dataDir = mkdtempSync(join(tmpdir(), 'ticketd-e2e-'))
  const adminEmail = 'admin@example.com'
  const adminPassword = randomBytes(12).toString('base64url')
  const logFile = join(RESULTS, 'server.log')
  const log = createWriteStream(logFile)

  // Run the binary under a name of its own (a hard link, else a copy): other sessions on this
  // machine build and restart `ticketd` and may stop processes by that name mid-journey.
  const runnable = join(dataDir, 'ticketd-e2e-journey')
  try {
    linkSync(bin, runnable)
  } catch {
    copyFileSync(bin, runnable)
  }

  const child = spawn(runnable, ['serve'], {
    env: {
      ...process.env,
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
      TICKETD_ADDR: `127.0.0.1:${port}`,
      TICKETD_STATIC_DIR: staticDir,
      TICKETD_DATA_DIR: dataDir,
      SECRET_KEY: randomBytes(32).toString('hex'),
      TICKETD_ADMIN_EMAIL: adminEmail,
      TICKETD_ADMIN_PASSWORD: adminPassword,
      RUST_LOG: process.env.RUST_LOG ?? 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  const baseUrl = `http://127.0.0.1:${port}`
  const server = { baseUrl, database, adminEmail, adminPassword, process: child, dataDir, logFile }
  try {
    await waitForHealth(baseUrl, child, 120_000)
  } catch (error) {
    await stopServer(server)
    throw error
  }
  return server
}

/** Stops the server, drops its database and removes its data directory. */
export async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return
  const child = server.process
  if (!child) return
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((r) => child.once('exit', () => r()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  try {
    execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', `drop database if exists "${server.database}" with (force)`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  } catch (error) {
    console.warn(`could not drop ${server.database}:`, error)
  }
  rmSync(server.dataDir, { recursive: true, force: true })
}

// ------------------------------------------------------------------ API (setup and checks)

export interface Session {
  access_token: string
  refresh_token: string
  user: { id: number; email: string; full_name: string; role: string }
}

export async function api<T = unknown>(
  server: Server,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    /* not JSON */
  }
  return { status: response.status, body: parsed as T }
}

export async function login(server: Server, email: string, password: string): Promise<Session> {
  const { status, body } = await api<Session>(server, 'POST', '/api/v1/auth/login', { email, password })
  if (status !== 200) throw new Error(`login of ${email} answered ${status}: ${JSON.stringify(body)}`)
  return body
}

// ------------------------------------------------------------------ browser

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  })
}

/** Console errors and page errors, minus the browser's own "Failed to load resource" lines for
 * HTTP error answers the app expects and handles (409, 404 of optional panels, ...). */
export interface ConsoleWatch {
  errors: string[]
}

export async function newUserPage(
  browser: Browser,
  server: Server,
  watch: ConsoleWatch,
  options: { width?: number; height?: number; name: string },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    baseURL: server.baseUrl,
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    acceptDownloads: true,
    reducedMotion: 'reduce',
  })
  context.setDefaultTimeout(15_000)
  const page = await context.newPage()
  page.on('console', (message) => {
    if (message.type() !== 'error') return
    const text = message.text()
    if (/^Failed to load resource: the server responded with a status of \d{3}/.test(text)) return
    watch.errors.push(`[${options.name}] console: ${text}`)
  })
  page.on('pageerror', (error) => watch.errors.push(`[${options.name}] pageerror: ${error.message}`))
  await watchContentSecurityPolicy(context, watch, options.name)
  return { context, page }
}

/** Records every `securitypolicyviolation` of every page of `context` as an error, so that a
 * Content-Security-Policy the app breaks fails the journey (the listener is installed by the
 * browser before any page script runs, so the policy cannot block it). */
export async function watchContentSecurityPolicy(context: BrowserContext, watch: ConsoleWatch, name: string): Promise<void> {
  await context.exposeBinding('__reportCspViolation', (_source, violation: string) => {
    watch.errors.push(`[${name}] securitypolicyviolation: ${violation}`)
  })
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      const report = (window as unknown as { __reportCspViolation: (v: string) => void }).__reportCspViolation
      report(`${event.effectiveDirective} blocked ${event.blockedURI || 'inline'} at ${event.sourceFile}:${event.lineNumber}`)
    })
  })
}

// ------------------------------------------------------------------ evidence

export interface AxeFinding {
  screen: string
  id: string
  impact: string | null | undefined
  help: string
  nodes: string[]
}

export const axeFindings: AxeFinding[] = []

/** Runs axe-core on the page; returns the serious and critical violations (all are recorded). */
export async function checkA11y(page: Page, screen: string): Promise<AxeFinding[]> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze()
  const findings = results.violations.map((v) => ({
    screen,
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
  }))
  axeFindings.push(...findings)
  return findings.filter((f) => f.impact === 'serious' || f.impact === 'critical')
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

export function writeReport(name: string, data: unknown): void {
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(join(RESULTS, name), JSON.stringify(data, null, 2))
}

export function uniqueWord(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`
}
