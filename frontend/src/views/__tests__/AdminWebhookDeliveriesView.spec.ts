import { createTestingPinia } from '@pinia/testing'
import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Webhook, WebhookDelivery } from '@/api/types'
import i18n from '@/i18n'
import AdminWebhookDeliveriesView from '../AdminWebhookDeliveriesView.vue'

vi.mock('@/services', () => ({
  webhookApiService: { getWebhook: vi.fn(), listDeliveries: vi.fn(), retryDelivery: vi.fn() },
}))
vi.mock('@/composables/notify', () => ({ notifyError: vi.fn(), notifySuccess: vi.fn() }))

import { webhookApiService } from '@/services'
import { notifySuccess } from '@/composables/notify'

const api = vi.mocked(webhookApiService)

const hook: Webhook = {
  id: 5,
  url: 'https://hooks.example.com/crm',
  events: ['ticket.created'],
  active: true,
  description: null,
  created_at: '2026-12-05T10:00:00Z',
  updated_at: '2026-12-05T10:00:00Z',
  pending: 1,
  failed: 1,
}

function delivery(id: number, status: WebhookDelivery['status'], extra: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return {
    id,
    event_id: 800 + id,
    event_type: 'ticket.created',
    attempts: 1,
    status,
    last_status_code: status === 'delivered' ? 204 : 500,
    last_error: status === 'delivered' ? null : 'HTTP 500',
    next_attempt_at: status === 'pending' ? '2026-12-05T10:05:00Z' : null,
    created_at: '2026-12-05T10:00:00Z',
    delivered_at: status === 'delivered' ? '2026-12-05T10:00:01Z' : null,
    ...extra,
  }
}

function page(items: WebhookDelivery[]) {
  return { items, total: items.length, page: 1, size: 20, pages: 1, total_exact: true }
}

async function setup(path = '/admin/webhooks/5') {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/admin/webhooks', name: 'admin-webhooks', component: { template: '<div />' } },
      {
        path: '/admin/webhooks/:id',
        name: 'admin-webhook-deliveries',
        component: AdminWebhookDeliveriesView,
        props: (r) => ({ id: Number(r.params.id) }),
      },
    ],
  })
  await router.push(path)
  const wrapper = mount(AdminWebhookDeliveriesView, {
    props: { id: 5 },
    global: { plugins: [router, createTestingPinia({ createSpy: vi.fn }), i18n] },
  })
  await flushPromises()
  return { wrapper, router }
}

describe('AdminWebhookDeliveriesView', () => {
  beforeEach(() => {
    vi.clearAllMocks()
    api.getWebhook.mockResolvedValue(hook)
  })
  afterEach(() => vi.useRealTimers())

  it('shows each delivery: event, status as text, attempts, last answer; retry on failed and pending only', async () => {
    api.listDeliveries.mockResolvedValue(page([delivery(1, 'failed'), delivery(2, 'pending'), delivery(3, 'delivered')]))
    const { wrapper } = await setup()
    expect(api.getWebhook).toHaveBeenCalledWith(5)
    expect(api.listDeliveries).toHaveBeenCalledWith(5, { page: 1, size: 20 })
    expect(wrapper.find('[data-testid="deliveries-hook"]').text()).toContain('https://hooks.example.com/crm')
    const row = (id: number) => wrapper.find(`[data-testid="delivery-row-${id}"]`)
    expect(row(1).find('[data-testid="delivery-status"]').text()).toBe('Failed')
    expect(row(2).find('[data-testid="delivery-status"]').text()).toBe('Pending')
    expect(row(3).find('[data-testid="delivery-status"]').text()).toBe('Delivered')
    expect(row(1).text()).toContain('ticket.created')
    expect(row(1).text()).toContain('Ticket created')
    expect(row(1).text()).toContain('801')
    expect(row(1).find('[data-testid="delivery-code"]').text()).toBe('500')
    expect(row(1).text()).toContain('HTTP 500')
    expect(row(3).find('[data-testid="delivery-code"]').text()).toBe('204')
    expect(row(1).find('[data-testid="delivery-retry"]').exists()).toBe(true)
    expect(row(2).find('[data-testid="delivery-retry"]').exists()).toBe(true)
    expect(row(3).find('[data-testid="delivery-retry"]').exists()).toBe(false)
  })

  it('retries a failed delivery and reloads', async () => {
    api.listDeliveries
      .mockResolvedValueOnce(page([delivery(1, 'failed')]))
      .mockResolvedValue(page([delivery(1, 'delivered', { attempts: 2 })]))
    api.retryDelivery.mockResolvedValue(delivery(1, 'pending', { attempts: 1 }))
    const { wrapper } = await setup()
    await wrapper.find('[data-testid="delivery-retry"]').trigger('click')
    await flushPromises()
    expect(api.retryDelivery).toHaveBeenCalledWith(5, 1)
    expect(notifySuccess).toHaveBeenCalledWith('Delivery of event 801 queued again')
    expect(api.listDeliveries).toHaveBeenCalledTimes(2)
    expect(wrapper.find('[data-testid="delivery-status"]').text()).toBe('Delivered')
  })

  it('reads the status filter from the URL and keeps it there', async () => {
    api.listDeliveries.mockResolvedValue(page([delivery(1, 'failed')]))
    const { wrapper, router } = await setup('/admin/webhooks/5?status=failed')
    expect(api.listDeliveries).toHaveBeenCalledWith(5, { page: 1, size: 20, status: 'failed' })
    const vm = wrapper.vm as unknown as { status: string }
    vm.status = 'pending'
    await flushPromises()
    expect(api.listDeliveries).toHaveBeenLastCalledWith(5, { page: 1, size: 20, status: 'pending' })
    expect(router.currentRoute.value.query).toEqual({ status: 'pending' })
    vm.status = ''
    await flushPromises()
    expect(api.listDeliveries).toHaveBeenLastCalledWith(5, { page: 1, size: 20 })
    expect(router.currentRoute.value.query).toEqual({})
  })

  it('refreshes on its own while something is pending', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    api.listDeliveries.mockResolvedValueOnce(page([delivery(2, 'pending')])).mockResolvedValue(page([delivery(2, 'delivered')]))
    const { wrapper } = await setup()
    expect(api.listDeliveries).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(5100)
    await flushPromises()
    expect(api.listDeliveries).toHaveBeenCalledTimes(2)
    expect(wrapper.find('[data-testid="delivery-status"]').text()).toBe('Delivered')
    await vi.advanceTimersByTimeAsync(11000)
    expect(api.listDeliveries).toHaveBeenCalledTimes(2) // nothing pending: no more polling
    wrapper.unmount()
  })

  it('says so when the webhook is gone', async () => {
    api.getWebhook.mockRejectedValue({ response: { status: 404, data: { detail: 'Webhook not found', code: 'NOT_FOUND' } } })
    api.listDeliveries.mockRejectedValue({ response: { status: 404, data: { detail: 'Webhook not found', code: 'NOT_FOUND' } } })
    const { wrapper } = await setup()
    expect(wrapper.text()).toContain('This webhook does not exist (any more).')
  })
})
