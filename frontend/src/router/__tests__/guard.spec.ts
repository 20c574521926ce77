import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { RouteLocationNormalized } from 'vue-router'
import type { Role } from '@/api/types'
import { useAuthStore } from '@/stores/auth'
import { guard, routes } from '../index'

vi.mock('@/services', () => ({ authApiService: {} }))

function to(path: string, meta: RouteLocationNormalized['meta'] = {}, query = {}): RouteLocationNormalized {
  return { path, fullPath: path, meta, query, params: {}, hash: '', name: undefined, matched: [], redirectedFrom: undefined }
}

function signIn(role: Role): void {
  const auth = useAuthStore()
  auth.isAuthenticated = true
  auth.user = { id: 1, email: 'x@example.com', full_name: 'X', role, is_active: true, created_at: '', locale: 'en', theme: 'system', time_zone: 'UTC', notify: { email: [], in_app: [] } }
}

describe('router guard', () => {
  beforeEach(() => {
    localStorage.clear()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  it('sends signed-out users to the login page with a redirect', () => {
    expect(guard(to('/tickets/4'))).toEqual({ name: 'login', query: { redirect: '/tickets/4' } })
  })

  it('lets everyone reach public pages, and sends signed-in users away from login', () => {
    expect(guard(to('/login', { public: true, guestOnly: true }))).toBe(true)
    signIn('requester')
    expect(guard(to('/login', { public: true, guestOnly: true }))).toEqual({ name: 'tickets' })
    expect(guard(to('/login', { public: true, guestOnly: true }, { redirect: '/approvals' }))).toBe('/approvals')
  })

  it('checks the minimum role', () => {
    signIn('agent')
    expect(guard(to('/tickets'))).toBe(true)
    expect(guard(to('/dashboard', { minRole: 'manager' }))).toEqual({ name: 'forbidden', query: { from: '/dashboard' } })
    signIn('manager')
    expect(guard(to('/dashboard', { minRole: 'manager' }))).toBe(true)
    expect(guard(to('/admin/users', { minRole: 'admin' }))).toMatchObject({ name: 'forbidden' })
    signIn('admin')
    expect(guard(to('/admin/users', { minRole: 'admin' }))).toBe(true)
  })

  it('keeps the webhook screens to admins', () => {
    const list = routes.find((r) => r.name === 'admin-webhooks')
    const deliveries = routes.find((r) => r.name === 'admin-webhook-deliveries')
    expect(list?.path).toBe('/admin/webhooks')
    expect(deliveries?.path).toBe('/admin/webhooks/:id(\\d+)')
    for (const route of [list, deliveries]) {
      expect(route?.meta).toMatchObject({ minRole: 'admin' })
      signIn('manager')
      expect(guard(to('/admin/webhooks', route?.meta))).toMatchObject({ name: 'forbidden' })
      signIn('admin')
      expect(guard(to('/admin/webhooks', route?.meta))).toBe(true)
    }
  })
})
