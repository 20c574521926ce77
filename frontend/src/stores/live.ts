/**
 * The tab's one live connection (`GET /api/v1/live`): what the open pages watch, the stream's
 * state for the header, who is on each watched ticket, and the events handed to the pages.
 *
 * Pages say what they need through `watch()` handles (a ticket page its ticket, the list `queue`);
 * the union is the connection's subscription, and a change reconnects once the set has been still
 * for `RESUBSCRIBE_DEBOUNCE_MS`. Every reconnect sends the last event id seen (`Last-Event-ID`), so
 * nothing is lost across a drop or a change of subscription; a drop is retried with exponential
 * backoff and shows the tab offline meanwhile. `reset` (the id is older than the server keeps)
 * tells the pages to reload what they show.
 */
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { LivePresenceEvent, LiveQueueEvent, LiveTicketEvent, Notification, PresenceUser } from '@/api/types'
import { liveApiService } from '@/services'
import { StreamAuthError, StreamFatalError, liveQuery, type LiveEvent, type LiveSubscription } from '@/services/LiveApiService'

/** `off` (signed out), `connecting` (first attempt), `live`, `offline` (dropped, retrying), `failed`. */
export type LiveStatus = 'off' | 'connecting' | 'live' | 'offline' | 'failed'

export const BACKOFF_BASE_MS = 1000
export const BACKOFF_MAX_MS = 30_000
/** How long the set of watched things must stay still before the stream follows it. */
export const RESUBSCRIBE_DEBOUNCE_MS = 250
/** The longest timer there is (about 24 days): a wait that only a wake-up ends. */
const UNTIL_WOKEN_MS = 2 ** 31 - 1
/** The server takes at most this many tickets per connection (more answers 422). */
export const MAX_LIVE_TICKETS = 50
/** A connection open this long was good: the next drop starts the backoff from the beginning. */
export const STABLE_MS = 10_000

/** The wait before retry number `attempt` (0, 1, ...): doubling up to 30 s, the upper half jittered
 *  so that many tabs do not come back at the same instant after a restart. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16))
  return Math.round(ceiling / 2 + (ceiling / 2) * random())
}

/** The events pages can listen to. `at` (ticket, queue) is the event's id, the position in the
 *  log: as `X-Consistency-Token`, reads include the change. */
export interface LiveListeners {
  notification: (notification: Notification) => void
  ticket: (event: LiveTicketEvent, at: string | null) => void
  presence: (event: LivePresenceEvent) => void
  queue: (event: LiveQueueEvent, at: string | null) => void
  reset: () => void
  /** A connection opened that does not continue the previous one (first connection, another
   *  subscription, nothing to resume from): what happened before it is not in the stream, so
   *  pages reload what they show, quietly. `resumed`: it did start from the last event id (the
   *  caller's notifications, which do not depend on the subscription, are all in it). */
  resync: (resumed: boolean) => void
}
type ListenerSets = { [K in keyof LiveListeners]: Set<LiveListeners[K]> }

/** What one page watches; `set` replaces it, `release` drops it (on unmount). */
export interface LiveWatch {
  set(subscription: Partial<LiveSubscription>): void
  release(): void
}

/** One running connection loop; `stop` ends it for good. */
interface Run {
  stop: AbortController
  connection: AbortController | null
  /** The query of the open (or opening) connection. */
  query: string | null
  /** Ends the current wait early (the browser came back online). */
  wake: (() => void) | null
  /** Set when the connection was closed to follow a new subscription. */
  resubscribing: boolean
  /** Refused for good (a watched ticket is gone or not ours): wait for another subscription. */
  refused: boolean
}

