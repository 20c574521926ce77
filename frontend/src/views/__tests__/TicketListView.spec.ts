import { createTestingPinia } from '@pinia/testing'
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { TicketSummary } from '@/api/types'
import i18n from '@/i18n'
import type { LiveHandlers, LiveSubscription } from '@/services/LiveApiService'
import { RESUBSCRIBE_DEBOUNCE_MS, useLiveStore } from '@/stores/live'
import { useTicketsStore } from '@/stores/tickets'
import TicketListView from '../TicketListView.vue'

vi.mock('@/services', () => ({
  ticketApiService: { searchTickets: vi.fn() },
  userApiService: { listUsers: vi.fn().mockResolvedValue({ items: [], total: 0, page: 1, size: 20, pages: 0 }), getUser: vi.fn() },
  liveApiService: { connect: vi.fn(), refreshSession: vi.fn() },
}))

import { liveApiService } from '@/services'

async function setup(path: string, role = 'agent') {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/tickets', name: 'tickets', component: TicketListView },
      { path: '/tickets/new', component: { template: '<div />' } },
      { path: '/tickets/:id', component: { template: '<div />' } },
    ],
  })
  const pinia = createTestingPinia({
    createSpy: vi.fn,
    // The live store runs for real (its connection is mocked): the page's watch and listeners.
    stubActions: (_name, store) => store.$id !== 'live',
    initialState: {
      auth: { user: { id: 1, email: 'a@example.com', full_name: 'A', role, is_active: true, created_at: '' }, isAuthenticated: true },
    },
  })
  await router.push(path)
  const wrapper = mount(TicketListView, { global: { plugins: [router, pinia, i18n] } })
  await flushPromises()
  return { router, wrapper, store: useTicketsStore() }
}

describe('TicketListView keeps search, filters, sort and page in the URL', () => {
  beforeEach(() => vi.useFakeTimers({ shouldAdvanceTime: true }))
  afterEach(() => vi.useRealTimers())

  it('loads what the URL says', async () => {
    const { store } = await setup('/tickets?q=vpn&status=open&assignee_id=none&sort=-priority&sla=breached&page=2&size=100')
    expect(store.fetchTickets).toHaveBeenLastCalledWith(
      { q: 'vpn', status: 'open', assignee_id: 'none', sla: 'breached', sort: '-priority' },
      { page: 2, size: 100 },
    )
  })

  it('ignores values it does not know', async () => {
    const { store } = await setup('/tickets?status=bogus&page=-3&size=7')
    expect(store.fetchTickets).toHaveBeenLastCalledWith({}, { page: 1, size: 50 })
  })

  it('puts typed search text into the URL after a pause, back on page 1', async () => {
    const { router, wrapper, store } = await setup('/tickets?page=3&status=open')
    await wrapper.find('#ticket-search').setValue('print')
    expect(router.currentRoute.value.query).toEqual({ page: '3', status: 'open' }) // not yet
    vi.advanceTimersByTime(350)
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ q: 'print', status: 'open' })
    expect(store.fetchTickets).toHaveBeenLastCalledWith({ q: 'print', status: 'open' }, { page: 1, size: 50 })
  })

  it('Back restores the earlier search text', async () => {
    const { router, wrapper } = await setup('/tickets?q=first')
    await router.push('/tickets?q=second')
    await flushPromises()
    expect((wrapper.find('#ticket-search').element as HTMLInputElement).value).toBe('second')
    router.back()
    await vi.waitFor(() => expect(router.currentRoute.value.query.q).toBe('first'))
    await flushPromises()
    expect((wrapper.find('#ticket-search').element as HTMLInputElement).value).toBe('first')
  })
})

function row(id: number, version = 1): TicketSummary {
  return {
    id, title: `T${id}`, status: 'open', priority: 'medium', type: 'issue', requester_id: 2, assignee_id: null, tags: [],
    approval_status: 'none', comment_count: 0, attachment_count: 0, version, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z',
    sla: { state: 'none' as const, first_response: { state: 'none' as const }, resolution: { state: 'none' as const } },
  }
}

describe('TicketListView live', () => {
  let handlers: LiveHandlers | null
  let subscription: LiveSubscription | null

  beforeEach(() => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    handlers = null
    subscription = null
    vi.mocked(liveApiService.connect).mockImplementation((s, _id, h, signal) => {
      handlers = h
      subscription = s
      return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
    })
  })
  afterEach(() => {
    useLiveStore().stop()
    vi.useRealTimers()
  })

  async function connected(path: string, role: string, rows: TicketSummary[]) {
    const view = await setup(path, role)
    view.store.list = { items: rows, total: rows.length, page: 1, size: 20, pages: 1 }
    useLiveStore().start()
    await vi.advanceTimersByTimeAsync(RESUBSCRIBE_DEBOUNCE_MS * 2)
    return view
  }

  it('staff follow the queue and reload once per burst of changes, skipping versions already shown', async () => {
    const { store } = await connected('/tickets', 'agent', [row(1, 3), row(2, 1)])
    expect(subscription).toEqual({ tickets: [], queue: true })
    handlers!.onEvent({ type: 'queue', id: '1.0', data: { ticket_id: 1, version: 3 } }) // shown already
    await vi.advanceTimersByTimeAsync(1500)
    expect(store.refreshList).not.toHaveBeenCalled()
    handlers!.onEvent({ type: 'queue', id: '1.1', data: { ticket_id: 2, version: 2 } })
    handlers!.onEvent({ type: 'queue', id: '1.2', data: { ticket_id: 9, version: 1 } })
    await vi.advanceTimersByTimeAsync(1000)
    expect(store.refreshList).toHaveBeenCalledTimes(1)
    expect([...(vi.mocked(store.refreshList).mock.calls[0]![0] as Set<number>)]).toEqual([2, 9])
  })

  it('a requester watches the tickets on the page', async () => {
    await connected('/tickets', 'requester', [row(4), row(5)])
    await vi.advanceTimersByTimeAsync(RESUBSCRIBE_DEBOUNCE_MS * 2)
    expect(subscription).toEqual({ tickets: [4, 5], queue: false })
  })

  it('offers the tickets that arrived instead of inserting them', async () => {
    const { store, wrapper } = await connected('/tickets', 'agent', [row(1)])
    expect(wrapper.find('[data-testid="incoming"]').exists()).toBe(false)
    store.incoming = [7, 8]
    await flushPromises()
    const bar = wrapper.get('[data-testid="incoming"]')
    expect(bar.text()).toContain('2 new tickets')
    expect(wrapper.findAll('tbody tr')).toHaveLength(1)
    await bar.get('button').trigger('click')
    expect(store.showIncoming).toHaveBeenCalled()
  })
})
