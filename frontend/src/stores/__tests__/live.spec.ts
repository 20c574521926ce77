import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { StreamAuthError, StreamFatalError, StreamRetry, type LiveHandlers, type LiveSubscription } from '@/services/LiveApiService'
import { BACKOFF_MAX_MS, MAX_LIVE_TICKETS, RESUBSCRIBE_DEBOUNCE_MS, STABLE_MS, backoffDelay, useLiveStore } from '../live'

vi.mock('@/services', () => ({ liveApiService: { connect: vi.fn(), refreshSession: vi.fn() } }))

import { liveApiService } from '@/services'

const api = vi.mocked(liveApiService)

/** One call of `connect`, with the means to play the server's part. */
interface Connection {
  subscription: LiveSubscription
  lastEventId: string | null
  handlers: LiveHandlers
  signal: AbortSignal
  end(): void
  fail(error: unknown): void
}

let connections: Connection[] = []

function serve(): void {
  api.connect.mockImplementation((subscription, lastEventId, handlers, signal) => {
    return new Promise<void>((resolve, reject) => {
      signal.addEventListener('abort', () => resolve())
      connections.push({ subscription, lastEventId, handlers, signal, end: resolve, fail: reject })
    })
  })
}

const last = (): Connection => connections[connections.length - 1]!

/** Lets timers and the promise chains behind them run. */
async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
}

