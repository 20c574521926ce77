import { fetchEventSource, type EventSourceMessage } from '@microsoft/fetch-event-source'
import type { StreamingApiClient } from '@/api/client'
import type {
  LivePresenceEvent,
  LiveQueueEvent,
  LiveTicketEvent,
  Notification,
  PresenceUpdate,
} from '@/api/types'

/** The stream answered 401: refresh the token, then reconnect. */
export class StreamAuthError extends Error {}
/** The stream cannot work (403, 404, ...): stop trying. */
export class StreamFatalError extends Error {}
/** A refused (5xx, 429) connection: try again later. */
export class StreamRetry extends Error {}

/** What one `/live` connection watches: tickets by id, and every ticket (staff, `queue`). */
export interface LiveSubscription {
  tickets: number[]
  queue: boolean
}

/** One event of the stream, its JSON parsed; `id` is the SSE id it carried, if any. */
export type LiveEvent =
  | { type: 'notification'; id: string | null; data: Notification }
  | { type: 'ticket'; id: string | null; data: LiveTicketEvent }
  | { type: 'presence'; id: string | null; data: LivePresenceEvent }
  | { type: 'queue'; id: string | null; data: LiveQueueEvent }
  | { type: 'reset'; id: string | null }

export interface LiveHandlers {
  /** The server accepted the connection (200, `text/event-stream`). */
  onOpen(): void
  onEvent(event: LiveEvent): void
}

/** `fetch` as the stream uses it (tests hand in their own). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

const LIVE_PATH = '/api/v1/live'

/** The query of a subscription, in a stable order: equal sets give equal strings. */
export function liveQuery(subscription: LiveSubscription): string {
  const params = new URLSearchParams()
  for (const id of [...new Set(subscription.tickets)].sort((a, b) => a - b)) params.append('ticket', String(id))
  if (subscription.queue) params.set('queue', 'true')
  return params.toString()
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A message of the stream → a typed event; keep-alives, unknown names and bad JSON → null. */
export function toLiveEvent(message: Pick<EventSourceMessage, 'event' | 'data' | 'id'>): LiveEvent | null {
  const id = message.id ? message.id : null
  if (message.event === 'reset') return { type: 'reset', id }
  if (!message.data) return null
  let data: unknown
  try {
    data = JSON.parse(message.data)
  } catch {
    return null
  }
  if (!isObject(data)) return null
  switch (message.event) {
    case 'notification':
      return typeof data.id === 'number' ? { type: 'notification', id, data: data as unknown as Notification } : null
    case 'ticket':
      return typeof data.ticket_id === 'number' ? { type: 'ticket', id, data: data as unknown as LiveTicketEvent } : null
    case 'presence':
      return typeof data.ticket_id === 'number' && Array.isArray(data.users)
        ? { type: 'presence', id, data: data as unknown as LivePresenceEvent }
        : null
    case 'queue':
      return typeof data.ticket_id === 'number' ? { type: 'queue', id, data: data as unknown as LiveQueueEvent } : null
    default:
      return null
  }
}

/**
 * `/api/v1/live`, the one Server-Sent Events connection of a tab, and PUT
 * `/tickets/{id}/presence`. The stream is read with `fetch` (`@microsoft/fetch-event-source`) so it
 * carries the `Authorization` header; a token never travels in a URL. `connect` is one connection:
 * retrying, backing off and resuming are the live store's.
 */
export class LiveApiService {
  constructor(
    private apiClient: StreamingApiClient,
    private fetchImpl: FetchLike = (input, init) => fetch(input, init),
  ) {}

  /**
   * Opens the stream and hands each event to `handlers` until the server ends it (resolves) or
   * `signal` aborts (resolves). Rejects with `StreamAuthError` on 401, `StreamFatalError` on another
   * 4xx but 429, and anything else (network, 5xx, 429) for the caller to retry.
   */
  connect(subscription: LiveSubscription, lastEventId: string | null, handlers: LiveHandlers, signal: AbortSignal): Promise<void> {
    const token = this.apiClient.accessToken()
    if (!token) return Promise.reject(new StreamAuthError('not signed in'))
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }
    if (lastEventId) headers['Last-Event-ID'] = lastEventId
    const query = liveQuery(subscription)
    return fetchEventSource(`${this.apiClient.base}${LIVE_PATH}${query ? `?${query}` : ''}`, {
      headers,
      signal,
      openWhenHidden: true,
      fetch: this.fetchImpl as typeof fetch,
      async onopen(response) {
        const type = response.headers.get('content-type') ?? ''
        if (response.ok && type.startsWith('text/event-stream')) {
          handlers.onOpen()
          return
        }
        if (response.status === 401) throw new StreamAuthError('live: 401')
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          throw new StreamFatalError(`live: ${response.status}`)
        }
        throw new StreamRetry(`live: ${response.status}`)
      },
      onmessage(message) {
        const event = toLiveEvent(message)
        if (event) handlers.onEvent(event)
      },
      onerror(error: unknown) {
        // One connection per call: never let the library retry on its own.
        throw error
      },
    })
  }

  /** Joins (or starts) the client's single-flight token refresh (after a 401 of the stream). */
  refreshSession(): Promise<string> {
    return this.apiClient.refreshSession()
  }

  /** Says whether the caller is viewing the ticket, typing into its composer, or has left. */
  async setPresence(ticketId: number, update: PresenceUpdate): Promise<void> {
    return this.apiClient.put(`/api/v1/tickets/${ticketId}/presence`, update)
  }

  /**
   * `left` while the page unloads: a `keepalive` fetch outlives the page (`sendBeacon` cannot send
   * the `Authorization` header). Fire and forget.
   */
  leaveOnUnload(ticketId: number): void {
    const token = this.apiClient.accessToken()
    if (!token) return
    this.fetchImpl(`${this.apiClient.base}/api/v1/tickets/${ticketId}/presence`, {
      method: 'PUT',
      keepalive: true,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ state: 'left' } satisfies PresenceUpdate),
    }).catch(() => undefined)
  }
}
