import { createTestingPinia } from '@pinia/testing'
import { flushPromises, mount } from '@vue/test-utils'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Webhook } from '@/api/types'
import i18n from '@/i18n'
import AdminWebhooksView from '../AdminWebhooksView.vue'

vi.mock('@/services', () => ({
  webhookApiService: {
    listWebhooks: vi.fn(),
    listEventTypes: vi.fn(),
    createWebhook: vi.fn(),
    updateWebhook: vi.fn(),
    deleteWebhook: vi.fn(),
  },
}))
vi.mock('@/composables/confirm', () => ({ confirmAction: vi.fn() }))
vi.mock('@/composables/notify', () => ({ notifyError: vi.fn(), notifySuccess: vi.fn() }))

import { webhookApiService } from '@/services'
import { confirmAction } from '@/composables/confirm'

const api = vi.mocked(webhookApiService)

function hook(id: number, extra: Partial<Webhook> = {}): Webhook {
  return {
    id,
    url: `https://hooks.example.com/${id}`,
    events: [],
    active: true,
    description: null,
    created_at: '2026-12-05T10:00:00Z',
    updated_at: '2026-12-05T10:00:00Z',
    pending: 0,
    failed: 0,
    ...extra,
  }
}

function page(items: Webhook[]) {
  return { items, total: items.length, page: 1, size: 20, pages: 1, total_exact: true }
}

async function setup() {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/admin/webhooks', name: 'admin-webhooks', component: AdminWebhooksView },
      { path: '/admin/webhooks/:id', name: 'admin-webhook-deliveries', component: { template: '<div />' } },
    ],
  })
  await router.push('/admin/webhooks')
  const pinia = createTestingPinia({ createSpy: vi.fn })
  const wrapper = mount(AdminWebhooksView, {
    global: { plugins: [router, pinia, i18n], stubs: { teleport: true, ElSelect: true, ElOption: true } },
    attachTo: document.body,
  })
  await flushPromises()
  return wrapper
}

