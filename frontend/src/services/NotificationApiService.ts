import { fetchEventSource, type EventSourceMessage } from '@microsoft/fetch-event-source'
import type { StreamingApiClient } from '@/api/client'
import type { Notification, NotificationListResponse } from '@/api/types'

/** The stream answered 401: refresh once, then reconnect. */
export class StreamAuthError extends Error {}
/** The stream cannot work (403, 404, ...): stop trying. */
export class StreamFatalError extends Error {}
/** A dropped or refused (5xx, 429) connection: try again later. */
export class StreamRetry extends Error {}

export interface StreamHandlers {
  onNotification(notification: Notification): void
  onOpen?(): void
  /** A dropped connection that will be retried (`retryInMs`). */
  onDisconnect?(retryInMs: number): void
}

const RETRY_MS = 5000

/**
 * `/api/v1/notifications`. The live stream is Server-Sent Events read with `fetch`
 * (`@microsoft/fetch-event-source`) so it can carry the `Authorization` header: `EventSource`
 * cannot, and a token never travels in a URL.
 */
export class NotificationApiService {
  constructor(private apiClient: StreamingApiClient) {}

  async listNotifications(page = 1, size = 20, unread?: boolean): Promise<NotificationListResponse> {
    return this.apiClient.get('/api/v1/notifications/', {
      params: { page, size, ...(unread === undefined ? {} : { unread }) },
    })
  }

  async markRead(notificationId: Notification['id']): Promise<void> {
    return this.apiClient.post(`/api/v1/notifications/${notificationId}/read`)
  }

  async markAllRead(): Promise<void> {
    return this.apiClient.post('/api/v1/notifications/read-all')
  }

  /**
   * Runs until `signal` aborts or the stream fails for good. Network drops reconnect after
   * `RETRY_MS`; a 401 joins the client's single-flight refresh and reconnects once.
   */
  async stream(handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
    // The server ends the stream when the access token expires; the reconnect then answers 401,
    // so refresh (once per successful connection) and go on from the last event seen.
    const state = { refreshed: false, lastEventId: null as string | null }
    while (!signal.aborted) {
      try {
        await this.streamOnce(handlers, signal, state)
        return
      } catch (error) {
        if (error instanceof StreamAuthError && !state.refreshed && !signal.aborted) {
          state.refreshed = true
          await this.apiClient.refreshSession()
          continue
        }
        throw error
      }
    }
  }

  private streamOnce(
    handlers: StreamHandlers,
    signal: AbortSignal,
    state: { refreshed: boolean; lastEventId: string | null },
  ): Promise<void> {
    const token = this.apiClient.accessToken()
    if (!token) return Promise.reject(new StreamAuthError('not signed in'))
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }
    if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId
    return fetchEventSource(`${this.apiClient.base}/api/v1/notifications/stream`, {
      headers,
      signal,
      openWhenHidden: true,
      async onopen(response) {
        const type = response.headers.get('content-type') ?? ''
        if (response.ok && type.startsWith('text/event-stream')) {
          state.refreshed = false
          handlers.onOpen?.()
          return
        }
        if (response.status === 401) throw new StreamAuthError('stream: 401')
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          throw new StreamFatalError(`stream: ${response.status}`)
        }
        throw new StreamRetry(`stream: ${response.status}`)
      },
      onmessage(message: EventSourceMessage) {
        if (message.id) state.lastEventId = message.id
        if (!message.data) return // keep-alive
        try {
          const parsed = JSON.parse(message.data) as Notification
          if (parsed && typeof parsed === 'object') handlers.onNotification(parsed)
        } catch {
          // not JSON: not a notification
        }
      },
      onclose() {
        throw new StreamRetry('stream closed by the server')
      },
      onerror(error: unknown) {
        if (error instanceof StreamAuthError || error instanceof StreamFatalError) throw error
        handlers.onDisconnect?.(RETRY_MS)
        return RETRY_MS
      },
    })
  }
}
