import MockAdapter from 'axios-mock-adapter'
import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Router } from 'vue-router'
import { connectAuthStore, useAuthStore } from '@/stores/auth'
import type { TokenResponse } from '../types'
import {
  EnhancedApiClient,
  configureAuth,
  currentConsistencyToken,
  filenameFromDisposition,
  onRequest,
  resetClientState,
} from '../client'
import { AxiosHeaders, type InternalAxiosRequestConfig } from 'axios'

const user = { id: 1, email: 'a@example.com', full_name: 'A', role: 'agent' as const, is_active: true, created_at: '2026-01-01T00:00:00Z', locale: 'en', theme: 'system', time_zone: 'UTC', notify: { email: [], in_app: [] } }

function tokens(access: string, refresh: string): TokenResponse {
  return { access_token: access, refresh_token: refresh, token_type: 'bearer', expires_in: 900, user }
}

/** A fake router: only what the auth bridge touches. */
function fakeRouter() {
  return {
    currentRoute: { value: { meta: {}, fullPath: '/tickets/1' } },
    push: vi.fn().mockResolvedValue(undefined),
  }
}

describe('EnhancedApiClient: auth and single-flight refresh', () => {
  let client: EnhancedApiClient
  let mock: MockAdapter
  let router: ReturnType<typeof fakeRouter>
  let auth: ReturnType<typeof useAuthStore>

  beforeEach(() => {
    localStorage.clear()
    resetClientState()
    setActivePinia(createPinia())
    auth = useAuthStore()
    auth.applySession(tokens('old-access', 'refresh-1'))
    router = fakeRouter()
    connectAuthStore(auth, router as unknown as Router)
    client = new EnhancedApiClient({ baseURL: '' })
    mock = new MockAdapter(client.instance)
  })

  afterEach(() => {
    mock.restore()
    configureAuth(null)
  })

  /** Protected resources: 200 with the new token, 401 with anything else. */
  function protectedRoutes(): void {
    mock.onGet(/\/api\/v1\/(a|b|c)$/).reply((config) =>
      config.headers?.Authorization === 'Bearer new-access'
        ? [200, { url: config.url }]
        : [401, { detail: 'token expired', code: 'AUTH_ERROR' }, { 'www-authenticate': 'Bearer' }],
    )
  }

  it('adds the bearer token from the auth store', async () => {
    mock.onGet('/api/v1/me').reply((config) => [200, { auth: config.headers?.Authorization }])
    await expect(client.get('/api/v1/me')).resolves.toEqual({ auth: 'Bearer old-access' })
  })

  it('three parallel 401s cause exactly one refresh call, and all three are retried', async () => {
    protectedRoutes()
    let refreshCalls = 0
    mock.onPost('/api/v1/auth/refresh').reply(async (config) => {
      refreshCalls++
      expect(JSON.parse(config.data as string)).toEqual({ refresh_token: 'refresh-1' })
      expect(config.headers?.Authorization).toBeUndefined()
      await new Promise((resolve) => setTimeout(resolve, 20))
      return [200, tokens('new-access', 'refresh-2')]
    })

    const results = await Promise.all([client.get('/api/v1/a'), client.get('/api/v1/b'), client.get('/api/v1/c')])

    expect(refreshCalls).toBe(1)
    expect(results).toEqual([{ url: '/api/v1/a' }, { url: '/api/v1/b' }, { url: '/api/v1/c' }])
    // Each resource: the failed try with the old token, then exactly one retry with the new one.
    for (const path of ['/api/v1/a', '/api/v1/b', '/api/v1/c']) {
      const tries = mock.history.get!.filter((r) => r.url === path)
      expect(tries.map((r) => r.headers?.Authorization)).toEqual(['Bearer old-access', 'Bearer new-access'])
    }
    expect(auth.accessToken).toBe('new-access')
    expect(auth.refreshToken).toBe('refresh-2')
    expect(localStorage.getItem('refresh_token')).toBe('refresh-2')
  })

  it('a 401 that arrives after the refresh finished retries without refreshing again', async () => {
    protectedRoutes()
    let refreshCalls = 0
    mock.onPost('/api/v1/auth/refresh').reply(() => {
      refreshCalls++
      return [200, tokens('new-access', 'refresh-2')]
    })
    // A slow request that went out with the old token...
    mock.onGet('/api/v1/slow').replyOnce(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50))
      return [401, { detail: 'expired', code: 'AUTH_ERROR' }]
    })
    mock.onGet('/api/v1/slow').reply((config) => [200, { auth: config.headers?.Authorization }])
    const slow = client.get('/api/v1/slow')
    await client.get('/api/v1/a') // ...while this one refreshes.
    await expect(slow).resolves.toEqual({ auth: 'Bearer new-access' })
    expect(refreshCalls).toBe(1)
  })

  it('retries only once: a second 401 is final', async () => {
    mock.onGet('/api/v1/a').reply(401, { detail: 'no', code: 'AUTH_ERROR' })
    mock.onPost('/api/v1/auth/refresh').reply(200, tokens('new-access', 'refresh-2'))
    await expect(client.get('/api/v1/a')).rejects.toMatchObject({ response: { status: 401 } })
    expect(mock.history.get!.length).toBe(2)
    expect(mock.history.post!.length).toBe(1)
  })

  it('a failed refresh clears the session once and sends the user to the login page', async () => {
    protectedRoutes()
    mock.onPost('/api/v1/auth/refresh').reply(401, { detail: 'refresh token reused', code: 'AUTH_ERROR' })

    const outcomes = await Promise.allSettled([client.get('/api/v1/a'), client.get('/api/v1/b'), client.get('/api/v1/c')])

    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true)
    expect(mock.history.post!.length).toBe(1)
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.accessToken).toBeNull()
    expect(localStorage.getItem('refresh_token')).toBeNull()
    expect(router.push).toHaveBeenCalledTimes(1)
    expect(router.push).toHaveBeenCalledWith({ name: 'login', query: { redirect: '/tickets/1' } })
  })

  it('never refreshes for a wrong password on login', async () => {
    mock.onPost('/api/v1/auth/login').reply(401, { detail: 'bad credentials', code: 'AUTH_ERROR' })
    await expect(
      client.post('/api/v1/auth/login', { email: 'x', password: 'y' }, { skipAuthHeader: true, skipAuthRefresh: true }),
    ).rejects.toMatchObject({ response: { status: 401 } })
    expect(mock.history.post!.map((r) => r.url)).toEqual(['/api/v1/auth/login'])
  })

  it('sends the consistency token of the last command on the following reads', async () => {
    mock.onPost('/api/v1/tickets/').reply(201, { id: 1 }, { 'x-consistency-token': 'ct-42' })
    mock.onGet('/api/v1/tickets/search').reply((config) => [200, { token: config.headers?.['X-Consistency-Token'] ?? null }])
    await expect(client.get('/api/v1/tickets/search')).resolves.toEqual({ token: null })
    await client.post('/api/v1/tickets/', { title: 't' })
    expect(currentConsistencyToken()).toBe('ct-42')
    await expect(client.get('/api/v1/tickets/search')).resolves.toEqual({ token: 'ct-42' })
    expect(currentConsistencyToken(Date.now() + 60_000)).toBeNull()
  })

  it('downloads a blob with the file name from Content-Disposition', async () => {
    mock.onGet('/api/v1/reports/export').reply(200, 'id,title\n1,a\n', {
      'content-disposition': 'attachment; filename="tickets.csv"',
    })
    const { filename } = await client.getBlob('/api/v1/reports/export', { params: { format: 'csv' } })
    expect(filename).toBe('tickets.csv')
    expect(mock.history.get![0]!.responseType).toBe('blob')
    expect(mock.history.get![0]!.params).toEqual({ format: 'csv' })
  })
})

describe('interceptors as functions', () => {
  afterEach(() => configureAuth(null))

  it('onRequest attaches the token unless told not to', () => {
    configureAuth({ getAccessToken: () => 'tok', getRefreshToken: () => null, setSession: vi.fn(), clear: vi.fn() })
    const plain = onRequest({ headers: new AxiosHeaders(), method: 'get' } as InternalAxiosRequestConfig)
    expect(plain.headers.get('Authorization')).toBe('Bearer tok')
    const skipped = onRequest({ headers: new AxiosHeaders(), method: 'post', skipAuthHeader: true } as InternalAxiosRequestConfig)
    expect(skipped.headers.has('Authorization')).toBe(false)
  })

  it('parses Content-Disposition file names', () => {
    expect(filenameFromDisposition('attachment; filename="a b.txt"')).toBe('a b.txt')
    expect(filenameFromDisposition("attachment; filename=\"x.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")).toBe('résumé.pdf')
    expect(filenameFromDisposition('attachment; filename=plain.csv')).toBe('plain.csv')
    expect(filenameFromDisposition(null)).toBeNull()
  })
})
