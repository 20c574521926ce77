import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { Comment, TicketDetail, TicketSummary } from '@/api/types'
import { useTicketsStore } from '../tickets'

vi.mock('@/services', () => ({
  ticketApiService: {
    searchTickets: vi.fn(),
    getTicket: vi.fn(),
    getTicketAsOf: vi.fn(),
    createTicket: vi.fn(),
    updateTicket: vi.fn(),
    updateTicketStatus: vi.fn(),
    assignTicket: vi.fn(),
    deleteTicket: vi.fn(),
    getHistory: vi.fn(),
  },
  commentApiService: { listComments: vi.fn(), createComment: vi.fn(), updateComment: vi.fn(), deleteComment: vi.fn() },
  attachmentApiService: { listAttachments: vi.fn(), uploadAttachment: vi.fn(), downloadAttachment: vi.fn(), deleteAttachment: vi.fn() },
}))

import { attachmentApiService, commentApiService, ticketApiService } from '@/services'

const api = vi.mocked(ticketApiService)
const comments = vi.mocked(commentApiService)
const files = vi.mocked(attachmentApiService)

function ticket(overrides: Partial<TicketDetail> = {}): TicketDetail {
  return {
    id: 7,
    title: 'VPN down',
    description: 'Cannot connect',
    status: 'open',
    priority: 'high',
    type: 'incident',
    requester_id: 3,
    assignee_id: null,
    tags: [],
    item_ids: [],
    approval_status: 'none',
    allowed_transitions: ['in_progress', 'cancelled'],
    deleted: false,
    version: 2,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    resolved_at: null,
    sla: { state: 'none' as const, first_response: { state: 'none' as const }, resolution: { state: 'none' as const } },
    ...overrides,
  }
}

function summary(overrides: Partial<TicketSummary> = {}): TicketSummary {
  const { id, title, status, priority, type, requester_id, assignee_id, tags, approval_status, version, created_at, updated_at, sla } = ticket()
  return {
    id, title, status, priority, type, requester_id, assignee_id, tags, approval_status, version, created_at, updated_at, sla,
    comment_count: 0,
    attachment_count: 0,
    ...overrides,
  }
}

function page(items: TicketSummary[]) {
  return { items, total: items.length, page: 1, size: 20, pages: 1 }
}

