import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { Approval } from '@/api/types'
import { useApprovalsStore } from '../approvals'

vi.mock('@/services', () => ({
  approvalApiService: {
    listApprovals: vi.fn(),
    getApproval: vi.fn(),
    requestApproval: vi.fn(),
    decide: vi.fn(),
    delegate: vi.fn(),
    cancel: vi.fn(),
  },
}))

import { approvalApiService } from '@/services'

const api = vi.mocked(approvalApiService)

function approval(overrides: Partial<Approval> = {}): Approval {
  return {
    id: 'ap1',
    ticket_id: 9,
    status: 'pending',
    current_step: 0,
    steps: [{ name: 'CAB', rule: 'any', approver_ids: [5], status: 'pending', decisions: [], delegations: [] }],
    requested_by: 2,
    ticket_requester_id: 3,
    waiting_on: [5],
    version: 1,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    ...overrides,
  }
}

describe('approvals store', () => {
  beforeEach(() => {
    vi.clearAllMocks()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  it('loads the inbox with mine=true', async () => {
    api.listApprovals.mockResolvedValue({ items: [approval()], total: 1, page: 1, size: 20, pages: 1 })
    const store = useApprovalsStore()
    await store.fetchInbox()
    expect(api.listApprovals).toHaveBeenCalledWith({ mine: true, page: 1, size: 20 })
    expect(store.inbox?.items).toHaveLength(1)
  })

  it('a decision leaves the inbox and updates the ticket list', async () => {
    api.listApprovals.mockResolvedValueOnce({ items: [approval()], total: 1, page: 1, size: 20, pages: 1 })
    api.listApprovals.mockResolvedValueOnce({ items: [approval()], total: 1, page: 1, size: 100, pages: 1 })
    api.decide.mockResolvedValue(approval({ status: 'approved' }))
    const store = useApprovalsStore()
    await store.fetchInbox()
    await store.fetchForTicket(9)
    await store.decide('ap1', 'approve', 'fine')
    expect(api.decide).toHaveBeenCalledWith('ap1', { decision: 'approve', comment: 'fine' })
    expect(store.inbox?.items).toEqual([])
    expect(store.inbox?.total).toBe(0)
    expect(store.forTicket[0]?.status).toBe('approved')
  })

  it('requests an approval and shows it first', async () => {
    api.requestApproval.mockResolvedValue(approval({ id: 'new' }))
    const store = useApprovalsStore()
    await store.requestApproval({ ticket_id: 9, steps: [{ name: 'CAB', rule: 'any', approver_ids: [5] }] })
    expect(store.forTicket[0]?.id).toBe('new')
  })

  it('maps a 403 decision to an ApiError', async () => {
    api.decide.mockRejectedValue({ response: { status: 403, data: { detail: 'not an approver', code: 'PERMISSION_ERROR' } } })
    const store = useApprovalsStore()
    await expect(store.decide('ap1', 'reject')).rejects.toMatchObject({ status: 403, code: 'PERMISSION_ERROR' })
  })

  it('live: updates shown cards in place, keeps one decided elsewhere where it is, and offers new ones', async () => {
    const inboxPage = (items: Approval[]) => ({ items, total: items.length, page: 1, size: 20, pages: 1 })
    api.listApprovals.mockResolvedValueOnce(inboxPage([approval({ id: 'a' }), approval({ id: 'b' })]))
    const store = useApprovalsStore()
    await store.fetchInbox()
    // 'c' arrived, 'b' was delegated to me again (new version), 'a' was decided by someone else.
    api.listApprovals.mockResolvedValueOnce(inboxPage([approval({ id: 'c' }), approval({ id: 'b', version: 2 })]))
    api.getApproval.mockResolvedValueOnce(approval({ id: 'a', status: 'approved', waiting_on: [] }))
    await store.refreshInbox(['a', 'b', 'c'])
    expect(api.getApproval).toHaveBeenCalledWith('a')
    expect(store.inbox?.items.map((x) => [x.id, x.status, x.version])).toEqual([
      ['a', 'approved', 1],
      ['b', 'pending', 2],
    ])
    expect(store.incoming).toEqual(['c'])
  })

  it('live: a background answer begun before my own decision does not bring the card back', async () => {
    api.listApprovals.mockResolvedValueOnce({ items: [approval({ id: 'a' })], total: 1, page: 1, size: 20, pages: 1 })
    const store = useApprovalsStore()
    await store.fetchInbox()
    let answer!: (value: { items: Approval[]; total: number; page: number; size: number; pages: number }) => void
    api.listApprovals.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)))
    const refresh = store.refreshInbox([])
    api.decide.mockResolvedValueOnce(approval({ id: 'a', status: 'approved' }))
    await store.decide('a', 'approve')
    answer({ items: [approval({ id: 'a' })], total: 1, page: 1, size: 20, pages: 1 })
    await refresh
    expect(store.inbox?.items).toEqual([])
    expect(store.incoming).toEqual([])
  })
})
