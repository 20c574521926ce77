import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { Notification } from '@/api/types'
import { notificationText, useNotificationsStore } from '../notifications'

vi.mock('@/services', () => ({
  notificationApiService: { listNotifications: vi.fn(), markRead: vi.fn(), markAllRead: vi.fn() },
}))

import { notificationApiService } from '@/services'

const api = vi.mocked(notificationApiService)

function note(id: number, read = false): Notification {
  return { id, kind: 'ticket_assigned', ticket_id: 4, message: `n${id}`, internal: false, read, created_at: '2026-01-01T00:00:00Z' }
}

describe('notifications store', () => {
  beforeEach(() => {
    vi.clearAllMocks()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  it('counts unread and marks read', async () => {
    api.listNotifications.mockResolvedValue({ items: [note(1), note(2, true)], total: 2, page: 1, size: 20, pages: 1, unread_count: 1 })
    api.markRead.mockResolvedValue(undefined)
    const store = useNotificationsStore()
    await store.fetchNotifications()
    expect(store.unreadCount).toBe(1)
    await store.markRead(1)
    expect(api.markRead).toHaveBeenCalledWith(1)
    expect(store.unreadCount).toBe(0)
  })

  it("uses the server's unread count over all pages, and read-all", async () => {
    api.listNotifications.mockResolvedValue({ items: [note(1)], total: 30, page: 1, size: 20, pages: 2, unread_count: 7 })
    api.markRead.mockResolvedValue(undefined)
    api.markAllRead.mockResolvedValue(undefined)
    const store = useNotificationsStore()
    await store.fetchNotifications()
    expect(store.unreadCount).toBe(7)
    await store.markRead(1)
    expect(store.unreadCount).toBe(6)
    store.receive(note(50))
    expect(store.unreadCount).toBe(7)
    await store.markAllRead()
    expect(api.markAllRead).toHaveBeenCalled()
    expect(store.unreadCount).toBe(0)
    expect(store.items.every((n) => n.read)).toBe(true)
  })

  it('takes live arrivals once each and announces the newest', async () => {
    api.listNotifications.mockResolvedValue({ items: [], total: 0, page: 1, size: 20, pages: 0, unread_count: 0 })
    const store = useNotificationsStore()
    await store.fetchNotifications()
    store.receive(note(9))
    store.receive(note(9))
    expect(store.items.map((n) => n.id)).toEqual([9])
    expect(store.unreadCount).toBe(1)
    expect(store.lastArrival?.id).toBe(9)
  })

  it("opening a ticket marks that ticket's unread notifications read, also those beyond the loaded page", async () => {
    const other = { ...note(3), ticket_id: 5 }
    api.listNotifications
      .mockResolvedValueOnce({ items: [note(1), other, note(2, true)], total: 40, page: 1, size: 20, pages: 2, unread_count: 4 })
      .mockResolvedValueOnce({ items: [note(1), other, note(30)], total: 3, page: 1, size: 100, pages: 1, unread_count: 4 })
    api.markRead.mockResolvedValue(undefined)
    const store = useNotificationsStore()
    await store.markTicketRead(4) // loads the bell first
    expect(api.listNotifications).toHaveBeenNthCalledWith(2, 1, 100, true)
    expect(api.markRead.mock.calls.map(([id]) => id).sort()).toEqual([1, 30])
    expect(store.unreadCount).toBe(2)
    expect(store.items.find((n) => n.id === 3)?.read).toBe(false)
  })

  it('says what a notification is about', () => {
    expect(notificationText(note(1))).toBe('n1')
    expect(notificationText({ ...note(1), message: '' })).toBe('Ticket assigned')
  })
})
