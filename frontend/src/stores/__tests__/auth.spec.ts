import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { roleAtLeast, useAuthStore } from '../auth'

vi.mock('@/services/AuthApiService', () => ({
  authApiService: {
    login: vi.fn(),
    logout: vi.fn(),
    register: vi.fn(),
    getProfile: vi.fn(),
    updateProfile: vi.fn(),
  },
}))

import { authApiService } from '@/services/AuthApiService'

const user = { id: 3, email: 'r@example.com', full_name: 'Rita', role: 'requester' as const, is_active: true, created_at: '2026-01-01T00:00:00Z', locale: 'en', theme: 'system', time_zone: 'UTC', notify: { email: [], in_app: [] } }
const login = vi.mocked(authApiService.login)
const logout = vi.mocked(authApiService.logout)
const register = vi.mocked(authApiService.register)

describe('auth store', () => {
  beforeEach(() => {
    localStorage.clear()
    vi.clearAllMocks()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  it('logs in, keeps the tokens and persists them', async () => {
    login.mockResolvedValue({ access_token: 'a1', refresh_token: 'r1', token_type: 'bearer', expires_in: 900, user })
    const auth = useAuthStore()
    await auth.login({ email: user.email, password: 'pw' })
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.user).toEqual(user)
    expect(auth.role).toBe('requester')
    expect(auth.isStaff).toBe(false)
    expect(localStorage.getItem('access_token')).toBe('a1')
    expect(localStorage.getItem('refresh_token')).toBe('r1')
    expect(Number(localStorage.getItem('token_expiration'))).toBeGreaterThan(Date.now())
    expect(JSON.parse(localStorage.getItem('auth_user')!)).toEqual(user)
  })

  it('restores the session from localStorage', () => {
    localStorage.setItem('access_token', 'a1')
    localStorage.setItem('refresh_token', 'r1')
    localStorage.setItem('auth_user', JSON.stringify({ ...user, role: 'manager' }))
    const auth = useAuthStore()
    expect(auth.isAuthenticated).toBe(true)
    expect(auth.isManager).toBe(true)
    expect(auth.isAdmin).toBe(false)
  })

  it('turns a failed login into an ApiError', async () => {
    login.mockRejectedValue({ response: { status: 401, data: { detail: 'bad', code: 'AUTH_ERROR' } } })
    const auth = useAuthStore()
    await expect(auth.login({ email: 'x', password: 'y' })).rejects.toMatchObject({ status: 401, code: 'AUTH_ERROR' })
    expect(auth.error?.status).toBe(401)
    expect(auth.isAuthenticated).toBe(false)
    expect(auth.loading).toBe(false)
  })

  it('registers, then signs in with the same credentials', async () => {
    register.mockResolvedValue(user)
    login.mockResolvedValue({ access_token: 'a1', refresh_token: 'r1', token_type: 'bearer', expires_in: 900, user })
    const auth = useAuthStore()
    await auth.register({ email: user.email, password: 'long-password', full_name: 'Rita' })
    expect(login).toHaveBeenCalledWith({ email: user.email, password: 'long-password' })
    expect(auth.isAuthenticated).toBe(true)
  })

  it('logs out even when the server call fails, and forgets everything', async () => {
    logout.mockRejectedValue(new Error('offline'))
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const auth = useAuthStore()
    auth.applySession({ access_token: 'a1', refresh_token: 'r1', token_type: 'bearer', expires_in: 900, user })
    await auth.logout()
    expect(logout).toHaveBeenCalledWith('r1')
    expect(auth.isAuthenticated).toBe(false)
    expect(localStorage.getItem('access_token')).toBeNull()
    expect(localStorage.getItem('auth_user')).toBeNull()
    warn.mockRestore()
  })

  it('orders roles requester < agent < manager < admin', () => {
    expect(roleAtLeast('agent', 'agent')).toBe(true)
    expect(roleAtLeast('requester', 'agent')).toBe(false)
    expect(roleAtLeast('admin', 'manager')).toBe(true)
    expect(roleAtLeast(null, 'requester')).toBe(false)
  })
})