describe('AdminWebhooksView', () => {
  beforeEach(() => {
    vi.clearAllMocks()
    api.listEventTypes.mockResolvedValue(['ticket.created', 'comment.created'])
  })

  it('lists hooks: URL, event filter, counts and a link to the deliveries', async () => {
    api.listWebhooks.mockResolvedValue(
      page([hook(1, { events: ['ticket.created', 'comment.created'], pending: 2, failed: 1, description: 'CRM' }), hook(2)]),
    )
    const wrapper = await setup()
    expect(api.listWebhooks).toHaveBeenCalledWith({ page: 1, size: 20 })
    const first = wrapper.find('[data-testid="webhook-row-1"]')
    expect(first.text()).toContain('https://hooks.example.com/1')
    expect(first.text()).toContain('CRM')
    expect(first.findAll('.el-tag').map((t) => t.text())).toEqual(['ticket.created', 'comment.created', '1'])
    expect(wrapper.find('[data-testid="webhook-row-2"]').text()).toContain('All events')
    expect(wrapper.find('[data-testid="webhook-deliveries-1"]').attributes('href')).toBe('/admin/webhooks/1')
    wrapper.unmount()
  })

  it('pauses a hook with the switch (PATCH active) and shows the answer', async () => {
    api.listWebhooks.mockResolvedValue(page([hook(1)]))
    api.updateWebhook.mockResolvedValue(hook(1, { active: false }))
    const wrapper = await setup()
    const toggle = wrapper.find('[data-testid="webhook-active-1"]')
    expect(toggle.attributes('aria-label') ?? toggle.find('input').attributes('aria-label')).toContain('Deliver to https://hooks.example.com/1')
    await toggle.trigger('click')
    await flushPromises()
    expect(api.updateWebhook).toHaveBeenCalledWith(1, { active: false })
    expect(wrapper.find('[data-testid="webhook-row-1"]').classes()).toContain('paused')
    wrapper.unmount()
  })

  it('creates a hook and shows its secret once', async () => {
    api.listWebhooks.mockResolvedValueOnce(page([])).mockResolvedValue(page([hook(7)]))
    api.createWebhook.mockResolvedValue({ ...hook(7), secret: 'whsec_dGVzdA==' })
    const wrapper = await setup()
    await wrapper.find('[data-testid="webhook-new"]').trigger('click')
    await flushPromises()
    expect(api.listEventTypes).toHaveBeenCalled()
    await wrapper.find('#webhook-url').setValue('https://hooks.example.com/7')
    await wrapper.find('#webhook-description').setValue('  CRM  ')
    await wrapper.find('[data-testid="webhook-form"]').trigger('submit')
    await flushPromises()
    expect(api.createWebhook).toHaveBeenCalledWith({ url: 'https://hooks.example.com/7', description: 'CRM', events: [], active: true })
    const secret = wrapper.find('[data-testid="webhook-secret"]')
    expect((secret.element as HTMLInputElement).value).toBe('whsec_dGVzdA==')
    expect(document.body.textContent).toContain('it will not be shown again')
    await wrapper.find('[data-testid="webhook-secret-done"]').trigger('click')
    await flushPromises()
    expect(wrapper.find('[data-testid="webhook-secret"]').exists()).toBe(false)
    expect(wrapper.find('[data-testid="webhook-row-7"]').exists()).toBe(true)
    wrapper.unmount()
  })

  it('checks the URL before sending, and shows the server refusing a private address', async () => {
    api.listWebhooks.mockResolvedValue(page([]))
    const wrapper = await setup()
    await wrapper.find('[data-testid="webhook-new"]').trigger('click')
    await wrapper.find('#webhook-url').setValue('ftp://example.com')
    await wrapper.find('[data-testid="webhook-form"]').trigger('submit')
    await flushPromises()
    expect(api.createWebhook).not.toHaveBeenCalled()
    // Element Plus shows a form item's error after a short debounce.
    await vi.waitFor(() => expect(wrapper.text()).toContain('Enter an http or https URL'))

    api.createWebhook.mockRejectedValue({
      response: { status: 422, data: { detail: [{ loc: ['body', 'url'], msg: 'URL points to a private or reserved address', type: 'value_error' }] } },
    })
    await wrapper.find('#webhook-url').setValue('http://10.1.2.3/hook')
    await wrapper.find('[data-testid="webhook-form"]').trigger('submit')
    await flushPromises()
    expect(api.createWebhook).toHaveBeenCalledTimes(1)
    await vi.waitFor(() => expect(wrapper.text()).toContain('This address is private or reserved'))
    wrapper.unmount()
  })

  it('edits in the same dialog (PATCH with the chosen fields)', async () => {
    api.listWebhooks.mockResolvedValue(page([hook(3, { events: ['ticket.created'], description: 'Old' })]))
    api.updateWebhook.mockResolvedValue(hook(3, { events: ['ticket.created'], description: 'New' }))
    const wrapper = await setup()
    const edit = wrapper.find('[data-testid="webhook-row-3"]').findAll('button').find((b) => b.text().startsWith('Edit'))!
    await edit.trigger('click')
    await flushPromises()
    expect((wrapper.find('#webhook-url').element as HTMLInputElement).value).toBe('https://hooks.example.com/3')
    await wrapper.find('#webhook-description').setValue('New')
    await wrapper.find('[data-testid="webhook-form"]').trigger('submit')
    await flushPromises()
    // Only what changed goes out.
    expect(api.updateWebhook).toHaveBeenCalledWith(3, { description: 'New' })
    expect(wrapper.find('[data-testid="webhook-row-3"]').text()).toContain('New')

    // A cleared description is sent as "" (null would leave it as it was).
    api.updateWebhook.mockResolvedValue(hook(3, { events: ['ticket.created'], description: null }))
    await edit.trigger('click')
    await flushPromises()
    await wrapper.find('#webhook-description').setValue('')
    await wrapper.find('[data-testid="webhook-form"]').trigger('submit')
    await flushPromises()
    expect(api.updateWebhook).toHaveBeenLastCalledWith(3, { description: '' })
    wrapper.unmount()
  })

  it('deletes only after confirmation', async () => {
    api.listWebhooks.mockResolvedValue(page([hook(4)]))
    api.deleteWebhook.mockResolvedValue(undefined)
    const wrapper = await setup()
    const del = () => wrapper.find('[data-testid="webhook-row-4"]').findAll('button').find((b) => b.text().startsWith('Delete'))!
    vi.mocked(confirmAction).mockResolvedValueOnce(false)
    await del().trigger('click')
    await flushPromises()
    expect(api.deleteWebhook).not.toHaveBeenCalled()
    vi.mocked(confirmAction).mockResolvedValueOnce(true)
    await del().trigger('click')
    await flushPromises()
    expect(api.deleteWebhook).toHaveBeenCalledWith(4)
    expect(api.listWebhooks).toHaveBeenCalledTimes(2)
    wrapper.unmount()
  })
})
