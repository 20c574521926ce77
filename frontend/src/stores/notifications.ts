/** The bell: the caller's notifications, the unread count and the live SSE stream. */
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
  /** 'off' | 'connecting' | 'live' | 'retrying' | 'failed' */
  const streamState = ref<'off' | 'connecting' | 'live' | 'retrying' | 'failed'>('off')
  /** The newest live arrival, for the polite live region. */
  const lastArrival = ref<Notification | null>(null)
  let controller: AbortController | null = null

  /** The server's count over all pages (null until the list is loaded: then count this page). */
  const serverUnread = ref<number | null>(null)
  const unreadCount = computed(() => serverUnread.value ?? items.value.filter((n) => !isRead(n)).length)

  async function fetchNotifications(p = 1, size = 20): Promise<void> {
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

  /** Opens the stream (once); it reconnects by itself until `stop`. */
  function start(): void {
    if (controller) return
    controller = new AbortController()
    const signal = controller.signal
    streamState.value = 'connecting'
    notificationApiService
      .stream(
        {
          onOpen: () => (streamState.value = 'live'),
          onNotification: receive,
          onDisconnect: () => (streamState.value = 'retrying'),
        },
        signal,
      )
      .then(() => {
        if (!signal.aborted) streamState.value = 'off'
      })
      .catch(() => {
        // The bell still works from the list; the stream just isn't live.
        if (!signal.aborted) streamState.value = 'failed'
      })
      .finally(() => {
        if (controller?.signal === signal) controller = null
      })
  }

  function stop(): void {
    controller?.abort()
    controller = null
    streamState.value = 'off'
  }

  function reset(): void {
    stop()
    items.value = []
    total.value = 0
    serverUnread.value = null
    lastArrival.value = null
  }

  return {
    items, total, page, pages, loading, error, streamState, lastArrival, unreadCount,
    fetchNotifications, markRead, markAllRead, receive, start, stop, reset,
  }
})