export const useLiveStore = defineStore('live', () => {
  const status = ref<LiveStatus>('off')
  const lastEventId = ref<string | null>(null)
  /** ticket id → the people on it (the caller included; pages leave themselves out). */
  const presence = ref<Record<number, PresenceUser[]>>({})
  const watches = new Map<symbol, LiveSubscription>()
  const listeners: ListenerSets = {
    notification: new Set(),
    ticket: new Set(),
    presence: new Set(),
    queue: new Set(),
    reset: new Set(),
    resync: new Set(),
  }
  let run: Run | null = null
  let resubscribeTimer: ReturnType<typeof setTimeout> | undefined

  // ------------------------------------------------------------ subscription

  /** The union of every page's watch. */
  function subscription(): LiveSubscription {
    const tickets = new Set<number>()
    let queue = false
    for (const w of watches.values()) {
      w.tickets.forEach((id) => tickets.add(id))
      queue ||= w.queue
    }
    return { tickets: [...tickets].slice(0, MAX_LIVE_TICKETS), queue }
  }

  function watch(initial: Partial<LiveSubscription> = {}): LiveWatch {
    const key = Symbol('live-watch')
    const set = (s: Partial<LiveSubscription>) => {
      watches.set(key, { tickets: [...(s.tickets ?? [])], queue: Boolean(s.queue) })
      changed()
    }
    set(initial)
    return {
      set,
      release: () => {
        watches.delete(key)
        changed()
      },
    }
  }

  /** Reconnects with the new set once it has been still for a moment. */
  function changed(): void {
    clearTimeout(resubscribeTimer)
    resubscribeTimer = setTimeout(() => {
      const watched = new Set(subscription().tickets)
      presence.value = Object.fromEntries(Object.entries(presence.value).filter(([id]) => watched.has(Number(id))))
      // Waiting (first start, backoff): the next attempt takes the new set anyway.
      if (run?.connection && run.query !== liveQuery(subscription())) {
        run.resubscribing = true
        run.connection.abort()
      }
      // A refused subscription may work now (the page of the missing ticket was left).
      if (run?.refused) run.wake?.()
    }, RESUBSCRIBE_DEBOUNCE_MS)
  }

  // ------------------------------------------------------------ events

  function on<K extends keyof LiveListeners>(type: K, listener: LiveListeners[K]): () => void {
    const set = listeners[type] as Set<LiveListeners[K]>
    set.add(listener)
    return () => set.delete(listener)
  }

  function emit<K extends keyof LiveListeners>(type: K, ...args: Parameters<LiveListeners[K]>): void {
    for (const listener of [...listeners[type]]) {
      try {
        ;(listener as (...a: Parameters<LiveListeners[K]>) => void)(...args)
      } catch (error) {
        console.error(`live ${type} listener failed`, error)
      }
    }
  }

  function dispatch(event: LiveEvent): void {
    if (event.id) lastEventId.value = event.id
    switch (event.type) {
      case 'reset':
        // Without a new position the old one is useless: start from now (the pages reload).
        if (!event.id) lastEventId.value = null
        emit('reset')
        break
      case 'presence':
        presence.value = { ...presence.value, [event.data.ticket_id]: event.data.users }
        emit('presence', event.data)
        break
      case 'notification':
        emit('notification', event.data)
        break
      case 'ticket':
        emit('ticket', event.data, event.id)
        break
      case 'queue':
        emit('queue', event.data, event.id)
        break
    }
  }

  // ------------------------------------------------------------ the connection loop

  function sleep(r: Run, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        r.stop.signal.removeEventListener('abort', done)
        if (r.wake === done) r.wake = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      r.wake = done
      r.stop.signal.addEventListener('abort', done)
    })
  }

  /** One connection; what ended it: `null` (the server closed it) or the error. */
  async function connectOnce(r: Run, onOpen: () => void): Promise<unknown> {
    const sub = subscription()
    const connection = new AbortController()
    r.connection = connection
    r.query = liveQuery(sub)
    try {
      await liveApiService.connect(sub, lastEventId.value, { onOpen, onEvent: dispatch }, connection.signal)
      return null
    } catch (error) {
      return error ?? new Error('live: failed')
    } finally {
      r.connection = null
      r.query = null
    }
  }

  async function loop(r: Run): Promise<void> {
    // Let the first page say what it watches before the first connection.
    await sleep(r, RESUBSCRIBE_DEBOUNCE_MS)
    let attempt = 0
    let refreshed = false
    /** The query of the last connection that opened: a resume of it with an id loses nothing. */
    let previous: string | null = null
    while (!r.stop.signal.aborted) {
      const opened = { at: null as number | null }
      const resumes = lastEventId.value !== null
      const failure = await connectOnce(r, () => {
        opened.at = Date.now()
        refreshed = false
        status.value = 'live'
        const continues = resumes && previous === r.query
        previous = r.query
        if (!continues) emit('resync', resumes)
      })
      if (r.stop.signal.aborted) return
      if (r.resubscribing) {
        r.resubscribing = false
        continue
      }
      if (failure instanceof StreamAuthError && !refreshed) {
        // The token expired (the server ends the stream then): refresh once, go on at once.
        refreshed = true
        try {
          await liveApiService.refreshSession()
          continue
        } catch {
          status.value = 'failed' // the session is gone; the app goes to the login page
          return
        }
      }
      if (failure instanceof StreamAuthError) {
        status.value = 'failed'
        return
      }
      if (failure instanceof StreamFatalError) {
        // 403/404/422: this subscription cannot work (a ticket deleted or not visible); the
        // next one may.
        status.value = 'failed'
        presence.value = {}
        r.refused = true
        await sleep(r, UNTIL_WOKEN_MS)
        r.refused = false
        continue
      }
      const stable = opened.at !== null && Date.now() - opened.at >= STABLE_MS
      if (stable) attempt = 0
      // A good stream the server ended (the token's lifetime is over): reconnect at once.
      if (failure === null && stable) continue
      status.value = 'offline'
      presence.value = {}
      await sleep(r, backoffDelay(attempt++))
    }
  }

  function onOnline(): void {
    run?.wake?.()
  }

  /** Opens the stream (once per sign-in); it reconnects by itself until `stop`. */
  function start(): void {
    if (run) return
    const r: Run = { stop: new AbortController(), connection: null, query: null, wake: null, resubscribing: false, refused: false }
    run = r
    status.value = 'connecting'
    window.addEventListener('online', onOnline)
    void loop(r).finally(() => {
      if (run === r && r.stop.signal.aborted) run = null
    })
  }

  /** Closes the stream and forgets everything of this session (signing out). */
  function stop(): void {
    const r = run
    run = null
    window.removeEventListener('online', onOnline)
    if (r) {
      r.stop.abort()
      r.connection?.abort()
    }
    clearTimeout(resubscribeTimer)
    status.value = 'off'
    presence.value = {}
    lastEventId.value = null
  }

  return { status, lastEventId, presence, watch, on, start, stop, subscription }
})
