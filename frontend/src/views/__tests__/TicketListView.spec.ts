import { createTestingPinia } from '@pinia/testing'
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import { useTicketsStore } from '@/stores/tickets'
import TicketListView from '../TicketListView.vue'

vi.mock('@/services', () => ({
  ticketApiService: { searchTickets: vi.fn() },
  userApiService: { listUsers: vi.fn().mockResolvedValue({ items: [], total: 0, page: 1, size: 20, pages: 0 }), getUser: vi.fn() },
}))

async function setup(path: string) {
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
    stubActions: true,
    initialState: {
      auth: { user: { id: 1, email: 'a@example.com', full_name: 'A', role: 'agent', is_active: true, created_at: '' }, isAuthenticated: true },
    },
  })
  await router.push(path)
  const wrapper = mount(TicketListView, { global: { plugins: [router, pinia] } })
  await flushPromises()
  return { router, wrapper, store: useTicketsStore() }
}

describe('TicketListView keeps search, filters, sort and page in the URL', () => {
  beforeEach(() => vi.useFakeTimers({ shouldAdvanceTime: true }))
  afterEach(() => vi.useRealTimers())

  it('loads what the URL says', async () => {
    const { store } = await setup('/tickets?q=vpn&status=open&assignee_id=none&sort=-priority&page=2&size=50')
    expect(store.fetchTickets).toHaveBeenLastCalledWith(
      { q: 'vpn', status: 'open', assignee_id: 'none', sort: '-priority' },
      { page: 2, size: 50 },
    )
  })

  it('ignores values it does not know', async () => {
    const { store } = await setup('/tickets?status=bogus&page=-3&size=7')
    expect(store.fetchTickets).toHaveBeenLastCalledWith({}, { page: 1, size: 20 })
  })

  it('puts typed search text into the URL after a pause, back on page 1', async () => {
    const { router, wrapper, store } = await setup('/tickets?page=3&status=open')
    await wrapper.find('#ticket-search').setValue('print')
    expect(router.currentRoute.value.query).toEqual({ page: '3', status: 'open' }) // not yet
    vi.advanceTimersByTime(350)
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ q: 'print', status: 'open' })
    expect(store.fetchTickets).toHaveBeenLastCalledWith({ q: 'print', status: 'open' }, { page: 1, size: 20 })
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
