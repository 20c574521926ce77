/** The bell: the caller's notifications and the unread count (new ones arrive through the live store). */
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { toApiError, type ApiError } from '@/api/errors'
import type { Notification } from '@/api/types'
import { notificationApiService } from '@/services'

export function isRead(n: Notification): boolean {
  return Boolean(n.read || n.read_at)
}

/** The line to show: the server's message, else the kind in words. */
export function notificationText(n: Notification): string {
  if (n.message) return n.message
  const kind = n.kind.replace(/_/g, ' ')
  return kind.charAt(0).toUpperCase() + kind.slice(1)
}

/** The ticket a notification is about, if any. */
export function notificationTicketId(n: Notification): number | null {
  return n.ticket_id ?? null
}

export const useNotificationsStore = defineStore('notifications', () => {
  const items = ref<Notification[]>([])
  const total = ref(0)
  const page = ref(1)
  const pages = ref(1)
  const loading = ref(false)
  const error = ref<ApiError | null>(null)
  /** The newest live arrival, for the polite live region. */
  const lastArrival = ref<Notification | null>(null)

  /** The server's count over all pages (null until the list is loaded: then count this page). */
  const serverUnread = ref<number | null>(null)
  const unreadCount = computed(() => serverUnread.value ?? items.value.filter((n) => !isRead(n)).length)

  let inflight: Promise<void> | null = null

  function fetchNotifications(p = 1, size = 20): Promise<void> {
    const load = loadPage(p, size).finally(() => {
      if (inflight === load) inflight = null
    })
    inflight = load
    return load
  }

  async function loadPage(p: number, size: number): Promise<void> {
    loading.value = true
    error.value = null
    try {
      const answer = await notificationApiService.listNotifications(p, size)
      items.value = answer.items
      serverUnread.value = answer.unread_count
      total.value = answer.total
      page.value = answer.page
      pages.value = answer.pages
    } catch (e) {
      error.value = toApiError(e)
    } finally {
      loading.value = false
    }
  }

  async function markRead(id: Notification['id']): Promise<void> {
    try {
      await notificationApiService.markRead(id)
    } catch (e) {
      throw toApiError(e)
    }
    const wasUnread = items.value.some((n) => n.id === id && !isRead(n))
    items.value = items.value.map((n) => (n.id === id ? { ...n, read: true, read_at: new Date().toISOString() } : n))
    if (wasUnread && serverUnread.value !== null) serverUnread.value = Math.max(0, serverUnread.value - 1)
  }

  async function markAllRead(): Promise<void> {
    try {
      await notificationApiService.markAllRead()
    } catch (e) {
      throw toApiError(e)
    }
    const now = new Date().toISOString()
    items.value = items.value.map((n) => (isRead(n) ? n : { ...n, read: true, read_at: now }))
    if (serverUnread.value !== null) serverUnread.value = 0
  }

  function receive(notification: Notification): void {
    if (items.value.some((n) => n.id === notification.id)) return
    items.value = [notification, ...items.value]
    total.value += 1
    if (!isRead(notification) && serverUnread.value !== null) serverUnread.value += 1
    lastArrival.value = notification
  }

  /**
   * Opening a ticket reads its notifications: every unread one about `ticketId` is marked read
   * (those loaded, and those the server still counts beyond the loaded page).
   */
  async function markTicketRead(ticketId: number): Promise<void> {
    if (serverUnread.value === null) await (inflight ?? fetchNotifications())
    if (unreadCount.value === 0) return
    const loaded = new Set(items.value.map((n) => n.id))
    const ids = new Set(items.value.filter((n) => n.ticket_id === ticketId && !isRead(n)).map((n) => n.id))
    const loadedUnread = items.value.filter((n) => !isRead(n)).length
    if (serverUnread.value !== null && serverUnread.value > loadedUnread) {
      try {
        const unread = await notificationApiService.listNotifications(1, 100, true)
        unread.items.filter((n) => n.ticket_id === ticketId && !isRead(n)).forEach((n) => ids.add(n.id))
      } catch {
        // the loaded ones still get marked
      }
    }
    for (const id of ids) {
      try {
        await markRead(id)
        if (!loaded.has(id) && serverUnread.value !== null) serverUnread.value = Math.max(0, serverUnread.value - 1)
      } catch {
        // it stays unread; the bell shows it
      }
    }
  }

  function reset(): void {
    items.value = []
    total.value = 0
    serverUnread.value = null
    lastArrival.value = null
  }

  return {
    items, total, page, pages, loading, error, lastArrival, unreadCount,
    fetchNotifications, markRead, markAllRead, markTicketRead, receive, reset,
  }
})