describe('live store', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.clearAllMocks()
    connections = []
    serve()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  afterEach(() => {
    useLiveStore().stop()
    vi.useRealTimers()
  })

  it('opens one connection for what the pages watch, after they had a moment to say it', async () => {
    const live = useLiveStore()
    live.start()
    live.start()
    live.watch({ tickets: [4] })
    live.watch({ queue: true })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    expect(connections).toHaveLength(1)
    expect(last().subscription).toEqual({ tickets: [4], queue: true })
    expect(live.status).toBe('connecting')
    last().handlers.onOpen()
    expect(live.status).toBe('live')
  })

  it('reconnects once, with the last event id, when the watched set changes, and not when it comes back the same', async () => {
    const live = useLiveStore()
    live.start()
    const page = live.watch({ tickets: [1] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().handlers.onOpen()
    last().handlers.onEvent({ type: 'ticket', id: '10.1', data: { ticket_id: 1, version: 2, actor_id: 3, actor_name: 'Bea', event_types: [], summary: 'Bea replied' } })

    // Quick changes are debounced into one reconnect.
    page.set({ tickets: [2] })
    page.set({ tickets: [3] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS - 1)
    expect(connections).toHaveLength(1)
    await advance(1)
    expect(connections[0]!.signal.aborted).toBe(true)
    expect(connections).toHaveLength(2)
    expect(last().subscription.tickets).toEqual([3])
    expect(last().lastEventId).toBe('10.1')
    expect(live.status).toBe('live') // a planned reconnect is not "offline"

    // Away and back to the same set: no new connection.
    page.set({ tickets: [7] })
    page.set({ tickets: [3] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    expect(connections).toHaveLength(2)

    page.release()
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    expect(last().subscription).toEqual({ tickets: [], queue: false })
  })

  it('backs off exponentially after drops, shows offline, and resumes from the last id', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1)
    const live = useLiveStore()
    live.start()
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().handlers.onOpen()
    last().handlers.onEvent({ type: 'notification', id: '55', data: { id: 55, kind: 'comment', message: 'm', internal: false, read: false, created_at: '' } })
    last().fail(new TypeError('network'))
    await advance(0)
    expect(live.status).toBe('offline')

    const waits: number[] = []
    for (let i = 0; i < 7; i++) {
      const before = connections.length
      let waited = 0
      while (connections.length === before) {
        await advance(100)
        waited += 100
      }
      waits.push(waited)
      expect(last().lastEventId).toBe('55')
      last().fail(new StreamRetry('503'))
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000, BACKOFF_MAX_MS, BACKOFF_MAX_MS])
    expect(live.status).toBe('offline')
  })

  it('starts the backoff over after a connection that held, and comes straight back when the server ends a good stream', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1)
    const live = useLiveStore()
    live.start()
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().fail(new TypeError('network'))
    await advance(1000)
    last().fail(new TypeError('network'))
    await advance(2000)
    expect(connections).toHaveLength(3)
    last().handlers.onOpen()
    await advance(STABLE_MS)
    last().end() // the access token's lifetime is over
    await advance(0)
    expect(connections).toHaveLength(4)
    expect(live.status).toBe('live')
    last().handlers.onOpen()
    await advance(STABLE_MS)
    last().fail(new TypeError('network'))
    await advance(999)
    expect(connections).toHaveLength(4)
    await advance(1)
    expect(connections).toHaveLength(5)
  })

  it('refreshes the token once on 401 and goes on; a second 401 in a row gives up', async () => {
    api.refreshSession.mockResolvedValue('new')
    const live = useLiveStore()
    live.start()
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().fail(new StreamAuthError('401'))
    await advance(0)
    expect(api.refreshSession).toHaveBeenCalledTimes(1)
    expect(connections).toHaveLength(2)
    last().fail(new StreamAuthError('401'))
    await advance(60_000)
    expect(connections).toHaveLength(2)
    expect(live.status).toBe('failed')
  })

  it('after a 403/404 waits for another subscription instead of retrying the refused one', async () => {
    const live = useLiveStore()
    live.start()
    const page = live.watch({ tickets: [404] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().fail(new StreamFatalError('404'))
    await advance(60_000)
    expect(connections).toHaveLength(1)
    expect(live.status).toBe('failed')
    page.set({ tickets: [5] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    expect(connections).toHaveLength(2)
    expect(last().subscription.tickets).toEqual([5])
    last().handlers.onOpen()
    expect(live.status).toBe('live')
  })

  it('asks for at most 50 tickets, as the server allows', async () => {
    const live = useLiveStore()
    live.start()
    live.watch({ tickets: Array.from({ length: 80 }, (_, i) => i + 1) })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    expect(last().subscription.tickets).toHaveLength(MAX_LIVE_TICKETS)
  })

  it('hands events to listeners, keeps presence per ticket, and tells pages to reload on reset', async () => {
    const live = useLiveStore()
    const resets = vi.fn()
    const tickets = vi.fn()
    live.on('reset', resets)
    const off = live.on('ticket', tickets)
    live.start()
    live.watch({ tickets: [1] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    const { onEvent } = last().handlers
    onEvent({ type: 'presence', id: null, data: { ticket_id: 1, users: [{ id: 2, full_name: 'Bea', state: 'viewing' }] } })
    expect(live.presence[1]).toEqual([{ id: 2, full_name: 'Bea', state: 'viewing' }])
    const event = { ticket_id: 1, version: 3, actor_id: 2, actor_name: 'Bea', event_types: ['TicketUpdated'], summary: 'Bea replied' }
    onEvent({ type: 'ticket', id: '9.0', data: event })
    expect(tickets).toHaveBeenCalledWith(event, '9.0')
    off()
    onEvent({ type: 'ticket', id: '9.1', data: event })
    expect(tickets).toHaveBeenCalledTimes(1)

    onEvent({ type: 'reset', id: '20.0' })
    expect(resets).toHaveBeenCalledTimes(1)
    expect(live.lastEventId).toBe('20.0')
    onEvent({ type: 'reset', id: null })
    expect(resets).toHaveBeenCalledTimes(2)
    expect(live.lastEventId).toBeNull()
  })

  it('forgets presence when the connection drops (it is not resumed) and when a ticket is no longer watched', async () => {
    const live = useLiveStore()
    live.start()
    const page = live.watch({ tickets: [1, 2] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    const users = [{ id: 2, full_name: 'Bea', state: 'viewing' as const }]
    last().handlers.onEvent({ type: 'presence', id: null, data: { ticket_id: 1, users } })
    last().handlers.onEvent({ type: 'presence', id: null, data: { ticket_id: 2, users } })
    page.set({ tickets: [2] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    expect(Object.keys(live.presence)).toEqual(['2'])
    last().fail(new TypeError('network'))
    await advance(0)
    expect(live.presence).toEqual({})
  })

  it('stop closes the connection and ends the loop', async () => {
    const live = useLiveStore()
    live.start()
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    const connection = last()
    live.stop()
    expect(connection.signal.aborted).toBe(true)
    expect(live.status).toBe('off')
    await advance(60_000)
    expect(connections).toHaveLength(1)
  })

  it('jitters the backoff within the upper half of each step', () => {
    expect(backoffDelay(0, () => 0)).toBe(500)
    expect(backoffDelay(0, () => 1)).toBe(1000)
    expect(backoffDelay(3, () => 0.5)).toBe(6000)
    expect(backoffDelay(40, () => 1)).toBe(BACKOFF_MAX_MS)
  })

  it('asks pages to reload when a connection does not continue the last one, but not after a plain resume', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1)
    const live = useLiveStore()
    const resyncs: boolean[] = []
    live.on('resync', (resumed) => resyncs.push(resumed))
    live.start()
    const page = live.watch({ tickets: [1] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().handlers.onOpen() // first connection: nothing to resume from
    expect(resyncs).toEqual([false])
    last().handlers.onEvent({ type: 'queue', id: '5.0', data: { ticket_id: 1, version: 2 } })
    last().fail(new TypeError('network'))
    await advance(1000)
    last().handlers.onOpen() // same set, from 5.0: the stream replays what was missed
    expect(resyncs).toEqual([false])
    page.set({ tickets: [1, 2] })
    await advance(RESUBSCRIBE_DEBOUNCE_MS)
    last().handlers.onOpen() // ticket 2 is new to the stream: its past is not in it
    expect(resyncs).toEqual([false, true])
  })
})