describe('tickets store', () => {
  beforeEach(() => {
    vi.clearAllMocks()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  it('keeps only the newest search answer (search-as-you-type)', async () => {
    let resolveSlow!: (value: ReturnType<typeof page>) => void
    api.searchTickets
      .mockImplementationOnce(() => new Promise((resolve) => (resolveSlow = resolve)))
      .mockResolvedValueOnce(page([summary({ id: 2, title: 'vpn' })]))
    const store = useTicketsStore()
    const first = store.fetchTickets({ q: 'v' }, { page: 1, size: 20 })
    await store.fetchTickets({ q: 'vpn' }, { page: 1, size: 20 })
    resolveSlow(page([summary({ id: 1, title: 'v' })]))
    await first
    expect(store.list?.items.map((t) => t.id)).toEqual([2])
    expect(store.listLoading).toBe(false)
  })

  it('records a list error as an ApiError', async () => {
    api.searchTickets.mockRejectedValue({ response: { status: 500, data: {} } })
    const store = useTicketsStore()
    await store.fetchTickets({}, { page: 1, size: 20 })
    expect(store.listError).toMatchObject({ code: 'SERVER_ERROR', status: 500 })
  })

  it('sends the shown version with an update', async () => {
    api.getTicket.mockResolvedValue(ticket())
    api.updateTicket.mockResolvedValue(ticket({ title: 'VPN down again', version: 3 }))
    const store = useTicketsStore()
    await store.fetchTicket(7)
    await store.updateTicket(7, { title: 'VPN down again' })
    expect(api.updateTicket).toHaveBeenCalledWith(7, { title: 'VPN down again' }, 2)
    expect(store.current?.version).toBe(3)
  })

  it('loads a ticket as of a time', async () => {
    api.getTicketAsOf.mockResolvedValue(ticket({ status: 'open' }))
    const store = useTicketsStore()
    await store.fetchTicket(7, '2026-01-02T00:00:00Z')
    expect(api.getTicketAsOf).toHaveBeenCalledWith(7, '2026-01-02T00:00:00Z')
    expect(store.asOf).toBe('2026-01-02T00:00:00Z')
  })

  it('rethrows a 409 on an illegal move as an ApiError and keeps the ticket', async () => {
    api.getTicket.mockResolvedValue(ticket())
    api.updateTicketStatus.mockRejectedValue({
      response: { status: 409, data: { detail: 'Illegal transition', code: 'CONFLICT', allowed: ['in_progress'] } },
    })
    const store = useTicketsStore()
    await store.fetchTicket(7)
    await expect(store.changeStatus(7, 'resolved')).rejects.toMatchObject({ status: 409, code: 'CONFLICT' })
    expect(store.current?.status).toBe('open')
  })

  it('adds, edits and removes comments in place', async () => {
    const c: Comment = {
      id: 'c1',
      ticket_id: 7,
      author_id: 3,
      content: 'hello',
      is_internal: true,
      parent_id: null,
      mentions: [],
      edited: false,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
    }
    comments.createComment.mockResolvedValue({ ...c, ticket_version: 3 })
    comments.updateComment.mockResolvedValue({ ...c, content: 'edited' })
    comments.deleteComment.mockResolvedValue(undefined)
    const store = useTicketsStore()
    await store.addComment(7, 'hello', true)
    expect(comments.createComment).toHaveBeenCalledWith({ ticket_id: 7, content: 'hello', is_internal: true, parent_id: null })
    expect(store.comments).toEqual([c])
    await store.editComment('c1', 'edited')
    expect(store.comments[0]?.content).toBe('edited')
    await store.removeComment('c1')
    expect(store.comments).toEqual([])
  })

  it('replies and moves the ticket in one request, then reloads the moved ticket', async () => {
    const c: Comment = {
      id: 'c2', ticket_id: 7, author_id: 3, content: 'Fixed', is_internal: false, parent_id: null,
      mentions: [], edited: false, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    }
    comments.createComment.mockResolvedValue({ ...c, ticket_version: 5 })
    api.getTicket.mockResolvedValue({ id: 7, version: 5, status: 'resolved' } as TicketDetail)
    api.getHistory.mockResolvedValue([])
    const store = useTicketsStore()
    store.current = { id: 7, version: 2, status: 'in_progress' } as never
    await store.addComment(7, 'Fixed', false, null, 'resolved')
    expect(comments.createComment).toHaveBeenCalledWith({
      ticket_id: 7, content: 'Fixed', is_internal: false, parent_id: null, set_status: 'resolved',
    })
    await vi.waitFor(() => expect(store.current?.status).toBe('resolved'))
    expect(api.getHistory).toHaveBeenCalledWith(7)
  })

  it('sorts the history by sequence', async () => {
    api.getHistory.mockResolvedValue([
      { sequence: 2, event_type: 'StatusChanged', data: {}, actor_id: 1, recorded_at: '2026-01-02T00:00:00Z', changes: [], request_id: '2' },
      { sequence: 1, event_type: 'TicketOpened', data: {}, actor_id: 3, recorded_at: '2026-01-01T00:00:00Z', changes: [], request_id: '1' },
    ])
    const store = useTicketsStore()
    await store.fetchHistory(7)
    expect(store.history.map((h) => h.sequence)).toEqual([1, 2])
  })

  it('lists attachments from the standard page and keeps its total as files come and go', async () => {
    const file = (id: string, filename: string) => ({
      id, ticket_id: 7, filename, content_type: 'text/plain', size: 1, sha256: 'ab', uploaded_by: 3, created_at: '2026-01-01T00:00:00Z',
    })
    files.listAttachments.mockResolvedValueOnce({ items: [file('a', 'a.txt'), file('b', 'b.txt')], total: 120, page: 1, size: 100, pages: 2 })
    files.uploadAttachment.mockResolvedValueOnce(file('c', 'c.txt'))
    files.deleteAttachment.mockResolvedValueOnce(undefined)
    const store = useTicketsStore()

    await store.fetchAttachments(7)
    expect(files.listAttachments).toHaveBeenCalledWith(7)
    expect(store.attachments.map((a) => a.filename)).toEqual(['a.txt', 'b.txt'])
    expect(store.attachmentsTotal).toBe(120)

    await store.uploadAttachment(7, new File(['c'], 'c.txt'))
    expect(store.attachmentsTotal).toBe(121)
    await store.removeAttachment('a')
    expect(store.attachments.map((a) => a.filename)).toEqual(['b.txt', 'c.txt'])
    expect(store.attachmentsTotal).toBe(120)
  })

  it('live: updates shown rows in place, offers new ones, and reloads a changed row that left the page', async () => {
    const store = useTicketsStore()
    api.searchTickets.mockResolvedValueOnce(page([summary({ id: 3 }), summary({ id: 2 }), summary({ id: 1, status: 'open' })]))
    await store.fetchTickets({ status: 'open' }, { page: 1, size: 3 })
    // Ticket 5 is new, 2 got a new title, 1 was resolved (it no longer matches status=open).
    api.searchTickets.mockResolvedValueOnce({ ...page([summary({ id: 5 }), summary({ id: 3 }), summary({ id: 2, title: 'Renamed', version: 3 })]), total: 4 })
    api.getTicket.mockResolvedValueOnce(ticket({ id: 1, status: 'resolved', version: 4 }))
    await store.refreshList([5, 2, 1], '812.3')
    // The reload includes the change that caused it: the event's position is the consistency token.
    expect(api.searchTickets).toHaveBeenLastCalledWith({ status: 'open' }, { page: 1, size: 3 }, '812.3')
    expect(api.getTicket).toHaveBeenCalledTimes(1)
    expect(api.getTicket).toHaveBeenCalledWith(1)
    expect(store.list?.items.map((t) => [t.id, t.title, t.status])).toEqual([
      [3, 'VPN down', 'open'],
      [2, 'Renamed', 'open'],
      [1, 'VPN down', 'resolved'],
    ])
    expect(store.list?.items[2]).toHaveProperty('comment_count', 0)
    expect(store.list?.total).toBe(4)
    expect(store.incoming).toEqual([5])

    api.searchTickets.mockResolvedValueOnce(page([summary({ id: 5 }), summary({ id: 3 })]))
    await store.showIncoming()
    expect(store.list?.items.map((t) => t.id)).toEqual([5, 3])
    expect(store.incoming).toEqual([])
  })

  it('live: drops a background list answer when a new search was asked for meanwhile', async () => {
    const store = useTicketsStore()
    api.searchTickets.mockResolvedValueOnce(page([summary({ id: 1 })]))
    await store.fetchTickets({}, { page: 1, size: 20 })
    let answer!: (value: ReturnType<typeof page>) => void
    api.searchTickets.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)))
    const refresh = store.refreshList([9])
    api.searchTickets.mockResolvedValueOnce(page([summary({ id: 2 })]))
    await store.fetchTickets({ q: 'x' }, { page: 1, size: 20 })
    answer(page([summary({ id: 9 }), summary({ id: 1 })]))
    await refresh
    expect(store.list?.items.map((t) => t.id)).toEqual([2])
    expect(store.incoming).toEqual([])
  })

  it('live: a quiet reload keeps the page on errors and never goes back to an older version', async () => {
    api.getTicket.mockResolvedValueOnce(ticket({ version: 5 }))
    const store = useTicketsStore()
    await store.fetchTicket(7)
    api.getTicket.mockResolvedValueOnce(ticket({ version: 4, title: 'older' }))
    await store.refreshTicket(7)
    expect(store.current?.version).toBe(5)
    api.getTicket.mockRejectedValueOnce({ response: { status: 500, data: {} } })
    await store.refreshTicket(7)
    expect(store.current?.version).toBe(5)
    expect(store.error).toBeNull()
    api.getTicket.mockResolvedValueOnce(ticket({ version: 6, status: 'resolved' }))
    await store.refreshTicket(7)
    expect(store.current).toMatchObject({ version: 6, status: 'resolved' })

    comments.listComments.mockRejectedValueOnce({ response: { status: 500, data: {} } })
    await store.fetchComments(7, { after: null })
    expect(store.commentsError).toBeNull()
    expect(store.commentsLoading).toBe(false)
  })

  it('live: a comment list that left before our own reply does not wipe the reply out', async () => {
    const c = (id: string): Comment => ({
      id, ticket_id: 7, author_id: 3, content: id, is_internal: false, parent_id: null,
      mentions: [], edited: false, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    })
    let listed!: (value: { items: Comment[]; total: number; page: number; size: number; pages: number }) => void
    comments.listComments.mockImplementationOnce(() => new Promise((resolve) => (listed = resolve)))
    comments.createComment.mockResolvedValue({ ...c('mine'), ticket_version: 2 })
    const store = useTicketsStore()
    const refresh = store.fetchComments(7, { after: '3.0' })
    await store.addComment(7, 'mine', false)
    listed({ items: [c('theirs')], total: 1, page: 1, size: 100, pages: 1 })
    await refresh
    expect(store.comments.map((x) => x.id)).toEqual(['mine'])
  })
})
