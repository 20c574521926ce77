import { createTestingPinia } from '@pinia/testing'
import { setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { Dashboard } from '@/api/types'
import { toCounts, useDashboardStore } from '../dashboard'

vi.mock('@/services', () => ({
  reportApiService: { getDashboard: vi.fn(), exportTickets: vi.fn(), getAnalytics: vi.fn() },
}))

import { reportApiService } from '@/services'

const api = vi.mocked(reportApiService)

describe('dashboard store', () => {
  beforeEach(() => {
    vi.clearAllMocks()
    setActivePinia(createTestingPinia({ createSpy: vi.fn, stubActions: false }))
  })

  it('normalises maps and lists of counts', () => {
    expect(toCounts({ open: 2, closed: 1 })).toEqual([
      { key: 'open', count: 2 },
      { key: 'closed', count: 1 },
    ])
    expect(toCounts([{ status: 'open', count: 2 }, { assignee_id: null, count: 4 }])).toEqual([
      { key: 'open', count: 2 },
      { key: 'none', count: 4 },
    ])
    expect(toCounts(undefined)).toEqual([])
  })

  it('orders statuses and priorities by workflow, assignees by size with unassigned first', async () => {
    api.getDashboard.mockResolvedValue({
      by_status: { closed: 1, cancelled: 2, open: 5, resolved: 3, pending: 4, in_progress: 6 },
      by_priority: { critical: 1, high: 2, low: 3, medium: 4 },
      by_assignee: { '7': 2, none: 368, '9': 40 },
    } as unknown as Dashboard)
    const store = useDashboardStore()
    await store.fetchDashboard()
    expect(store.byStatus.map((c) => c.key)).toEqual(['open', 'in_progress', 'pending', 'resolved', 'closed', 'cancelled'])
    expect(store.byPriority.map((c) => c.key)).toEqual(['low', 'medium', 'high', 'critical'])
    expect(store.byAssignee.map((c) => c.key)).toEqual(['none', '9', '7'])
  })

  it('exposes the figures of the dashboard', async () => {
    // Only the fields this test reads; the rest of the contract's Dashboard is left out.
    api.getDashboard.mockResolvedValue({
      by_status: { open: 2, resolved: 1 },
      by_priority: { high: 3 },
      backlog_by_age: [{ bucket: '<1d', count: 2 }],
      open_backlog: 2,
      pending_approvals: 1,
      sla_breaches: 0,
      created_vs_resolved: [{ date: '2026-01-01', created: 3, resolved: 1 }],
      median_first_response_seconds: 600,
    } as unknown as Dashboard)
    const store = useDashboardStore()
    await store.fetchDashboard()
    expect(store.totalTickets).toBe(3)
    expect(store.byPriority).toEqual([
      { key: 'low', count: 0 },
      { key: 'medium', count: 0 },
      { key: 'high', count: 3 },
      { key: 'critical', count: 0 },
    ])
    expect(store.backlogByAge).toEqual([{ key: '<1d', count: 2 }])
    expect(store.openBacklog).toBe(2)
    expect(store.pendingApprovals).toBe(1)
    expect(store.daily).toEqual([{ date: '2026-01-01', created: 3, resolved: 1 }])
    expect(store.medianFirstResponse).toBe(600)
  })

  it('exports CSV through the service, with a default file name', async () => {
    api.exportTickets.mockResolvedValue({ blob: new Blob(['id\n']), filename: null })
    const store = useDashboardStore()
    const { filename } = await store.exportCsv()
    expect(api.exportTickets).toHaveBeenCalledWith({ format: 'csv' })
    expect(filename).toMatch(/^tickets-\d{4}-\d{2}-\d{2}\.csv$/)
    expect(store.exporting).toBe(false)
  })

  it('keeps a dashboard error', async () => {
    api.getDashboard.mockRejectedValue({ response: { status: 403, data: {} } })
    const store = useDashboardStore()
    await store.fetchDashboard()
    expect(store.error).toMatchObject({ code: 'PERMISSION_ERROR' })
  })
})
