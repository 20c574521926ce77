// The `/live` stream read from real bytes: a fake `fetch` answers a ReadableStream cut at awkward
// places, and the service must turn it into typed events with their ids.
import { describe, expect, it, vi } from 'vitest'
import type { StreamingApiClient } from '@/api/client'
import { LiveApiService, StreamAuthError, StreamFatalError, StreamRetry, liveQuery, toLiveEvent, type LiveEvent } from '../LiveApiService'

function client(token: string | null = 'tok'): StreamingApiClient {
  return {
    base: '',
    accessToken: () => token,
    refreshSession: vi.fn(),
    get: vi.fn(),
    post: vi.fn(),
    put: vi.fn(),
    patch: vi.fn(),
    delete: vi.fn(),
    getBlob: vi.fn(),
  }
}

/** A 200 `text/event-stream` answer whose body arrives in these chunks, then ends. */
function streamOf(chunks: string[], status = 200, type = 'text/event-stream'): Response {
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      controller.close()
    },
  })
  return new Response(body, { status, headers: { 'content-type': type } })
}

async function collect(chunks: string[]): Promise<LiveEvent[]> {
  const events: LiveEvent[] = []
  const service = new LiveApiService(client(), async () => streamOf(chunks))
  await service.connect({ tickets: [1], queue: false }, null, { onOpen: () => undefined, onEvent: (e) => events.push(e) }, new AbortController().signal)
  return events
}

describe('LiveApiService', () => {
  it('sends the token and the last event id as headers and the watched set in the query', async () => {
    const fetchImpl = vi.fn(async () => streamOf([]))
    const service = new LiveApiService(client('secret-token'), fetchImpl)
    await service.connect({ tickets: [9, 3, 9], queue: true }, '812.4', { onOpen: vi.fn(), onEvent: vi.fn() }, new AbortController().signal)
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/v1/live?ticket=3&ticket=9&queue=true')
    expect(url).not.toContain('secret-token')
    const headers = init.headers as Record<string, string>
    expect(headers.Authorization).toBe('Bearer secret-token')
    expect(headers['Last-Event-ID']).toBe('812.4')
  })

  it('leaves Last-Event-ID out of a first connection', async () => {
    const fetchImpl = vi.fn(async () => streamOf([]))
    await new LiveApiService(client(), fetchImpl).connect({ tickets: [], queue: false }, null, { onOpen: vi.fn(), onEvent: vi.fn() }, new AbortController().signal)
    const headers = (fetchImpl.mock.calls[0] as unknown as [string, RequestInit])[1].headers as Record<string, string>
    expect(headers).not.toHaveProperty('Last-Event-ID')
  })

  it('parses named events split across chunks, with ids, CRLF and multi-line data, skipping keep-alives', async () => {
    const events = await collect([
      ': connected\n\n',
      'event: ticket\nid: 100.0\nda',
      'ta: {"ticket_id":1,"version":4,"actor_id":2,"actor_name":"Bea","event_types":["CommentAdded"],"summary":"replied"}\n\n',
      ': keep-alive\n\n',
      'event: presence\r\ndata: {"ticket_id":1,\r\ndata: "users":[{"id":2,"full_name":"Bea","state":"typing"}]}\r\n\r\n',
      'event: notification\nid: 77\ndata: {"id":77,"kind":"comment","message":"m","internal":false,"read":false,"created_at":"2026-01-01T00:00:00Z"}\n\n',
      'event: queue\nid: 101.2\ndata: {"ticket_id":5,"version":2}\n\n',
      'event: reset\nid: 205.0\ndata: {}\n\n',
    ])
    expect(events.map((e) => [e.type, e.id])).toEqual([
      ['ticket', '100.0'],
      ['presence', null],
      ['notification', '77'],
      ['queue', '101.2'],
      ['reset', '205.0'],
    ])
    expect(events[0]).toMatchObject({ data: { ticket_id: 1, version: 4, actor_name: 'Bea', event_types: ['CommentAdded'] } })
    expect(events[1]).toMatchObject({ data: { users: [{ id: 2, state: 'typing' }] } })
  })

  it('drops events it cannot read instead of failing the stream', () => {
    expect(toLiveEvent({ event: 'ticket', data: 'not json', id: '1.0' })).toBeNull()
    expect(toLiveEvent({ event: 'ticket', data: '{"version":1}', id: '1.0' })).toBeNull()
    expect(toLiveEvent({ event: 'something-new', data: '{}', id: '' })).toBeNull()
    expect(toLiveEvent({ event: '', data: '', id: '' })).toBeNull()
    expect(toLiveEvent({ event: 'reset', data: '', id: '' })).toEqual({ type: 'reset', id: null })
  })

  it('tells 401, other 4xx and retryable answers apart', async () => {
    const answer = (status: number) => new LiveApiService(client(), async () => streamOf([], status, 'application/json'))
    const run = (status: number) =>
      answer(status).connect({ tickets: [], queue: false }, null, { onOpen: vi.fn(), onEvent: vi.fn() }, new AbortController().signal)
    await expect(run(401)).rejects.toBeInstanceOf(StreamAuthError)
    await expect(run(403)).rejects.toBeInstanceOf(StreamFatalError)
    await expect(run(429)).rejects.toBeInstanceOf(StreamRetry)
    await expect(run(503)).rejects.toBeInstanceOf(StreamRetry)
    const network = new LiveApiService(client(), async () => Promise.reject(new TypeError('Failed to fetch')))
    await expect(network.connect({ tickets: [], queue: false }, null, { onOpen: vi.fn(), onEvent: vi.fn() }, new AbortController().signal)).rejects.toBeInstanceOf(TypeError)
  })

  it('does not connect without a token', async () => {
    const fetchImpl = vi.fn()
    const service = new LiveApiService(client(null), fetchImpl)
    await expect(service.connect({ tickets: [], queue: false }, null, { onOpen: vi.fn(), onEvent: vi.fn() }, new AbortController().signal)).rejects.toBeInstanceOf(StreamAuthError)
    expect(fetchImpl).not.toHaveBeenCalled()
  })

  it('orders the query so equal sets reconnect to the same URL', () => {
    expect(liveQuery({ tickets: [2, 1], queue: false })).toBe(liveQuery({ tickets: [1, 2, 2], queue: false }))
    expect(liveQuery({ tickets: [], queue: false })).toBe('')
  })

  it('says "left" on unload with a keepalive request carrying the token', () => {
    const fetchImpl = vi.fn(async () => new Response(null, { status: 204 }))
    new LiveApiService(client('tok'), fetchImpl).leaveOnUnload(42)
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/v1/tickets/42/presence')
    expect(init).toMatchObject({ method: 'PUT', keepalive: true, body: '{"state":"left"}' })
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer tok')
  })
})
